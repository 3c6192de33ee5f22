//! The gate on a live cluster: the Talos-in-Docker deployer makes, installs and removes the
//! cluster; this deployer adds the gate's steps. Everything here talks to the cluster, so it is
//! correct by construction (typed objects, the same install code as `e2e`, bounded waits) and
//! its judgements come from the pure judges in [`super::disruption`].

use super::disruption::{self, Drops, Restarts};
use super::{Move, UpgradePlan};
use crate::install::{self, conditions, wait};
use crate::plan::CellPlan;
use crate::releases::ReleaseTable;
use crate::report::Outcome;
use crate::run::talos_docker::{DockerCluster, TalosDocker};
use crate::run::tester::KubeTarget;
use crate::run::{Deployer, GateStep};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ExecAction, Namespace, Node, Pod, PodSpec, PodTemplateSpec, Probe,
    Service, ServicePort, ServiceSpec, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ListParams, LogParams, Patch, PatchParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the disruption workload runs, and its objects' names (cilium-cli's own).
pub const NAMESPACE: &str = "harness-conn-disrupt";
const SERVER: &str = "test-conn-disrupt-server";
const CLIENT: &str = "test-conn-disrupt-client";
const SERVICE: &str = "test-conn-disrupt";
const PORT: i32 = 8000;
const AGENT_CONTAINER: &str = "cilium-agent";
/// The agent's Prometheus port (chart default `prometheus.port`).
const AGENT_METRICS_PORT: u16 = 9962;
/// Bound on each single API call of a judge (lists, logs, metrics).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct GateOptions {
    pub ready_bound: Duration,
    /// The talosctl for `upgrade-k8s` (of the Talos release the nodes run by then).
    pub talosctl: Option<PathBuf>,
    pub image_repo: String,
    pub run_id: String,
}

/// What the judges compare with, recorded when the workload started.
#[derive(Clone, Debug, Default)]
struct Baseline {
    workload: Vec<Restarts>,
    agents: Vec<Restarts>,
    drops: Option<Drops>,
    logs: String,
}

pub struct Gate<'a> {
    inner: &'a TalosDocker,
    plan: &'a UpgradePlan,
    opts: GateOptions,
    baseline: Mutex<Option<Baseline>>,
}

impl<'a> Gate<'a> {
    pub fn new(inner: &'a TalosDocker, plan: &'a UpgradePlan, opts: GateOptions) -> Self {
        Gate {
            inner,
            plan,
            opts,
            baseline: Mutex::new(None),
        }
    }
}

fn error(message: impl Into<String>) -> Outcome {
    Outcome::Error {
        message: message.into(),
        detail: String::new(),
    }
}

fn labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), app.to_string())])
}

