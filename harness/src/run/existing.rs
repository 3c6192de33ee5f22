//! The deployer for a cluster that already exists (a homelab, an Omni cluster, one from
//! `harness up`): provisioning connects and counts the nodes that take ordinary pods, and
//! tear-down removes only what this run created there (its labelled test namespaces, and with
//! them everything in them, and the outside client container it started).

use super::Deployer;
use super::outside::{self, DockerOutside, Outside};
use super::tester::KubeTarget;
use crate::plan::CellPlan;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bound on each API request the deployer itself makes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Existing {
    client: Client,
    run_id: String,
    /// What the client was made from, so a recorded run can give each suite its own client.
    config: Option<kube::Config>,
    /// The outside client the user chose (`--outside-client`), if any.
    pub outside: Option<OutsidePlan>,
    /// The container started for `docker-network`, removed at tear-down.
    started: Mutex<Option<talos_docker::OutsideClient>>,
}

/// How `check` probes from outside the cluster.
pub enum OutsidePlan {
    /// From this machine: nothing to start.
    Host(Outside),
    /// From a container started on the cluster's docker network when a check needs it.
    Docker {
        engine: talos_docker::docker::Engine,
        network: String,
        image: String,
        client: suites::OutsideClient,
    },
}

/// Bound on starting the outside client container (its image is present: checked up front).
const OUTSIDE_START: Duration = Duration::from_secs(60);

impl Existing {
    /// `client` has been proven against the API server (see [`super::kube::KubeAccess::connect`]).
    pub fn new(client: Client, run_id: impl Into<String>) -> Self {
        Existing {
            client,
            run_id: run_id.into(),
            config: None,
            outside: None,
            started: Mutex::new(None),
        }
    }

    /// The outside client container's name for this run.
    pub fn outside_container(&self) -> String {
        format!("harness-outside-{}", self.run_id)
    }

    async fn start_outside(&self, cell: &CellPlan) -> Result<Option<Outside>, String> {
        if !outside::needed(cell) {
            return Ok(None);
        }
        match &self.outside {
            None => Ok(None),
            Some(OutsidePlan::Host(o)) => Ok(Some(o.clone())),
            Some(OutsidePlan::Docker {
                engine,
                network,
                image,
                client,
            }) => {
                let created = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                // The run's labels: `harness gc --run-id` finds it if this process is killed.
                let labels = talos_docker::labels::object(&self.run_id, network, created);
                let started = talos_docker::OutsideClient::start(
                    engine,
                    &self.outside_container(),
                    image,
                    network,
                    labels,
                    OUTSIDE_START,
                )
                .await
                .map_err(|e| format!("cannot start the outside client: {e}"))?;
                let exec = Arc::new(DockerOutside(started.clone()));
                *self.started.lock().expect("not poisoned") = Some(started);
                Ok(Some(Outside {
                    client: client.clone(),
                    exec,
                }))
            }
        }
    }

    /// The configuration `client` was made from (see [`KubeTarget::config`]).
    pub fn with_config(mut self, config: kube::Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The label the suites put on this run's namespaces (with the run id as they spell it).
    fn selector(&self) -> String {
        let id = suites::kit::namespace::RunId::new(&self.run_id)
            .map(|id| id.as_str().to_string())
            .unwrap_or_else(|_| self.run_id.clone());
        format!("{}={id}", suites::kit::namespace::LABEL_RUN)
    }
}

/// Nodes that take ordinary pods: not cordoned and without a NoSchedule taint.
pub fn schedulable(nodes: &[Node]) -> u32 {
    let n = nodes
        .iter()
        .filter(|n| {
            let spec = n.spec.as_ref();
            !spec.and_then(|s| s.unschedulable).unwrap_or(false)
                && !spec
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.effect == "NoSchedule"))
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Deployer for Existing {
    type Cluster = KubeTarget;
    type Target = KubeTarget;

    async fn provision(&self, cell: &CellPlan) -> Result<KubeTarget, String> {
        let api: Api<Node> = Api::all(self.client.clone());
        let nodes = tokio::time::timeout(REQUEST_TIMEOUT, api.list(&ListParams::default()))
            .await
            .map_err(|_| {
                format!(
                    "listing the cluster's nodes took over {}s",
                    REQUEST_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("cannot list the cluster's nodes: {e}"))?;
        Ok(KubeTarget {
            client: self.client.clone(),
            nodes: schedulable(&nodes.items),
            config: self.config.clone(),
            outside: self.start_outside(cell).await?,
        })
    }

    async fn install(&self, _: &CellPlan, _: &KubeTarget) -> Result<String, String> {
        Err("an existing cluster runs its own Cilium; the harness does not install it".into())
    }

    async fn target(&self, cluster: &KubeTarget) -> Result<KubeTarget, String> {
        Ok(cluster.clone())
    }

    async fn tear_down(&self, cluster: KubeTarget) -> Result<String, String> {
        let started = self.started.lock().expect("not poisoned").take();
        let mut failures = Vec::new();
        let mut removed = Vec::new();
        if let Some(c) = started {
            match c.remove().await {
                Ok(()) => removed.push(format!("container {}", c.name())),
                Err(e) => failures.push(e.to_string()),
            }
        }
        let api: Api<Namespace> = Api::all(cluster.client);
        let selector = self.selector();
        let list = tokio::time::timeout(
            REQUEST_TIMEOUT,
            api.list(&ListParams::default().labels(&selector)),
        )
        .await
        .map_err(|_| format!("listing this run's namespaces ({selector}) timed out"))?
        .map_err(|e| format!("cannot list this run's namespaces ({selector}): {e}"))?;
        for ns in list.items {
            let name = ns.metadata.name.unwrap_or_default();
            let delete = tokio::time::timeout(
                REQUEST_TIMEOUT,
                api.delete(&name, &DeleteParams::background()),
            )
            .await;
            match delete {
                Ok(Ok(_)) => removed.push(format!("namespace {name}")),
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => {}
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: the delete timed out")),
            }
        }
        if failures.is_empty() {
            Ok(format!("removed: {}", removed.join(", ")))
        } else {
            Err(format!(
                "cannot delete every namespace of this run ({}); remove them with `{}`",
                failures.join("; "),
                self.leftovers()
            ))
        }
    }

    fn keep(&self, _: &KubeTarget) -> String {
        let mut s = format!(
            "this run's namespaces stay: `kubectl get namespaces -l {0}`; remove them with `kubectl delete namespaces -l {0}`",
            self.selector()
        );
        if self.started.lock().expect("not poisoned").is_some() {
            s.push_str(&format!(
                "; the outside client {} stays too: `harness gc --run-id {}`",
                self.outside_container(),
                self.run_id
            ));
        }
        s
    }

    fn leftovers(&self) -> String {
        let mut s = format!("kubectl delete namespaces -l {}", self.selector());
        if matches!(self.outside, Some(OutsidePlan::Docker { .. })) {
            s.push_str(&format!(" && harness gc --run-id {}", self.run_id));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_planes_and_cordoned_nodes_do_not_count() {
        let nodes: Vec<Node> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "cp"}, "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}},
            {"metadata": {"name": "w1"}, "spec": {}},
            {"metadata": {"name": "w2"}, "spec": {"unschedulable": true}},
            {"metadata": {"name": "w3"}, "spec": {"taints": [{"key": "x", "effect": "PreferNoSchedule"}]}}
        ]))
        .unwrap();
        assert_eq!(schedulable(&nodes), 2);
    }
}
