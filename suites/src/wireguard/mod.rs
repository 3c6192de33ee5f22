//! Transparent encryption with WireGuard, as each Cilium agent reports it.
//!
//! Every agent is asked twice (exec into the `cilium-agent` container of the pods
//! `k8s-app=cilium` in kube-system): `cilium-dbg status -o json` for `.encryption.mode` and the
//! `cilium_wg0` interface with its peer count, and `cilium-dbg debuginfo --output json` for the
//! peers themselves, because the status asks the WireGuard agent for `Status(false)` (no peers)
//! while debuginfo asks for `Status(true)` (cilium/cilium `daemon/cmd/status.go`,
//! `daemon/cmd/debuginfo.go`). Field names are from cilium/cilium `api/v1/models`:
//! `EncryptionStatus`, `WireguardStatus`, `WireguardInterface`, `WireguardPeer`, `DebugInfo`. The cluster's
//! view is the CiliumNodes: each node publishes its public key in the annotation
//! `network.cilium.io/wg-pub-key` and its pod CIDRs in `spec.ipam.podCIDRs`. The checks compare the
//! two. The handshake check places one idle client on every node, pings every other client from
//! each, and reads the agents again.

use crate::catalog::SuiteName;
use crate::kit::check::check_impl;
use crate::kit::check::{CheckCtx, Env, Runnable};
use crate::kit::errors::KitError;
use crate::kit::exec::PodRef;
use crate::kit::probe::Probe;
use crate::kit::probe::ping::{self, PingResult};
use crate::kit::retry::{Leg, judge_legs};
use crate::kit::topology::PodInfo;
use crate::kit::transcript::Peer;
use crate::kit::verdict::Verdict;
use crate::kit::wait;
use crate::kit::workload::{self, Placement};
use crate::runner::SuiteImpl;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const CILIUM_NAMESPACE: &str = "kube-system";
pub const CILIUM_SELECTOR: &str = "k8s-app=cilium";
pub const AGENT_CONTAINER: &str = "cilium-agent";
pub const WG_PUB_KEY: &str = "network.cilium.io/wg-pub-key";
pub const WG_INTERFACE: &str = "cilium_wg0";
/// WireGuard starts a new handshake when it sends on a session older than this (REKEY_AFTER_TIME
/// in the WireGuard paper), so after traffic every active peer's handshake is younger than this
/// at the time the traffic started.
pub const REKEY_AFTER_SECS: i64 = 120;
/// Prefix of the per-node clients of the handshake check.
pub const CLIENT_PREFIX: &str = "wg-client-";

