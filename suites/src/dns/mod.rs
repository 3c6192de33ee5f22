//! Cluster DNS, after the Kubernetes DNS e2e tests, plus the external lookup that breaks on Talos
//! when its host DNS forwarding meets Cilium's BPF host routing.
//!
//! Workloads: `dns-client` (dig), two Ready backends with hostname + subdomain and one backend that
//! never becomes Ready, behind a headless Service `dns-headless` and a ClusterIP Service `dns-svc`
//! (named port `http`), and an ExternalName Service `dns-external`. Every lookup is `dig` run in
//! a pod, retried until it gives the expected answer three times in a row.

pub mod dig;
pub mod resolv_conf;

use crate::catalog::SuiteName;
use crate::kit::check::check_impl;
use crate::kit::check::{CheckCtx, Env, Runnable};
use crate::kit::errors::KitError;
use crate::kit::probe::Probe;
use crate::kit::retry::{Series, Try, judge_series};
use crate::kit::topology::{PodInfo, ServiceInfo};
use crate::kit::transcript::Peer;
use crate::kit::verdict::Verdict;
use crate::kit::wait;
use crate::kit::workload::{self, HTTP_PORT, HTTP_PORT_NAME, Placement};
use crate::runner::SuiteImpl;
use dig::{DigResult, RData, RType, same_name};
use k8s_openapi::api::core::v1::{
    ContainerPort, HTTPGetAction, Pod, PodDNSConfig, PodDNSConfigOption, Probe as K8sProbe,
    Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use resolv_conf::ResolvConf;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub const CLIENT: &str = "dns-client";
pub const BACKENDS: [&str; 2] = ["dns-backend-0", "dns-backend-1"];
pub const UNREADY: &str = "dns-backend-unready";
pub const CUSTOM: &str = "dns-custom";
pub const HEADLESS: &str = "dns-headless";
pub const SVC: &str = "dns-svc";
pub const EXTERNAL: &str = "dns-external";
/// What `dns-external` points at; CoreDNS answers the CNAME itself, so no egress is needed.
pub const EXTERNAL_TARGET: &str = "foo.example.com";
/// A search domain inside the cluster zone, so its NXDOMAIN is answered locally and fast.
pub const MARKER_SEARCH: &str = "harness-search.svc";
const COMPONENT: &str = "app.kubernetes.io/component";
const BACKEND: &str = "dns-backend";

#[derive(Clone, Debug, PartialEq, Eq)]
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

/// What a lookup must return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly these addresses.
    Ips(BTreeSet<IpAddr>),
    /// At least one address (external names: which ones is not ours to know).
    AnyIp,
    Srv {
        port: u16,
        target: String,
    },
    Cname(String),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Ips(s) => write!(f, "exactly {}", join(s.iter())),
            Expect::AnyIp => f.write_str("at least one address"),
            Expect::Srv { port, target } => write!(f, "SRV port {port} target {target}"),
            Expect::Cname(t) => write!(f, "CNAME {t}"),
        }
    }
}

fn join<T: ToString>(it: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = it.map(|x| x.to_string()).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// One name looked up repeatedly, with what it had to return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub name: String,
    pub rtype: RType,
    pub expect: Expect,
    pub series: Series<DigResult>,
}

