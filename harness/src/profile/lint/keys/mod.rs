//! Every Helm values key checked against the chart of the Cilium minor: keys the chart does not
//! know (helm ignores them silently) and values of the wrong type (helm refuses them). The
//! tables are generated from the published charts (`generate`) and committed under
//! `harness/data/values-keys/`, one per minor.

pub mod generate;

use super::{Basis, Finding, Severity};
use crate::version::CiliumVersion;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// What the chart says about one key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// JSON types the values schema allows; empty means any.
    #[serde(rename = "type", default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
    /// Any sub-key is allowed (labels, annotations, Kubernetes objects passed through).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub free: bool,
    /// The chart's default (scalars and lists of scalars only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The first chart of the minor in the table that has the key, when the oldest lacks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Not in the values schema; a template reads it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub templates_only: bool,
}

/// A key the chart's `templates/validate.yaml` refuses because Cilium removed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// The chart's own message.
    pub message: String,
    /// Refused whatever its value (the template tests `toString`), not only when truthy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_value: bool,
}

/// The values keys of one Cilium minor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyTable {
    pub minor: String,
    /// The charts it was built from, oldest first.
    pub charts: Vec<String>,
    pub source: String,
    pub keys: BTreeMap<String, KeyInfo>,
    /// Removed keys the chart refuses to render.
    #[serde(default)]
    pub refused: BTreeMap<String, Refusal>,
}

/// The committed tables, embedded.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "1.18",
        include_str!("../../../../data/values-keys/1.18.json"),
    ),
    (
        "1.19",
        include_str!("../../../../data/values-keys/1.19.json"),
    ),
    (
        "1.20",
        include_str!("../../../../data/values-keys/1.20.json"),
    ),
];

impl KeyTable {
    /// The table text as committed: one key per line, so that a regenerated table reviews as
    /// a diff of the keys that changed.
    pub fn to_text(&self) -> String {
        let mut out = String::from("{\n");
        out += &format!("  \"minor\": {},\n", one_line(&self.minor));
        out += &format!("  \"charts\": {},\n", one_line(&self.charts));
        out += &format!("  \"source\": {},\n", one_line(&self.source));
        out += "  \"refused\": {\n";
        let n = self.refused.len();
        for (i, (k, r)) in self.refused.iter().enumerate() {
            let comma = if i + 1 < n { "," } else { "" };
            out += &format!("    {}: {}{comma}\n", one_line(k), one_line(r));
        }
        out += "  },\n";
        out += "  \"keys\": {\n";
        let n = self.keys.len();
        for (i, (k, info)) in self.keys.iter().enumerate() {
            let comma = if i + 1 < n { "," } else { "" };
            out += &format!("    {}: {}{comma}\n", one_line(k), one_line(info));
        }
        out += "  }\n}\n";
        out
    }

