//! Everything the network-policy suite says to the cluster: setup deploys the workloads of
//! [`super::objects`]; each check runs its steps, and a step applies its policies, probes with
//! curl from the clients (retried until the result holds three times in a row), asks Hubble for
//! the drops where Hubble runs, reads the policies' status and removes the policies again.

use super::judge::{Expect, PolicyRun, Probed, Reply, Step, attempt};
use super::objects::{self, *};
use crate::kit::check::{CheckCtx, Env};
use crate::kit::cilium::{self, Agent};
use crate::kit::errors::KitError;
use crate::kit::exec::ExecOutput;
use crate::kit::hubble::{self, Query, Record};
use crate::kit::namespace;
use crate::kit::policy::{Applied, Policy};
use crate::kit::probe::Probe;
use crate::kit::probe::curl::{CONNECT_TIMEOUT_S, MAX_TIME_S};
use crate::kit::topology::PodInfo;
use crate::kit::transcript::Peer;
use crate::kit::{wait, workload};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;

/// The body a reply keeps: Envoy's `Access denied`, the head of an HTML page.
const BODY_LIMIT: usize = 512;

/// The suite's workloads and what the checks need to know of the cluster.
pub struct NpFixture {
    pub scope: Scope,
    pub server: PodInfo,
    pub server_b: PodInfo,
    pub client: PodInfo,
    pub client_other: PodInfo,
    pub client_remote: PodInfo,
    /// The `kubernetes` Service's ClusterIP and port.
    pub api_server: (String, i32),
    pub flows: FlowSource,
    pub cluster_domain: String,
    pub external_target: Option<String>,
}

/// Where drops are looked up: Hubble in the agents of the nodes involved, when it is on.
pub struct FlowSource {
    pub on: bool,
    pub agents: Vec<Agent>,
}

/// `curl` that keeps the body and does not turn a 4xx into an error: the judge needs Envoy's
/// 403 and its body. The write-out goes on a line of its own after the body.
pub fn curl_argv(url: &str, method: &str, insecure: bool) -> Vec<String> {
    let mut argv: Vec<String> = [
        "curl",
        "--silent",
        "--show-error",
        "--connect-timeout",
        &CONNECT_TIMEOUT_S.to_string(),
        "--max-time",
        &MAX_TIME_S.to_string(),
        "--request",
        method,
        "--write-out",
        "\\n%{http_code} %{remote_ip}:%{remote_port}",
    ]
    .map(String::from)
    .to_vec();
    if insecure {
        // The API server's certificate is not the client's business here: reaching it is.
        argv.push("--insecure".into());
    }
    argv.push(url.into());
    argv
}

/// A reply from the argv of [`curl_argv`]: the last line is the write-out, the rest the body.
pub fn parse_reply(out: &ExecOutput) -> Reply {
    let (body, status) = match out.stdout.trim_end_matches('\n').rsplit_once('\n') {
        Some((body, status)) => (body, status),
        None => ("", out.stdout.trim()),
    };
    let mut words = status.split_whitespace();
    let http_code = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let remote = words
        .next()
        .filter(|r| !r.starts_with(':') && !r.is_empty())
        .map(String::from);
    Reply {
        exit_code: out.exit_code,
        http_code,
        remote,
        error: out.first_error_line(),
        body: body.chars().take(BODY_LIMIT).collect(),
    }
}

/// One probe to run in a step.
pub struct Ask<'a> {
    pub from: &'a PodInfo,
    pub to: Peer,
    pub url: String,
    pub method: &'static str,
    pub insecure: bool,
    pub expect: Expect,
    /// The destination pod (`namespace/pod`), when it is one: Hubble is asked for flows to it.
    pub to_pod: Option<String>,
    /// The destination's address when known before probing, and its node (whose agent sees an
    /// ingress drop).
    pub to_ip: Option<String>,
    pub to_node: Option<String>,
    pub to_port: u32,
}

impl<'a> Ask<'a> {
    /// A GET to a pod's port.
    pub fn pod(from: &'a PodInfo, to: &'a PodInfo, port: i32, expect: Expect) -> Ask<'a> {
        Ask {
            from,
            to: to.dest(port),
            url: format!("http://{}:{port}/", to.ip),
            method: "GET",
            insecure: false,
            expect,
            to_pod: Some(format!("{}/{}", to.namespace, to.name)),
            to_ip: Some(to.ip.clone()),
            to_node: Some(to.node.clone()),
            to_port: port as u32,
        }
    }
}

/// Any answer of the API server through the `kubernetes` Service: reaching it is the point.
pub fn api_server_ask<'a>(from: &'a PodInfo, (ip, port): &(String, i32)) -> Ask<'a> {
    Ask {
        from,
        to: Peer::new("kube-apiserver", Some(format!("{ip}:{port}"))),
        url: format!("https://{ip}:{port}/version"),
        method: "GET",
        insecure: true,
        expect: Expect::Reached,
        to_pod: None,
        to_ip: None,
        to_node: None,
        to_port: *port as u32,
    }
}