/// Judges one dig answer against what was expected.
pub fn judge_answer(r: &DigResult, expect: &Expect) -> Verdict {
    let (rcode, records) = match r {
        DigResult::Timeout { detail } => {
            return Verdict::Fail(format!(
                "no answer within 2s (dig exit 9: {detail}): queries from the pod to the cluster DNS are lost; check that the kube-dns Service has ready CoreDNS endpoints and look for drops with `hubble observe --port 53`"
            ));
        }
        DigResult::Failed { exit_code, detail } => {
            return Verdict::Fail(format!("dig failed (exit {exit_code}): {detail}"));
        }
        DigResult::Answer { rcode, records } => (rcode, records),
    };
    if rcode != "NOERROR" {
        let why = match rcode.as_str() {
            "NXDOMAIN" => "the DNS server says the name does not exist",
            "SERVFAIL" => {
                "the DNS server could not get an answer (for external names: its upstream failed)"
            }
            "REFUSED" => "the DNS server refused the query",
            _ => "unexpected response code",
        };
        return Verdict::Fail(format!("{rcode}: {why}; expected {expect}"));
    }
    let shown = join(records.iter());
    match expect {
        Expect::Ips(want) => {
            let got: BTreeSet<IpAddr> = r.ips().into_iter().collect();
            if &got == want {
                Verdict::Pass(join(got.iter()))
            } else {
                let missing: Vec<_> = want.difference(&got).collect();
                let extra: Vec<_> = got.difference(want).collect();
                Verdict::Fail(format!(
                    "answered {}, expected {expect} (missing: {}; unexpected: {})",
                    join(got.iter()),
                    join(missing.iter()),
                    join(extra.iter())
                ))
            }
        }
        Expect::AnyIp if !r.ips().is_empty() => Verdict::Pass(shown),
        Expect::AnyIp => Verdict::Fail(format!("NOERROR but no address in the answer ({shown})")),
        Expect::Srv { port, target } => {
            let hit = records.iter().any(|rec| {
                matches!(&rec.data, RData::Srv { port: p, target: t, .. } if p == port && same_name(t, target))
            });
            if hit {
                Verdict::Pass(shown)
            } else {
                Verdict::Fail(format!("answered {shown}, expected {expect}"))
            }
        }
        Expect::Cname(target) => {
            let hit = records
                .iter()
                .any(|rec| matches!(&rec.data, RData::Cname(t) if same_name(t, target)));
            if hit {
                Verdict::Pass(shown)
            } else {
                Verdict::Fail(format!("answered {shown}, expected {expect}"))
            }
        }
    }
}

pub fn judge_lookup(l: &Lookup) -> Verdict {
    judge_series(&l.series, |r| judge_answer(r, &l.expect))
}

#[allow(
    clippy::ptr_arg,
    reason = "a judge takes `&Observation`, and this observation is a Vec"
)]
pub fn judge_lookups(ls: &Vec<Lookup>) -> Verdict {
    Verdict::all(
        ls.iter()
            .map(|l| (format!("{} {}", l.name, l.rtype.as_str()), judge_lookup(l))),
    )
}

/// An address the EndpointSlice controller published for a Service, with its readiness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub ready: bool,
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headless {
    pub not_ready: Vec<IpAddr>,
    pub lookup: Lookup,
    /// What the EndpointSlices said after the lookups, to tell a DNS fault from an endpoints one.
    pub endpoints: Vec<Endpoint>,
}