    /// The table of a Cilium minor, if the repository has one (parsed on first use).
    pub fn for_minor(minor: (u64, u64)) -> Option<&'static KeyTable> {
        static TABLES: [OnceLock<KeyTable>; EMBEDDED.len()] =
            [const { OnceLock::new() }; EMBEDDED.len()];
        let name = format!("{}.{}", minor.0, minor.1);
        let i = EMBEDDED.iter().position(|(m, _)| *m == name)?;
        Some(TABLES[i].get_or_init(|| {
            serde_json::from_str(EMBEDDED[i].1)
                .unwrap_or_else(|e| panic!("embedded values-keys table {name} is invalid: {e}"))
        }))
    }

    /// The minors that have a table.
    pub fn minors() -> impl Iterator<Item = &'static str> {
        EMBEDDED.iter().map(|(m, _)| *m)
    }

    /// The chart's default for a key.
    pub fn default(&self, path: &str) -> Option<&Value> {
        self.keys.get(path).and_then(|k| k.default.as_ref())
    }

    fn has_children(&self, path: &str) -> bool {
        let prefix = format!("{path}.");
        self.keys
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// The key the user most likely meant: a sibling spelled alike, else the same name under
    /// another parent.
    pub fn nearest(&self, path: &str) -> Option<String> {
        let (parent, name) = match path.rfind('.') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        let siblings = self.keys.keys().filter(|k| match k.rfind('.') {
            Some(i) => &k[..i] == parent,
            None => parent.is_empty(),
        });
        let leaf = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
        let lower = name.to_lowercase();
        let best = siblings
            .map(|k| {
                let l = leaf(k);
                (
                    strsim::damerau_levenshtein(&lower, &l.to_lowercase()),
                    k.clone(),
                    l,
                )
            })
            .min();
        if let Some((d, k, l)) = best
            && d <= (l.chars().count().max(name.chars().count()) / 4).max(2)
        {
            return Some(k);
        }
        // A shortened name (`routing` for `routingMode`).
        if name.chars().count() >= 4
            && let Some(k) = self
                .keys
                .keys()
                .filter(|k| match k.rfind('.') {
                    Some(i) => &k[..i] == parent,
                    None => parent.is_empty(),
                })
                .filter(|k| leaf(k).to_lowercase().starts_with(&lower))
                .min_by_key(|k| k.len())
        {
            return Some(k.clone());
        }
        // Moved under another parent (e.g. `encryption.keyFile` -> `encryption.ipsec.keyFile`).
        let mut moved: Vec<&String> = self
            .keys
            .keys()
            .filter(|k| leaf(k) == name && k.as_str() != path)
            .collect();
        moved.sort_by_key(|k| strsim::levenshtein(k, path));
        moved.first().map(|k| (*k).clone())
    }

    /// Unknown keys and wrong types in `values`, for Cilium `version`.
    pub fn check(&self, values: &Value, version: &CiliumVersion) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Value::Object(map) = values {
            for (k, v) in map {
                self.check_key(k, v, version, &mut out);
            }
        }
        out
    }

    fn check_key(
        &self,
        path: &str,
        value: &Value,
        version: &CiliumVersion,
        out: &mut Vec<Finding>,
    ) {
        let Some(info) = self.keys.get(path) else {
            out.push(self.unknown(path, version));
            return;
        };
        if let Some(since) = &info.since
            && let Ok(since) = semver::Version::parse(since)
            && version.semver() < &since
        {
            let older = self
                .charts
                .iter()
                .filter_map(|c| semver::Version::parse(c).ok())
                .filter(|c| c < &since)
                .max();
            let certain = older.as_ref().is_some_and(|o| version.semver() <= o);
            out.push(Finding::new(
                if certain { Severity::Error } else { Severity::Warning },
                Basis::Schema,
                path,
                if certain {
                    format!(
                        "the Cilium {version} chart does not have this key (it appears in {since}); helm ignores it silently"
                    )
                } else {
                    format!(
                        "the chart has this key from {since} at the latest (not in {}); on {version} helm may ignore it silently",
                        older.map_or("?".into(), |o| o.to_string())
                    )
                },
                format!("use Cilium {since} or later, or remove the key"),
            ));
            return;
        }
        if value.is_null() {
            // `key: null` removes the chart's default, as `helm -f` does.
            return;
        }
        if let Some(problem) = type_problem(info, value) {
            out.push(Finding::new(
                Severity::Error,
                Basis::Schema,
                path,
                format!("{problem}; helm refuses it (the chart's values.schema.json)"),
                fix_for_type(info),
            ));
            return;
        }
        if info.free {
            return;
        }
        if let Value::Object(map) = value
            && self.has_children(path)
        {
            for (k, v) in map {
                self.check_key(&format!("{path}.{k}"), v, version, out);
            }
        }
    }

    fn unknown(&self, path: &str, version: &CiliumVersion) -> Finding {
        let checked = if self.charts.iter().any(|c| *c == version.to_string()) {
            format!("the Cilium {version} chart")
        } else {
            format!(
                "the Cilium {} chart (checked against {}, the {} charts in the table)",
                self.minor,
                self.charts.join(" and "),
                self.minor
            )
        };
        let problem = format!("not a value of {checked}; helm ignores it silently");
        let fix = match self.nearest(path) {
            Some(near) => format!("did you mean `{near}`?"),
            None => "remove it, or find the key in the chart's values.yaml".to_string(),
        };
        Finding::new(Severity::Error, Basis::Schema, path, problem, fix)
    }
}

/// YAML 1.1 spellings of booleans, which Helm reads as booleans and YAML 1.2 as strings.
fn yaml11_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match (t, v) {
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        ("boolean", Value::String(s)) => yaml11_bool(s),
        (t, v) => t == json_type(v),
    }
}

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn type_problem(info: &KeyInfo, v: &Value) -> Option<String> {
    let types_ok = info.types.is_empty() || info.types.iter().any(|t| type_matches(t, v));
    if !types_ok {
        return Some(format!(
            "is {} {}; the chart wants {}",
            if json_type(v) == "integer" || json_type(v) == "array" {
                "an"
            } else {
                "a"
            },
            json_type(v),
            list(&info.types)
        ));
    }
    if let Some(allowed) = &info.enum_values
        && !allowed.contains(v)
    {
        let shown: Vec<String> = allowed
            .iter()
            .filter(|a| !a.is_null())
            .map(|a| a.to_string())
            .collect();
        return Some(format!("{v} is not one of {}", list(&shown)));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = info.minimum
            && n < min as f64
        {
            return Some(format!("{v} is below the minimum {min}"));
        }
        if let Some(max) = info.maximum
            && n > max as f64
        {
            return Some(format!("{v} is above the maximum {max}"));
        }
    }
    None
}

