//! Everything the features suite says to the cluster: setup deploys only what the selected
//! checks use; the observe steps ask the agents (`cilium-dbg status`, `service list`, `bpf
//! bandwidth list`, `hubble observe --server <relay>`), read kube-proxy's objects and the shaped
//! pod's CiliumEndpoint, and probe from the client.

use super::judge::{Bandwidth, Congestion, RelayFlows, ServiceLb, UiPage, ui_attempt};
use super::model::{parse_bandwidth, parse_services, parse_status};
use super::objects::{self, *};
use crate::kit::check::{CheckCtx, Env};
use crate::kit::cilium::{self, Agent};
use crate::kit::errors::KitError;
use crate::kit::hubble::{self, Query, Record};
use crate::kit::namespace;
use crate::kit::probe::Probe;
use crate::kit::topology::{PodInfo, ServiceInfo};
use crate::kit::transcript::Peer;
use crate::kit::workload;
use crate::network_policy::judge::{Expect, PolicyRun, attempt};
use crate::network_policy::objects::Scope;
use crate::network_policy::observe::{self as np, Ask, FlowSource, curl_argv, parse_reply};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

pub struct FtFixture {
    pub scope: Scope,
    pub client: PodInfo,
    pub echo: PodInfo,
    pub svc: ServiceInfo,
    pub shaped: Option<PodInfo>,
    pub host_echo: Option<PodInfo>,
    pub agents: Vec<Agent>,
    pub flows: FlowSource,
    pub api_server: (String, i32),
}

impl FtFixture {
    fn agent_on(&self, node: &str) -> Result<&Agent, KitError> {
        self.agents
            .iter()
            .find(|a| a.node == node)
            .ok_or_else(|| KitError::Missing {
                what: format!("a Ready Cilium agent on node {node}"),
                hint: "the node's agent is not Ready; `kubectl -n kube-system get pods -l k8s-app=cilium -o wide`".into(),
            })
    }
}

/// Runs a command in an agent and returns its stdout, or why it could not.
async fn in_agent(
    ctx: &CheckCtx<'_>,
    a: &Agent,
    action: &str,
    argv: &[&str],
) -> Result<String, KitError> {
    let probe = Probe {
        label: ctx.label(
            action,
            Peer::new(a.pod.to_string(), None),
            Peer::new(format!("agent on {}", a.node), None),
        ),
        origin: a.pod.clone().into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
    };
    let out = ctx.run(&probe).await?;
    if out.exit_code != 0 {
        return Err(KitError::Parse {
            what: format!("`{}` in {}", argv.join(" "), a.pod),
            detail: format!("exit {}: {}", out.exit_code, out.stderr.trim()),
        });
    }
    Ok(out.stdout)
}

fn unreadable(what: &str, a: &Agent) -> impl FnOnce(String) -> KitError {
    let what = format!("`{what}` in {}", a.pod);
    move |detail| KitError::Parse { what, detail }
}

async fn status(ctx: &CheckCtx<'_>, a: &Agent) -> Result<super::model::Status, KitError> {
    let text = in_agent(
        ctx,
        a,
        "cilium-dbg-status",
        &["cilium-dbg", "status", "-o", "json"],
    )
    .await?;
    parse_status(&text).map_err(unreadable("cilium-dbg status -o json", a))
}

/// A kube-system Service's ClusterIP and first port, as `ip:port`.
async fn system_service(ctx: &CheckCtx<'_>, name: &str) -> Result<String, KitError> {
    let svc = Api::<Service>::namespaced(ctx.env.client.clone(), cilium::NAMESPACE)
        .get(name)
        .await
        .map_err(KitError::api(format!(
            "get service {}/{name}",
            cilium::NAMESPACE
        )))?;
    svc.spec
        .as_ref()
        .and_then(|s| {
            Some(format!(
                "{}:{}",
                s.cluster_ip.clone()?,
                s.ports.as_ref()?.first()?.port
            ))
        })
        .ok_or_else(|| KitError::Missing {
            what: format!(
                "the ClusterIP and port of service {}/{name}",
                cilium::NAMESPACE
            ),
            hint: "the chart creates it with one port; is it installed?".into(),
        })
}

