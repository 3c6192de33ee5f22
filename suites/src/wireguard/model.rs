//! What a Cilium agent prints, read into the fields these checks use. Pure.
//!
//! Field names and types are those of cilium/cilium `api/v1/models` (generated from
//! `api/v1/openapi.yaml`): `StatusResponse` (`encryption`, `routing`), `EncryptionStatus`,
//! `WireguardStatus`, `WireguardInterface`, `WireguardPeer`, `Routing` and `DebugInfo`
//! (`cilium-version`, `encryption`). Go's `omitempty` drops zero counters and empty strings, so
//! every field defaults. `cilium-dbg status -o json` asks the WireGuard agent for
//! `Status(false)`, without peers; `cilium-dbg debuginfo --output json` for `Status(true)`,
//! with them (`daemon/cmd/status.go`, `daemon/cmd/debuginfo.go`).

use serde::{Deserialize, Serialize};

/// `cilium-dbg status -o json`, only the parts these checks read.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct StatusResponse {
    #[serde(default)]
    pub encryption: Option<EncryptionStatus>,
    #[serde(default)]
    pub routing: Option<Routing>,
}

/// `StatusResponse.routing`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct Routing {
    /// `Native` or `Tunnel`.
    #[serde(default)]
    pub inter_host_routing_mode: String,
    /// `BPF` or `Legacy`.
    #[serde(default)]
    pub intra_host_routing_mode: String,
    /// `vxlan` or `geneve` in tunnel mode.
    #[serde(default)]
    pub tunnel_protocol: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
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

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct WireguardStatus {
    #[serde(default)]
    pub interfaces: Vec<WireguardInterface>,
    /// Disabled | Enabled | OptedOut.
    #[serde(default)]
    pub node_encryption: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
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

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
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

/// `cilium-dbg debuginfo --output json`, only its version and `.encryption`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct DebugInfo {
    /// `1.18.0 274205f0 2025-07-28T15:22:50+02:00 go version go1.24.5 linux/amd64`.
    #[serde(default)]
    pub cilium_version: Option<String>,
    #[serde(default)]
    pub encryption: Option<DebugInfoEncryption>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct DebugInfoEncryption {
    #[serde(default)]
    pub wireguard: Option<WireguardStatus>,
}

/// Parses an agent's `cilium-dbg status -o json`: its encryption (required) and routing.
pub fn parse_status(stdout: &str) -> Result<(EncryptionStatus, Option<Routing>), String> {
    let r: StatusResponse = serde_json::from_str(stdout).map_err(|e| e.to_string())?;
    let encryption = r
        .encryption
        .ok_or_else(|| "the status has no .encryption object".to_string())?;
    Ok((encryption, r.routing))
}

/// Parses `cilium-dbg debuginfo --output json`: the agent's version line, and the WireGuard
/// status with peers (`None` when WireGuard is off or the device could not be read).
pub fn parse_debuginfo(stdout: &str) -> Result<(Option<String>, Option<WireguardStatus>), String> {
    let d: DebugInfo = serde_json::from_str(stdout).map_err(|e| e.to_string())?;
    Ok((d.cilium_version, d.encryption.and_then(|e| e.wireguard)))
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
