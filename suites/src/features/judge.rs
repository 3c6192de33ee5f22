//! The features judges: each reads what the agents, Hubble and the probes reported about one
//! feature a profile turns on. Pure: plain data in, a verdict out. The host-firewall and
//! mutual-authentication checks are policy checks and take the network-policy judge.

use crate::kit::hubble::{Flow, Record};
use crate::kit::retry::{Series, judge_series};
use crate::kit::verdict::Verdict;
use crate::network_policy::judge::{Expect, PolicyRun, Reply, attempt};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A connection the client made, and what Hubble Relay served about it afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayFlows {
    /// The relay's address, `ip:port`.
    pub relay: String,
    /// `namespace/pod` of the client, its destination and port.
    pub from: String,
    pub to_ip: String,
    pub to_port: u32,
    /// When the connection was made (RFC 3339).
    pub started: String,
    pub connection: Series<Reply>,
    pub flows: Record,
}

fn since(time: &str, start: &str) -> bool {
    match (time.parse::<Timestamp>(), start.parse::<Timestamp>()) {
        (Ok(t), Ok(s)) => t >= s,
        _ => true,
    }
}

pub fn relay(o: &RelayFlows) -> Verdict {
    let conn = judge_series(&o.connection, |r| attempt(Expect::Allowed, r));
    if let Verdict::Fail(m) = conn {
        return Verdict::Fail(format!(
            "the connection Hubble should record did not work ({m}), so the relay has nothing to show"
        ));
    }
    let flows = match &o.flows {
        Record::Flows(f) => f,
        Record::Unavailable(why) => {
            return Verdict::Fail(format!(
                "Hubble Relay at {} did not serve flows: {why}",
                o.relay
            ));
        }
        Record::Off => {
            return Verdict::Fail("Hubble Relay was not asked: Hubble is off".into());
        }
    };
    let mine: Vec<&Flow> = flows
        .iter()
        .filter(|f| f.source.pod == o.from && f.destination.ip == o.to_ip)
        .filter(|f| f.destination.port.is_none_or(|p| p == o.to_port))
        .filter(|f| since(&f.time, &o.started))
        .collect();
    if let Some(f) = mine.iter().find(|f| f.verdict == "FORWARDED") {
        return Verdict::Pass(format!(
            "Hubble Relay at {} served {}",
            o.relay,
            f.describe()
        ));
    }
    match mine.first() {
        Some(f) => Verdict::Fail(format!(
            "Hubble Relay at {} shows the connection only as {}, though it was answered",
            o.relay,
            f.describe()
        )),
        None => Verdict::Fail(format!(
            "nothing observed: Hubble Relay at {} served {} flows, none from {} to {}:{} since {}; are all agents' Hubble servers connected to the relay (`hubble list nodes`)?",
            o.relay,
            flows.len(),
            o.from,
            o.to_ip,
            o.to_port,
            o.started
        )),
    }
}

/// Hubble UI's answer to a GET of its page through its Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiPage {
    pub service: String,
    pub series: Series<Reply>,
    /// What the page must carry to be Hubble UI's.
    pub marker: String,
}

/// One attempt at Hubble UI's page: answered, and the page is Hubble UI's.
pub fn ui_attempt(marker: &str, r: &Reply) -> Verdict {
    match attempt(Expect::Allowed, r) {
        Verdict::Pass(m) if r.body.contains(marker) => Verdict::Pass(format!("{m} with {marker}")),
        Verdict::Pass(m) => Verdict::Fail(format!(
            "{m}, but the page is not Hubble UI's (no {marker} in {:?})",
            r.body
        )),
        fail => fail,
    }
}

pub fn ui(o: &UiPage) -> Verdict {
    match judge_series(&o.series, |r| ui_attempt(&o.marker, r)) {
        Verdict::Pass(m) => Verdict::Pass(format!("{}: {m}", o.service)),
        Verdict::Fail(m) => Verdict::Fail(format!("{}: {m}", o.service)),
    }
}

/// One service of the agent's load balancer (`cilium-dbg service list -o json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbService {
    /// `ip:port`.
    pub frontend: String,
    pub kind: String,
    pub backends: Vec<String>,
}

/// What says who serves Services: the agent's mode and service list, and kube-proxy's pods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLb {
    pub agent: String,
    /// `.kube-proxy-replacement.mode` of the agent's status: `True` or `False`.
    pub mode: Option<String>,
    pub services: Vec<LbService>,
    /// The echo Service's ClusterIP frontend and its pod, as the API server has them.
    pub want_frontend: String,
    pub want_backend: String,
    /// Pods labelled `k8s-app=kube-proxy`, and whether a kube-proxy DaemonSet exists.
    pub kube_proxy_pods: Vec<String>,
    pub kube_proxy_daemonset: bool,
}