fn fix_for_type(info: &KeyInfo) -> String {
    if let Some(allowed) = &info.enum_values {
        let shown: Vec<String> = allowed
            .iter()
            .filter(|a| !a.is_null())
            .map(|a| a.to_string())
            .collect();
        return format!("use one of {}", list(&shown));
    }
    if let Some(d) = &info.default {
        return format!("use a {} (the chart's default is {d})", list(&info.types));
    }
    format!("use a {}", list(&info.types))
}

fn one_line<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> CiliumVersion {
        CiliumVersion::parse(s).unwrap()
    }

    fn t118() -> &'static KeyTable {
        KeyTable::for_minor((1, 18)).expect("a 1.18 table")
    }

    #[test]
    fn a_typo_names_the_key_meant() {
        let f = t118().check(&json!({"kubeProxyReplacment": true}), &v("1.18.4"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].key, "kubeProxyReplacment");
        assert_eq!(f[0].severity, Severity::Error);
        assert!(
            f[0].problem.contains("helm ignores it silently"),
            "{}",
            f[0].problem
        );
        assert_eq!(f[0].fix, "did you mean `kubeProxyReplacement`?");
    }

    #[test]
    fn nested_typos_and_moved_keys() {
        let f = t118().check(
            &json!({"hubble": {"relay": {"enabeld": true}}}),
            &v("1.18.4"),
        );
        assert_eq!(f[0].key, "hubble.relay.enabeld");
        assert_eq!(f[0].fix, "did you mean `hubble.relay.enabled`?");
        let f = t118().check(&json!({"encryption": {"keyFile": "keys"}}), &v("1.18.4"));
        assert_eq!(f[0].fix, "did you mean `encryption.ipsec.keyFile`?");
        let f = t118().check(&json!({"routing": "native"}), &v("1.18.4"));
        assert_eq!(f[0].fix, "did you mean `routingMode`?");
        assert!(
            f[0].problem
                .starts_with("not a value of the Cilium 1.18.4 chart;"),
            "{}",
            f[0].problem
        );
        let f = t118().check(&json!({"routing": "native"}), &v("1.18.7"));
        assert!(
            f[0].problem.contains("checked against 1.18.4 and 1.18.12"),
            "{}",
            f[0].problem
        );
    }

    #[test]
    fn wrong_types_name_the_expected_type() {
        let f = t118().check(&json!({"k8sServicePort": [7445]}), &v("1.18.4"));
        assert_eq!(f[0].key, "k8sServicePort");
        assert!(
            f[0].problem
                .starts_with("is an array; the chart wants integer or string"),
            "{}",
            f[0].problem
        );
        let f = t118().check(
            &json!({"hubble": {"relay": {"enabled": "sure"}}}),
            &v("1.18.4"),
        );
        assert!(
            f[0].problem
                .starts_with("is a string; the chart wants boolean"),
            "{}",
            f[0].problem
        );
        let f = t118().check(
            &json!({"clustermesh": {"apiserver": {"service": {"externalTrafficPolicy": "Foo"}}}}),
            &v("1.18.4"),
        );
        assert!(
            f[0].problem
                .starts_with("\"Foo\" is not one of \"Local\" or \"Cluster\""),
            "{}",
            f[0].problem
        );
    }

    #[test]
    fn free_form_maps_take_any_key_and_helm_spellings_pass() {
        let values = json!({
            "nodeSelector": {"disktype": "ssd"},
            "podAnnotations": {"a": "b"},
            "extraConfig": {"anything-goes": "x"},
            "tolerations": [{"operator": "Exists"}],
            "k8sServicePort": "7445",
            "hubble": {"relay": {"enabled": "yes"}},
            "loadBalancer": {"mode": "dsr"},
            "devices": "eth+",
            "kubeProxyReplacement": null
        });
        assert_eq!(t118().check(&values, &v("1.18.4")), vec![]);
    }

    #[test]
    fn keys_added_in_a_later_patch_depend_on_the_patch() {
        let values = json!({"configDriftDetection": {"enabled": true}});
        assert_eq!(t118().check(&values, &v("1.18.12")), vec![]);
        let f = t118().check(&values, &v("1.18.4"));
        assert_eq!(
            (f[0].key.as_str(), f[0].severity),
            ("configDriftDetection", Severity::Error)
        );
        let f = t118().check(&values, &v("1.18.8"));
        assert_eq!(f[0].severity, Severity::Warning);
    }
}
