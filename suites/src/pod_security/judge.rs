//! The PodSecurity judges: what admission answered, against what the PodSecurity standards and
//! Talos's defaults say it must answer. Pure: admission answers and labels in, a verdict out.

use super::admission::Admission;
use crate::kit::namespace::{PSA_AUDIT, PSA_ENFORCE, PSA_WARN, PsaLabels, PsaLevel};
use crate::kit::talos::NodeOs;
use crate::kit::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The Deployment the FailedCreate check creates.
pub const DEPLOYMENT: &str = "psa-deployment";

/// A pod breaking one baseline control, as the refusal checks submit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Violation {
    NetRaw,
    HostNetwork,
    HostPort,
    Privileged,
}

impl Violation {
    pub fn pod_name(self) -> &'static str {
        match self {
            Violation::NetRaw => "psa-net-raw",
            Violation::HostNetwork => "psa-host-network",
            Violation::HostPort => "psa-host-port",
            Violation::Privileged => "psa-privileged",
        }
    }

    /// The control name PodSecurity puts in its message, and a detail only this violation has.
    pub fn control(self) -> (&'static str, &'static str) {
        match self {
            Violation::NetRaw => ("non-default capabilities", "\"NET_RAW\""),
            Violation::HostNetwork => ("host namespaces", "hostNetwork=true"),
            Violation::HostPort => ("hostPort", "hostPort 8080"),
            Violation::Privileged => ("privileged", "securityContext.privileged=true"),
        }
    }
}

// ---- namespace-levels ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsLabels {
    pub name: String,
    pub expected: PsaLabels,
    pub labels: BTreeMap<String, String>,
}

#[allow(
    clippy::ptr_arg,
    reason = "a judge takes `&Observation`, and this observation is a Vec"
)]
pub fn namespace_levels(o: &Vec<NsLabels>) -> Verdict {
    Verdict::all(o.iter().map(|ns| {
        let mut wrong = Vec::new();
        let mut shown = Vec::new();
        for (key, want) in [
            (PSA_ENFORCE, ns.expected.enforce),
            (PSA_AUDIT, ns.expected.audit),
            (PSA_WARN, ns.expected.warn),
        ] {
            let got = ns.labels.get(key).map(String::as_str);
            match (want.map(PsaLevel::as_str), got) {
                (w, g) if w == g => {
                    if let Some(g) = g {
                        shown.push(format!("{}={g}", key.rsplit('/').next().unwrap_or(key)));
                    }
                }
                (Some(w), Some(g)) => wrong.push(format!("{key} is {g}, expected {w}")),
                (Some(w), None) => wrong.push(format!("{key} is missing, expected {w}")),
                (None, Some(g)) => wrong.push(format!("{key} is {g}, expected no label (cluster default)")),
                (None, None) => {}
            }
        }
        let v = if wrong.is_empty() {
            Verdict::Pass(if shown.is_empty() {
                "no PodSecurity labels (cluster default)".into()
            } else {
                shown.join(" ")
            })
        } else {
            Verdict::Fail(format!(
                "{}; something rewrote the labels the harness set (a policy engine or namespace controller?)",
                wrong.join("; ")
            ))
        };
        (format!("namespace {}", ns.name), v)
    }))
}

// ---- baseline refusals ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub namespace: String,
    pub violation: Violation,
    pub admission: Admission,
}

pub fn refusal(r: &Refusal) -> Verdict {
    let (control, detail) = r.violation.control();
    let pod = r.violation.pod_name();
    match &r.admission {
        Admission::Refused {
            code: 403, message, ..
        } if message.contains("violates PodSecurity \"baseline:")
            && message.contains(control)
            && message.contains(detail) =>
        {
            Verdict::Pass(format!("403: {message}"))
        }
        Admission::Refused {
            code,
            reason,
            message,
        } => Verdict::Fail(format!(
            "pod {pod} was refused, but not by PodSecurity baseline control \"{control}\" ({detail}): {code} {reason}: {message}"
        )),
        Admission::Admitted { warnings } => Verdict::Fail(format!(
            "namespace {} (enforce=baseline) admitted pod {pod}, which breaks the baseline control \"{control}\"; PodSecurity admission is not enforcing (check `kubectl get ns {} --show-labels` and the API server's admission configuration){}",
            r.namespace,
            r.namespace,
            if warnings.is_empty() {
                String::new()
            } else {
                format!("; warnings: {}", warnings.join(" | "))
            }
        )),
    }
}

