//! The deployer for a cluster that already exists (a homelab, an Omni cluster, one from
//! `harness up`): provisioning connects and counts the nodes that take ordinary pods, and
//! tear-down removes only what this run created there (its labelled test namespaces, and with
//! them everything in them).

use super::Deployer;
use super::tester::KubeTarget;
use crate::plan::CellPlan;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use std::time::Duration;

/// Bound on each API request the deployer itself makes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Existing {
    client: Client,
    run_id: String,
    /// What the client was made from, so a recorded run can give each suite its own client.
    config: Option<kube::Config>,
}

impl Existing {
    /// `client` has been proven against the API server (see [`super::kube::KubeAccess::connect`]).
    pub fn new(client: Client, run_id: impl Into<String>) -> Self {
        Existing {
            client,
            run_id: run_id.into(),
            config: None,
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

    async fn provision(&self, _: &CellPlan) -> Result<KubeTarget, String> {
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
        })
    }

    async fn install(&self, _: &CellPlan, _: &KubeTarget) -> Result<String, String> {
        Err("an existing cluster runs its own Cilium; the harness does not install it".into())
    }

    async fn target(&self, cluster: &KubeTarget) -> Result<KubeTarget, String> {
        Ok(cluster.clone())
    }

    async fn tear_down(&self, cluster: KubeTarget) -> Result<String, String> {
        let api: Api<Namespace> = Api::all(cluster.client);
        let selector = self.selector();
        let list = tokio::time::timeout(
            REQUEST_TIMEOUT,
            api.list(&ListParams::default().labels(&selector)),
        )
        .await
        .map_err(|_| format!("listing this run's namespaces ({selector}) timed out"))?
        .map_err(|e| format!("cannot list this run's namespaces ({selector}): {e}"))?;
        let mut removed = Vec::new();
        let mut failures = Vec::new();
        for ns in list.items {
            let name = ns.metadata.name.unwrap_or_default();
            let delete = tokio::time::timeout(
                REQUEST_TIMEOUT,
                api.delete(&name, &DeleteParams::background()),
            )
            .await;
            match delete {
                Ok(Ok(_)) => removed.push(name),
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => {}
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: the delete timed out")),
            }
        }
        if failures.is_empty() {
            Ok(format!("deleted namespaces: {}", removed.join(", ")))
        } else {
            Err(format!(
                "cannot delete every namespace of this run ({}); remove them with `{}`",
                failures.join("; "),
                self.leftovers()
            ))
        }
    }

    fn keep(&self, _: &KubeTarget) -> String {
        format!(
            "this run's namespaces stay: `kubectl get namespaces -l {0}`; remove them with `kubectl delete namespaces -l {0}`",
            self.selector()
        )
    }

    fn leftovers(&self) -> String {
        format!("kubectl delete namespaces -l {}", self.selector())
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
