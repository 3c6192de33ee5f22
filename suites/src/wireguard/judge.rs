//! The WireGuard judges: each agent's WireGuard state against the CiliumNodes, the pods and
//! the routing mode Cilium runs in. Pure: agent reports, CiliumNodes and endpoints in, a verdict
//! out.
//!
//! What the peers' allowed IPs must hold follows `pkg/wireguard/agent` (`updatePeer`,
//! `OnIPIdentityCacheChange`, `needsIPCache`): every peer always holds its node's IPs (/32,
//! /128); in native routing the agent also adds every ipcache entry whose host is that node, so
//! each remote endpoint's address (a /32, or a pod CIDR the ipcache holds) routes through its
//! node's peer; in tunnel mode pod traffic is VXLAN/Geneve between node IPs before WireGuard
//! encrypts it (from 1.15, cilium/cilium#29000), so node IPs are all a peer needs, and from 1.18
//! the agent adds nothing else (cilium/cilium#35895; the hidden
//! `wireguard-track-all-ips-fallback` keeps the endpoints). The judge does not count entries: it
//! routes each address the way WireGuard does (longest prefix over all peers) and checks it lands
//! on the right peer.

use super::model::{EncryptionStatus, Routing, WireguardInterface, WireguardPeer};
use super::prefix::longest_match;
use crate::kit::cilium::{CiliumFacts, Version};
use crate::kit::probe::ping::{self, PingResult};
use crate::kit::retry::{Leg, judge_legs};
use crate::kit::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const CILIUM_NAMESPACE: &str = "kube-system";
pub const CILIUM_SELECTOR: &str = "k8s-app=cilium";
pub const WG_PUB_KEY: &str = "network.cilium.io/wg-pub-key";
pub const WG_INTERFACE: &str = "cilium_wg0";
/// WireGuard starts a new handshake when it sends on a session older than this (REKEY_AFTER_TIME
/// in the WireGuard paper), so after traffic every active peer's handshake is younger than this
/// at the time the traffic started.
pub const REKEY_AFTER_SECS: i64 = 120;
/// From this release tunnel mode encapsulates before it encrypts (cilium/cilium#29000).
pub const ENCAPSULATE_THEN_ENCRYPT: Version = Version::new(1, 15, 0);
/// From this release a tunnel-mode agent puts only node IPs in allowed IPs (cilium/cilium#35895).
pub const TUNNEL_NODE_IPS_ONLY: Version = Version::new(1, 18, 0);

/// One agent's view: which node it runs on and what it reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    pub node: String,
    pub pod: String,
    pub encryption: EncryptionStatus,
    /// `.routing` of its status (absent from agents that do not report it).
    pub routing: Option<Routing>,
    /// `cilium-version` of its debuginfo.
    pub version: Option<String>,
}

impl AgentReport {
    pub fn interface(&self) -> Option<&WireguardInterface> {
        let ifaces = &self.encryption.wireguard.as_ref()?.interfaces;
        ifaces
            .iter()
            .find(|i| i.name == WG_INTERFACE)
            .or(ifaces.first())
    }
}

/// What a CiliumNode publishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeKeys {
    pub name: String,
    pub wg_pub_key: Option<String>,
    pub pod_cidrs: Vec<String>,
    /// `spec.addresses` of type InternalIP: the peer endpoint and the node's own allowed IPs.
    pub internal_ips: Vec<String>,
}

/// A running, Ready pod that is a Cilium endpoint (not on the host network), and where it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `namespace/name`.
    pub pod: String,
    pub node: String,
    pub ips: Vec<String>,
}

/// Every agent's report, every CiliumNode and every endpoint, read together (pods first, so no
/// endpoint is newer than the agents' state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub agents: Vec<AgentReport>,
    pub nodes: Vec<NodeKeys>,
    pub endpoints: Vec<Endpoint>,
    pub cilium: CiliumFacts,
}

