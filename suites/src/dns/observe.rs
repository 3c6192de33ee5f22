//! Everything the DNS suite says to the cluster: setup applies the objects of [`super::objects`]
//! and reads what the lookups are compared with (the kubernetes Service, the client's
//! resolv.conf); each check's observe step runs `dig` in a pod until its answer is stable.

use super::dig::{self, DigResult, RType};
use super::judge::{self, Endpoint, Expect, External, Headless, Lookup, PolicyNone};
use super::objects::*;
use super::resolv_conf::ResolvConf;
use crate::kit::check::{CheckCtx, Env};
use crate::kit::errors::KitError;
use crate::kit::probe::Probe;
use crate::kit::topology::{PodInfo, ServiceInfo};
use crate::kit::transcript::Peer;
use crate::kit::wait;
use crate::kit::workload::{self, HTTP_PORT, HTTP_PORT_NAME, Placement};
use crate::kit::{cilium, talos};
use k8s_openapi::api::core::v1::{Pod, Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsFixture {
    pub namespace: String,
    pub domain: String,
    pub client: PodInfo,
    pub backends: Vec<PodInfo>,
    pub unready: PodInfo,
    pub svc: ServiceInfo,
    pub kubernetes_ip: String,
    /// The nameserver the kubelet gives pods, read from the client's resolv.conf.
    pub cluster_dns: String,
}

impl DnsFixture {
    fn svc_fqdn(&self, name: &str) -> String {
        format!("{name}.{}.svc.{}", self.namespace, self.domain)
    }
}

/// The endpoints of a Service's EndpointSlices. A missing `ready` condition counts as ready,
/// as the EndpointSlice API defines it.
pub fn endpoints(slices: &[EndpointSlice]) -> Vec<Endpoint> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .flat_map(|e| {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            e.addresses
                .iter()
                .filter_map(move |a| a.parse().ok().map(|ip| Endpoint { ip, ready }))
        })
        .collect()
}

/// The resolver configuration a pod actually got.
async fn resolv_conf(ctx: &CheckCtx<'_>, pod: &PodInfo) -> Result<ResolvConf, KitError> {
    let out = ctx
        .run(&Probe {
            label: ctx.label(
                "read-resolv-conf",
                pod.source(),
                Peer::new("/etc/resolv.conf", None),
            ),
            origin: pod.pod_ref().into(),
            argv: vec!["cat".into(), "/etc/resolv.conf".into()],
        })
        .await?;
    Ok(ResolvConf::parse(&out.stdout))
}

async fn lookup(
    ctx: &CheckCtx<'_>,
    from: &PodInfo,
    name: &str,
    rtype: RType,
    search: bool,
    expect: Expect,
) -> Result<Lookup, KitError> {
    let probe = Probe {
        label: ctx.label(
            &format!("dig-{}", rtype.as_str().to_ascii_lowercase()),
            from.source(),
            Peer::new(name, None),
        ),
        origin: from.pod_ref().into(),
        argv: dig::argv(name, rtype, search),
    };
    let series = ctx
        .until_stable(&probe, DigResult::parse, |r| judge::answer(r, &expect))
        .await?;
    Ok(Lookup {
        name: name.into(),
        rtype,
        expect,
        series,
    })
}

fn ips(list: &[&str]) -> Result<Expect, KitError> {
    list.iter()
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| KitError::Parse {
                what: "an address from the API".into(),
                detail: format!("{s:?} is not an IP address"),
            })
        })
        .collect::<Result<BTreeSet<_>, _>>()
        .map(Expect::Ips)
}