async fn hubble_record(h: &FlowSource, ctx: &CheckCtx<'_>, a: &Ask<'_>) -> Record {
    if !h.on {
        return Record::Off;
    }
    let mut nodes = vec![a.from.node.clone()];
    if let Some(n) = &a.to_node
        && *n != a.from.node
    {
        nodes.push(n.clone());
    }
    let query = Query {
        from_pod: Some(format!("{}/{}", a.from.namespace, a.from.name)),
        to_pod: a.to_pod.clone(),
        verdict: Some("DROPPED"),
        server: None,
    };
    let mut flows = Vec::new();
    for node in nodes {
        let Some(agent) = h.agents.iter().find(|a| a.node == node) else {
            return Record::Unavailable(format!("no Ready Cilium agent runs on {node}"));
        };
        let probe = Probe {
            label: ctx.label(
                "hubble-observe",
                Peer::new(agent.pod.to_string(), None),
                Peer::new(format!("flows on {node}"), None),
            ),
            origin: agent.pod.clone().into(),
            argv: hubble::observe_argv(&query),
        };
        match ctx.run(&probe).await {
            Ok(out) if out.exit_code == 0 => match hubble::parse(&out.stdout) {
                Ok(mut fs) => flows.append(&mut fs),
                Err(e) => return Record::Unavailable(format!("unreadable flows: {e}")),
            },
            Ok(out) => {
                return Record::Unavailable(format!(
                    "`hubble observe` in {} exited {}: {}",
                    agent.pod,
                    out.exit_code,
                    out.first_error_line().unwrap_or_default()
                ));
            }
            Err(e) => return Record::Unavailable(e.to_string()),
        }
    }
    Record::Flows(flows)
}

async fn ask(h: &FlowSource, ctx: &CheckCtx<'_>, a: &Ask<'_>) -> Result<Probed, KitError> {
    let probe = Probe {
        label: ctx.label("curl", a.from.source(), a.to.clone()),
        origin: a.from.pod_ref().into(),
        argv: curl_argv(&a.url, a.method, a.insecure),
    };
    let started = Timestamp::now().to_string();
    let expect = a.expect;
    let series = ctx
        .until_stable(&probe, parse_reply, |r| attempt(expect, r))
        .await?;
    let hubble = if expect == Expect::Dropped {
        hubble_record(h, ctx, a).await
    } else {
        Record::Off
    };
    let path = a.url.splitn(4, '/').nth(3).unwrap_or_default();
    Ok(Probed {
        what: format!("{} -> {} {} /{path}", a.from.name, a.to, a.method),
        expect,
        from: format!("{}/{}", a.from.namespace, a.from.name),
        to_ip: a.to_ip.clone(),
        to_port: a.to_port,
        started,
        series,
        hubble,
    })
}

/// Applies `policies`, runs `asks`, reads the policies' status and removes them. An error on
/// the way drops the guard, which removes whatever was applied.
pub async fn step(
    h: &FlowSource,
    ctx: &CheckCtx<'_>,
    policies: Vec<Policy>,
    asks: Vec<Ask<'_>>,
) -> Result<Step, KitError> {
    let mut applied = Applied::new(&ctx.env.client);
    for p in &policies {
        applied.create(p).await?;
        ctx.note(format!("applied {}", p.describe()));
    }
    let mut probes = Vec::new();
    for a in &asks {
        probes.push(ask(h, ctx, a).await?);
    }
    let status = applied.statuses().await?;
    for s in &status {
        ctx.note(format!(
            "{}: Valid={} {}",
            s.policy,
            s.valid.as_deref().unwrap_or("(not reported)"),
            s.message.as_deref().unwrap_or_default()
        ));
    }
    for removed in applied.remove().await? {
        ctx.note(format!("removed {removed}"));
    }
    Ok(Step {
        policies: policies.iter().map(Policy::describe).collect(),
        status,
        probes,
    })
}

pub(crate) async fn default_deny_ingress(
    f: &NpFixture,
    ctx: &CheckCtx<'_>,
) -> Result<PolicyRun, KitError> {
    let port = workload::HTTP_PORT;
    let before = step(
        &f.flows,
        ctx,
        Vec::new(),
        vec![Ask::pod(&f.client_other, &f.server, port, Expect::Allowed)],
    )
    .await?;
    let after = step(
        &f.flows,
        ctx,
        objects::default_deny(&f.scope),
        vec![
            Ask::pod(&f.client, &f.server, port, Expect::Allowed),
            Ask::pod(&f.client_other, &f.server, port, Expect::Dropped),
        ],
    )
    .await?;
    Ok(PolicyRun {
        steps: vec![before, after],
    })
}