pub fn judge_headless(h: &Headless) -> Verdict {
    let v = judge_lookup(&h.lookup);
    let Verdict::Fail(m) = v else {
        return v;
    };
    let last = match h.lookup.series.tries.last() {
        Some(Try::Observed(r)) => r.ips(),
        _ => Vec::new(),
    };
    let leaked: Vec<IpAddr> = last
        .into_iter()
        .filter(|ip| h.not_ready.contains(ip))
        .collect();
    let published: BTreeSet<IpAddr> = h
        .endpoints
        .iter()
        .filter(|e| e.ready)
        .map(|e| e.ip)
        .collect();
    let where_ = match &h.lookup.expect {
        Expect::Ips(want) if &published != want => format!(
            "the EndpointSlices list {} as ready, the Ready pods are {}: the endpoints are wrong before DNS sees them (EndpointSlice controller, pod readiness)",
            join(published.iter()),
            join(want.iter())
        ),
        _ => "the EndpointSlices are right, so CoreDNS answers differently from them (CoreDNS cache or its kubernetes plugin)".into(),
    };
    if leaked.is_empty() {
        Verdict::Fail(format!("{m}; {where_}"))
    } else {
        Verdict::Fail(format!(
            "the headless Service publishes not-ready pod {}: DNS must return only Ready endpoints (publishNotReadyAddresses must stay false); {where_}; {m}",
            join(leaked.iter())
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyNone {
    pub configured: ResolvConf,
    pub actual: ResolvConf,
    pub lookup: Lookup,
}

pub fn judge_policy_none(p: &PolicyNone) -> Verdict {
    let mut wrong = Vec::new();
    if p.actual.nameservers != p.configured.nameservers {
        wrong.push(format!(
            "nameservers are [{}], configured [{}]",
            p.actual.nameservers.join(" "),
            p.configured.nameservers.join(" ")
        ));
    }
    if p.actual.search != p.configured.search {
        wrong.push(format!(
            "search is [{}], configured [{}]",
            p.actual.search.join(" "),
            p.configured.search.join(" ")
        ));
    }
    for o in &p.configured.options {
        if !p.actual.options.contains(o) {
            wrong.push(format!("option {o} is missing"));
        }
    }
    if !wrong.is_empty() {
        return Verdict::Fail(format!(
            "the kubelet did not write the pod's dnsConfig into /etc/resolv.conf (dnsPolicy: None): {}",
            wrong.join("; ")
        ));
    }
    match judge_lookup(&p.lookup) {
        Verdict::Pass(m) => Verdict::Pass(format!(
            "resolv.conf is exactly the dnsConfig, and {} resolves through its search list to {m}",
            p.lookup.name
        )),
        Verdict::Fail(m) => Verdict::Fail(format!(
            "resolv.conf matches the dnsConfig, but {} did not resolve through it: {m}",
            p.lookup.name
        )),
    }
}

/// The known Talos + Cilium breakage an external lookup exposes.
pub const TALOS_HOST_DNS_HINT: &str = "On Talos, CoreDNS forwards to the host DNS at 169.254.116.108 (machine.features.hostDNS.forwardKubeDNSToHost, on by default since Talos 1.8); with Cilium's BPF host routing (kube-proxy replacement, bpf.hostLegacyRouting=false) the replies never reach CoreDNS (siderolabs/talos#9191, siderolabs/talos#10002, cilium/cilium#36737). Fix: set bpf.hostLegacyRouting=true in the Cilium values (or forwardKubeDNSToHost: false in the Talos machine config)";

pub fn judge_external(l: &Lookup) -> Verdict {
    match judge_lookup(l) {
        Verdict::Pass(m) => Verdict::Pass(m),
        Verdict::Fail(m) => Verdict::Fail(format!(
            "{} did not resolve from a pod: {m}. If the external target is right and cluster names resolve, this is most likely the Talos host DNS + BPF host routing breakage. {TALOS_HOST_DNS_HINT}",
            l.name
        )),
    }
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
            pod: pod.pod_ref(),
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
        pod: from.pod_ref(),
        argv: dig::argv(name, rtype, search),
    };
    let series = ctx
        .until_stable(&probe, DigResult::parse, |r| judge_answer(r, &expect))
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

async fn kubernetes_default_fqdn(
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

async fn search_path_partial_names(
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

async fn service_a_record(f: &DnsFixture, ctx: &CheckCtx<'_>) -> Result<Vec<Lookup>, KitError> {
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

async fn headless_service_pod_ips(
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

async fn srv_named_port(f: &DnsFixture, ctx: &CheckCtx<'_>) -> Result<Vec<Lookup>, KitError> {
    let name = format!("_{HTTP_PORT_NAME}._tcp.{}", f.svc_fqdn(SVC));
    let expect = Expect::Srv {
        port: f.svc.port as u16,
        target: format!("{}.", f.svc_fqdn(SVC)),
    };
    Ok(vec![
        lookup(ctx, &f.client, &name, RType::Srv, false, expect).await?,
    ])
}

async fn pod_a_record(f: &DnsFixture, ctx: &CheckCtx<'_>) -> Result<Vec<Lookup>, KitError> {
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

async fn hostname_subdomain(f: &DnsFixture, ctx: &CheckCtx<'_>) -> Result<Vec<Lookup>, KitError> {
    let mut out = Vec::new();
    for b in &f.backends {
        let name = format!("{}.{HEADLESS}.{}.svc.{}", b.name, f.namespace, f.domain);
        out.push(lookup(ctx, &f.client, &name, RType::A, false, ips(&[&b.ip])?).await?);
    }
    Ok(out)
}

async fn externalname_cname(f: &DnsFixture, ctx: &CheckCtx<'_>) -> Result<Vec<Lookup>, KitError> {
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

async fn dns_policy_none(f: &DnsFixture, ctx: &CheckCtx<'_>) -> Result<PolicyNone, KitError> {
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

async fn external_name(f: &DnsFixture, ctx: &CheckCtx<'_>) -> Result<Lookup, KitError> {
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
    lookup(ctx, &f.client, &name, RType::A, false, Expect::AnyIp).await
}

fn agnhost(name: &str, env: &Env, placement: &Placement, args: &[&str]) -> Pod {
    let mut c = workload::container("dns", &env.images.dns);
    c.args = Some(args.iter().map(|a| a.to_string()).collect());
    workload::pod(name, &env.run_labels(), placement, vec![c])
}

fn backend_pod(name: &str, env: &Env, ready_port: i32, dns_name: bool) -> Pod {
    let port = format!("--http-port={HTTP_PORT}");
    let mut p = agnhost(name, env, &Placement::Anywhere, &["netexec", &port]);
    if let Some(l) = p.metadata.labels.as_mut() {
        l.insert(COMPONENT.into(), BACKEND.into());
    }
    if let Some(spec) = p.spec.as_mut() {
        if dns_name {
            spec.hostname = Some(name.into());
            spec.subdomain = Some(HEADLESS.into());
        }
        let c = &mut spec.containers[0];
        c.ports = Some(vec![ContainerPort {
            name: Some(HTTP_PORT_NAME.into()),
            container_port: HTTP_PORT,
            ..ContainerPort::default()
        }]);
        c.readiness_probe = Some(K8sProbe {
            http_get: Some(HTTPGetAction {
                path: Some("/".into()),
                port: IntOrString::Int(ready_port),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(2),
            ..K8sProbe::default()
        });
    }
    p
}

fn custom_dns_pod(env: &Env, rc: &ResolvConf) -> Pod {
    let mut p = agnhost(CUSTOM, env, &Placement::Anywhere, &["pause"]);
    if let Some(spec) = p.spec.as_mut() {
        spec.dns_policy = Some("None".into());
        spec.dns_config = Some(PodDNSConfig {
            nameservers: Some(rc.nameservers.clone()),
            searches: Some(rc.search.clone()),
            options: Some(
                rc.options
                    .iter()
                    .map(|o| {
                        let (name, value) = o.split_once(':').unwrap_or((o, ""));
                        PodDNSConfigOption {
                            name: Some(name.into()),
                            value: (!value.is_empty()).then(|| value.into()),
                        }
                    })
                    .collect(),
            ),
        });
    }
    p
}

fn service(name: &str, env: &Env, spec: ServiceSpec) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(env.run_labels()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..Service::default()
    }
}

fn backend_spec(cluster_ip: Option<&str>) -> ServiceSpec {
    ServiceSpec {
        cluster_ip: cluster_ip.map(String::from),
        selector: Some(BTreeMap::from([(
            COMPONENT.to_string(),
            BACKEND.to_string(),
        )])),
        ports: Some(vec![ServicePort {
            name: Some(HTTP_PORT_NAME.into()),
            port: HTTP_PORT,
            target_port: Some(IntOrString::String(HTTP_PORT_NAME.into())),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }]),
        ..ServiceSpec::default()
    }
}

pub(crate) struct Dns;

impl SuiteImpl for Dns {
    type Fixture = DnsFixture;
    const SUITE: SuiteName = SuiteName::Dns;

    fn checks() -> Vec<Box<dyn Runnable<DnsFixture>>> {
        vec![
            check_impl!(
                "kubernetes-default-fqdn",
                kubernetes_default_fqdn,
                judge_lookups
            ),
            check_impl!(
                "search-path-partial-names",
                search_path_partial_names,
                judge_lookups
            ),
            check_impl!("service-a-record", service_a_record, judge_lookups),
            check_impl!(
                "headless-service-pod-ips",
                headless_service_pod_ips,
                judge_headless
            ),
            check_impl!("srv-named-port", srv_named_port, judge_lookups),
            check_impl!("pod-a-record", pod_a_record, judge_lookups),
            check_impl!("hostname-subdomain", hostname_subdomain, judge_lookups),
            check_impl!("externalname-cname", externalname_cname, judge_lookups),
            check_impl!("dns-policy-none", dns_policy_none, judge_policy_none),
            check_impl!("external-name", external_name, judge_external),
        ]
    }

    async fn setup(
        env: &Env,
        _wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<DnsFixture, KitError> {
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
        let svc = workload::create_service(&env.client, ns, &service(SVC, env, backend_spec(None)))
            .await?;
        let svc = ServiceInfo::from_service(&svc, HTTP_PORT_NAME)?;
        let external = ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(EXTERNAL_TARGET.into()),
            ..ServiceSpec::default()
        };
        workload::create_service(&env.client, ns, &service(EXTERNAL, env, external)).await?;

        let api: Api<Pod> = Api::namespaced(env.client.clone(), ns);
        let t = env.timeouts.pod_ready;
        let ready =
            futures::future::try_join_all(std::iter::once(CLIENT).chain(BACKENDS).map(|n| {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::exec::ExecOutput;
    use std::time::Duration;

    fn dig_fixture(name: &str, exit_code: i32) -> DigResult {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (stdout, stderr) = text.split_once("--- stderr\n").unwrap_or((&text, ""));
        DigResult::parse(&ExecOutput {
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        })
    }

    fn lookup_of(name: &str, rtype: RType, expect: Expect, r: DigResult) -> Lookup {
        Lookup {
            name: name.into(),
            rtype,
            expect,
            series: Series {
                required: 3,
                deadline: Duration::from_secs(60),
                elapsed: Duration::from_secs(61),
                tries: vec![
                    Try::Observed(r.clone()),
                    Try::Observed(r.clone()),
                    Try::Observed(r),
                ],
            },
        }
    }

    fn set(ips: &[&str]) -> Expect {
        Expect::Ips(ips.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn the_kubernetes_service_ip_passes() {
        let l = lookup_of(
            "kubernetes.default.svc.cluster.local",
            RType::A,
            set(&["10.96.0.1"]),
            dig_fixture("dig-a-kubernetes-default.txt", 0),
        );
        assert_eq!(
            judge_lookups(&vec![l]),
            Verdict::Pass("kubernetes.default.svc.cluster.local A: 10.96.0.1 (3 in a row)".into())
        );
    }

    #[test]
    fn a_wrong_ip_is_named() {
        let l = lookup_of(
            "kubernetes.default.svc.cluster.local",
            RType::A,
            set(&["10.96.0.2"]),
            dig_fixture("dig-a-kubernetes-default.txt", 0),
        );
        let v = judge_lookup(&l);
        assert!(v.message().starts_with("answered 10.96.0.1, expected exactly 10.96.0.2 (missing: 10.96.0.2; unexpected: 10.96.0.1)"), "{}", v.message());
    }

    #[test]
    fn nxdomain_and_timeout_say_which() {
        let n = judge_answer(&dig_fixture("dig-nxdomain.txt", 0), &set(&["10.96.12.40"]));
        assert!(
            n.message()
                .starts_with("NXDOMAIN: the DNS server says the name does not exist"),
            "{}",
            n.message()
        );
        let t = judge_answer(&dig_fixture("dig-timeout.txt", 9), &set(&["10.96.12.40"]));
        assert!(
            t.message().starts_with("no answer within 2s (dig exit 9"),
            "{}",
            t.message()
        );
        assert!(t.message().contains("hubble observe --port 53"));
    }

    fn slices() -> Vec<EndpointSlice> {
        let path = format!(
            "{}/tests/fixtures/endpointslicelist-dns-headless.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let list: k8s_openapi::List<EndpointSlice> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        list.items
    }

    #[test]
    fn endpoint_slices_keep_readiness() {
        let e = endpoints(&slices());
        let ready: Vec<String> = e
            .iter()
            .filter(|e| e.ready)
            .map(|e| e.ip.to_string())
            .collect();
        let not: Vec<String> = e
            .iter()
            .filter(|e| !e.ready)
            .map(|e| e.ip.to_string())
            .collect();
        assert_eq!(ready, ["10.244.1.21", "10.244.2.17"]);
        assert_eq!(not, ["10.244.1.22"]);
    }

    #[test]
    fn headless_returns_exactly_the_ready_pods() {
        let headless = |fixture: &str| Headless {
            not_ready: vec!["10.244.1.22".parse().unwrap()],
            lookup: lookup_of(
                "dns-headless.harness-dns-r1.svc.cluster.local",
                RType::A,
                set(&["10.244.1.21", "10.244.2.17"]),
                dig_fixture(fixture, 0),
            ),
            endpoints: endpoints(&slices()),
        };
        assert!(judge_headless(&headless("dig-a-headless.txt")).is_pass());
        let v = judge_headless(&headless("dig-a-headless-with-not-ready.txt"));
        assert!(
            v.message().starts_with(
                "the headless Service publishes not-ready pod 10.244.1.22: DNS must return only Ready endpoints (publishNotReadyAddresses must stay false); the EndpointSlices are right, so CoreDNS answers differently"
            ),
            "{}",
            v.message()
        );
    }

    #[test]
    fn headless_blames_the_endpoints_when_they_are_wrong() {
        let mut wrong = slices();
        // The controller never published the second backend.
        wrong[0]
            .endpoints
            .retain(|e| e.addresses != ["10.244.2.17"]);
        let h = Headless {
            not_ready: vec![],
            lookup: lookup_of(
                "dns-headless.harness-dns-r1.svc.cluster.local",
                RType::A,
                set(&["10.244.1.21", "10.244.2.17"]),
                dig_fixture("dig-a-kubernetes-default.txt", 0),
            ),
            endpoints: endpoints(&wrong),
        };
        let m = judge_headless(&h);
        assert!(
            m.message().contains("the EndpointSlices list 10.244.1.21 as ready, the Ready pods are 10.244.1.21, 10.244.2.17"),
            "{}",
            m.message()
        );
    }

    #[test]
    fn srv_needs_the_named_port_and_target() {
        let r = dig_fixture("dig-srv-named-port.txt", 0);
        let good = Expect::Srv {
            port: 8080,
            target: "dns-svc.harness-dns-r1.svc.cluster.local.".into(),
        };
        assert!(judge_answer(&r, &good).is_pass());
        let wrong_port = Expect::Srv {
            port: 80,
            target: "dns-svc.harness-dns-r1.svc.cluster.local.".into(),
        };
        assert!(
            judge_answer(&r, &wrong_port)
                .message()
                .contains("expected SRV port 80")
        );
    }

    #[test]
    fn externalname_must_be_a_cname_to_its_target() {
        let r = dig_fixture("dig-cname-externalname.txt", 0);
        assert!(judge_answer(&r, &Expect::Cname("foo.example.com.".into())).is_pass());
        assert!(!judge_answer(&r, &Expect::Cname("bar.example.com.".into())).is_pass());
    }

    #[test]
    fn an_external_failure_names_the_talos_breakage_and_its_fix() {
        let l = lookup_of(
            "cilium.io.",
            RType::A,
            Expect::AnyIp,
            dig_fixture("dig-a-external-servfail.txt", 0),
        );
        let v = judge_external(&l);
        let m = v.message();
        assert!(!v.is_pass());
        assert!(
            m.starts_with("cilium.io. did not resolve from a pod: SERVFAIL"),
            "{m}"
        );
        for needle in [
            "siderolabs/talos#9191",
            "siderolabs/talos#10002",
            "cilium/cilium#36737",
            "bpf.hostLegacyRouting=true",
            "169.254.116.108",
        ] {
            assert!(m.contains(needle), "missing {needle}: {m}");
        }
    }

    #[test]
    fn an_external_cname_chain_with_addresses_passes() {
        let l = lookup_of(
            "www.cilium.io.",
            RType::A,
            Expect::AnyIp,
            dig_fixture("dig-a-external-cname-chain.txt", 0),
        );
        assert!(judge_external(&l).is_pass());
    }

    #[test]
    fn dns_policy_none_compares_resolv_conf_with_the_dns_config() {
        let path = format!(
            "{}/tests/fixtures/resolv-conf-dns-policy-none.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let actual = ResolvConf::parse(&std::fs::read_to_string(path).unwrap());
        let configured = ResolvConf {
            nameservers: vec!["10.96.0.10".into()],
            search: vec![
                "harness-search.svc.cluster.local".into(),
                "harness-dns-r1.svc.cluster.local".into(),
            ],
            options: vec!["ndots:2".into()],
        };
        let lk = lookup_of(
            "dns-svc",
            RType::A,
            set(&["10.96.12.40"]),
            DigResult::Answer {
                rcode: "NOERROR".into(),
                records: vec![dig::Record {
                    name: "dns-svc.harness-dns-r1.svc.cluster.local.".into(),
                    rtype: "A".into(),
                    data: RData::Ip("10.96.12.40".parse().unwrap()),
                }],
            },
        );
        let ok = PolicyNone {
            configured: configured.clone(),
            actual: actual.clone(),
            lookup: lk.clone(),
        };
        assert!(
            judge_policy_none(&ok).is_pass(),
            "{:?}",
            judge_policy_none(&ok)
        );
        let cluster_first = ResolvConf::parse(
            &std::fs::read_to_string(format!(
                "{}/tests/fixtures/resolv-conf-cluster-first.txt",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        );
        let ignored = PolicyNone {
            configured,
            actual: cluster_first,
            lookup: lk,
        };
        let m = judge_policy_none(&ignored);
        assert!(
            m.message().contains(
                "search is [harness-dns-r1.svc.cluster.local svc.cluster.local cluster.local]"
            ),
            "{}",
            m.message()
        );
        assert!(m.message().contains("option ndots:2 is missing"));
    }
}