pub(crate) async fn hubble_relay(
    f: &FtFixture,
    ctx: &CheckCtx<'_>,
) -> Result<RelayFlows, KitError> {
    let relay = system_service(ctx, HUBBLE_RELAY).await?;
    let started = Timestamp::now().to_string();
    let probe = Probe {
        label: ctx.label("curl", f.client.source(), f.echo.dest(workload::HTTP_PORT)),
        origin: f.client.pod_ref().into(),
        argv: curl_argv(
            &format!("http://{}:{}/", f.echo.ip, workload::HTTP_PORT),
            "GET",
            false,
        ),
    };
    let connection = ctx
        .until_stable(&probe, parse_reply, |r| attempt(Expect::Allowed, r))
        .await?;
    let query = Query {
        from_pod: Some(format!("{}/{}", f.client.namespace, f.client.name)),
        to_pod: Some(format!("{}/{}", f.echo.namespace, f.echo.name)),
        verdict: None,
        server: Some(relay.clone()),
    };
    let agent = f.agent_on(&f.client.node)?;
    let ask = Probe {
        label: ctx.label(
            "hubble-observe",
            Peer::new(agent.pod.to_string(), None),
            Peer::new("hubble-relay", Some(relay.clone())),
        ),
        origin: agent.pod.clone().into(),
        argv: hubble::observe_argv(&query),
    };
    let flows = match ctx.run(&ask).await {
        Ok(out) if out.exit_code == 0 => match hubble::parse(&out.stdout) {
            Ok(fs) => Record::Flows(fs),
            Err(e) => Record::Unavailable(format!("unreadable flows: {e}")),
        },
        Ok(out) => Record::Unavailable(format!(
            "`hubble observe --server {relay}` exited {}: {}",
            out.exit_code,
            out.first_error_line().unwrap_or_default()
        )),
        Err(e) => Record::Unavailable(e.to_string()),
    };
    Ok(RelayFlows {
        relay,
        from: format!("{}/{}", f.client.namespace, f.client.name),
        to_ip: f.echo.ip.clone(),
        to_port: workload::HTTP_PORT as u32,
        started,
        connection,
        flows,
    })
}

pub(crate) async fn hubble_ui(f: &FtFixture, ctx: &CheckCtx<'_>) -> Result<UiPage, KitError> {
    let ui = system_service(ctx, HUBBLE_UI).await?;
    let probe = Probe {
        label: ctx.label(
            "curl",
            f.client.source(),
            Peer::new(HUBBLE_UI, Some(ui.clone())),
        ),
        origin: f.client.pod_ref().into(),
        argv: curl_argv(&format!("http://{ui}/"), "GET", false),
    };
    let marker = HUBBLE_UI_TITLE.to_string();
    let series = ctx
        .until_stable(&probe, parse_reply, |r| ui_attempt(&marker, r))
        .await?;
    Ok(UiPage {
        service: format!("{}/{HUBBLE_UI} ({ui})", cilium::NAMESPACE),
        series,
        marker,
    })
}

pub(crate) async fn kube_proxy_replacement(
    f: &FtFixture,
    ctx: &CheckCtx<'_>,
) -> Result<ServiceLb, KitError> {
    let agent = f.agent_on(&f.echo.node)?;
    let mode = status(ctx, agent).await?.kube_proxy_replacement;
    let list = in_agent(
        ctx,
        agent,
        "cilium-dbg-service-list",
        &["cilium-dbg", "service", "list", "-o", "json"],
    )
    .await?;
    let services =
        parse_services(&list).map_err(unreadable("cilium-dbg service list -o json", agent))?;
    let pods = Api::<Pod>::namespaced(ctx.env.client.clone(), cilium::NAMESPACE)
        .list(&ListParams::default().labels("k8s-app=kube-proxy"))
        .await
        .map_err(KitError::api("list pods k8s-app=kube-proxy in kube-system"))?;
    let daemonset = Api::<DaemonSet>::namespaced(ctx.env.client.clone(), cilium::NAMESPACE)
        .get_opt("kube-proxy")
        .await
        .map_err(KitError::api("get daemonset kube-system/kube-proxy"))?;
    Ok(ServiceLb {
        agent: format!("{} on {}", agent.pod.name, agent.node),
        mode,
        services,
        want_frontend: format!("{}:{}", f.svc.cluster_ip, f.svc.port),
        want_backend: format!("{}:{}", f.echo.ip, workload::HTTP_PORT),
        kube_proxy_pods: pods
            .items
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect(),
        kube_proxy_daemonset: daemonset.is_some(),
    })
}

fn ciliumendpoints() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cilium.io", "v2", "CiliumEndpoint"),
        "ciliumendpoints",
    )
}

