//! Builds the values-key table of a Cilium minor from its published charts: every key the
//! chart's `values.schema.json` defines, with its types and the default from `values.yaml`,
//! plus the keys its templates read that the schema leaves out. Maps the templates hand to
//! Kubernetes whole (`toYaml .Values.nodeSelector`) or that the schema declares without
//! properties take any sub-key.
//!
//! Cilium's schema never sets `additionalProperties` (it is inferred from the defaults), so the
//! schema alone cannot tell a closed map from a free-form one, nor does it list keys whose
//! default is absent (`devices`, `loadBalancer.mode`, `k8s.apiServerURLs` in 1.18): the
//! templates are read for both.

use super::{KeyInfo, KeyTable, Refusal};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// The files of one published chart that the table is built from.
pub struct ChartFiles {
    pub version: semver::Version,
    pub schema: String,
    pub values: String,
    /// (path inside the chart, text) of every file under `templates/`.
    pub templates: Vec<(String, String)>,
}

/// A helm action `{{ ... }}` with its trim markers removed.
static ACTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\{\{-?(.*?)-?\}\}").expect("valid"));
/// `.Values.a.b` (also `$.Values.a.b`, `$root.Values.a.b`).
static VALUES_REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$?\w*\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").expect("valid"));
/// `index .Values.a "b"` / `hasKey .Values.a "b"`: the quoted key is a child of the path.
static KEYED_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:index|hasKey)\s+\$?\w*\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s+"([^"]+)""#)
        .expect("valid")
});
/// `.a.b` relative to the context of a `with` block.
static RELATIVE_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s(])\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
        .expect("valid")
});
/// `toYaml X` / `toJson X` where X is `.`, `.a.b` or `.Values.a.b`.
static WHOLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:toYaml|toJson|toPrettyJson)\s+\(?(\$?\w*\.Values(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?)(?:[\s|)]|$)")
        .expect("valid")
});
/// `range $k, $v := .Values.a`: the map's keys are the user's.
static RANGE_KV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*range\s+\$\w+\s*,\s*\$\w+\s*:=\s*\$?\w*\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*$",
    )
    .expect("valid")
});
/// `dig "a" "b" "" .Values.AsMap`, optionally piped to `toString`.
static DIG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\(?\s*dig\s+((?:"[^"]*"\s+)+)\$?\.Values\.AsMap\s*\)?(\s*\|\s*toString)?"#)
        .expect("valid")
});
static FAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^\s*fail\s+"([^"]+)""#).expect("valid"));
static WITH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*with\s+(\S+)\s*$").expect("valid"));

/// What the templates say about value paths.
#[derive(Default)]
struct TemplateUse {
    /// Paths a template reads, outside `validate.yaml` (which reads removed keys to refuse them).
    read: BTreeSet<String>,
    /// Paths handed to Kubernetes or iterated whole: any sub-key is the user's.
    whole: BTreeSet<String>,
}

fn strip_values(reference: &str) -> Option<String> {
    let rest = reference.split_once(".Values")?.1;
    let path = rest.strip_prefix('.')?;
    // `.Values.AsMap` is a method of Helm's values, not a key.
    (!path.is_empty() && path != "AsMap").then(|| path.to_string())
}

