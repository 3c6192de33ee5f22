//! What the wireguard suite creates: nothing for the status checks (they read the agents), and
//! for the handshake check one idle client bound to each node, so every node pair can exchange
//! traffic.

use crate::kit::images::ImageRef;
use crate::kit::workload::{self, Placement};
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;

/// Prefix of the per-node clients of the handshake check.
pub const CLIENT_PREFIX: &str = "wg-client-";

/// The `i`th client, bound to `node` directly: one client per node, whatever its taints.
pub fn client_pod(
    i: usize,
    node: &str,
    labels: &BTreeMap<String, String>,
    image: &ImageRef,
) -> (String, Pod) {
    let name = format!("{CLIENT_PREFIX}{i}");
    let mut p = workload::client_pod(&name, labels, image, &Placement::Anywhere);
    if let Some(spec) = p.spec.as_mut() {
        spec.node_name = Some(node.into());
    }
    (name, p)
}