pub fn kube_proxy_replacement(o: &ServiceLb) -> Verdict {
    let mut wrong = Vec::new();
    if o.mode.as_deref() != Some("True") {
        wrong.push(format!(
            "agent {} reports kube-proxy replacement {}",
            o.agent,
            o.mode.as_deref().unwrap_or("absent from its status")
        ));
    }
    let lb = o.services.iter().find(|s| s.frontend == o.want_frontend);
    match lb {
        None => wrong.push(format!(
            "Cilium's load balancer on {} has no frontend {} ({} services listed)",
            o.agent,
            o.want_frontend,
            o.services.len()
        )),
        Some(s) if !s.backends.contains(&o.want_backend) => wrong.push(format!(
            "frontend {} ({}) has backends [{}], not the echo pod {}",
            s.frontend,
            s.kind,
            s.backends.join(", "),
            o.want_backend
        )),
        Some(_) => {}
    }
    if !o.kube_proxy_pods.is_empty() || o.kube_proxy_daemonset {
        wrong.push(format!(
            "kube-proxy runs beside Cilium (DaemonSet kube-system/kube-proxy: {}; pods: [{}]); with kube-proxy replacement Talos must not deploy it (cluster.proxy.disabled)",
            if o.kube_proxy_daemonset { "present" } else { "absent" },
            o.kube_proxy_pods.join(", ")
        ));
    }
    if wrong.is_empty() {
        Verdict::Pass(format!(
            "agent {} reports kube-proxy replacement True and serves {} -> {}; no kube-proxy runs",
            o.agent, o.want_frontend, o.want_backend
        ))
    } else {
        Verdict::Fail(wrong.join("; "))
    }
}

/// The bandwidth manager as one agent reports it, and the limit it holds for the shaped pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bandwidth {
    pub agent: String,
    /// `.bandwidth-manager` of the agent's status.
    pub enabled: bool,
    pub congestion_control: Option<String>,
    pub devices: Vec<String>,
    /// The shaped pod's endpoint (its CiliumEndpoint's `status.id`).
    pub pod: String,
    pub endpoint_id: Option<u64>,
    pub want_bits: u64,
    /// `cilium-dbg bpf bandwidth list -o json`: key (`<endpoint>[, <direction>]`) and value
    /// (`<bytes per second>[, <prio>...]`).
    pub entries: Vec<(String, String)>,
}

fn first_number(s: &str) -> Option<u64> {
    s.split(',').next()?.trim().parse().ok()
}

pub fn bandwidth_manager(o: &Bandwidth) -> Verdict {
    if !o.enabled {
        return Verdict::Fail(format!(
            "agent {} reports the bandwidth manager disabled",
            o.agent
        ));
    }
    let Some(id) = o.endpoint_id else {
        return Verdict::Fail(format!(
            "{} has no Cilium endpoint id (its CiliumEndpoint has no status.id), so its limit cannot be looked up",
            o.pod
        ));
    };
    // Direction 0 is egress; a key without one is from releases that only limit egress.
    let egress = o.entries.iter().find(|(k, _)| {
        let mut parts = k.split(',').map(str::trim);
        parts.next().and_then(|p| p.parse::<u64>().ok()) == Some(id)
            && parts.next().is_none_or(|d| d == "0")
    });
    match egress.and_then(|(_, v)| first_number(v)) {
        Some(bytes) if bytes * 8 == o.want_bits => Verdict::Pass(format!(
            "agent {} enforces {} bit/s egress for {} (endpoint {id}) on [{}]",
            o.agent,
            o.want_bits,
            o.pod,
            o.devices.join(", ")
        )),
        Some(bytes) => Verdict::Fail(format!(
            "endpoint {id} ({}) is limited to {} bit/s, not the {} bit/s its annotation asks",
            o.pod,
            bytes * 8,
            o.want_bits
        )),
        None => Verdict::Fail(format!(
            "agent {} holds no egress limit for endpoint {id} ({}) in its bandwidth map ({} entries): the annotation did not reach the datapath",
            o.agent,
            o.pod,
            o.entries.len()
        )),
    }
}

/// Each agent's congestion control.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Congestion {
    /// (agent, `.bandwidth-manager.congestionControl`).
    pub agents: Vec<(String, Option<String>)>,
}

pub fn bbr(o: &Congestion) -> Verdict {
    Verdict::all(o.agents.iter().map(|(agent, cc)| {
        let v = match cc.as_deref() {
            Some("bbr") => Verdict::Pass("congestion control bbr".into()),
            Some(other) => Verdict::Fail(format!(
                "congestion control {other}, not bbr; the host kernel needs tcp_bbr (5.18 or later)"
            )),
            None => {
                Verdict::Fail("reports no congestion control: the bandwidth manager is off".into())
            }
        };
        (agent.clone(), v)
    }))
}

pub fn host_firewall(o: &PolicyRun) -> Verdict {
    crate::network_policy::judge::policy(o)
}

pub fn mutual_auth(o: &PolicyRun) -> Verdict {
    crate::network_policy::judge::policy(o)
}