pub(crate) async fn kubernetes_default_fqdn(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<Lookup>, KitError> {
    let name = format!("kubernetes.default.svc.{}", f.domain);
    Ok(vec![
        lookup(
            ctx,
            &f.client,
            &name,
            RType::A,
            false,
            ips(&[&f.kubernetes_ip])?,
        )
        .await?,
    ])
}

pub(crate) async fn search_path_partial_names(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<Lookup>, KitError> {
    let mut out = vec![
        lookup(
            ctx,
            &f.client,
            "kubernetes.default",
            RType::A,
            true,
            ips(&[&f.kubernetes_ip])?,
        )
        .await?,
    ];
    for name in [
        SVC.to_string(),
        format!("{SVC}.{}", f.namespace),
        format!("{SVC}.{}.svc", f.namespace),
    ] {
        out.push(
            lookup(
                ctx,
                &f.client,
                &name,
                RType::A,
                true,
                ips(&[&f.svc.cluster_ip])?,
            )
            .await?,
        );
    }
    Ok(out)
}

pub(crate) async fn service_a_record(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<Lookup>, KitError> {
    Ok(vec![
        lookup(
            ctx,
            &f.client,
            &f.svc_fqdn(SVC),
            RType::A,
            false,
            ips(&[&f.svc.cluster_ip])?,
        )
        .await?,
    ])
}

pub(crate) async fn headless_service_pod_ips(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Headless, KitError> {
    let ready: Vec<&str> = f.backends.iter().map(|b| b.ip.as_str()).collect();
    let not_ready = match ips(&[&f.unready.ip])? {
        Expect::Ips(s) => s.into_iter().collect(),
        _ => Vec::new(),
    };
    let lookup = lookup(
        ctx,
        &f.client,
        &f.svc_fqdn(HEADLESS),
        RType::A,
        false,
        ips(&ready)?,
    )
    .await?;
    let slices = Api::<EndpointSlice>::namespaced(ctx.env.client.clone(), &f.namespace)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={HEADLESS}")))
        .await
        .map_err(KitError::api(format!(
            "list endpointslices of {}/{HEADLESS}",
            f.namespace
        )))?;
    Ok(Headless {
        not_ready,
        lookup,
        endpoints: endpoints(&slices.items),
    })
}

pub(crate) async fn srv_named_port(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<Lookup>, KitError> {
    let name = format!("_{HTTP_PORT_NAME}._tcp.{}", f.svc_fqdn(SVC));
    let expect = Expect::Srv {
        port: f.svc.port as u16,
        target: format!("{}.", f.svc_fqdn(SVC)),
    };
    Ok(vec![
        lookup(ctx, &f.client, &name, RType::Srv, false, expect).await?,
    ])
}

pub(crate) async fn pod_a_record(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<Lookup>, KitError> {
    let name = format!(
        "{}.{}.pod.{}",
        f.client.ip.replace('.', "-"),
        f.namespace,
        f.domain
    );
    Ok(vec![
        lookup(
            ctx,
            &f.client,
            &name,
            RType::A,
            false,
            ips(&[&f.client.ip])?,
        )
        .await?,
    ])
}

pub(crate) async fn hostname_subdomain(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<Lookup>, KitError> {
    let mut out = Vec::new();
    for b in &f.backends {
        let name = format!("{}.{HEADLESS}.{}.svc.{}", b.name, f.namespace, f.domain);
        out.push(lookup(ctx, &f.client, &name, RType::A, false, ips(&[&b.ip])?).await?);
    }
    Ok(out)
}

pub(crate) async fn externalname_cname(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<Lookup>, KitError> {
    let expect = Expect::Cname(format!("{EXTERNAL_TARGET}."));
    Ok(vec![
        lookup(
            ctx,
            &f.client,
            &f.svc_fqdn(EXTERNAL),
            RType::Cname,
            false,
            expect,
        )
        .await?,
    ])
}

pub(crate) async fn dns_policy_none(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<PolicyNone, KitError> {
    let env = ctx.env;
    let configured = ResolvConf {
        nameservers: vec![f.cluster_dns.clone()],
        search: vec![
            format!("{MARKER_SEARCH}.{}", f.domain),
            format!("{}.svc.{}", f.namespace, f.domain),
        ],
        options: vec!["ndots:2".into()],
    };
    let pod = custom_dns_pod(env, &configured);
    workload::create_pod(&env.client, &env.namespace, &pod).await?;
    let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let custom = PodInfo::from_pod(
        &wait::pod_ready(api, CUSTOM, env.timeouts.pod_ready).await?,
        "dns",
    )?;
    let actual = resolv_conf(ctx, &custom).await?;
    // A bare Service name resolves only if the custom search list is in force.
    let lookup = lookup(
        ctx,
        &custom,
        SVC,
        RType::A,
        true,
        ips(&[&f.svc.cluster_ip])?,
    )
    .await?;
    Ok(PolicyNone {
        configured,
        actual,
        lookup,
    })
}

pub(crate) async fn external_name(
    f: &DnsFixture,
    ctx: &CheckCtx<'_>,
) -> Result<External, KitError> {
    let target = ctx
        .env
        .external_target
        .clone()
        .ok_or_else(|| KitError::Missing {
            what: "external target".into(),
            hint: "dns::external-name runs only with an external target".into(),
        })?;
    // A trailing dot keeps the search list out of it: this is about the upstream path.
    let name = format!("{}.", target.trim_end_matches('.'));
    let lookup_external = lookup(ctx, &f.client, &name, RType::A, false, Expect::AnyIp).await?;
    // What the failure is read against: does CoreDNS answer at all, does it forward to the
    // Talos host DNS, and how does Cilium route host traffic.
    let control = lookup(
        ctx,
        &f.client,
        &format!("kubernetes.default.svc.{}", f.domain),
        RType::A,
        false,
        ips(&[&f.kubernetes_ip])?,
    )
    .await?;
    let talos_host_dns = Api::<Service>::namespaced(ctx.env.client.clone(), "kube-system")
        .get_opt(TALOS_HOST_DNS_SERVICE)
        .await
        .map_err(KitError::api(format!(
            "get service kube-system/{TALOS_HOST_DNS_SERVICE}"
        )))?
        .is_some();
    Ok(External {
        lookup: lookup_external,
        control,
        talos_host_dns,
        node_os: talos::node_os(&ctx.env.client).await?,
        cilium: cilium::facts(&ctx.env.client).await?,
    })
}

/// The Service Talos 1.7 creates for CoreDNS to forward to its host DNS (siderolabs/talos#8533;
/// its `kubectl get` output is in siderolabs/talos#8836).
pub const TALOS_HOST_DNS_SERVICE: &str = "host-dns";

pub(crate) async fn setup(env: &Env, log: &CheckCtx<'_>) -> Result<DnsFixture, KitError> {
    let ns = &env.namespace;
    let client = agnhost(CLIENT, env, &Placement::Anywhere, &["pause"]);
    let mut pods = vec![client];
    for b in BACKENDS {
        pods.push(backend_pod(b, env, HTTP_PORT, true));
    }
    // Ready is probed on a port nothing listens on, so this backend never becomes Ready.
    pods.push(backend_pod(UNREADY, env, HTTP_PORT + 1, false));
    for p in &pods {
        workload::create_pod(&env.client, ns, p).await?;
    }
    let mut headless = backend_spec(Some("None"));
    headless.type_ = Some("ClusterIP".into());
    workload::create_service(&env.client, ns, &service(HEADLESS, env, headless)).await?;
    let svc =
        workload::create_service(&env.client, ns, &service(SVC, env, backend_spec(None))).await?;
    let svc = ServiceInfo::from_service(&svc, HTTP_PORT_NAME)?;
    let external = ServiceSpec {
        type_: Some("ExternalName".into()),
        external_name: Some(EXTERNAL_TARGET.into()),
        ..ServiceSpec::default()
    };
    workload::create_service(&env.client, ns, &service(EXTERNAL, env, external)).await?;

    let api: Api<Pod> = Api::namespaced(env.client.clone(), ns);
    let t = env.timeouts.pod_ready;
    let ready = futures::future::try_join_all(std::iter::once(CLIENT).chain(BACKENDS).map(|n| {
        let api = api.clone();
        async move { PodInfo::from_pod(&wait::pod_ready(api, n, t).await?, "dns") }
    }))
    .await?;
    let unready = PodInfo::from_pod(&wait::pod_running(api, UNREADY, t).await?, "dns")?;
    let kubernetes = Api::<Service>::namespaced(env.client.clone(), "default")
        .get("kubernetes")
        .await
        .map_err(KitError::api("get service default/kubernetes"))?;
    let kubernetes_ip =
        kubernetes
            .spec
            .and_then(|s| s.cluster_ip)
            .ok_or_else(|| KitError::Missing {
                what: "clusterIP of service default/kubernetes".into(),
                hint: "every cluster has it; the API server's Service is broken".into(),
            })?;
    let client = ready[0].clone();
    let rc = resolv_conf(log, &client).await?;
    let cluster_dns = rc
        .nameservers
        .first()
        .cloned()
        .ok_or_else(|| KitError::Missing {
            what: format!("a nameserver in {}'s /etc/resolv.conf", client.name),
            hint: format!("it parsed as {rc:?}; the transcript holds the file as read"),
        })?;
    log.note(format!(
        "cluster DNS {cluster_dns}; kubernetes Service {kubernetes_ip}; {SVC} {}; ready backends {}; not-ready backend {}",
        svc.cluster_ip,
        ready[1..].iter().map(|p| p.ip.as_str()).collect::<Vec<_>>().join(", "),
        unready.ip
    ));
    Ok(DnsFixture {
        namespace: ns.clone(),
        domain: env.cluster_domain.clone(),
        backends: ready[1..].to_vec(),
        client,
        unready,
        svc,
        kubernetes_ip,
        cluster_dns,
    })
}
