//! What a cluster offers, as far as the checks care (the `features` suite is another thing: it
//! proves the features a profile turns on). The harness derives it from a profile's
//! Helm values; for an existing cluster it comes from the user's flags.

use serde::{Deserialize, Serialize};

/// How pod traffic crosses nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    Native,
    Vxlan,
    Geneve,
}

impl Routing {
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::Native => "native",
            Routing::Vxlan => "vxlan",
            Routing::Geneve => "geneve",
        }
    }
}

/// Cilium features the checks depend on. Every field is derived from Helm values, never typed
/// a second time in a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Features {
    pub kube_proxy_replacement: bool,
    pub gateway_api: bool,
    pub wireguard: bool,
    pub node_encryption: bool,
    pub hubble: bool,
    pub hubble_relay: bool,
    pub hubble_ui: bool,
    pub l2_announcements: bool,
    pub l7_proxy: bool,
    pub host_firewall: bool,
    pub bandwidth_manager: bool,
    pub bbr: bool,
    pub mutual_auth_spire: bool,
    /// Whether Cilium enforces network policy at all (`policyEnforcementMode` other than `never`).
    pub policy_enforcement: bool,
    /// `bpf.hostLegacyRouting`: traffic goes through the host stack instead of BPF host routing.
    pub host_legacy_routing: bool,
    pub routing: Routing,
}

impl Features {
    /// Names of the features that are on, for people reading a plan.
    pub fn enabled_names(&self) -> Vec<&'static str> {
        let flags = [
            (self.kube_proxy_replacement, "kube-proxy-replacement"),
            (self.gateway_api, "gateway-api"),
            (self.wireguard, "wireguard"),
            (self.node_encryption, "node-encryption"),
            (self.hubble, "hubble"),
            (self.hubble_relay, "hubble-relay"),
            (self.hubble_ui, "hubble-ui"),
            (self.l2_announcements, "l2-announcements"),
            (self.l7_proxy, "l7-proxy"),
            (self.host_firewall, "host-firewall"),
            (self.bandwidth_manager, "bandwidth-manager"),
            (self.bbr, "bbr"),
            (self.mutual_auth_spire, "mutual-auth-spire"),
            (self.policy_enforcement, "policy-enforcement"),
            (self.host_legacy_routing, "host-legacy-routing"),
        ];
        flags
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| n)
            .collect()
    }
}

/// Facts about a run that decide applicability besides the features.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RunContext {
    pub features: Features,
    /// Schedulable nodes the cluster will have; cross-node checks need two.
    pub nodes: u32,
    /// Host name probed by egress checks; `None` when the run has no egress (CI without internet).
    pub external_target: Option<String>,
    /// The client outside the cluster that north-south checks probe from; `None` when the run
    /// has none (`harness check --outside-client none`). Recordings made before it existed
    /// had none.
    #[serde(default)]
    pub outside: Option<OutsideClient>,
}

/// Where a run's outside probes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutsideOrigin {
    /// A container on the cluster's docker network that is not a node.
    DockerNetwork,
    /// The machine the harness runs on.
    Host,
}

impl OutsideOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            OutsideOrigin::DockerNetwork => "docker-network",
            OutsideOrigin::Host => "host",
        }
    }
}

/// A run's client outside the cluster, and what it can reach over L2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct OutsideClient {
    pub origin: OutsideOrigin,
    /// The block of the client's L2 segment the lb-ipam suite announces a pool from; `None`
    /// when no such block is known (an existing cluster without `--lb-l2-block`).
    pub l2_block: Option<L2Block>,
}

/// A block of LoadBalancer addresses on the outside client's L2 segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum L2Block {
    /// Taken from the cluster's docker subnet once the cluster exists (a plan of `e2e`).
    DockerSubnet,
    /// This CIDR.
    Cidr(String),
}

impl OutsideClient {
    /// The block as a CIDR, once it is known.
    pub fn l2_cidr(&self) -> Option<&str> {
        match &self.l2_block {
            Some(L2Block::Cidr(c)) => Some(c),
            _ => None,
        }
    }
}

/// Whether a check runs in a cell, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "reason")]
pub enum Applicability {
    Applies,
    Skipped(String),
}

impl Applicability {
    pub fn applies(&self) -> bool {
        matches!(self, Applicability::Applies)
    }
}
