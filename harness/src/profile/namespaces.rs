//! Namespaces the harness creates before installing Cilium, derived from the values: the SPIRE
//! namespace when the chart is told to leave it alone (`existingNamespace`), labelled so that
//! Talos' default PodSecurity level does not refuse the SPIRE pods.

use crate::values::{flag, text};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The label that lifts PodSecurity admission off a namespace.
pub const ENFORCE_PRIVILEGED: (&str, &str) = ("pod-security.kubernetes.io/enforce", "privileged");

/// The chart's default for `authentication.mutual.spire.install.namespace`.
const SPIRE_NAMESPACE: &str = "cilium-spire";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub why: &'static str,
}

impl Namespace {
    /// The object for a server-side apply.
    pub fn manifest(&self) -> Value {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.name, "labels": self.labels},
        })
    }
}

pub fn prepared(values: &Value) -> Vec<Namespace> {
    let spire_installed = flag(values, "authentication.mutual.spire.enabled", false)
        && flag(values, "authentication.mutual.spire.install.enabled", true);
    if !spire_installed
        || !flag(
            values,
            "authentication.mutual.spire.install.existingNamespace",
            false,
        )
    {
        return Vec::new();
    }
    let name = text(values, "authentication.mutual.spire.install.namespace")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| SPIRE_NAMESPACE.to_string());
    vec![Namespace {
        name,
        labels: BTreeMap::from([(ENFORCE_PRIVILEGED.0.into(), ENFORCE_PRIVILEGED.1.into())]),
        why: "the SPIRE agent runs with hostPID, hostNetwork and hostPath, which Talos' default baseline level refuses",
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_spire_namespace_is_prepared_only_when_the_chart_leaves_it() {
        let spire = |existing: bool| {
            json!({"authentication": {"mutual": {"spire": {"enabled": true,
                "install": {"existingNamespace": existing}}}}})
        };
        let ns = prepared(&spire(true));
        assert_eq!(ns.len(), 1);
        assert_eq!(ns[0].name, "cilium-spire");
        assert_eq!(
            ns[0].manifest()["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        assert!(
            prepared(&spire(false)).is_empty(),
            "the chart creates it itself"
        );
        assert!(prepared(&json!({})).is_empty());
        let mut custom = spire(true);
        custom["authentication"]["mutual"]["spire"]["install"]["namespace"] = json!("spire");
        assert_eq!(prepared(&custom)[0].name, "spire");
    }
}
