//! Transparent encryption with WireGuard, as each Cilium agent reports it.
//!
//! Every agent is asked twice ([`observe`]): `cilium-dbg status -o json` for `.encryption.mode`,
//! the `cilium_wg0` interface with its peer count and the routing mode, and `cilium-dbg debuginfo
//! --output json` for the peers themselves and the agent's version ([`model`]). The cluster's
//! view is the CiliumNodes (each publishes its key in the annotation
//! `network.cilium.io/wg-pub-key`, its InternalIP and pod CIDRs), the endpoints (Ready pods off
//! the host network) and `cilium-config`. The judges ([`judge`]) compare the two, by the routing
//! mode and release the agent runs. The handshake check places one idle client on every node
//! ([`objects`]), pings every other client from each, and reads the agents again.

pub mod judge;
pub mod model;
pub mod objects;
pub mod observe;
pub mod prefix;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
use crate::runner::SuiteImpl;

pub const NAME: SuiteName = SuiteName::new("wireguard");

/// The one check that needs clients on every node.
const HANDSHAKE_AFTER_TRAFFIC: &str = "handshake-after-traffic";

pub const SUITE: SuiteDecl = SuiteDecl {
    runs_alone: None,
    name: NAME,
    applies: crate::rules::wireguard,
    checks: CHECKS,
    run: Some(crate::runner::runner::<Wireguard>),
};

const CHECKS: &[CheckDecl] = &[
    check! {
        name: "encryption-mode",
        proves: "every agent reports encryption mode Wireguard",
        anchor: "cilium-dbg status -o json: .encryption.mode",
        assumes: "StatusResponse.encryption.mode is Wireguard with a cilium_wg0 interface when encryption.type=wireguard (every release with WireGuard, 1.10 and later)",
        observe: observe::snapshot,
        judge: judge::mode,
    },
    check! {
        name: "peer-count",
        proves: "every agent has one peer per other node",
        anchor: "cilium-dbg status: wireguard peer-count",
        assumes: "the agent keeps one peer per other node that publishes a key, node-encryption opt-out included (pkg/wireguard/agent updatePeer)",
        observe: observe::snapshot,
        judge: judge::peer_count,
    },
    check! {
        name: "peer-keys-match-nodes",
        proves: "every peer key is another node's network.cilium.io/wg-pub-key",
        anchor: "CiliumNode annotations",
        assumes: "each agent publishes its interface's public key as the network.cilium.io/wg-pub-key annotation of its CiliumNode and peers with the others by that key",
        observe: observe::snapshot,
        judge: judge::peer_keys,
    },
    check! {
        name: "allowed-ips-cover-pod-cidrs",
        proves: "every remote node and, in native routing, every remote endpoint is reachable through its own node's peer (WireGuard's longest-prefix routing over the allowed IPs)",
        anchor: "cilium-dbg debuginfo: wireguard peers allowed-ips",
        assumes: "pkg/wireguard/agent: a peer always holds its node's IPs; in native routing every endpoint on that node as a /32 (or a prefix the ipcache holds), whatever the IPAM mode; in tunnel mode node IPs suffice from 1.15 (encapsulate, then encrypt: cilium/cilium#29000) and are all the agent adds from 1.18 (cilium/cilium#35895). The name is kept for filters; a pod CIDR is not required",
        observe: observe::snapshot,
        judge: judge::allowed_ips,
    },
    check! {
        name: HANDSHAKE_AFTER_TRAFFIC,
        proves: "peers show a recent handshake after cross-node traffic",
        anchor: "cilium-dbg debuginfo: wireguard peers last-handshake-time",
        assumes: "WireGuard renews a session older than REKEY_AFTER_TIME (120 s) when it sends, and counts received bytes per peer (transfer-rx); cross-node pod pings go through the tunnel in both routing modes",
        observe: observe::handshakes,
        judge: judge::handshakes,
    },
];

pub(crate) struct Wireguard;

impl SuiteImpl for Wireguard {
    type Fixture = observe::WgFixture;

    async fn setup(
        env: &Env,
        wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<observe::WgFixture, KitError> {
        observe::setup(env, wanted.contains(&HANDSHAKE_AFTER_TRAFFIC), log).await
    }
}
