//! YAML documents read with the line and column of every key, so that a finding can point at
//! `file:line:column`. The value tree is the same one the rules read (`serde_json::Value`).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::fmt;

/// A line and column, both from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

/// One YAML document: its value and where each key of it is written.
#[derive(Clone, Debug, Default)]
pub struct Document {
    pub value: Value,
    /// Dotted key path (`hubble.relay.enabled`; list items as `tolerations.0`) -> where the key
    /// (or the list item) starts.
    positions: HashMap<String, Position>,
    /// Where the document itself starts.
    start: Option<Position>,
}

impl Document {
    /// A document without positions (merged values, values built in code).
    pub fn unplaced(value: Value) -> Self {
        Document {
            value,
            ..Default::default()
        }
    }

    /// Where `path` is written, or the nearest written ancestor of it (a key that is missing is
    /// reported at the map that should hold it), or the start of the document.
    pub fn position(&self, path: &str) -> Option<Position> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return self.start,
            }
        }
    }
}

/// A YAML node with the positions of its keys, as serde-saphyr reports them.
enum Node {
    Map(Vec<(Spanned<Value>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar(Value),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

fn position(loc: &serde_saphyr::Location) -> Option<Position> {
    (loc.line() > 0).then(|| Position {
        line: loc.line(),
        column: loc.column(),
    })
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn flatten(node: Node, path: &str, positions: &mut HashMap<String, Position>) -> Value {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match node {
        Node::Scalar(v) => v,
        Node::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = join(&i.to_string());
                    if let Some(pos) = position(&item.referenced) {
                        positions.insert(p.clone(), pos);
                    }
                    flatten(item.value, &p, positions)
                })
                .collect(),
        ),
        Node::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let name = key_text(&k.value);
                let p = join(&name);
                if let Some(pos) = position(&k.referenced) {
                    positions.insert(p.clone(), pos);
                }
                out.insert(name, flatten(v.value, &p, positions));
            }
            Value::Object(out)
        }
    }
}

/// Every document of a YAML stream, with positions. Empty documents are dropped.
pub fn documents(text: &str) -> Result<Vec<Document>, serde_saphyr::Error> {
    let nodes: Vec<Spanned<Node>> = crate::yaml::from_multiple(text)?;
    Ok(nodes
        .into_iter()
        .filter_map(|n| {
            let start = position(&n.referenced);
            let mut positions = HashMap::new();
            let value = flatten(n.value, "", &mut positions);
            (!value.is_null()).then_some(Document {
                value,
                positions,
                start,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_have_their_line_and_column() {
        let text = "kubeProxyReplacement: true\nhubble:\n  relay:\n    enabled: true\ntolerations:\n  - operator: Exists\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(
            d.value,
            json!({"kubeProxyReplacement": true, "hubble": {"relay": {"enabled": true}}, "tolerations": [{"operator": "Exists"}]})
        );
        let at = |p: &str| d.position(p).map(|p| (p.line, p.column));
        assert_eq!(at("kubeProxyReplacement"), Some((1, 1)));
        assert_eq!(at("hubble.relay.enabled"), Some((4, 5)));
        assert_eq!(at("tolerations.0.operator"), Some((6, 5)));
        // A missing key is placed at its nearest written ancestor.
        assert_eq!(at("hubble.relay.tls.server"), Some((3, 3)));
    }

    #[test]
    fn several_documents_keep_their_own_lines() {
        let text = "---\napiVersion: cilium.io/v2\nkind: CiliumLoadBalancerIPPool\n---\n\n---\napiVersion: cilium.io/v2alpha1\nkind: CiliumL2AnnouncementPolicy\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].position("kind").map(|p| p.line), Some(8));
        assert_eq!(docs[1].value["kind"], "CiliumL2AnnouncementPolicy");
    }

    #[test]
    fn scalars_keep_their_yaml_types() {
        let d = &documents("a: \"7445\"\nb: 7445\nc: 1.5\nd: null\ne: ~\nf: [1, x]\n").unwrap()[0];
        assert_eq!(
            d.value,
            json!({"a": "7445", "b": 7445, "c": 1.5, "d": null, "e": null, "f": [1, "x"]})
        );
    }
}