fn deployment(name: &str, replicas: i32, command: Vec<String>, probe: Probe) -> Deployment {
    let image = ReleaseTable::embedded().disruption.image.clone();
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(labels(name)),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(name)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(name)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: name.into(),
                        image: Some(image),
                        command: Some(command),
                        ports: Some(vec![ContainerPort {
                            container_port: PORT,
                            ..Default::default()
                        }]),
                        readiness_probe: Some(probe),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// cilium-cli's conn-disrupt workload: 3 servers behind a ClusterIP Service, 5 clients that
/// each hold a connection to it and exit when it breaks; the scheduler spreads them over the
/// workers, so connections cross nodes and stay on one.
pub fn workload(run_id: &str) -> (Namespace, Deployment, Service, Deployment) {
    let d = &ReleaseTable::embedded().disruption;
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                suites::kit::namespace::LABEL_RUN.to_string(),
                run_id.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    let server = deployment(
        SERVER,
        3,
        d.server_command.clone(),
        Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(PORT),
                ..Default::default()
            }),
            period_seconds: Some(3),
            ..Default::default()
        },
    );
    let service = Service {
        metadata: ObjectMeta {
            name: Some(SERVICE.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(labels(SERVER)),
            ports: Some(vec![ServicePort {
                port: PORT,
                target_port: Some(IntOrString::Int(PORT)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut client_command = d.client_command.clone();
    client_command.push(format!("{SERVICE}.{NAMESPACE}.svc.cluster.local.:{PORT}"));
    let client = deployment(
        CLIENT,
        5,
        client_command,
        Probe {
            exec: Some(ExecAction {
                command: Some(vec!["cat".into(), "/tmp/client-ready".into()]),
            }),
            period_seconds: Some(3),
            initial_delay_seconds: Some(1),
            failure_threshold: Some(20),
            ..Default::default()
        },
    );
    (ns, server, service, client)
}

async fn bounded<T>(
    what: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {CALL_TIMEOUT:?}")),
    }
}

async fn pods(client: &Client, namespace: &str, selector: &str) -> Result<Vec<Pod>, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = bounded(
        &format!("listing pods {selector} in {namespace}"),
        api.list(&ListParams::default().labels(selector)),
    )
    .await?;
    Ok(list.items)
}

fn agent_only(r: Vec<Restarts>) -> Vec<Restarts> {
    r.into_iter()
        .filter(|r| r.container == AGENT_CONTAINER)
        .collect()
}

/// What the judges read: restart counts of the workload and the agents, drops (when the
/// agents serve metrics), and the agents' logs.
async fn observe(client: &Client, metrics: bool) -> Result<Baseline, String> {
    let mut workload = Vec::new();
    for app in [SERVER, CLIENT] {
        workload.extend(disruption::restarts(
            &pods(client, NAMESPACE, &format!("app={app}")).await?,
        ));
    }
    let agent_pods = pods(client, "kube-system", "k8s-app=cilium").await?;
    let agents = agent_only(disruption::restarts(&agent_pods));
    let api: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let mut logs = String::new();
    let mut drops: Option<Drops> = metrics.then(Drops::new);
    for pod in &agent_pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let params = LogParams {
            container: Some(AGENT_CONTAINER.into()),
            ..Default::default()
        };
        logs.push_str(&bounded(&format!("logs of {name}"), api.logs(&name, &params)).await?);
        if let Some(total) = drops.as_mut() {
            let request = http::Request::get(format!(
                "/api/v1/namespaces/kube-system/pods/{name}:{AGENT_METRICS_PORT}/proxy/metrics"
            ))
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
            let text = bounded(&format!("metrics of {name}"), client.request_text(request)).await?;
            for (reason, n) in disruption::parse_drops(&text)? {
                *total.entry(reason).or_default() += n;
            }
        }
    }
    Ok(Baseline {
        workload,
        agents,
        drops,
        logs,
    })
}

fn serves_metrics(cell: &CellPlan) -> bool {
    cell.values
        .pointer("/prometheus/enabled")
        .is_some_and(|v| v == &serde_json::Value::Bool(true) || v == "true")
}

/// A replaced node is back: the API server lists it Ready, running the new Talos.
struct KubeNodeReady {
    client: Client,
    bound: Duration,
}

impl talos_docker::replace::NodeReady for KubeNodeReady {
    fn wait<'a>(
        &'a self,
        node: &'a talos_docker::Node,
        version: &'a talos_docker::TalosVersion,
    ) -> BoxFuture<'a, Result<(), talos_docker::Error>> {
        Box::pin(async move {
            let api: Api<Node> = Api::all(self.client.clone());
            let what = format!("node {} to report Talos {version} and be Ready", node.name);
            let want = version.to_string();
            wait::all(
                api,
                &what,
                |nodes| {
                    node_on(
                        nodes
                            .iter()
                            .find(|n| n.metadata.name.as_deref() == Some(node.name.as_str())),
                        &want,
                    )
                },
                self.bound,
            )
            .await
            .map_err(|e| match e {
                wait::WaitError::Timeout {
                    what,
                    timeout,
                    last_seen,
                } => talos_docker::Error::WaitTimeout {
                    what,
                    timeout,
                    last_seen,
                },
                wait::WaitError::Watch { what, message } => talos_docker::Error::WaitTimeout {
                    what,
                    timeout: self.bound,
                    last_seen: format!("the watch failed: {message}"),
                },
            })
        })
    }
}

/// The judge of [`KubeNodeReady`]: Talos reports itself in `nodeInfo.osImage` as
/// `Talos (v1.14.0)`.
pub fn node_on(n: Option<&Node>, version: &str) -> conditions::Readiness {
    let n = n.ok_or("not listed yet")?;
    let os = n
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.os_image.clone())
        .unwrap_or_default();
    if !os.contains(&format!("({version})")) {
        return Err(format!("osImage is '{os}'"));
    }
    conditions::node_ready(n)
}

