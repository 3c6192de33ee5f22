//! Hubble flows as `hubble observe --output jsonpb` prints them: one GetFlowsResponse a line,
//! `{"flow": {...}, "node_name": ..., "time": ...}`, the flow in the JSON mapping of Hubble's
//! observer API (`api/v1/flow/flow.proto`: `verdict`, `drop_reason_desc`, `IP`, `l4`, `source`,
//! `destination`, `traffic_direction`, `l7`, `Summary`). The agent image ships the `hubble` CLI,
//! which reads the agent's own flow buffer; `--server` points it at Hubble Relay instead.
//!
//! [`Flow`] keeps what the judges read, so a recorded observation stays small and readable.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many recent flows one query asks for; enough for a few retried probes.
pub const LAST: u32 = 200;

/// The drop reasons a policy refusal carries: `POLICY_DENIED` (no rule allows it) and
/// `POLICY_DENY` (a deny rule matched), as named in the flow API's `DropReason`.
pub const POLICY_DENIED: &str = "POLICY_DENIED";
pub const POLICY_DENY: &str = "POLICY_DENY";

/// Which flows a query asks for; every filter given must hold (hubble ANDs the flags of one
/// filter).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// `namespace/pod` the flows come from.
    pub from_pod: Option<String>,
    /// `namespace/pod` the flows go to.
    pub to_pod: Option<String>,
    /// `DROPPED`, `FORWARDED`, ...
    pub verdict: Option<&'static str>,
    /// A Hubble Relay address (`host:port`); the agent's local buffer when `None`.
    pub server: Option<String>,
}

pub fn observe_argv(q: &Query) -> Vec<String> {
    let mut argv: Vec<String> = ["hubble", "observe", "--output", "jsonpb", "--last"]
        .map(String::from)
        .to_vec();
    argv.push(LAST.to_string());
    for (flag, value) in [
        ("--server", q.server.clone()),
        ("--verdict", q.verdict.map(String::from)),
        ("--from-pod", q.from_pod.clone()),
        ("--to-pod", q.to_pod.clone()),
    ] {
        if let Some(v) = value {
            argv.push(flag.into());
            argv.push(v);
        }
    }
    argv
}

/// One end of a flow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub ip: String,
    /// `namespace/pod`, empty for an address outside the cluster's pods.
    pub pod: String,
    pub port: Option<u32>,
}

/// A flow as the judges read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub time: String,
    pub node: String,
    /// `FORWARDED`, `DROPPED`, `REDIRECTED`, ...
    pub verdict: String,
    /// The drop reason's name, for dropped flows.
    pub drop_reason: Option<String>,
    /// `INGRESS` or `EGRESS`.
    pub direction: Option<String>,
    pub protocol: Option<String>,
    pub source: End,
    pub destination: End,
    /// `GET http://... 403` for an L7 HTTP flow.
    pub http: Option<String>,
    /// The policies a denied flow names (`ingress_denied_by`/`egress_denied_by`), when the
    /// agent reports them.
    pub denied_by: Vec<String>,
}

impl Flow {
    /// One line for a person: verdict, reason, ends, direction, where and when.
    pub fn describe(&self) -> String {
        let end = |e: &End| {
            let who = if e.pod.is_empty() {
                e.ip.clone()
            } else {
                format!("{} ({})", e.pod, e.ip)
            };
            match e.port {
                Some(p) => format!("{who}:{p}"),
                None => who,
            }
        };
        let mut s = self.verdict.clone();
        if let Some(r) = &self.drop_reason {
            s.push(' ');
            s.push_str(r);
        }
        s.push_str(&format!(
            " {} -> {}",
            end(&self.source),
            end(&self.destination)
        ));
        for part in [&self.protocol, &self.direction, &self.http]
            .into_iter()
            .flatten()
        {
            s.push(' ');
            s.push_str(part);
        }
        if !self.denied_by.is_empty() {
            s.push_str(&format!(" denied by {}", self.denied_by.join(", ")));
        }
        s.push_str(&format!(" on {} at {}", self.node, self.time));
        s
    }

    pub fn is_policy_drop(&self) -> bool {
        self.verdict == "DROPPED"
            && self
                .drop_reason
                .as_deref()
                .is_some_and(|r| r == POLICY_DENIED || r == POLICY_DENY)
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn end(flow: &Value, side: &str, ip: &str, port: Option<u32>) -> End {
    let ep = &flow[side];
    let pod = match (ep["namespace"].as_str(), ep["pod_name"].as_str()) {
        (Some(ns), Some(p)) if !p.is_empty() => format!("{ns}/{p}"),
        _ => String::new(),
    };
    End {
        ip: text(&flow["IP"][ip]),
        pod,
        port,
    }
}

/// One flow of a GetFlowsResponse (or a bare flow); `None` for a line that holds none (hubble
/// also prints node status and lost-event records).
pub fn parse_line(line: &str) -> Result<Option<Flow>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{e} in {line:?}"))?;
    let flow = if v.get("flow").is_some() {
        &v["flow"]
    } else if v.get("verdict").is_some() {
        &v
    } else {
        return Ok(None);
    };
    let (protocol, l4) = flow["l4"]
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (Some(k.clone()), v.clone()))
        .unwrap_or((None, Value::Null));
    let port = |k: &str| l4[k].as_u64().map(|p| p as u32);
    let http = flow["l7"]["http"].as_object().map(|h| {
        let mut s = format!(
            "{} {}",
            h.get("method").and_then(Value::as_str).unwrap_or("?"),
            h.get("url").and_then(Value::as_str).unwrap_or("?")
        );
        if let Some(code) = h.get("code").and_then(Value::as_u64) {
            s.push_str(&format!(" {code}"));
        }
        s
    });
    let denied_by = ["ingress_denied_by", "egress_denied_by"]
        .iter()
        .flat_map(|k| flow[*k].as_array().into_iter().flatten())
        .map(|p| {
            format!(
                "{} {}",
                p["kind"].as_str().unwrap_or("policy"),
                p["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let time = flow["time"]
        .as_str()
        .or(v["time"].as_str())
        .unwrap_or_default();
    let node = flow["node_name"]
        .as_str()
        .or(v["node_name"].as_str())
        .unwrap_or_default();
    Ok(Some(Flow {
        time: time.into(),
        node: node.into(),
        verdict: text(&flow["verdict"]),
        drop_reason: flow["drop_reason_desc"].as_str().map(String::from),
        direction: flow["traffic_direction"].as_str().map(String::from),
        protocol,
        source: end(flow, "source", "source", port("source_port")),
        destination: end(flow, "destination", "destination", port("destination_port")),
        http,
        denied_by,
    }))
}

/// Every flow in `hubble observe --output jsonpb` output.
pub fn parse(stdout: &str) -> Result<Vec<Flow>, String> {
    let mut out = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        out.extend(parse_line(line)?);
    }
    Ok(out)
}

/// What Hubble said about a probe: off in this cluster, could not be asked, or the flows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum Record {
    Off,
    Unavailable(String),
    Flows(Vec<Flow>),
}