// ---- restricted admits a compliant pod ----

pub fn restricted_admits(a: &Admission) -> Verdict {
    match a {
        Admission::Admitted { warnings } => {
            let psa: Vec<&String> = warnings
                .iter()
                .filter(|w| w.contains("PodSecurity"))
                .collect();
            if psa.is_empty() {
                Verdict::Pass("admitted without PodSecurity warnings".into())
            } else {
                Verdict::Fail(format!(
                    "admitted, but with PodSecurity warnings, so the pod is not restricted-compliant on this version: {}",
                    psa.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" | ")
                ))
            }
        }
        Admission::Refused {
            code,
            reason,
            message,
        } => Verdict::Fail(format!(
            "restricted refused a pod built to meet every restricted control ({code} {reason}: {message}); the restricted profile of this Kubernetes version asks for more, or another admission controller refused it"
        )),
    }
}

// ---- warn level ----

pub fn warning(a: &Admission) -> Verdict {
    match a {
        Admission::Admitted { warnings } => match warnings
            .iter()
            .find(|w| w.contains("would violate PodSecurity \"restricted:"))
        {
            Some(w) => Verdict::Pass(format!("admitted with Warning: {w}")),
            None => Verdict::Fail(format!(
                "admitted without a PodSecurity Warning header (warnings: [{}]); warn=restricted is not in force",
                warnings.join(" | ")
            )),
        },
        Admission::Refused {
            code,
            reason,
            message,
        } => Verdict::Fail(format!(
            "a warn-only namespace (enforce=privileged, warn=restricted) refused the pod: {code} {reason}: {message}"
        )),
    }
}

// ---- deployment admitted, replicaset FailedCreate ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsFailure {
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsState {
    pub name: String,
    pub replicas: i32,
    pub failure: Option<RsFailure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentObs {
    pub namespace: String,
    pub admission: Admission,
    pub replica_set: Option<RsState>,
    /// FailedCreate events recorded on the ReplicaSet.
    pub events: Vec<String>,
    /// Set when the wait for FailedCreate ran out: what was last seen.
    pub gave_up: Option<String>,
}

pub fn deployment(o: &DeploymentObs) -> Verdict {
    let warnings = match &o.admission {
        Admission::Refused {
            code,
            reason,
            message,
        } => {
            return Verdict::Fail(format!(
                "the Deployment itself was refused ({code} {reason}: {message}); PodSecurity enforces on pods only, so something else refused it"
            ));
        }
        Admission::Admitted { warnings } => warnings,
    };
    let Some(rs) = &o.replica_set else {
        return Verdict::Fail(format!(
            "no ReplicaSet appeared for Deployment {DEPLOYMENT} ({}); the Deployment controller is not running?",
            o.gave_up.as_deref().unwrap_or("nothing seen")
        ));
    };
    let from_condition = rs
        .failure
        .as_ref()
        .filter(|f| f.reason == "FailedCreate")
        .map(|f| f.message.clone());
    let refusal = from_condition.or_else(|| o.events.first().cloned());
    match refusal {
        Some(m) if m.contains("violates PodSecurity \"baseline:") => Verdict::Pass(format!(
            "Deployment admitted{}; ReplicaSet {} records FailedCreate: {m} ({} FailedCreate event(s))",
            if warnings.is_empty() {
                String::new()
            } else {
                format!(" with warning \"{}\"", warnings.join(" | "))
            },
            rs.name,
            o.events.len()
        )),
        Some(m) => Verdict::Fail(format!(
            "ReplicaSet {} failed to create pods, but not because of PodSecurity baseline: {m}",
            rs.name
        )),
        None if rs.replicas > 0 => Verdict::Fail(format!(
            "ReplicaSet {} created {} pod(s) adding NET_RAW in namespace {} (enforce=baseline): PodSecurity did not enforce on the controller's pods",
            rs.name, rs.replicas, o.namespace
        )),
        None => Verdict::Fail(format!(
            "ReplicaSet {} recorded no FailedCreate ({})",
            rs.name,
            o.gave_up.as_deref().unwrap_or("no condition, no event")
        )),
    }
}

// ---- cluster default ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultLevel {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// A pod adding NET_RAW: baseline must refuse it.
    pub violating: Admission,
    /// A plain pod: baseline must admit it (restricted would not).
    pub compliant: Admission,
    /// Whether the nodes run Talos, whose API server configuration sets the baseline default.
    pub node_os: NodeOs,
}