pub(crate) async fn l4_port(f: &NpFixture, ctx: &CheckCtx<'_>) -> Result<PolicyRun, KitError> {
    let s = step(
        &f.flows,
        ctx,
        vec![objects::l4_port(&f.scope)],
        vec![
            Ask::pod(&f.client, &f.server, workload::HTTP_PORT, Expect::Allowed),
            Ask::pod(&f.client, &f.server, ALT_PORT, Expect::Dropped),
        ],
    )
    .await?;
    Ok(PolicyRun { steps: vec![s] })
}

pub(crate) async fn l7_http(f: &NpFixture, ctx: &CheckCtx<'_>) -> Result<PolicyRun, KitError> {
    let port = workload::HTTP_PORT;
    let at = |path: &str, method: &'static str, expect: Expect| Ask {
        url: format!("http://{}:{port}{path}", f.server.ip),
        method,
        expect,
        ..Ask::pod(&f.client, &f.server, port, expect)
    };
    let s = step(
        &f.flows,
        ctx,
        vec![objects::l7_http(&f.scope)],
        vec![
            at(L7_ALLOWED_PATH, "GET", Expect::Allowed),
            at(L7_OTHER_PATH, "GET", Expect::ProxyDenied),
            at(L7_ALLOWED_PATH, "POST", Expect::ProxyDenied),
        ],
    )
    .await?;
    Ok(PolicyRun { steps: vec![s] })
}

pub(crate) async fn clusterwide(f: &NpFixture, ctx: &CheckCtx<'_>) -> Result<PolicyRun, KitError> {
    let port = workload::HTTP_PORT;
    let s = step(
        &f.flows,
        ctx,
        vec![objects::clusterwide(&f.scope)],
        vec![
            Ask::pod(&f.client_remote, &f.server, port, Expect::Allowed),
            Ask::pod(&f.client_other, &f.server, port, Expect::Dropped),
        ],
    )
    .await?;
    Ok(PolicyRun { steps: vec![s] })
}

fn external<'a>(f: &'a NpFixture, target: &str, expect: Expect) -> Ask<'a> {
    Ask {
        from: &f.client,
        to: Peer::new(target, Some("443".into())),
        url: format!("https://{target}/"),
        method: "GET",
        insecure: false,
        expect,
        to_pod: None,
        to_ip: None,
        to_node: None,
        to_port: 443,
    }
}

pub(crate) async fn entities(f: &NpFixture, ctx: &CheckCtx<'_>) -> Result<PolicyRun, KitError> {
    let port = workload::HTTP_PORT;
    let api = api_server_ask(&f.client, &f.api_server);
    let mut steps = vec![
        step(
            &f.flows,
            ctx,
            vec![objects::entity(&f.scope, "kube-apiserver")],
            vec![api, Ask::pod(&f.client, &f.server, port, Expect::Dropped)],
        )
        .await?,
    ];
    let mut cluster = vec![Ask::pod(&f.client, &f.server, port, Expect::Allowed)];
    if let Some(t) = &f.external_target {
        cluster.push(external(f, t, Expect::Dropped));
    }
    steps.push(
        step(
            &f.flows,
            ctx,
            vec![objects::entity(&f.scope, "cluster")],
            cluster,
        )
        .await?,
    );
    if let Some(t) = &f.external_target {
        steps.push(
            step(
                &f.flows,
                ctx,
                vec![objects::entity(&f.scope, "world")],
                vec![
                    external(f, t, Expect::Allowed),
                    Ask::pod(&f.client, &f.server, port, Expect::Dropped),
                ],
            )
            .await?,
        );
    } else {
        ctx.note("no external target: the world entity is not probed");
    }
    Ok(PolicyRun { steps })
}

/// A GET to a pod through the name of its headless Service.
fn by_name<'a>(f: &'a NpFixture, svc: &str, pod: &'a PodInfo, expect: Expect) -> Ask<'a> {
    let port = workload::HTTP_PORT;
    let name = service_name(f, svc);
    Ask {
        to: Peer::new(name.clone(), Some(format!("{}:{port}", pod.ip))),
        url: format!("http://{name}:{port}/"),
        ..Ask::pod(&f.client, pod, port, expect)
    }
}

fn service_name(f: &NpFixture, svc: &str) -> String {
    format!("{svc}.{}.svc.{}", f.scope.namespace, f.cluster_domain)
}

pub(crate) async fn fqdn_egress(f: &NpFixture, ctx: &CheckCtx<'_>) -> Result<PolicyRun, KitError> {
    let (allowed_name, allowed) = match &f.external_target {
        Some(t) => (t.clone(), external(f, t, Expect::Allowed)),
        None => (
            service_name(f, SERVER),
            by_name(f, SERVER, &f.server, Expect::Allowed),
        ),
    };
    let s = step(
        &f.flows,
        ctx,
        vec![objects::fqdn(&f.scope, &allowed_name)],
        vec![allowed, by_name(f, SERVER_B, &f.server_b, Expect::Dropped)],
    )
    .await?;
    Ok(PolicyRun { steps: vec![s] })
}

