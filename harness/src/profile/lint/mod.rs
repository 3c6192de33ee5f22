//! Findings on Helm values and Cilium manifests before any cluster is made. Four sources, each
//! finding saying which it rests on ([`Basis`]):
//! - the chart: every key checked against the chart of the Cilium minor ([`keys`]), and what
//!   its templates refuse to render ([`chart`]);
//! - the cluster: every way the values can contradict the [`ClusterDescription`] the harness
//!   builds (or the user describes) ([`cluster_rules`]);
//! - Cilium itself: settings the chart renders but the agent ignores or refuses (warnings);
//! - manifests: LB pools, L2 announcement policies and Service annotations ([`manifests`]).
//!
//! Errors rest on the chart, its schema or the cluster; what rests on Cilium's run-time
//! behaviour alone is a warning, since nothing here can show it.

pub mod chart;
pub mod cilium;
pub mod cluster_rules;
pub mod files;
pub mod keys;
pub mod manifests;
pub mod source;

use crate::cluster::ClusterDescription;
use crate::releases::{Minor, ReleaseTable};
use crate::version::CiliumVersion;
use keys::KeyTable;
use serde::Serialize;
use serde_json::Value;

pub use manifests::{ApiVersionStatus, api_version_status};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The chart refuses to render, the chart does not know the key, or the values contradict
    /// the cluster: the run cannot mean what the values say.
    Error,
    /// It works, but not as the values suggest.
    Warning,
}

/// What a finding rests on: what makes it true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// `helm template` refuses the values (the chart's `fail` or its values schema).
    Chart,
    /// The schema (the chart's values schema, or a CRD's) does not define the key, or wants
    /// another type.
    Schema,
    /// The values contradict the cluster they are installed on.
    Cluster,
    /// The chart renders it, but Cilium ignores it or refuses it when it starts.
    Cilium,
    /// What upstream tests and supports together (the release facts), not the values alone.
    Compatibility,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub basis: Basis,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl Finding {
    pub fn new(
        severity: Severity,
        basis: Basis,
        key: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity,
            basis,
            key: key.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn error(
        basis: Basis,
        key: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding::new(Severity::Error, basis, key, problem, fix)
    }

    pub(crate) fn warning(
        basis: Basis,
        key: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding::new(Severity::Warning, basis, key, problem, fix)
    }
}

/// The values as the chart sees them: the user's where set, the chart's defaults elsewhere.
pub struct Values<'a> {
    user: &'a Value,
    table: Option<&'static KeyTable>,
}

/// Helm's truthiness for `{{ if .Values.x }}`: false, 0, "", null and empty lists/maps are false.
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

impl<'a> Values<'a> {
    /// `values` over the defaults of the chart of `cilium`'s minor (or, without a table for
    /// that minor, the nearest older one, else the oldest).
    pub fn new(user: &'a Value, cilium: &CiliumVersion) -> Self {
        Values {
            user,
            table: defaults_table(cilium),
        }
    }

