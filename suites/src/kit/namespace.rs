//! One test namespace per (run, suite).
//!
//! Talos enforces PodSecurity `baseline` on every namespace that does not say otherwise, and the
//! probe clients need NET_RAW (ping) and a host-network pod, which baseline refuses. So each test
//! namespace carries `enforce=privileged` (and audit/warn, to keep warnings out of the output),
//! the fix users of `cilium connectivity test` on Talos had to find themselves (cilium/cilium#30346,
//! cilium-cli#3173). The run and suite labels let a later `gc` find leftovers of a killed run.

use crate::catalog::SuiteName;
use crate::kit::errors::KitError;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::fmt;

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "talos-cilium-harness";
/// The same key talos-docker puts on its Docker objects, so one run id finds everything a run
/// left behind. (An unprefixed Kubernetes label key is valid; dots are allowed in its name.)
pub const LABEL_RUN: &str = "io.harness.run-id";
pub const LABEL_SUITE: &str = "io.harness.suite";

pub const PSA_ENFORCE: &str = "pod-security.kubernetes.io/enforce";
pub const PSA_AUDIT: &str = "pod-security.kubernetes.io/audit";
pub const PSA_WARN: &str = "pod-security.kubernetes.io/warn";

/// Longest run id kept in names, so `harness-pod-security-<run>-restricted` stays a DNS label.
const RUN_IN_NAME: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PsaLevel {
    Privileged,
    Baseline,
    Restricted,
}

impl PsaLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            PsaLevel::Privileged => "privileged",
            PsaLevel::Baseline => "baseline",
            PsaLevel::Restricted => "restricted",
        }
    }
}

impl fmt::Display for PsaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The PodSecurity labels a namespace carries; `None` leaves the cluster default in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PsaLabels {
    pub enforce: Option<PsaLevel>,
    pub audit: Option<PsaLevel>,
    pub warn: Option<PsaLevel>,
}

impl PsaLabels {
    pub const PRIVILEGED: PsaLabels = PsaLabels {
        enforce: Some(PsaLevel::Privileged),
        audit: Some(PsaLevel::Privileged),
        warn: Some(PsaLevel::Privileged),
    };

    pub fn enforce(level: PsaLevel) -> PsaLabels {
        PsaLabels {
            enforce: Some(level),
            audit: Some(level),
            warn: Some(level),
        }
    }

    fn insert_into(&self, labels: &mut BTreeMap<String, String>) {
        for (key, level) in [
            (PSA_ENFORCE, self.enforce),
            (PSA_AUDIT, self.audit),
            (PSA_WARN, self.warn),
        ] {
            if let Some(l) = level {
                labels.insert(key.into(), l.as_str().into());
            }
        }
    }
}

/// A run id made safe for label values and namespace names: lowercase alphanumerics and '-'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunId(String);

impl RunId {
    pub fn new(raw: &str) -> Result<RunId, KitError> {
        let mut s: String = raw
            .trim()
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        s = s.trim_matches('-').to_string();
        s.truncate(63);
        let s = s.trim_end_matches('-').to_string();
        if s.is_empty() {
            return Err(KitError::Missing {
                what: "run id".into(),
                hint: format!("{raw:?} has no letters or digits; pass a run id such as 20261122-1"),
            });
        }
        Ok(RunId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn for_name(&self) -> &str {
        let end = self.0.len().min(RUN_IN_NAME);
        self.0[..end].trim_end_matches('-')
    }
}

/// `harness-<suite>-<run>[-<suffix>]`.
pub fn namespace_name(run: &RunId, suite: SuiteName, suffix: Option<&str>) -> String {
    match suffix {
        Some(s) => format!("harness-{suite}-{}-{s}", run.for_name()),
        None => format!("harness-{suite}-{}", run.for_name()),
    }
}

/// Labels every object of a run carries, so they can be found and cleaned up.
pub fn run_labels(run: &RunId, suite: SuiteName) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (LABEL_RUN.to_string(), run.as_str().to_string()),
        (LABEL_SUITE.to_string(), suite.as_str().to_string()),
    ])
}