pub(crate) async fn bandwidth_manager(
    f: &FtFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Bandwidth, KitError> {
    let shaped = f.shaped.as_ref().ok_or_else(|| KitError::Missing {
        what: "the shaped pod".into(),
        hint: "setup deploys it only when bandwidth-manager is selected".into(),
    })?;
    let agent = f.agent_on(&shaped.node)?;
    let st = status(ctx, agent).await?;
    let cep = Api::<DynamicObject>::namespaced_with(
        ctx.env.client.clone(),
        &shaped.namespace,
        &ciliumendpoints(),
    )
    .get_opt(&shaped.name)
    .await
    .map_err(KitError::api(format!(
        "get ciliumendpoint {}/{}",
        shaped.namespace, shaped.name
    )))?;
    let endpoint_id = cep.and_then(|c| c.data["status"]["id"].as_u64());
    let text = in_agent(
        ctx,
        agent,
        "cilium-dbg-bpf-bandwidth-list",
        &["cilium-dbg", "bpf", "bandwidth", "list", "-o", "json"],
    )
    .await?;
    let entries = parse_bandwidth(&text)
        .map_err(unreadable("cilium-dbg bpf bandwidth list -o json", agent))?;
    Ok(Bandwidth {
        agent: format!("{} on {}", agent.pod.name, agent.node),
        enabled: st.bandwidth_enabled,
        congestion_control: st.congestion_control,
        devices: st.bandwidth_devices,
        pod: format!("{}/{}", shaped.namespace, shaped.name),
        endpoint_id,
        want_bits: EGRESS_LIMIT_BITS,
        entries,
    })
}

pub(crate) async fn bbr(f: &FtFixture, ctx: &CheckCtx<'_>) -> Result<Congestion, KitError> {
    let mut agents = Vec::new();
    for a in &f.agents {
        let st = status(ctx, a).await?;
        agents.push((
            format!("{} on {}", a.pod.name, a.node),
            st.congestion_control,
        ));
    }
    Ok(Congestion { agents })
}

pub(crate) async fn host_firewall(
    f: &FtFixture,
    ctx: &CheckCtx<'_>,
) -> Result<PolicyRun, KitError> {
    let host = f.host_echo.as_ref().ok_or_else(|| KitError::Missing {
        what: "the host-network server".into(),
        hint: "setup deploys it only when host-firewall is selected".into(),
    })?;
    let port = HOST_PORT;
    let to_host = |expect| Ask {
        from: &f.client,
        to: Peer::new(
            format!("node {}", host.node),
            Some(format!("{}:{port}", host.host_ip)),
        ),
        url: format!("http://{}:{port}/", host.host_ip),
        method: "GET",
        insecure: false,
        expect,
        to_pod: None,
        to_ip: Some(host.host_ip.clone()),
        to_node: Some(host.node.clone()),
        to_port: port as u32,
    };
    let before = np::step(&f.flows, ctx, Vec::new(), vec![to_host(Expect::Allowed)]).await?;
    let during = np::step(
        &f.flows,
        ctx,
        vec![objects::host_firewall(&f.scope, &host.node)],
        vec![
            to_host(Expect::Dropped),
            np::api_server_ask(&f.client, &f.api_server),
        ],
    )
    .await?;
    let after = np::step(&f.flows, ctx, Vec::new(), vec![to_host(Expect::Allowed)]).await?;
    Ok(PolicyRun {
        steps: vec![before, during, after],
    })
}

pub(crate) async fn mutual_auth(f: &FtFixture, ctx: &CheckCtx<'_>) -> Result<PolicyRun, KitError> {
    let s = np::step(
        &f.flows,
        ctx,
        vec![objects::mutual_auth(&f.scope)],
        vec![Ask::pod(
            &f.client,
            &f.echo,
            workload::HTTP_PORT,
            Expect::Allowed,
        )],
    )
    .await?;
    Ok(PolicyRun { steps: vec![s] })
}

pub(crate) async fn setup(
    env: &Env,
    shaped: bool,
    host: bool,
    log: &CheckCtx<'_>,
) -> Result<FtFixture, KitError> {
    let uid = namespace::uid(&env.client, &env.namespace).await?;
    let mut pods = vec![
        (objects::client(env), "client"),
        (objects::echo(env), "echo"),
    ];
    if shaped {
        pods.push((objects::shaped(env), "client"));
    }
    if host {
        pods.push((objects::host_echo(env), "echo"));
    }
    for (p, _) in &pods {
        workload::create_pod(&env.client, &env.namespace, p).await?;
    }
    let svc = ServiceInfo::from_service(
        &workload::create_service(
            &env.client,
            &env.namespace,
            &workload::echo_service(ECHO, &env.run_labels(), ECHO),
        )
        .await?,
        workload::HTTP_PORT_NAME,
    )?;
    let ready = np::ready(env, &env.namespace, &pods).await?;
    for p in &ready {
        log.note(format!(
            "{} ready on node {} with ip {}",
            p.name, p.node, p.ip
        ));
    }
    let find = |name: &str| ready.iter().find(|p| p.name == name).cloned();
    let missing = |what: &str| KitError::Missing {
        what: format!("pod {what}"),
        hint: "it was created and reported Ready, then not found in the Ready list".into(),
    };
    let agents = cilium::ready_agents(&env.client).await?;
    let flows = FlowSource {
        on: env.features.hubble,
        agents: agents.clone(),
    };
    Ok(FtFixture {
        scope: Scope {
            namespace: env.namespace.clone(),
            remote_namespace: String::new(),
            namespace_uid: uid,
            labels: env.run_labels(),
        },
        client: find(CLIENT).ok_or_else(|| missing(CLIENT))?,
        echo: find(ECHO).ok_or_else(|| missing(ECHO))?,
        svc,
        shaped: find(SHAPED),
        host_echo: find(HOST_ECHO),
        agents,
        flows,
        api_server: np::api_server(&env.client).await?,
    })
}
