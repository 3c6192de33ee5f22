//! The network-policy judge: did each probe end the way the policy in force says it must, and
//! was a dropped connection dropped by policy. Pure: the probes' results, the policies' status
//! and Hubble's flows in, a verdict out.
//!
//! A policy refusal looks different at each layer, so a refusal for the wrong reason fails:
//! an L3/L4 policy drops the SYN and never answers (curl times out, exit 28), while a reset
//! (exit 7) means something else turned the connection away; the L7 proxy answers with Envoy's
//! own `403` and body `Access denied`, while a `403` with another body came from the server.
//! Where Hubble runs, a drop must also be in its flows as `DROPPED` with reason `POLICY_DENIED`
//! (no rule allows it) or `POLICY_DENY` (a deny rule matched); the message quotes the record.

use crate::kit::hubble::{Flow, Record};
use crate::kit::policy::Status;
use crate::kit::probe::curl::{CONNECT_TIMEOUT_S, MAX_TIME_S};
use crate::kit::retry::{Series, judge_series};
use crate::kit::verdict::Verdict;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The body of the 403 Cilium's Envoy sends for a request an HTTP rule does not allow.
pub const ENVOY_ACCESS_DENIED: &str = "Access denied";

/// How a probe must end under the policies of its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// A 2xx or 3xx answer.
    Allowed,
    /// Any HTTP answer: the connection was made (the API server may say 401 or 403).
    Reached,
    /// Dropped by an L3/L4 rule: no answer at all.
    Dropped,
    /// Refused by the L7 proxy: Envoy's 403 `Access denied`.
    ProxyDenied,
}

/// What one curl attempt left: the status line of the write-out, curl's error line and the
/// first bytes of the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub exit_code: i32,
    /// 0 when no answer arrived.
    pub http_code: u16,
    pub remote: Option<String>,
    pub error: Option<String>,
    pub body: String,
}

/// One probe of a step: who asked whom, how it must end, every attempt, and Hubble's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probed {
    /// `client -> server (10.244.1.7:8080) GET /public`.
    pub what: String,
    pub expect: Expect,
    /// `namespace/pod` of the client, as Hubble names it.
    pub from: String,
    /// The destination's IP when known before probing (a pod), and its port.
    pub to_ip: Option<String>,
    pub to_port: u32,
    /// When the first attempt started (RFC 3339); Hubble records before it belong to others.
    pub started: String,
    pub series: Series<Reply>,
    pub hubble: Record,
}

/// The policies in force for a set of probes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The policies applied (`CiliumNetworkPolicy ns/name`); empty for the baseline.
    pub policies: Vec<String>,
    /// What Cilium's operator wrote about each Cilium policy, read after the probes.
    pub status: Vec<Status>,
    pub probes: Vec<Probed>,
}

/// Everything a network-policy check observed, step by step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRun {
    pub steps: Vec<Step>,
}