    /// The user's own setting (a `null` removes the chart's default, so it counts as unset).
    pub fn user(&self, path: &str) -> Option<&'a Value> {
        crate::values::get(self.user, path).filter(|v| !v.is_null())
    }

    pub fn get(&self, path: &str) -> Option<&'a Value> {
        match crate::values::get(self.user, path) {
            Some(Value::Null) => None,
            Some(v) => Some(v),
            None => self.table.and_then(|t| t.default(path)),
        }
    }

    /// A boolean as the chart reads it (strings from `--set` and YAML 1.1 spellings included).
    pub fn flag(&self, path: &str) -> bool {
        match self.get(path) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(
                s.as_str(),
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON"
            ),
            other => truthy(other),
        }
    }

    /// A setting as text (numbers and booleans shown as text); `None` when unset or empty.
    pub fn text(&self, path: &str) -> Option<String> {
        match self.get(path)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

fn defaults_table(cilium: &CiliumVersion) -> Option<&'static KeyTable> {
    let (major, minor) = cilium.minor();
    KeyTable::for_minor((major, minor)).or_else(|| {
        let mut known: Vec<(u64, u64)> = KeyTable::minors()
            .filter_map(|m| {
                let (a, b) = m.split_once('.')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .collect();
        known.sort();
        let pick = known
            .iter()
            .rev()
            .find(|m| **m < (major, minor))
            .or(known.first())?;
        KeyTable::for_minor(*pick)
    })
}

/// Keys Cilium removed that the chart no longer reads and does not refuse either (release
/// table): set, they do nothing, silently.
fn ignored_removed_keys(values: &Value, cilium: &CiliumVersion) -> Vec<Finding> {
    let minor = Minor::from(cilium.minor());
    ReleaseTable::embedded()
        .removed_by(minor)
        .filter(|r| !r.refused)
        .filter(|r| crate::values::get(values, &r.key).is_some_and(|x| !x.is_null()))
        .map(|r| {
            Finding::error(
                Basis::Schema,
                &r.key,
                format!(
                    "removed in Cilium {}; the {minor} chart ignores it, so it has no effect",
                    r.removed_in
                ),
                r.fix.clone(),
            )
        })
        .collect()
}

/// Lint merged Helm values for one Cilium version on one cluster: findings, sorted.
pub fn values(
    values: &Value,
    cilium: &CiliumVersion,
    cluster: &ClusterDescription,
) -> Vec<Finding> {
    values_with_notes(values, cilium, cluster).0
}

/// As [`values`], with notes on what could not be checked.
pub fn values_with_notes(
    values: &Value,
    cilium: &CiliumVersion,
    cluster: &ClusterDescription,
) -> (Vec<Finding>, Vec<String>) {
    let mut notes = Vec::new();
    let v = Values::new(values, cilium);
    let mut specific = chart::rules(&v, cilium, &cluster.pod_cidr.value.to_string());
    specific.extend(cluster_rules::rules(&v, cilium, cluster));
    specific.extend(cilium::rules(&v, cilium));
    specific.extend(ignored_removed_keys(values, cilium));
    let mut out = Vec::new();
    match KeyTable::for_minor(cilium.minor()) {
        Some(table) => {
            // A key a specific rule already speaks for needs no second, generic finding.
            out.extend(table.check(values, cilium).into_iter().filter(|k| {
                !specific
                    .iter()
                    .any(|s| s.key == k.key || s.key.starts_with(&format!("{}.", k.key)))
            }))
        }
        None => notes.push(format!(
            "values keys not checked: the repository has no chart table for Cilium {}.{} (it has {}); chart defaults of the nearest minor used",
            cilium.minor().0,
            cilium.minor().1,
            KeyTable::minors().collect::<Vec<_>>().join(", ")
        )),
    }
    out.extend(specific);
    out.sort_by(|a, b| (a.severity, &a.key).cmp(&(b.severity, &b.key)));
    out.dedup();
    (out, notes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::profile::overlay::Overlay;
    use serde_json::json;

    pub fn v(s: &str) -> CiliumVersion {
        CiliumVersion::parse(s).unwrap()
    }

    pub fn harness_cluster() -> ClusterDescription {
        ClusterDescription::talos_in_docker(&Overlay::embedded())
    }

    /// The Talos guide's values, which every rule must leave alone.
    pub fn talos(extra: Value) -> Value {
        let mut base = json!({"ipam": {"mode": "kubernetes"}, "kubeProxyReplacement": true,
            "k8sServiceHost": "localhost", "k8sServicePort": 7445});
        crate::values::merge(&mut base, &extra);
        base
    }

    pub fn keys(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|f| (f.key.as_str(), f.severity)).collect()
    }

    pub fn lint(values: Value, version: &str) -> Vec<Finding> {
        super::values(&values, &v(version), &harness_cluster())
    }

    #[test]
    fn clean_talos_values_have_no_findings_on_any_minor() {
        for version in ["1.18.4", "1.18.12", "1.19.6", "1.20.0"] {
            assert_eq!(lint(talos(json!({})), version), vec![], "{version}");
        }
    }

    #[test]
    fn the_issue_typo_is_an_error_naming_the_key() {
        let f = lint(talos(json!({"kubeProxyReplacment": true})), "1.19.6");
        assert_eq!(keys(&f), vec![("kubeProxyReplacment", Severity::Error)]);
        assert_eq!(f[0].fix, "did you mean `kubeProxyReplacement`?");
        assert_eq!(f[0].basis, Basis::Schema);
    }

    #[test]
    fn a_removed_key_is_reported_once_by_its_own_rule() {
        let f = lint(talos(json!({"tunnel": "disabled"})), "1.18.4");
        assert_eq!(keys(&f), vec![("tunnel", Severity::Error)]);
        assert_eq!(f[0].basis, Basis::Chart);
        assert!(f[0].fix.contains("routingMode: native"));
    }

    #[test]
    fn a_key_the_chart_ignores_since_its_removal_names_its_replacement() {
        let strict = talos(json!({"encryption": {"strictMode": {"enabled": true}}}));
        assert_eq!(
            lint(strict.clone(), "1.19.6"),
            vec![],
            "deprecated, still read by 1.19"
        );
        let f = lint(strict, "1.20.0");
        assert_eq!(
            keys(&f),
            vec![("encryption.strictMode.enabled", Severity::Error)]
        );
        assert!(
            f[0].problem.contains("the 1.20 chart ignores it"),
            "{}",
            f[0].problem
        );
        assert_eq!(f[0].fix, "use encryption.strictMode.egress.enabled");
    }

    #[test]
    fn chart_defaults_come_from_the_minor() {
        // authentication.enabled defaults to true in 1.18 and false from 1.19.
        let spire = talos(
            json!({"authentication": {"mutual": {"spire": {"enabled": true,
            "install": {"existingNamespace": true}}}}}),
        );
        assert!(
            lint(spire.clone(), "1.18.4")
                .iter()
                .all(|f| f.key != "authentication.enabled")
        );
        let f = lint(spire, "1.19.6");
        assert_eq!(keys(&f), vec![("authentication.enabled", Severity::Error)]);
    }

    #[test]
    fn a_minor_without_a_table_says_its_keys_were_not_checked() {
        let (f, notes) = values_with_notes(
            &talos(json!({"kubeProxyReplacment": true})),
            &v("1.17.10"),
            &harness_cluster(),
        );
        assert_eq!(f, vec![]);
        assert!(notes[0].starts_with("values keys not checked"), "{notes:?}");
    }
}