impl Snapshot {
    fn node_of_key(&self, key: &str) -> Option<&NodeKeys> {
        self.nodes
            .iter()
            .find(|n| n.wg_pub_key.as_deref() == Some(key))
    }
}

fn no_interface(a: &AgentReport) -> Verdict {
    Verdict::Fail(format!(
        "the agent reports mode {:?} but no WireGuard interface{}; read `cilium-dbg status --verbose` in {} and the agent log for wireguard errors",
        a.encryption.mode,
        a.encryption
            .msg
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default(),
        a.pod
    ))
}

/// Judges every agent, and fails every CiliumNode that has no Ready agent to ask.
fn per_agent(s: &Snapshot, one: impl Fn(&AgentReport) -> Verdict) -> Verdict {
    let unasked = s
        .nodes
        .iter()
        .filter(|n| !s.agents.iter().any(|a| a.node == n.name))
        .map(|n| {
            (
                format!("node {}", n.name),
                Verdict::Fail(format!(
                    "no Ready Cilium agent ({CILIUM_SELECTOR} in {CILIUM_NAMESPACE}) runs on it, so its tunnel could not be read"
                )),
            )
        });
    Verdict::all(
        s.agents
            .iter()
            .map(|a| (format!("agent on {}", a.node), one(a)))
            .chain(unasked),
    )
}

pub fn mode(s: &Snapshot) -> Verdict {
    per_agent(s, |a| {
        if a.encryption.mode == "Wireguard" {
            match a.interface() {
                Some(i) => Verdict::Pass(format!(
                    "mode Wireguard, interface {} on port {}",
                    i.name, i.listen_port
                )),
                None => no_interface(a),
            }
        } else {
            let msg = a
                .encryption
                .msg
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            let fix = match a.encryption.mode.as_str() {
                "IPsec" => {
                    "the agent encrypts with IPsec: set encryption.type=wireguard in the Cilium values"
                }
                "Disabled" | "" => {
                    "encryption is off: set encryption.enabled=true and encryption.type=wireguard in the Cilium values"
                }
                _ => {
                    "set encryption.enabled=true and encryption.type=wireguard in the Cilium values"
                }
            };
            // The kernel only matters when the agent said so: on Talos-in-Docker the module
            // comes from the Docker host's kernel.
            let kernel = match &a.encryption.msg {
                Some(m)
                    if m.to_ascii_lowercase().contains("module") || m.contains("not supported") =>
                {
                    "; the agent points at the kernel: the wireguard module must be available (on Talos-in-Docker, in the Docker host's kernel)"
                }
                _ => "",
            };
            Verdict::Fail(format!(
                "encryption mode is {:?}{msg}, expected Wireguard: {fix}{kernel}",
                a.encryption.mode
            ))
        }
    })
}

pub fn peer_count(s: &Snapshot) -> Verdict {
    let want = s.nodes.len().saturating_sub(1) as i64;
    per_agent(s, |a| {
        let Some(i) = a.interface() else {
            return no_interface(a);
        };
        if i.peer_count == want {
            Verdict::Pass(format!("{} peers", i.peer_count))
        } else {
            Verdict::Fail(format!(
                "{} has {} peers, expected {want} (one per other CiliumNode of {}); a missing peer means the agent did not learn that node's key or address (see the CiliumNode annotation {WG_PUB_KEY} and the agent log)",
                i.name,
                i.peer_count,
                s.nodes.len()
            ))
        }
    })
}