fn scan_templates(templates: &[(String, String)]) -> TemplateUse {
    let mut out = TemplateUse::default();
    for (name, text) in templates {
        let validate_only = name.ends_with("validate.yaml");
        // The context (`.`) of each open block: Some(path) inside `with .Values.path`.
        let mut stack: Vec<Option<String>> = Vec::new();
        // Whether each open block is a `with`.
        let mut withs: Vec<bool> = Vec::new();
        for action in ACTION.captures_iter(text) {
            let body = action[1].trim();
            if body.starts_with("/*") {
                continue;
            }
            let ctx = stack.last().cloned().flatten();
            let resolve = |r: &str| -> Option<String> {
                if r.contains(".Values") {
                    strip_values(r)
                } else {
                    let rel = r.strip_prefix('.').unwrap_or(r);
                    match (&ctx, rel.is_empty()) {
                        (Some(c), true) => Some(c.clone()),
                        (Some(c), false) => Some(format!("{c}.{rel}")),
                        (None, _) => None,
                    }
                }
            };
            if !validate_only {
                for c in VALUES_REF.captures_iter(body) {
                    out.read.insert(c[1][1..].to_string());
                }
                for c in KEYED_REF.captures_iter(body) {
                    let parent = c.get(1).map_or("", |m| m.as_str()).trim_start_matches('.');
                    let key = &c[2];
                    out.read.insert(if parent.is_empty() {
                        key.to_string()
                    } else {
                        format!("{parent}.{key}")
                    });
                }
                if let Some(c) = &ctx {
                    for r in RELATIVE_REF.captures_iter(body) {
                        out.read.insert(format!("{c}.{}", &r[1]));
                    }
                }
                for w in WHOLE.captures_iter(body) {
                    if let Some(p) = resolve(&w[1]) {
                        out.whole.insert(p);
                    }
                }
                if let Some(c) = RANGE_KV.captures(body) {
                    out.whole.insert(c[1][1..].to_string());
                }
            }
            let first = body.split_whitespace().next().unwrap_or_default();
            match first {
                "if" | "range" | "define" | "block" => {
                    let keeps = first == "if";
                    stack.push(if keeps { ctx } else { None });
                    withs.push(false);
                }
                "with" => {
                    let target = WITH.captures(body).and_then(|c| resolve(&c[1]));
                    stack.push(target);
                    withs.push(true);
                }
                // The `else` branch of a `with` runs in the enclosing context.
                "else" if withs.last() == Some(&true) => {
                    let outer = stack.len().checked_sub(2).and_then(|i| stack[i].clone());
                    if let Some(top) = stack.last_mut() {
                        *top = outer;
                    }
                }
                "end" => {
                    stack.pop();
                    withs.pop();
                }
                _ => {}
            }
        }
    }
    out
}

/// Keys `templates/validate.yaml` refuses because Cilium removed them: each `fail` whose message
/// says "removed", under an `if` that only tests keys being set.
fn scan_refusals(templates: &[(String, String)]) -> BTreeMap<String, Refusal> {
    let mut out = BTreeMap::new();
    for (name, text) in templates {
        if !name.ends_with("validate.yaml") {
            continue;
        }
        let mut condition: Option<String> = None;
        for action in ACTION.captures_iter(text) {
            let body = action[1].trim();
            if let Some(cond) = body.strip_prefix("if ") {
                condition = Some(cond.to_string());
                continue;
            }
            let Some(fail) = FAIL.captures(body) else {
                if body == "end" {
                    condition = None;
                }
                continue;
            };
            let message = fail[1].to_string();
            let Some(cond) = condition.take() else {
                continue;
            };
            if !message.contains("removed") || cond.contains("and ") || cond.contains("not ") {
                continue;
            }
            let mut keys: Vec<(String, bool)> = DIG
                .captures_iter(&cond)
                .map(|c| {
                    let parts: Vec<&str> = c[1]
                        .split('"')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .collect();
                    (parts.join("."), c.get(2).is_some())
                })
                .filter(|(k, _)| !k.is_empty())
                .collect();
            if keys.is_empty() {
                keys = VALUES_REF
                    .captures_iter(&cond)
                    .map(|c| (c[1][1..].to_string(), false))
                    .collect();
            }
            for (key, any_value) in keys {
                out.insert(
                    key,
                    Refusal {
                        message: message.clone(),
                        any_value,
                    },
                );
            }
        }
    }
    out
}