pub fn test_namespace(name: &str, run: &RunId, suite: SuiteName, psa: PsaLabels) -> Namespace {
    let mut labels = run_labels(run, suite);
    psa.insert_into(&mut labels);
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

pub async fn create(client: &kube::Client, ns: &Namespace) -> Result<Namespace, KitError> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(&PostParams::default(), ns)
        .await
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.is_already_exists() => KitError::Api {
                action: format!("create namespace {name}"),
                detail: "it already exists, left over from an earlier run with the same run id; delete it (`kubectl delete namespace`) or use a new run id".into(),
            },
            _ => KitError::api(format!("create namespace {name}"))(e),
        })
}

/// A namespace's uid: what a cluster-scoped object names as its owner, so the garbage collector
/// removes it with the namespace.
pub async fn uid(client: &kube::Client, name: &str) -> Result<String, KitError> {
    let ns = Api::<Namespace>::all(client.clone())
        .get(name)
        .await
        .map_err(KitError::api(format!("get namespace {name}")))?;
    ns.metadata.uid.ok_or_else(|| KitError::Missing {
        what: format!("the uid of namespace {name}"),
        hint: "the API server returned the namespace without one, so nothing cluster-scoped could be tied to it for clean-up".into(),
    })
}

/// Deletes a namespace; one that is already gone is fine.
pub async fn delete(client: &kube::Client, name: &str) -> Result<(), KitError> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(KitError::api(format!("delete namespace {name}"))(e)),
    }
}

/// Whether test namespaces outlive the run, for debugging a failure in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeepNamespaces {
    #[default]
    Never,
    OnFailure,
    Always,
}

impl KeepNamespaces {
    pub fn keeps(self, something_failed: bool) -> bool {
        match self {
            KeepNamespaces::Never => false,
            KeepNamespaces::OnFailure => something_failed,
            KeepNamespaces::Always => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_made_label_safe() {
        assert_eq!(
            RunId::new("2026-11-22T10:00Z#1").unwrap().as_str(),
            "2026-11-22t10-00z-1"
        );
        assert!(RunId::new("###").is_err());
        let long = RunId::new(&"a".repeat(100)).unwrap();
        assert_eq!(long.as_str().len(), 63);
    }

    #[test]
    fn names_stay_dns_labels() {
        let run = RunId::new(&"r".repeat(63)).unwrap();
        let n = namespace_name(&run, crate::pod_security::NAME, Some("restricted"));
        assert!(n.len() <= 63, "{n} is {} long", n.len());
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_eq!(
            namespace_name(&RunId::new("r1").unwrap(), crate::dns::NAME, None),
            "harness-dns-r1"
        );
    }

    #[test]
    fn test_namespaces_are_privileged_and_name_the_run() {
        let run = RunId::new("r1").unwrap();
        let ns = test_namespace(
            "harness-dns-r1",
            &run,
            crate::dns::NAME,
            PsaLabels::PRIVILEGED,
        );
        let labels = ns.metadata.labels.unwrap();
        assert_eq!(labels[PSA_ENFORCE], "privileged");
        assert_eq!(labels[PSA_AUDIT], "privileged");
        assert_eq!(labels[PSA_WARN], "privileged");
        assert_eq!(labels[LABEL_RUN], "r1");
        assert_eq!(labels[LABEL_SUITE], "dns");
        assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY);
    }

    #[test]
    fn keep_policy() {
        assert!(!KeepNamespaces::Never.keeps(true));
        assert!(KeepNamespaces::OnFailure.keeps(true));
        assert!(!KeepNamespaces::OnFailure.keeps(false));
        assert!(KeepNamespaces::Always.keeps(false));
    }
}