/// `cilium-dbg status -o json`, only the part these checks read.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct StatusResponse {
    #[serde(default)]
    pub encryption: Option<EncryptionStatus>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct EncryptionStatus {
    /// Disabled | IPsec | Wireguard (newer agents also Ztunnel).
    #[serde(default)]
    pub mode: String,
    /// Human-readable error or warning.
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub wireguard: Option<WireguardStatus>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct WireguardStatus {
    #[serde(default)]
    pub interfaces: Vec<WireguardInterface>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct WireguardInterface {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub listen_port: i64,
    #[serde(default)]
    pub peer_count: i64,
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub peers: Option<Vec<WireguardPeer>>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct WireguardPeer {
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
    /// RFC 3339; `0001-01-01T00:00:00.000Z` when there was never a handshake.
    #[serde(default)]
    pub last_handshake_time: Option<String>,
    #[serde(default)]
    pub transfer_rx: i64,
    #[serde(default)]
    pub transfer_tx: i64,
}

impl WireguardPeer {
    /// Seconds since the epoch of the last handshake; `None` if there never was one.
    pub fn handshake_epoch(&self) -> Option<i64> {
        let t: k8s_openapi::jiff::Timestamp = self.last_handshake_time.as_deref()?.parse().ok()?;
        let s = t.as_second();
        (s > 0).then_some(s)
    }
}

/// `cilium-dbg debuginfo --output json`, only its `.encryption`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct DebugInfo {
    #[serde(default)]
    pub encryption: Option<DebugInfoEncryption>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct DebugInfoEncryption {
    #[serde(default)]
    pub wireguard: Option<WireguardStatus>,
}

/// The WireGuard status with peers from `cilium-dbg debuginfo --output json`; `None` when the
/// agent has none (WireGuard off, or the device could not be read).
pub fn parse_debuginfo(stdout: &str) -> Result<Option<WireguardStatus>, String> {
    let d: DebugInfo = serde_json::from_str(stdout).map_err(|e| e.to_string())?;
    Ok(d.encryption.and_then(|e| e.wireguard))
}

/// An agent's encryption status: mode, interfaces and peer counts from the status; only each
/// interface's `peers` from debuginfo, matched by interface name. An interface debuginfo does
/// not list keeps no peers; one only debuginfo lists is not added.
pub fn merge(mut status: EncryptionStatus, debuginfo: Option<WireguardStatus>) -> EncryptionStatus {
    let Some(with_peers) = debuginfo else {
        return status;
    };
    for i in status
        .wireguard
        .iter_mut()
        .flat_map(|w| w.interfaces.iter_mut())
    {
        if let Some(d) = with_peers.interfaces.iter().find(|d| d.name == i.name) {
            i.peers = d.peers.clone();
        }
    }
    status
}

/// Parses an agent's `cilium-dbg status -o json`.
pub fn parse_status(stdout: &str) -> Result<EncryptionStatus, String> {
    let r: StatusResponse = serde_json::from_str(stdout).map_err(|e| e.to_string())?;
    r.encryption
        .ok_or_else(|| "the status has no .encryption object".to_string())
}

/// One agent's view: which node it runs on and what it reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentReport {
    pub node: String,
    pub pod: String,
    pub encryption: EncryptionStatus,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeKeys {
    pub name: String,
    pub wg_pub_key: Option<String>,
    pub pod_cidrs: Vec<String>,
}

pub fn node_keys(list: &[DynamicObject]) -> Vec<NodeKeys> {
    let mut out: Vec<NodeKeys> = list
        .iter()
        .map(|o| NodeKeys {
            name: o.metadata.name.clone().unwrap_or_default(),
            wg_pub_key: o
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(WG_PUB_KEY))
                .cloned(),
            pod_cidrs: o.data["spec"]["ipam"]["podCIDRs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Every agent's report and every CiliumNode, read together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub agents: Vec<AgentReport>,
    pub nodes: Vec<NodeKeys>,
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

pub fn judge_mode(s: &Snapshot) -> Verdict {
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
            Verdict::Fail(format!(
                "encryption mode is {:?}{msg}, expected Wireguard: set encryption.enabled=true and encryption.type=wireguard in the Cilium values; on Talos-in-Docker the Docker host's kernel must provide the wireguard module",
                a.encryption.mode
            ))
        }
    })
}

pub fn judge_peer_count(s: &Snapshot) -> Verdict {
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

pub fn judge_peer_keys(s: &Snapshot) -> Verdict {
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

/// Parses `10.244.1.0/24` (or a bare address as a host route).
fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip.parse().ok()?, len.parse().ok()?),
        None => {
            let ip: IpAddr = s.parse().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if matches!(ip, IpAddr::V4(_)) { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Whether prefix `outer` contains all of prefix `inner`.
pub fn covers(outer: &str, inner: &str) -> bool {
    let (Some((o, ol)), Some((i, il))) = (cidr(outer), cidr(inner)) else {
        return false;
    };
    if o.is_ipv4() != i.is_ipv4() {
        return false;
    }
    // IPv4 addresses sit in the top 32 bits, so prefix lengths count from the top in both.
    let (ol, il) = (u32::from(ol), u32::from(il));
    if ol > il {
        return false;
    }
    let mask = if ol == 0 { 0 } else { u128::MAX << (128 - ol) };
    bits(o) & mask == bits(i) & mask
}

pub fn judge_allowed_ips(s: &Snapshot) -> Verdict {
    per_agent(s, |a| {
        let Some(i) = a.interface() else {
            return no_interface(a);
        };
        let peers = i.peers.as_deref().unwrap_or_default();
        if peers.is_empty() {
            return Verdict::Fail(format!(
                "{} lists no peers, so no remote pod CIDR is routed through the tunnel",
                i.name
            ));
        }
        let mut ok = Vec::new();
        let mut wrong = Vec::new();
        for p in peers {
            let allowed = p.allowed_ips.as_deref().unwrap_or_default();
            let Some(n) = s.node_of_key(&p.public_key) else {
                wrong.push(format!(
                    "peer {} belongs to no CiliumNode, so its allowed IPs [{}] cannot be checked",
                    p.public_key,
                    allowed.join(", ")
                ));
                continue;
            };
            if n.pod_cidrs.is_empty() {
                wrong.push(format!(
                    "CiliumNode {} has no spec.ipam.podCIDRs to compare with",
                    n.name
                ));
                continue;
            }
            let uncovered: Vec<&str> = n
                .pod_cidrs
                .iter()
                .filter(|c| !allowed.iter().any(|a| covers(a, c)))
                .map(String::as_str)
                .collect();
            if uncovered.is_empty() {
                ok.push(format!("{} [{}]", n.name, n.pod_cidrs.join(", ")));
            } else {
                wrong.push(format!(
                    "peer {} allows [{}], which does not cover its pod CIDR {}: traffic to those pods leaves unencrypted or is dropped",
                    n.name,
                    allowed.join(", "),
                    uncovered.join(", ")
                ));
            }
        }
        let missing = unpeered(s, a, peers);
        if !missing.is_empty() {
            wrong.push(format!(
                "no peer for node {}, so nothing routes its pod CIDRs through the tunnel",
                missing.join(", ")
            ));
        }
        if wrong.is_empty() {
            Verdict::Pass(format!("pod CIDRs covered: {}", ok.join("; ")))
        } else {
            Verdict::Fail(wrong.join("; "))
        }
    })
}

/// The handshake check's observation: agents before and after pinging across every node pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshakes {
    /// Each node's own clock (epoch seconds) just before the traffic, read in its agent.
    pub started: BTreeMap<String, i64>,
    pub pings: Vec<Leg<PingResult>>,
    pub before: Snapshot,
    pub after: Snapshot,
}

pub fn judge_handshakes(h: &Handshakes) -> Verdict {
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

/// The agents, one per node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub node: String,
    pub pod: PodRef,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WgFixture {
    pub agents: Vec<Agent>,
    /// One client per node, only when the handshake check was selected.
    pub clients: Vec<PodInfo>,
}

pub fn status_argv() -> Vec<String> {
    ["cilium-dbg", "status", "-o", "json"]
        .map(String::from)
        .to_vec()
}

pub fn debuginfo_argv() -> Vec<String> {
    ["cilium-dbg", "debuginfo", "--output", "json"]
        .map(String::from)
        .to_vec()
}

pub fn ciliumnode_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cilium.io", "v2", "CiliumNode"),
        "ciliumnodes",
    )
}

/// Runs one `cilium-dbg` command in an agent and returns its stdout, or why it could not.
async fn agent_json(
    ctx: &CheckCtx<'_>,
    a: &Agent,
    action: &str,
    argv: Vec<String>,
) -> Result<String, KitError> {
    let probe = Probe {
        label: ctx.label(
            action,
            Peer::new(a.pod.to_string(), None),
            Peer::new(format!("agent on {}", a.node), None),
        ),
        pod: a.pod.clone(),
        argv,
    };
    let out = ctx.run(&probe).await?;
    if out.exit_code != 0 {
        return Err(KitError::Parse {
            what: format!("`{}` in {}", probe.argv.join(" "), a.pod),
            detail: format!("exit {}: {}", out.exit_code, out.stderr.trim()),
        });
    }
    Ok(out.stdout)
}

async fn agent_status(ctx: &CheckCtx<'_>, a: &Agent) -> Result<AgentReport, KitError> {
    let parse_err = |cmd: &str, detail: String| KitError::Parse {
        what: format!("`{cmd}` in {}", a.pod),
        detail,
    };
    let status = agent_json(ctx, a, "cilium-dbg-status", status_argv()).await?;
    let status = parse_status(&status).map_err(|e| parse_err("cilium-dbg status -o json", e))?;
    let debuginfo = agent_json(ctx, a, "cilium-dbg-debuginfo", debuginfo_argv()).await?;
    let peers = parse_debuginfo(&debuginfo)
        .map_err(|e| parse_err("cilium-dbg debuginfo --output json", e))?;
    Ok(AgentReport {
        node: a.node.clone(),
        pod: a.pod.to_string(),
        encryption: merge(status, peers),
    })
}

async fn snapshot(f: &WgFixture, ctx: &CheckCtx<'_>) -> Result<Snapshot, KitError> {
    let mut agents = Vec::new();
    for a in &f.agents {
        agents.push(agent_status(ctx, a).await?);
    }
    let list = Api::<DynamicObject>::all_with(ctx.env.client.clone(), &ciliumnode_resource())
        .list(&ListParams::default())
        .await
        .map_err(KitError::api("list ciliumnodes.cilium.io/v2"))?;
    let nodes = node_keys(&list.items);
    ctx.note(format!(
        "{} CiliumNodes: {}",
        nodes.len(),
        nodes
            .iter()
            .map(|n| format!(
                "{} key {} podCIDRs [{}]",
                n.name,
                n.wg_pub_key.as_deref().unwrap_or("-"),
                n.pod_cidrs.join(", ")
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    Ok(Snapshot { agents, nodes })
}

async fn handshakes(f: &WgFixture, ctx: &CheckCtx<'_>) -> Result<Handshakes, KitError> {
    let before = snapshot(f, ctx).await?;
    let mut started = BTreeMap::new();
    for a in &f.agents {
        let out = ctx
            .run(&Probe {
                label: ctx.label(
                    "node-clock",
                    Peer::new(a.pod.to_string(), None),
                    Peer::new(a.node.clone(), None),
                ),
                pod: a.pod.clone(),
                argv: vec!["date".into(), "+%s".into()],
            })
            .await?;
        let t: i64 = out.stdout.trim().parse().map_err(|_| KitError::Parse {
            what: format!("the clock of node {} (`date +%s` in {})", a.node, a.pod),
            detail: format!("exit {}, stdout {:?}", out.exit_code, out.stdout),
        })?;
        started.insert(a.node.clone(), t);
    }
    let mut pings = Vec::new();
    for from in &f.clients {
        for to in f.clients.iter().filter(|c| c.node != from.node) {
            let probe = Probe {
                label: ctx.label(
                    "ping",
                    from.source(),
                    Peer::new(&to.name, Some(to.ip.clone())),
                ),
                pod: from.pod_ref(),
                argv: ping::argv(&to.ip, None),
            };
            let series = ctx
                .until_stable(&probe, PingResult::parse, ping::judge)
                .await?;
            pings.push(Leg {
                what: format!("{} -> {}", from.node, to.node),
                series,
            });
        }
    }
    let after = snapshot(f, ctx).await?;
    Ok(Handshakes {
        started,
        pings,
        before,
        after,
    })
}

pub(crate) struct Wireguard;

impl SuiteImpl for Wireguard {
    type Fixture = WgFixture;
    const SUITE: SuiteName = SuiteName::Wireguard;

    fn checks() -> Vec<Box<dyn Runnable<WgFixture>>> {
        vec![
            check_impl!("encryption-mode", snapshot, judge_mode),
            check_impl!("peer-count", snapshot, judge_peer_count),
            check_impl!("peer-keys-match-nodes", snapshot, judge_peer_keys),
            check_impl!("allowed-ips-cover-pod-cidrs", snapshot, judge_allowed_ips),
            check_impl!("handshake-after-traffic", handshakes, judge_handshakes),
        ]
    }

    async fn setup(
        env: &Env,
        wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<WgFixture, KitError> {
        let pods = Api::<Pod>::namespaced(env.client.clone(), CILIUM_NAMESPACE)
            .list(&ListParams::default().labels(CILIUM_SELECTOR))
            .await
            .map_err(KitError::api(format!(
                "list pods {CILIUM_SELECTOR} in {CILIUM_NAMESPACE}"
            )))?;
        let mut agents: Vec<Agent> = pods
            .items
            .iter()
            .filter(|p| wait::is_ready(p))
            .filter_map(|p| {
                Some(Agent {
                    node: p.spec.as_ref()?.node_name.clone()?,
                    pod: PodRef {
                        namespace: CILIUM_NAMESPACE.into(),
                        name: p.metadata.name.clone()?,
                        container: AGENT_CONTAINER.into(),
                    },
                })
            })
            .collect();
        agents.sort_by(|a, b| a.node.cmp(&b.node));
        if agents.is_empty() {
            return Err(KitError::Missing {
                what: format!("a Ready Cilium agent ({CILIUM_SELECTOR} in {CILIUM_NAMESPACE})"),
                hint: format!(
                    "{} pods matched, none Ready with a node; is Cilium installed and healthy?",
                    pods.items.len()
                ),
            });
        }
        log.note(format!(
            "agents: {}",
            agents
                .iter()
                .map(|a| format!("{} on {}", a.pod.name, a.node))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let mut clients = Vec::new();
        if wanted.contains(&"handshake-after-traffic") {
            let labels = env.run_labels();
            let mut names = Vec::new();
            for (i, a) in agents.iter().enumerate() {
                let name = format!("{CLIENT_PREFIX}{i}");
                let mut p =
                    workload::client_pod(&name, &labels, &env.images.client, &Placement::Anywhere);
                if let Some(spec) = p.spec.as_mut() {
                    // Bound to the node directly: one client per node, whatever its taints.
                    spec.node_name = Some(a.node.clone());
                }
                workload::create_pod(&env.client, &env.namespace, &p).await?;
                names.push(name);
            }
            let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
            clients = futures::future::try_join_all(names.iter().map(|n| {
                let api = api.clone();
                async move {
                    PodInfo::from_pod(
                        &wait::pod_ready(api, n, env.timeouts.pod_ready).await?,
                        "client",
                    )
                }
            }))
            .await?;
            for c in &clients {
                log.note(format!(
                    "{} ready on node {} with ip {}",
                    c.name, c.node, c.ip
                ));
            }
        }
        Ok(WgFixture { agents, clients })
    }
}
