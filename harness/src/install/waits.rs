//! What the install waits for, derived from the Cilium chart's own conditions for the merged
//! values (chart templates of 1.18.4 to 1.20.0, identical on these points):
//! - `cilium` DaemonSet: `agent` (default true) and not `preflight.enabled`;
//! - `cilium-operator` Deployment: `operator.enabled` (true), `operator.replicas` (2), required
//!   pod anti-affinity on `kubernetes.io/hostname` and a control-plane toleration by default;
//! - `cilium-envoy` DaemonSet: the `envoyDaemonSetEnabled` helper: off without `l7Proxy` (true),
//!   else `envoy.enabled` when set, else on (upgradeCompatibility defaults to 1.16);
//! - `hubble-relay` Deployment: `hubble.enabled` (true) and `hubble.relay.enabled` (false),
//!   `hubble.relay.replicas` (1);
//! - `hubble-ui` Deployment: (`hubble.enabled` or `hubble.ui.standalone.enabled`) and
//!   `hubble.ui.enabled` (false), `hubble.ui.replicas` (1);
//! - `spire-agent` DaemonSet and `spire-server` StatefulSet (1 replica) in
//!   `authentication.mutual.spire.install.namespace` (cilium-spire): `...spire.enabled` (false)
//!   and `...spire.install.enabled` (true);
//! - `clustermesh-apiserver` Deployment: `clustermesh.useAPIServer` (false),
//!   `clustermesh.apiserver.replicas` (1).
//!
//! Conditions use Go template truth (false, 0, "", empty and absent are false), as helm does.
//! Whether a Deployment's replicas fit is judged from its tolerations and required anti-affinity
//! against the cluster's nodes: Talos taints control planes `node-role.kubernetes.io/control-plane`.

use crate::profile::lint::{Basis, Finding, Severity};
use crate::values;
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Kind {
    DaemonSet,
    Deployment,
    StatefulSet,
}

/// One workload the install waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workload {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// Replicas of a Deployment or StatefulSet; `None` for a DaemonSet (one pod per node).
    pub replicas: Option<u32>,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}/{}", self.kind, self.namespace, self.name)?;
        match self.replicas {
            Some(n) => write!(f, " ({n} replica{})", if n == 1 { "" } else { "s" }),
            None => write!(f, " (every node)"),
        }
    }
}

/// The nodes of the cluster the install runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nodes {
    /// Tainted `node-role.kubernetes.io/control-plane:NoSchedule` (Talos' default).
    pub control_planes: u32,
    pub workers: u32,
}