pub fn peer_keys(s: &Snapshot) -> Verdict {
    per_agent(s, |a| {
        let Some(i) = a.interface() else {
            return no_interface(a);
        };
        let own = s.nodes.iter().find(|n| n.name == a.node);
        let mut wrong = Vec::new();
        match own.and_then(|n| n.wg_pub_key.as_deref()) {
            Some(k) if k == i.public_key => {}
            Some(k) => wrong.push(format!(
                "its interface key {} differs from its CiliumNode's {WG_PUB_KEY} {k}, so the other nodes encrypt to a key it does not hold",
                i.public_key
            )),
            None => wrong.push(format!(
                "its CiliumNode {} has no {WG_PUB_KEY} annotation",
                a.node
            )),
        }
        let peers = i.peers.as_deref().unwrap_or_default();
        let mut matched = Vec::new();
        for p in peers {
            if p.public_key == i.public_key {
                wrong.push(format!("it peers with itself (key {})", p.public_key));
                continue;
            }
            match s.node_of_key(&p.public_key) {
                Some(n) if n.name == a.node => wrong.push(format!(
                    "peer {} is its own node's key",
                    p.public_key
                )),
                Some(n) => matched.push(n.name.clone()),
                None => wrong.push(format!(
                    "peer key {} (endpoint {}) is no CiliumNode's {WG_PUB_KEY}: a stale peer of a deleted or re-keyed node",
                    p.public_key, p.endpoint
                )),
            }
        }
        let missing: Vec<&str> = s
            .nodes
            .iter()
            .filter(|n| n.name != a.node && !matched.contains(&n.name))
            .map(|n| n.name.as_str())
            .collect();
        if !missing.is_empty() {
            wrong.push(format!("no peer for node {}", missing.join(", ")));
        }
        if wrong.is_empty() {
            Verdict::Pass(format!("peers are nodes {}", matched.join(", ")))
        } else {
            Verdict::Fail(wrong.join("; "))
        }
    })
}

/// The CiliumNodes other than the agent's own that none of `peers` belongs to (by key).
fn unpeered<'a>(s: &'a Snapshot, a: &AgentReport, peers: &[WireguardPeer]) -> Vec<&'a str> {
    s.nodes
        .iter()
        .filter(|n| n.name != a.node)
        .filter(|n| {
            !peers.iter().any(|p| {
                s.node_of_key(&p.public_key)
                    .is_some_and(|k| k.name == n.name)
            })
        })
        .map(|n| n.name.as_str())
        .collect()
}

/// What a peer's allowed IPs must route, by routing mode and release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Tunnel mode, 1.15 and later: pods are reached inside the tunnel, so node IPs suffice.
    NodeIps,
    /// Native routing (or tunnel mode before 1.15): node IPs and every endpoint.
    NodeIpsAndEndpoints,
}

/// The routing mode an agent runs in: its own status first, then `cilium-config`.
pub fn routing_mode(a: &AgentReport, cilium: &CiliumFacts) -> Option<String> {
    if let Some(r) = &a.routing
        && !r.inter_host_routing_mode.is_empty()
    {
        return Some(r.inter_host_routing_mode.to_ascii_lowercase());
    }
    match cilium.config.get("routing-mode").map(|m| m.trim()) {
        Some(m) if !m.is_empty() => Some(m.to_ascii_lowercase()),
        // Before `routing-mode` (1.14), `tunnel: disabled` meant native routing.
        _ => match cilium.config.get("tunnel").map(|t| t.trim()) {
            Some("disabled") => Some("native".into()),
            Some(t) if !t.is_empty() => Some("tunnel".into()),
            _ => None,
        },
    }
}

/// The agent's release: its debuginfo first, then the DaemonSet image.
pub fn agent_version(a: &AgentReport, cilium: &CiliumFacts) -> Option<Version> {
    a.version
        .as_deref()
        .and_then(Version::parse)
        .or(cilium.version)
}

pub fn needs(mode: &str, version: Option<Version>) -> Needs {
    match (mode, version) {
        ("tunnel", Some(v)) if v < ENCAPSULATE_THEN_ENCRYPT => Needs::NodeIpsAndEndpoints,
        ("tunnel", _) => Needs::NodeIps,
        _ => Needs::NodeIpsAndEndpoints,
    }
}

