//! Helm values as a JSON-shaped tree, merged the way `helm -f a.yaml -f b.yaml` merges them.

use serde_json::{Map, Value};

/// Merge `top` over `base`: maps merge key by key, anything else replaces, and `null` deletes
/// the key, as Helm does.
pub fn merge(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                if v.is_null() {
                    b.remove(k);
                    continue;
                }
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, t) => *b = t.clone(),
    }
}

/// The value at a dotted path such as `gatewayAPI.enabled`.
pub fn get<'a>(values: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(values, |v, k| v.get(k))
}

/// Set a dotted path, creating maps on the way.
pub fn set(values: &mut Value, path: &str, value: Value) {
    let mut cur = values;
    let mut keys = path.split('.').peekable();
    while let Some(k) = keys.next() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let map = cur.as_object_mut().expect("made an object above");
        if keys.peek().is_none() {
            map.insert(k.to_string(), value);
            return;
        }
        cur = map
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// A boolean setting, accepting the string forms `--set` produces. `default` is the chart's.
pub fn flag(values: &Value, path: &str, default: bool) -> bool {
    match get(values, path) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => default,
    }
}

/// A string setting (numbers and booleans are shown as text).
pub fn text(values: &Value, path: &str) -> Option<String> {
    match get(values, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_lists_replace_null_deletes() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": true, "e": 1});
        merge(&mut base, &json!({"a": {"c": [3]}, "d": null, "f": "x"}));
        assert_eq!(base, json!({"a": {"b": 1, "c": [3]}, "e": 1, "f": "x"}));
    }

    #[test]
    fn dotted_get_set_and_flags() {
        let mut v = json!({});
        set(&mut v, "gatewayAPI.enabled", json!(true));
        set(&mut v, "kubeProxyReplacement", json!("true"));
        assert_eq!(get(&v, "gatewayAPI.enabled"), Some(&json!(true)));
        assert!(flag(&v, "kubeProxyReplacement", false));
        assert!(!flag(&v, "hostFirewall.enabled", false));
        assert!(flag(&v, "l7Proxy", true));
        assert_eq!(text(&v, "gatewayAPI.enabled").as_deref(), Some("true"));
    }
}