/// Go template truth of a value; `default` when the key is absent.
fn truthy(v: Option<&Value>, default: bool) -> bool {
    match v {
        None => default,
        Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

fn on(values: &Value, key: &str, default: bool) -> bool {
    truthy(values::get(values, key), default)
}

fn count(values: &Value, key: &str, default: u32) -> u32 {
    match values::get(values, key) {
        Some(Value::Number(n)) => n.as_u64().map(|n| n as u32).unwrap_or(default),
        Some(Value::String(s)) => s.parse().unwrap_or(default),
        _ => default,
    }
}

fn envoy_daemonset(values: &Value) -> bool {
    if !on(values, "l7Proxy", true) {
        return false;
    }
    match values::get(values, "envoy.enabled") {
        None | Some(Value::Null) => true,
        v => truthy(v, true),
    }
}

/// The workloads the chart creates for these values.
pub fn workloads(values: &Value) -> Vec<Workload> {
    let ks = |kind, name: &str, replicas| Workload {
        kind,
        namespace: "kube-system".into(),
        name: name.into(),
        replicas,
    };
    let preflight = on(values, "preflight.enabled", false);
    let mut out = Vec::new();
    if on(values, "agent", true) && !preflight {
        out.push(ks(Kind::DaemonSet, "cilium", None));
    }
    if on(values, "operator.enabled", true) {
        let n = count(values, "operator.replicas", 2);
        out.push(ks(Kind::Deployment, "cilium-operator", Some(n)));
    }
    if envoy_daemonset(values) && !preflight {
        out.push(ks(Kind::DaemonSet, "cilium-envoy", None));
    }
    let hubble = on(values, "hubble.enabled", true);
    if hubble && on(values, "hubble.relay.enabled", false) {
        let n = count(values, "hubble.relay.replicas", 1);
        out.push(ks(Kind::Deployment, "hubble-relay", Some(n)));
    }
    if (hubble || on(values, "hubble.ui.standalone.enabled", false))
        && on(values, "hubble.ui.enabled", false)
    {
        let n = count(values, "hubble.ui.replicas", 1);
        out.push(ks(Kind::Deployment, "hubble-ui", Some(n)));
    }
    if on(values, "clustermesh.useAPIServer", false) {
        let n = count(values, "clustermesh.apiserver.replicas", 1);
        out.push(ks(Kind::Deployment, "clustermesh-apiserver", Some(n)));
    }
    if on(values, "authentication.mutual.spire.enabled", false)
        && on(values, "authentication.mutual.spire.install.enabled", true)
    {
        let ns = values::get(values, "authentication.mutual.spire.install.namespace")
            .and_then(Value::as_str)
            .unwrap_or("cilium-spire")
            .to_string();
        out.push(Workload {
            kind: Kind::DaemonSet,
            namespace: ns.clone(),
            name: "spire-agent".into(),
            replicas: None,
        });
        out.push(Workload {
            kind: Kind::StatefulSet,
            namespace: ns,
            name: "spire-server".into(),
            replicas: Some(1),
        });
    }
    out
}

/// Where a Deployment's pods may go: its tolerations and required anti-affinity, chart default
/// when the values do not set them.
struct Placement {
    tolerations: Value,
    affinity: Value,
}

fn placement(values: &Value, prefix: &str, tolerations: Value, affinity: Value) -> Placement {
    let get = |k: &str, d: Value| {
        values::get(values, &format!("{prefix}.{k}"))
            .cloned()
            .unwrap_or(d)
    };
    Placement {
        tolerations: get("tolerations", tolerations),
        affinity: get("affinity", affinity),
    }
}

impl Placement {
    fn tolerates_control_plane(&self) -> bool {
        self.tolerations.as_array().is_some_and(|ts| {
            ts.iter().any(|t| {
                let key = t.get("key").and_then(Value::as_str);
                let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
                let effect = t.get("effect").and_then(Value::as_str);
                let key_ok = match (key, op) {
                    (None | Some(""), "Exists") => true,
                    (Some(k), _) => k == "node-role.kubernetes.io/control-plane",
                    _ => false,
                };
                key_ok && matches!(effect, None | Some("") | Some("NoSchedule"))
            })
        })
    }

    fn one_per_node(&self) -> bool {
        values::get(
            &self.affinity,
            "podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
        )
        .and_then(Value::as_array)
        .is_some_and(|terms| {
            terms.iter().any(|t| {
                t.get("topologyKey").and_then(Value::as_str) == Some("kubernetes.io/hostname")
            })
        })
    }
}

/// Why some of these workloads' replicas cannot be scheduled on `nodes`, with the fix.
pub fn unschedulable(values: &Value, nodes: Nodes) -> Vec<Finding> {
    let mut out = Vec::new();
    for w in workloads(values) {
        let (prefix, replicas_key, p) = match w.name.as_str() {
            "cilium-operator" => (
                "operator",
                "operator.replicas",
                placement(
                    values,
                    "operator",
                    json!([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]),
                    json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname"}]}}),
                ),
            ),
            "hubble-relay" => (
                "hubble.relay",
                "hubble.relay.replicas",
                placement(values, "hubble.relay", json!([]), json!({})),
            ),
            "hubble-ui" => (
                "hubble.ui",
                "hubble.ui.replicas",
                placement(values, "hubble.ui", json!([]), json!({})),
            ),
            "clustermesh-apiserver" => (
                "clustermesh.apiserver",
                "clustermesh.apiserver.replicas",
                placement(values, "clustermesh.apiserver", json!([]), json!({})),
            ),
            _ => continue,
        };
        let replicas = w.replicas.unwrap_or(1);
        let eligible = nodes.workers
            + if p.tolerates_control_plane() {
                nodes.control_planes
            } else {
                0
            };
        let eligible_text = if p.tolerates_control_plane() {
            format!(
                "{eligible} node(s) ({} control plane + {} worker)",
                nodes.control_planes, nodes.workers
            )
        } else {
            format!("{eligible} worker(s) (it does not tolerate the control-plane taint)")
        };
        if eligible == 0 && replicas > 0 {
            out.push(Finding {
                basis: Basis::Cluster,
                severity: Severity::Error,
                key: format!("{prefix}.tolerations"),
                problem: format!("{} can run on none of the cluster's nodes: {eligible_text}", w.name),
                fix: "add a worker (--workers), or a toleration for node-role.kubernetes.io/control-plane".into(),
            });
        } else if p.one_per_node() && replicas > eligible {
            out.push(Finding {
                basis: Basis::Cluster,
                severity: Severity::Error,
                key: replicas_key.into(),
                problem: format!(
                    "{} wants {replicas} replicas, one per node (required pod anti-affinity on kubernetes.io/hostname), but it can run on {eligible_text}; the install would wait for it forever",
                    w.name
                ),
                fix: format!("set {replicas_key}={eligible}, or add workers"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(values: Value) -> Vec<String> {
        workloads(&values).iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn chart_defaults() {
        assert_eq!(
            names(json!({})),
            [
                "DaemonSet kube-system/cilium (every node)",
                "Deployment kube-system/cilium-operator (2 replicas)",
                "DaemonSet kube-system/cilium-envoy (every node)",
            ]
        );
    }

    #[test]
    fn template_truth_not_yaml_truth() {
        // The chart tests `if .Values.envoy.enabled`: the string "false" is a non-empty string.
        assert!(
            names(json!({"envoy": {"enabled": "false"}}))
                .iter()
                .any(|n| n.contains("cilium-envoy"))
        );
        assert!(
            !names(json!({"envoy": {"enabled": false}}))
                .iter()
                .any(|n| n.contains("cilium-envoy"))
        );
        assert!(
            !names(json!({"l7Proxy": false, "envoy": {"enabled": true}}))
                .iter()
                .any(|n| n.contains("cilium-envoy"))
        );
    }

    #[test]
    fn hubble_ui_needs_hubble_or_standalone() {
        let ui = |v: Value| names(v).iter().any(|n| n.contains("hubble-ui"));
        assert!(ui(json!({"hubble": {"ui": {"enabled": true}}})));
        assert!(!ui(
            json!({"hubble": {"enabled": false, "ui": {"enabled": true}}})
        ));
        assert!(ui(
            json!({"hubble": {"enabled": false, "ui": {"enabled": true, "standalone": {"enabled": true}}}})
        ));
    }

    #[test]
    fn two_operator_replicas_need_two_nodes() {
        let one_node = Nodes {
            control_planes: 1,
            workers: 0,
        };
        let problems = unschedulable(&json!({}), one_node);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "operator.replicas");
        assert_eq!(problems[0].fix, "set operator.replicas=1, or add workers");
        assert!(unschedulable(&json!({"operator": {"replicas": 1}}), one_node).is_empty());
        // The default toleration lets the second replica onto the control plane.
        assert!(
            unschedulable(
                &json!({}),
                Nodes {
                    control_planes: 1,
                    workers: 1
                }
            )
            .is_empty()
        );
        // Without it, two workers are needed.
        let no_cp = json!({"operator": {"tolerations": []}});
        assert_eq!(
            unschedulable(
                &no_cp,
                Nodes {
                    control_planes: 1,
                    workers: 1
                }
            )
            .len(),
            1
        );
    }

    #[test]
    fn relay_without_workers_has_nowhere_to_go() {
        let v = json!({"hubble": {"relay": {"enabled": true}}, "operator": {"replicas": 1}});
        let problems = unschedulable(
            &v,
            Nodes {
                control_planes: 1,
                workers: 0,
            },
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "hubble.relay.tolerations");
    }
}