impl Gate<'_> {
    async fn client(&self, c: &DockerCluster) -> Result<Client, String> {
        Ok(self.inner.target(c).await?.client)
    }

    async fn start_disruption(&self, c: &DockerCluster) -> Outcome {
        let client = match self.client(c).await {
            Ok(client) => client,
            Err(e) => return error(e),
        };
        let (ns, server, service, clients) = workload(&self.opts.run_id);
        let pp = PatchParams::apply("talos-cilium-harness").force();
        let applied = async {
            let namespaces: Api<Namespace> = Api::all(client.clone());
            bounded(
                "creating the disruption namespace",
                namespaces.patch(NAMESPACE, &pp, &Patch::Apply(&ns)),
            )
            .await?;
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
            let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
            bounded(
                "creating the servers",
                deployments.patch(SERVER, &pp, &Patch::Apply(&server)),
            )
            .await?;
            bounded(
                "creating the Service",
                services.patch(SERVICE, &pp, &Patch::Apply(&service)),
            )
            .await?;
            bounded(
                "creating the clients",
                deployments.patch(CLIENT, &pp, &Patch::Apply(&clients)),
            )
            .await?;
            for name in [SERVER, CLIENT] {
                wait::object(
                    deployments.clone(),
                    name,
                    &format!("Deployment {NAMESPACE}/{name} to be available"),
                    conditions::deployment_available,
                    self.opts.ready_bound,
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            observe(&client, serves_metrics(&self.plan.before)).await
        };
        match applied.await {
            Ok(b) => {
                *self.baseline.lock().expect("not poisoned") = Some(b);
                Outcome::Passed
            }
            Err(e) => error(format!("the disruption workload did not start: {e}")),
        }
    }

    async fn apply_move(
        &self,
        m: &Move,
        target: &CellPlan,
        c: &DockerCluster,
    ) -> Result<String, String> {
        let cluster = c.cluster();
        match m {
            Move::Talos { from, to } => {
                let client = self.client(c).await?;
                let parse = |v: &crate::version::TalosVersion| {
                    talos_docker::TalosVersion::parse(&v.to_string()).map_err(|e| e.to_string())
                };
                let (from, to) = (parse(from)?, parse(to)?);
                let image = format!("{}:{to}", self.opts.image_repo);
                let ready = KubeNodeReady {
                    client,
                    bound: self.opts.ready_bound,
                };
                let done = cluster
                    .replace_nodes(&image, &from, &to, &ready)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(done
                    .iter()
                    .map(|r| format!("replaced {} with {image}\n", r.node.name))
                    .collect())
            }
            Move::Kubernetes { to, .. } => {
                let talos = talos_docker::TalosVersion::parse(&target.cell.talos.to_string())
                    .map_err(|e| e.to_string())?;
                let talosctl = talos_docker::talosctl::Talosctl::locate(
                    self.opts.talosctl.as_deref(),
                    &talos,
                    CALL_TIMEOUT,
                )
                .await
                .map_err(|e| e.to_string())?;
                cluster
                    .upgrade_kubernetes(&talosctl, &to.to_string(), self.opts.ready_bound)
                    .await
                    .map_err(|e| e.to_string())
            }
            Move::Cilium { .. } => {
                let client = self.client(c).await?;
                let steps = install::apply(
                    &client,
                    &cluster.kubeconfig(),
                    cluster.run_dir(),
                    target,
                    &self.inner.install,
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok(install::transcript(&steps))
            }
        }
    }

    async fn apply_moves(&self, moves: &[&Move], target: &CellPlan, c: &DockerCluster) -> Outcome {
        for m in moves {
            if let Err(e) = self.apply_move(m, target, c).await {
                return error(e);
            }
        }
        Outcome::Passed
    }

    async fn readiness(&self, target: &CellPlan, c: &DockerCluster) -> Outcome {
        let cluster = c.cluster();
        let (client, subnet) = match (self.client(c).await, cluster.subnet()) {
            (Ok(client), Some(subnet)) => (client, subnet),
            (Err(e), _) => return error(e),
            (_, None) => return error("the cluster has no subnet"),
        };
        let start = Instant::now();
        let bound = self.opts.ready_bound;
        let settled = install::settle(
            &client,
            target,
            &self.inner.overlay,
            subnet,
            cluster.nodes().len(),
            bound,
        );
        match tokio::time::timeout(bound, settled).await {
            Ok(Ok(_)) => Outcome::Passed,
            Ok(Err(e)) => Outcome::Failed {
                message: format!("not ready within the {bound:?} bound: {e}"),
                detail: String::new(),
            },
            Err(_) => Outcome::Failed {
                message: format!(
                    "readiness bound exceeded: not ready after {:?}",
                    start.elapsed()
                ),
                detail: String::new(),
            },
        }
    }

    async fn judge(&self, target: &CellPlan, c: &DockerCluster) -> Outcome {
        if self
            .plan
            .moves
            .iter()
            .any(|m| matches!(m, Move::Talos { .. }))
        {
            return Outcome::Skipped {
                reason: "not judged across a Talos move: replacing a node restarts its pods and agent by design".into(),
            };
        }
        let Some(before) = self.baseline.lock().expect("not poisoned").clone() else {
            return error("no baseline was recorded: the disruption workload did not start");
        };
        let client = match self.client(c).await {
            Ok(client) => client,
            Err(e) => return error(e),
        };
        let after = match observe(&client, before.drops.is_some() && serves_metrics(target)).await {
            Ok(a) => a,
            Err(e) => return error(e),
        };
        let allowed = &ReleaseTable::embedded().disruption.expected_drop_reasons;
        let mut judged = vec![
            disruption::judge_connections(&before.workload, &after.workload),
            disruption::judge_agent_restarts(&before.agents, &after.agents),
            disruption::judge_logs(&before.logs, &after.logs),
        ];
        match (&before.drops, &after.drops) {
            (Some(b), Some(a)) => judged.push(disruption::judge_drops(b, a, allowed)),
            _ => judged.push(disruption::Judged {
                failures: vec![],
                notes: vec!["drops not compared: the agents do not serve metrics (prometheus.enabled is not set)".into()],
            }),
        }
        outcome(&judged)
    }
}

/// The judges' findings as one outcome: every failure in the message, every note in the detail.
pub fn outcome(judged: &[disruption::Judged]) -> Outcome {
    let failures: Vec<&String> = judged.iter().flat_map(|j| &j.failures).collect();
    let notes: Vec<&String> = judged.iter().flat_map(|j| &j.notes).collect();
    let detail = notes.iter().map(|n| format!("{n}\n")).collect::<String>();
    if failures.is_empty() {
        return Outcome::Passed;
    }
    Outcome::Failed {
        message: failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        detail,
    }
}

impl Deployer for Gate<'_> {
    type Cluster = DockerCluster;
    type Target = KubeTarget;

    async fn provision(&self, cell: &CellPlan) -> Result<DockerCluster, String> {
        self.inner.provision(cell).await
    }
    async fn install(&self, cell: &CellPlan, c: &DockerCluster) -> Result<String, String> {
        self.inner.install(cell, c).await
    }
    async fn gate(&self, step: GateStep, _cell: &CellPlan, c: &DockerCluster) -> Outcome {
        let plan = self.plan;
        match step {
            GateStep::StartDisruption => self.start_disruption(c).await,
            GateStep::Upgrade => {
                let moves: Vec<&Move> = plan.moves.iter().collect();
                self.apply_moves(&moves, &plan.after, c).await
            }
            GateStep::Readiness => self.readiness(&plan.after, c).await,
            GateStep::JudgeDisruption => self.judge(&plan.after, c).await,
            GateStep::Downgrade => match &plan.downgrade {
                Some((back, m)) => self.apply_moves(&[m], back, c).await,
                None => error("no downgrade was planned"),
            },
            GateStep::DowngradeReadiness => match &plan.downgrade {
                Some((back, _)) => self.readiness(back, c).await,
                None => error("no downgrade was planned"),
            },
            GateStep::JudgeDisruptionAfterDowngrade => match &plan.downgrade {
                Some((back, _)) => self.judge(back, c).await,
                None => error("no downgrade was planned"),
            },
        }
    }
    async fn target(&self, c: &DockerCluster) -> Result<KubeTarget, String> {
        self.inner.target(c).await
    }
    async fn tear_down(&self, c: DockerCluster) -> Result<String, String> {
        self.inner.tear_down(c).await
    }
    fn keep(&self, c: &DockerCluster) -> String {
        self.inner.keep(c)
    }
    fn leftovers(&self) -> String {
        self.inner.leftovers()
    }
}