pub(crate) async fn deny_wins(f: &NpFixture, ctx: &CheckCtx<'_>) -> Result<PolicyRun, KitError> {
    let port = workload::HTTP_PORT;
    let s = step(
        &f.flows,
        ctx,
        vec![objects::deny_wins(&f.scope)],
        vec![
            Ask::pod(&f.client, &f.server, port, Expect::Allowed),
            Ask::pod(&f.client_other, &f.server, port, Expect::Dropped),
        ],
    )
    .await?;
    Ok(PolicyRun { steps: vec![s] })
}

pub(crate) async fn ready(
    env: &Env,
    ns: &str,
    pods: &[(Pod, &str)],
) -> Result<Vec<PodInfo>, KitError> {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), ns);
    futures::future::try_join_all(pods.iter().map(|(p, c)| {
        let name = p.metadata.name.clone().unwrap_or_default();
        let api = api.clone();
        async move {
            let pod = wait::pod_ready(api, &name, env.timeouts.pod_ready).await?;
            PodInfo::from_pod(&pod, c)
        }
    }))
    .await
}

/// The `kubernetes` Service's ClusterIP and port: the API server as pods reach it.
pub(crate) async fn api_server(client: &kube::Client) -> Result<(String, i32), KitError> {
    let kubernetes = Api::<Service>::namespaced(client.clone(), "default")
        .get("kubernetes")
        .await
        .map_err(KitError::api("get service default/kubernetes"))?;
    kubernetes
        .spec
        .as_ref()
        .and_then(|s| {
            let port = s.ports.as_ref()?.first()?.port;
            Some((s.cluster_ip.clone()?, port))
        })
        .ok_or_else(|| KitError::Missing {
            what: "the ClusterIP and port of service default/kubernetes".into(),
            hint: "the API server's own Service has no address; is the cluster healthy?".into(),
        })
}

pub(crate) fn remote_namespace(env: &Env) -> String {
    namespace::namespace_name(&env.run_id, env.suite, Some(REMOTE_SUFFIX))
}

pub(crate) async fn setup(env: &Env, log: &CheckCtx<'_>) -> Result<NpFixture, KitError> {
    let uid = namespace::uid(&env.client, &env.namespace).await?;
    let remote = remote_namespace(env);
    namespace::create(
        &env.client,
        &namespace::test_namespace(
            &remote,
            &env.run_id,
            env.suite,
            namespace::PsaLabels::PRIVILEGED,
        ),
    )
    .await?;
    log.note(format!(
        "namespace {remote} created for the client of another namespace"
    ));
    let pods = objects::pods(env);
    for (p, _) in &pods {
        workload::create_pod(&env.client, &env.namespace, p).await?;
    }
    let remote_pod = objects::remote_client(env);
    workload::create_pod(&env.client, &remote, &remote_pod).await?;
    for s in &objects::services(env) {
        workload::create_service(&env.client, &env.namespace, s).await?;
    }
    let mut ready_pods = ready(env, &env.namespace, &pods).await?;
    ready_pods.extend(ready(env, &remote, &[(remote_pod, "client")]).await?);
    for p in &ready_pods {
        log.note(format!(
            "{}/{} ready on node {} with ip {}",
            p.namespace, p.name, p.node, p.ip
        ));
    }
    let take = |name: &str| {
        ready_pods
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| KitError::Missing {
                what: format!("pod {name}"),
                hint: "it was created and reported Ready, then not found in the Ready list".into(),
            })
    };
    let api_server = api_server(&env.client).await?;
    let hubble = env.features.hubble;
    let agents = if hubble {
        let agents = cilium::ready_agents(&env.client).await?;
        log.note(format!(
            "Hubble is on; drops are confirmed through the agents {}",
            agents
                .iter()
                .map(|a| format!("{} on {}", a.pod.name, a.node))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        agents
    } else {
        log.note("Hubble is off: drops are judged by the probes alone");
        Vec::new()
    };
    Ok(NpFixture {
        scope: Scope {
            namespace: env.namespace.clone(),
            remote_namespace: remote,
            namespace_uid: uid,
            labels: env.run_labels(),
        },
        server: take(SERVER)?,
        server_b: take(SERVER_B)?,
        client: take(CLIENT)?,
        client_other: take(CLIENT_OTHER)?,
        client_remote: take(CLIENT_REMOTE)?,
        api_server,
        flows: FlowSource { on: hubble, agents },
        cluster_domain: env.cluster_domain.clone(),
        external_target: env.external_target.clone(),
    })
}