/// Whether the agent handles this address family (`enable-ipv4` defaults on, `enable-ipv6` off).
fn family_enabled(cilium: &CiliumFacts, ip: &str) -> bool {
    if ip.contains(':') {
        cilium.flag("enable-ipv6") == Some(true)
    } else {
        cilium.flag("enable-ipv4") != Some(false)
    }
}

/// The peer WireGuard sends `ip` to: the longest prefix over every peer's allowed IPs.
fn route<'a>(peers: &'a [WireguardPeer], ip: &str) -> Option<&'a WireguardPeer> {
    peers
        .iter()
        .filter_map(|p| longest_match(p.allowed_ips.iter().flatten(), ip).map(|len| (len, p)))
        .max_by_key(|(len, _)| *len)
        .map(|(_, p)| p)
}

pub fn allowed_ips(s: &Snapshot) -> Verdict {
    per_agent(s, |a| {
        let Some(i) = a.interface() else {
            return no_interface(a);
        };
        let Some(mode) = routing_mode(a, &s.cilium) else {
            return Verdict::Fail(format!(
                "the routing mode is unknown (no .routing in the agent's status, no routing-mode in cilium-config), so what {} must route cannot be told",
                i.name
            ));
        };
        let version = agent_version(a, &s.cilium);
        let needs = needs(&mode, version);
        let peers = i.peers.as_deref().unwrap_or_default();
        let ipam = s
            .cilium
            .config
            .get("ipam")
            .map(|m| format!(", ipam {m}"))
            .unwrap_or_default();
        let how = format!(
            "{mode} routing, {}{ipam}",
            version.map_or("version unknown".into(), |v| format!("Cilium {v}"))
        );
        let mut ok = Vec::new();
        let mut wrong = Vec::new();
        for n in s.nodes.iter().filter(|n| n.name != a.node) {
            let key = n.wg_pub_key.as_deref();
            let mut addresses: Vec<(String, String)> = n
                .internal_ips
                .iter()
                .filter(|ip| family_enabled(&s.cilium, ip))
                .map(|ip| (format!("node IP {ip}"), ip.clone()))
                .collect();
            if addresses.is_empty() {
                wrong.push(format!(
                    "CiliumNode {} has no InternalIP in spec.addresses, so its peer endpoint cannot be known",
                    n.name
                ));
                continue;
            }
            let endpoints: Vec<&Endpoint> =
                s.endpoints.iter().filter(|e| e.node == n.name).collect();
            if needs == Needs::NodeIpsAndEndpoints {
                for e in &endpoints {
                    for ip in e.ips.iter().filter(|ip| family_enabled(&s.cilium, ip)) {
                        addresses.push((format!("pod {} ({ip})", e.pod), ip.clone()));
                    }
                }
            }
            let misrouted: Vec<String> = addresses
                .iter()
                .filter_map(|(what, ip)| match route(peers, ip) {
                    Some(p) if Some(p.public_key.as_str()) == key => None,
                    Some(p) => Some(format!(
                        "{what} routes through the peer of {}",
                        s.node_of_key(&p.public_key).map_or(
                            format!("unknown key {}", p.public_key),
                            |o| format!("node {}", o.name)
                        )
                    )),
                    None => Some(format!("{what} is in no peer's allowed IPs")),
                })
                .collect();
            if misrouted.is_empty() {
                let pods = match needs {
                    Needs::NodeIps => String::new(),
                    Needs::NodeIpsAndEndpoints => format!(" and {} endpoint(s)", endpoints.len()),
                };
                ok.push(format!(
                    "{} ({}){pods} through its peer",
                    n.name,
                    n.internal_ips.join(", ")
                ));
            } else {
                let peer = match key.and_then(|k| peers.iter().find(|p| p.public_key == k)) {
                    Some(p) => format!(
                        "its peer allows [{}]",
                        p.allowed_ips
                            .iter()
                            .flatten()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => "it has no peer".into(),
                };
                wrong.push(format!("node {}: {}; {peer}", n.name, misrouted.join(", ")));
            }
        }
        if wrong.is_empty() {
            Verdict::Pass(format!("{how}: {}", ok.join("; ")))
        } else {
            let why = match needs {
                Needs::NodeIps => {
                    "in tunnel mode a peer must hold its node's IPs, which carry the encapsulated pod traffic"
                }
                Needs::NodeIpsAndEndpoints => {
                    "in native routing a peer must hold its node's IPs and every endpoint on that node (or a prefix covering them), or that traffic leaves unencrypted or is dropped"
                }
            };
            Verdict::Fail(format!("{how}: {}; {why}", wrong.join("; ")))
        }
    })
}

/// The handshake check's observation: agents before and after pinging across every node pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshakes {
    /// Each node's own clock (epoch seconds) just before the traffic, read in its agent.
    pub started: BTreeMap<String, i64>,
    pub pings: Vec<Leg<PingResult>>,
    pub before: Snapshot,
    pub after: Snapshot,
}