fn seen(r: &Reply) -> String {
    let mut s = match r.http_code {
        0 => format!("curl exit {}", r.exit_code),
        c => format!("HTTP {c}"),
    };
    if let Some(a) = &r.remote {
        s.push_str(&format!(" from {a}"));
    }
    let body = r.body.trim();
    if !body.is_empty() && r.http_code >= 400 {
        s.push_str(&format!(" body {body:?}"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(" ({e})"));
    }
    s
}

fn envoy_denied(r: &Reply) -> bool {
    r.exit_code == 0 && r.http_code == 403 && r.body.trim() == ENVOY_ACCESS_DENIED
}

/// One attempt against its expectation; drives the retry streak and the verdict.
pub fn attempt(expect: Expect, r: &Reply) -> Verdict {
    let answered = r.exit_code == 0 && r.http_code > 0;
    match expect {
        Expect::Allowed if answered && (200..400).contains(&r.http_code) => Verdict::Pass(seen(r)),
        Expect::Reached if answered => Verdict::Pass(seen(r)),
        Expect::Allowed | Expect::Reached if envoy_denied(r) => Verdict::Fail(format!(
            "refused by the L7 proxy ({}), but this traffic must be allowed",
            seen(r)
        )),
        Expect::Allowed | Expect::Reached if r.exit_code == 28 => Verdict::Fail(format!(
            "dropped: no answer within {CONNECT_TIMEOUT_S}s/{MAX_TIME_S}s, but this traffic must be allowed ({})",
            seen(r)
        )),
        Expect::Allowed | Expect::Reached => {
            Verdict::Fail(format!("expected an answer, got {}", seen(r)))
        }
        Expect::Dropped if r.exit_code == 28 => Verdict::Pass(format!(
            "dropped: no answer within {CONNECT_TIMEOUT_S}s/{MAX_TIME_S}s"
        )),
        Expect::Dropped if envoy_denied(r) => Verdict::Fail(format!(
            "refused for the wrong reason: the L7 proxy answered ({}); an L3/L4 rule drops without answering",
            seen(r)
        )),
        Expect::Dropped if answered => Verdict::Fail(format!(
            "not refused: {}; the policy did not take effect",
            seen(r)
        )),
        Expect::Dropped if r.exit_code == 7 => Verdict::Fail(format!(
            "refused for the wrong reason: the connection was reset ({}); a policy drop never answers, so nothing listens there or something other than the policy turned it away",
            seen(r)
        )),
        Expect::Dropped | Expect::ProxyDenied if r.exit_code == 6 => Verdict::Fail(format!(
            "refused for the wrong reason: the name did not resolve ({})",
            seen(r)
        )),
        Expect::ProxyDenied if envoy_denied(r) => Verdict::Pass(format!(
            "HTTP 403 {ENVOY_ACCESS_DENIED:?} from the L7 proxy"
        )),
        Expect::ProxyDenied if answered && r.http_code == 403 => Verdict::Fail(format!(
            "refused for the wrong reason: HTTP 403 without Envoy's {ENVOY_ACCESS_DENIED:?} ({}), so the server refused it, not the proxy",
            seen(r)
        )),
        Expect::ProxyDenied if answered => Verdict::Fail(format!(
            "not refused: {}; the HTTP rule did not take effect (is the L7 proxy on for this endpoint?)",
            seen(r)
        )),
        Expect::ProxyDenied if r.exit_code == 28 => Verdict::Fail(format!(
            "refused for the wrong reason: dropped without an answer ({}), where the HTTP rule must answer 403",
            seen(r)
        )),
        Expect::Dropped | Expect::ProxyDenied => {
            Verdict::Fail(format!("could not tell how it was refused: {}", seen(r)))
        }
    }
}

fn at_or_after(time: &str, start: &str) -> bool {
    match (time.parse::<Timestamp>(), start.parse::<Timestamp>()) {
        (Ok(t), Ok(s)) => t >= s,
        // A record without a readable time cannot be placed; keep it rather than lose it.
        _ => true,
    }
}

/// The flows of this probe: from its client, to its destination, since it started.
fn own<'a>(p: &Probed, flows: &'a [Flow]) -> Vec<&'a Flow> {
    flows
        .iter()
        .filter(|f| f.source.pod == p.from)
        .filter(|f| p.to_ip.as_ref().is_none_or(|ip| &f.destination.ip == ip))
        .filter(|f| f.destination.port.is_none_or(|port| port == p.to_port))
        .filter(|f| at_or_after(&f.time, &p.started))
        .collect()
}

/// Hubble's word on a drop the probes saw.
fn confirm_drop(p: &Probed) -> Verdict {
    match &p.hubble {
        Record::Off => {
            Verdict::Pass("Hubble is off, so the drop is not confirmed by a flow".into())
        }
        Record::Unavailable(why) => Verdict::Fail(format!(
            "Hubble is on but could not be asked for the drop: {why}"
        )),
        Record::Flows(flows) => {
            let mine = own(p, flows);
            if let Some(f) = mine.iter().find(|f| f.is_policy_drop()) {
                return Verdict::Pass(format!("Hubble: {}", f.describe()));
            }
            match mine.iter().find(|f| f.verdict == "DROPPED") {
                Some(f) => Verdict::Fail(format!(
                    "refused for the wrong reason: Hubble records the drop as {}, not as a policy drop",
                    f.describe()
                )),
                None => Verdict::Fail(format!(
                    "nothing observed: Hubble has no DROPPED flow from {} to port {} since {} ({} flows read), so the timeout was not a policy drop Hubble saw; look at `hubble observe --from-pod {}`",
                    p.from,
                    p.to_port,
                    p.started,
                    flows.len(),
                    p.from
                )),
            }
        }
    }
}

fn probe(p: &Probed) -> Verdict {
    let v = judge_series(&p.series, |r| attempt(p.expect, r));
    match (&v, p.expect) {
        (Verdict::Pass(m), Expect::Dropped) => match confirm_drop(p) {
            Verdict::Pass(h) => Verdict::Pass(format!("{m}; {h}")),
            Verdict::Fail(h) => Verdict::Fail(format!("{m}, but {h}")),
        },
        _ => v,
    }
}

fn rejected(s: &Status) -> Option<String> {
    (s.valid.as_deref() == Some("False")).then(|| {
        format!(
            "Cilium refused {}: {}",
            s.policy,
            s.message.as_deref().unwrap_or("no message")
        )
    })
}

pub fn policy(o: &PolicyRun) -> Verdict {
    Verdict::all(o.steps.iter().flat_map(|step| {
        let under = if step.policies.is_empty() {
            "without a policy".to_string()
        } else {
            format!("under {}", step.policies.join(" + "))
        };
        let statuses = step
            .status
            .iter()
            .filter_map(rejected)
            .map(|m| (under.clone(), Verdict::Fail(m)))
            .collect::<Vec<_>>();
        statuses.into_iter().chain(
            step.probes
                .iter()
                .map(move |p| (format!("{} {under}", p.what), probe(p))),
        )
    }))
}