fn types_of(node: &Map<String, Value>) -> Vec<String> {
    match node.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// Type and enum constraints of a schema node, folding `anyOf`/`oneOf` alternatives: a `null`
/// alternative beside an enum becomes a `null` member of the enum.
fn constraints(node: &Map<String, Value>) -> (Vec<String>, Option<Vec<Value>>) {
    let mut types = types_of(node);
    let mut enums = node.get("enum").and_then(Value::as_array).cloned();
    let alternatives = ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| node.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
        .collect::<Vec<_>>();
    if types.is_empty() && enums.is_none() && !alternatives.is_empty() {
        let alt_enums: Vec<Value> = alternatives
            .iter()
            .filter_map(|a| a.get("enum").and_then(Value::as_array))
            .flatten()
            .cloned()
            .collect();
        let alt_types: Vec<String> = alternatives.iter().flat_map(|a| types_of(a)).collect();
        if alt_enums.is_empty() {
            types = alt_types;
        } else if alt_types.iter().all(|t| t == "null") {
            let mut e = alt_enums;
            if !alt_types.is_empty() {
                e.push(Value::Null);
            }
            enums = Some(e);
        } else {
            // Mixed alternatives: keep only the types, which accept more, never less.
            types = alt_types;
        }
    }
    types.sort();
    types.dedup();
    (types, enums)
}

/// A default worth recording: scalars and lists of scalars, which the rules read.
fn recordable_default(v: &Value) -> Option<Value> {
    match v {
        Value::Null | Value::Object(_) => None,
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => None,
        other => Some(other.clone()),
    }
}

fn walk(
    node: &Map<String, Value>,
    path: &str,
    defaults: Option<&Value>,
    whole: &BTreeSet<String>,
    out: &mut BTreeMap<String, KeyInfo>,
) {
    let (types, enums) = constraints(node);
    let properties = node.get("properties").and_then(Value::as_object);
    let objectish = types.is_empty() || types.iter().any(|t| t == "object");
    let free = objectish
        && (properties.is_none_or(|p| p.is_empty()) && types.iter().any(|t| t == "object")
            || whole.contains(path));
    let is_parent = objectish && !free && properties.is_some_and(|p| !p.is_empty());
    if !path.is_empty() {
        out.insert(
            path.to_string(),
            KeyInfo {
                types,
                enum_values: enums,
                minimum: node.get("minimum").and_then(Value::as_i64),
                maximum: node.get("maximum").and_then(Value::as_i64),
                free,
                default: if is_parent {
                    None
                } else {
                    defaults.and_then(recordable_default)
                },
                since: None,
                templates_only: false,
            },
        );
    }
    if is_parent {
        for (k, child) in properties.into_iter().flatten() {
            let Some(child) = child.as_object() else {
                continue;
            };
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            walk(child, &p, defaults.and_then(|d| d.get(k)), whole, out);
        }
    }
}

fn has_children(keys: &BTreeMap<String, KeyInfo>, path: &str) -> bool {
    let prefix = format!("{path}.");
    keys.range(prefix.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
}

/// Whether the table already speaks for `path`: the nearest ancestor it lists takes any
/// sub-key, or is a leaf of the schema.
fn covered(path: &str, keys: &BTreeMap<String, KeyInfo>) -> bool {
    let mut p = path;
    while let Some(i) = p.rfind('.') {
        p = &p[..i];
        if let Some(info) = keys.get(p) {
            return info.free || !has_children(keys, p);
        }
    }
    false
}

/// The table of one chart.
pub fn chart_keys(chart: &ChartFiles) -> Result<BTreeMap<String, KeyInfo>, String> {
    let schema: Value = serde_json::from_str(&chart.schema)
        .map_err(|e| format!("cilium {}: values.schema.json: {e}", chart.version))?;
    let defaults: Value = serde_saphyr::from_str(&chart.values)
        .map_err(|e| format!("cilium {}: values.yaml: {e}", chart.version))?;
    let root = schema
        .as_object()
        .ok_or_else(|| format!("cilium {}: the schema is not an object", chart.version))?;
    let uses = scan_templates(&chart.templates);
    let mut keys = BTreeMap::new();
    walk(root, "", Some(&defaults), &uses.whole, &mut keys);
    for path in &uses.read {
        if keys.contains_key(path) || covered(path, &keys) {
            continue;
        }
        // Ancestors the schema lacks become plain parents; the key itself takes any value.
        let segments: Vec<&str> = path.split('.').collect();
        for n in 1..segments.len() {
            let ancestor = segments[..n].join(".");
            keys.entry(ancestor).or_insert_with(|| KeyInfo {
                templates_only: true,
                ..KeyInfo::default()
            });
        }
        keys.insert(
            path.clone(),
            KeyInfo {
                free: uses.whole.contains(path),
                default: path
                    .split('.')
                    .try_fold(&defaults, |v, k| v.get(k))
                    .and_then(recordable_default),
                templates_only: true,
                ..KeyInfo::default()
            },
        );
    }
    Ok(keys)
}

/// The table of one minor from its charts (any order): the union of their keys, each with the
/// first of these charts that has it when that is not the oldest. A key one of them drops is
/// an error, since the table has no way to say so yet.
pub fn minor_table(mut charts: Vec<ChartFiles>, source: &str) -> Result<KeyTable, String> {
    charts.sort_by(|a, b| a.version.cmp(&b.version));
    let first = charts.first().ok_or("no charts")?;
    let minor = (first.version.major, first.version.minor);
    if let Some(other) = charts
        .iter()
        .find(|c| (c.version.major, c.version.minor) != minor)
    {
        return Err(format!(
            "charts {} and {} are of different minors",
            first.version, other.version
        ));
    }
    let mut keys: BTreeMap<String, KeyInfo> = BTreeMap::new();
    let mut previous: Option<BTreeMap<String, KeyInfo>> = None;
    // The newest chart's refusals: a chart of the minor refuses at least these.
    let refused = charts
        .last()
        .map(|c| scan_refusals(&c.templates))
        .unwrap_or_default();
    for (i, chart) in charts.iter().enumerate() {
        let these = chart_keys(chart)?;
        if let Some(prev) = &previous
            && let Some(gone) = prev.keys().find(|k| !these.contains_key(*k))
        {
            return Err(format!(
                "cilium {} drops `{gone}`, which an older chart of its minor has",
                chart.version
            ));
        }
        for (k, mut info) in these.clone() {
            let since = match keys.get(&k) {
                Some(old) => old.since.clone(),
                None if i > 0 => Some(chart.version.to_string()),
                None => None,
            };
            info.since = since;
            keys.insert(k, info);
        }
        previous = Some(these);
    }
    Ok(KeyTable {
        minor: format!("{}.{}", minor.0, minor.1),
        charts: charts.iter().map(|c| c.version.to_string()).collect(),
        source: source.to_string(),
        keys,
        refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(schema: &str, values: &str, templates: &[(&str, &str)]) -> ChartFiles {
        ChartFiles {
            version: semver::Version::new(1, 19, 6),
            schema: schema.into(),
            values: values.into(),
            templates: templates
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
        }
    }

    // Shapes from cilium 1.19.6's values.schema.json and templates (cilium/charts).
    const SCHEMA: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {
        "kubeProxyReplacement": {"type": ["string", "boolean"]},
        "nodeSelector": {"properties": {"kubernetes.io/os": {"type": "string"}}, "type": "object"},
        "podAnnotations": {"type": "object"},
        "hubble": {"properties": {"relay": {"properties": {"enabled": {"type": "boolean"}}, "type": "object"}}, "type": "object"},
        "envoy": {"properties": {"log": {"properties": {"defaultLevel": {"oneOf": [{"type": "null"}, {"enum": ["info", "debug"]}]}}, "type": "object"}}, "type": "object"},
        "loadBalancer": {"properties": {"l7": {"properties": {"backend": {"type": "string"}}, "type": "object"}}, "type": "object"},
        "ipam": {"properties": {"operator": {"properties": {"clusterPoolIPv4PodCIDRList": {"items": {"anyOf": [{"type": "string"}]}, "type": ["array", "string"]}}, "type": "object"}}, "type": "object"}
    }}"#;
    const VALUES: &str = "kubeProxyReplacement: \"false\"\nnodeSelector:\n  kubernetes.io/os: linux\nhubble:\n  relay:\n    enabled: false\nipam:\n  operator:\n    clusterPoolIPv4PodCIDRList: [\"10.0.0.0/8\"]\n";
    const DAEMONSET: &str = "      {{- with .Values.nodeSelector }}\n      nodeSelector:\n        {{- toYaml . | trim | nindent 8 }}\n      {{- end }}\n  {{- if .Values.loadBalancer.mode }}\n  bpf-lb-mode: {{ .Values.loadBalancer.mode | quote }}\n  {{- end }}\n{{- with .Values.hubble.relay }}{{ .tls.enabled }}{{ end }}\n";
    // From cilium 1.19.6's templates/validate.yaml.
    const VALIDATE: &str = "{{- if .Values.tunnel }}\n  {{ fail \"tunnel was removed\" }}\n{{- end }}\n{{- if or\n  ((dig \"proxy\" \"prometheus\" \"enabled\" \"\" .Values.AsMap) | toString)\n  (dig \"proxy\" \"prometheus\" \"port\" \"\" .Values.AsMap)\n}}\n  {{ fail \"proxy.prometheus.enabled and proxy.prometheus.port were deprecated in v1.14 and has been removed in v1.16.\" }}\n{{- end }}\n{{- if .Values.hubble.relay.enabled }}\n  {{- if not .Values.hubble.enabled }}\n    {{ fail \"Hubble Relay requires .Values.hubble.enabled=true\" }}\n  {{- end }}\n{{- end }}\n";

    #[test]
    fn schema_keys_with_types_defaults_and_free_maps() {
        let keys = chart_keys(&chart(
            SCHEMA,
            VALUES,
            &[
                ("templates/cilium-agent/daemonset.yaml", DAEMONSET),
                ("templates/validate.yaml", VALIDATE),
            ],
        ))
        .unwrap();
        let kpr = &keys["kubeProxyReplacement"];
        assert_eq!(kpr.types, ["boolean", "string"]);
        assert_eq!(kpr.default, Some(Value::from("false")));
        // Passed to Kubernetes whole: any node label goes.
        assert!(keys["nodeSelector"].free);
        assert!(!keys.contains_key("nodeSelector.kubernetes.io/os"));
        // Declared without properties.
        assert!(keys["podAnnotations"].free);
        // Closed maps list their keys.
        assert!(!keys["hubble"].free && !keys["hubble.relay"].free);
        assert_eq!(
            keys["hubble.relay.enabled"].default,
            Some(Value::Bool(false))
        );
        // Read by a template though the schema leaves it out.
        assert!(keys["loadBalancer.mode"].templates_only);
        assert!(keys["hubble.relay.tls.enabled"].templates_only);
        // Read only to be refused: still unknown.
        assert!(!keys.contains_key("tunnel"));
        let refused = scan_refusals(&[("templates/validate.yaml".into(), VALIDATE.into())]);
        assert_eq!(
            refused.keys().collect::<Vec<_>>(),
            [
                "proxy.prometheus.enabled",
                "proxy.prometheus.port",
                "tunnel"
            ]
        );
        assert!(refused["proxy.prometheus.enabled"].any_value);
        assert!(!refused["tunnel"].any_value);
        let level = &keys["envoy.log.defaultLevel"];
        assert!(level.types.is_empty());
        assert_eq!(
            level.enum_values,
            Some(vec![Value::from("info"), Value::from("debug"), Value::Null])
        );
        assert_eq!(
            keys["ipam.operator.clusterPoolIPv4PodCIDRList"].default,
            Some(serde_json::json!(["10.0.0.0/8"]))
        );
    }

    #[test]
    fn a_key_added_in_a_later_patch_says_since_when() {
        let older = chart(SCHEMA, VALUES, &[]);
        let mut newer = chart(
            &SCHEMA.replace(
                r#""podAnnotations""#,
                r#""configDriftDetection": {"type": "object", "properties": {"enabled": {"type": "boolean"}}}, "podAnnotations""#,
            ),
            VALUES,
            &[],
        );
        newer.version = semver::Version::new(1, 19, 9);
        let t = minor_table(vec![newer, older], "test").unwrap();
        assert_eq!(t.minor, "1.19");
        assert_eq!(t.charts, ["1.19.6", "1.19.9"]);
        assert_eq!(
            t.keys["configDriftDetection.enabled"].since.as_deref(),
            Some("1.19.9")
        );
        assert_eq!(t.keys["kubeProxyReplacement"].since, None);
    }
}