pub fn handshakes(h: &Handshakes) -> Verdict {
    if h.pings.is_empty() {
        return Verdict::Fail(
            "no cross-node traffic was generated (fewer than two nodes had a client)".into(),
        );
    }
    if let Verdict::Fail(m) = judge_legs(&h.pings, ping::judge) {
        return Verdict::Fail(format!(
            "cross-node pings failed, so handshakes cannot be judged (see connectivity::pod-to-pod-other-node): {m}"
        ));
    }
    per_agent(&h.after, |a| {
        let Some(i) = a.interface() else {
            return no_interface(a);
        };
        let Some(start) = h.started.get(&a.node) else {
            return Verdict::Fail(format!("the clock of node {} was not read", a.node));
        };
        let before: BTreeMap<&str, i64> = h
            .before
            .agents
            .iter()
            .filter(|b| b.node == a.node)
            .filter_map(|b| b.interface())
            .flat_map(|b| b.peers.iter().flatten())
            .map(|p| (p.public_key.as_str(), p.transfer_rx))
            .collect();
        let peers = i.peers.as_deref().unwrap_or_default();
        if peers.is_empty() {
            return Verdict::Fail(format!("{} lists no peers after the traffic", i.name));
        }
        let mut ok = Vec::new();
        let mut wrong = Vec::new();
        for p in peers {
            let who = h
                .after
                .node_of_key(&p.public_key)
                .map_or(p.public_key.clone(), |n| n.name.clone());
            match p.handshake_epoch() {
                None => wrong.push(format!(
                    "peer {who} never completed a handshake (endpoint {}): UDP {} between the nodes is blocked or the keys disagree",
                    p.endpoint, i.listen_port
                )),
                Some(t) if t < start - REKEY_AFTER_SECS => wrong.push(format!(
                    "peer {who}: last handshake {}s before the traffic started; traffic renews a session older than {REKEY_AFTER_SECS}s, so the tunnel to it carried none",
                    start - t
                )),
                Some(t) => {
                    let rx0 = before.get(p.public_key.as_str()).copied().unwrap_or(0);
                    if p.transfer_rx > rx0 {
                        ok.push(format!(
                            "{who} (handshake {}, rx +{} bytes)",
                            if t >= *start {
                                format!("{}s after the traffic started", t - start)
                            } else {
                                format!("{}s before the traffic started", start - t)
                            },
                            p.transfer_rx - rx0
                        ));
                    } else {
                        wrong.push(format!(
                            "peer {who}: handshake is recent but nothing was received from it during the traffic (transfer-rx {} -> {}): the pings did not go through the tunnel",
                            rx0, p.transfer_rx
                        ));
                    }
                }
            }
        }
        let missing = unpeered(&h.after, a, peers);
        if !missing.is_empty() {
            wrong.push(format!(
                "no peer for node {}, so no handshake with it is possible",
                missing.join(", ")
            ));
        }
        if wrong.is_empty() {
            Verdict::Pass(ok.join("; "))
        } else {
            Verdict::Fail(wrong.join("; "))
        }
    })
}