pub fn default_level(o: &DefaultLevel) -> Verdict {
    if let Some(level) = o.labels.get(PSA_ENFORCE) {
        return Verdict::Fail(format!(
            "namespace {} carries {PSA_ENFORCE}={level}, so it cannot show the cluster default",
            o.namespace
        ));
    }
    match &o.violating {
        Admission::Admitted { .. } => {
            let why = match o.node_os.talos() {
                Some(v) => format!(
                    "the nodes run Talos {v}, which sets enforce=baseline in the API server's PodSecurity admission configuration (cluster.apiServer.admissionControl); here it was removed or set to privileged"
                ),
                None => format!(
                    "the nodes run {}, not Talos: the Kubernetes API server has no PodSecurity default of its own (it admits as privileged) unless its --admission-control-config-file sets one, and this one does not",
                    o.node_os.describe()
                ),
            };
            return Verdict::Fail(format!(
                "the unlabelled namespace {} admitted a pod adding NET_RAW: the cluster has no baseline default, so every unlabelled namespace runs privileged pods; {why}",
                o.namespace
            ));
        }
        Admission::Refused { message, .. }
            if message.contains("violates PodSecurity \"restricted:") =>
        {
            return Verdict::Fail(format!(
                "the cluster default is restricted, not baseline ({}): {message}",
                match o.node_os.talos() {
                    Some(v) => format!(
                        "Talos {v} configures baseline; the admission configuration was changed"
                    ),
                    None => format!(
                        "the nodes run {}, not Talos, whose default this check proves",
                        o.node_os.describe()
                    ),
                }
            ));
        }
        Admission::Refused { message, .. }
            if !message.contains("violates PodSecurity \"baseline:") =>
        {
            return Verdict::Fail(format!(
                "the NET_RAW pod was refused, but not by PodSecurity baseline: {message}"
            ));
        }
        Admission::Refused { .. } => {}
    }
    match &o.compliant {
        Admission::Refused {
            code,
            reason,
            message,
        } => Verdict::Fail(format!(
            "the cluster default refused a baseline-compliant pod ({code} {reason}: {message}); it is stricter than baseline"
        )),
        Admission::Admitted { .. } => Verdict::Pass(format!(
            "unlabelled namespace {}: {}; a baseline-compliant pod was admitted",
            o.namespace,
            match &o.violating {
                Admission::Refused { message, .. } => message.as_str(),
                Admission::Admitted { .. } => "",
            }
        )),
    }
}

// ---- harness namespaces ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarnessNamespace {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// The connectivity client (NET_RAW) and host-network pod, as the harness deploys them.
    pub client: Admission,
    pub host_netns: Admission,
}

pub fn harness_namespace(o: &HarnessNamespace) -> Verdict {
    let enforce = o.labels.get(PSA_ENFORCE).map(String::as_str);
    if enforce != Some("privileged") {
        return Verdict::Fail(format!(
            "harness namespace {} has {PSA_ENFORCE}={}, expected privileged; its NET_RAW and hostNetwork probes would be refused under Talos's baseline default",
            o.namespace,
            enforce.unwrap_or("(unset)")
        ));
    }
    let refused: Vec<String> = [
        ("client (NET_RAW)", &o.client),
        ("host-netns (hostNetwork)", &o.host_netns),
    ]
    .into_iter()
    .filter_map(|(what, a)| match a {
        Admission::Refused { message, .. } => Some(format!("{what} refused: {message}")),
        Admission::Admitted { .. } => None,
    })
    .collect();
    if refused.is_empty() {
        Verdict::Pass(format!(
            "{} is labelled enforce=privileged and admits the harness's NET_RAW and hostNetwork pods",
            o.namespace
        ))
    } else {
        Verdict::Fail(format!(
            "{} is labelled enforce=privileged, yet: {}",
            o.namespace,
            refused.join("; ")
        ))
    }
}
