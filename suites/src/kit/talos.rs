//! What the cluster says about the operating system its nodes run. Talos reports itself in each
//! Node's `status.nodeInfo.osImage` as `Talos (v1.11.2)` (siderolabs/talos
//! internal/integration/k8s/version.go asserts exactly that form), which tells a judge whether
//! Talos defaults (PodSecurity baseline, CoreDNS forwarding to the host DNS) are in play.

use crate::kit::cilium::Version;
use crate::kit::errors::KitError;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The distinct `osImage` values of the cluster's nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeOs {
    pub os_images: BTreeSet<String>,
}

impl NodeOs {
    pub fn from_nodes(nodes: &[Node]) -> NodeOs {
        NodeOs {
            os_images: nodes
                .iter()
                .filter_map(|n| n.status.as_ref()?.node_info.as_ref())
                .map(|i| i.os_image.clone())
                .collect(),
        }
    }

    /// The oldest Talos release among the nodes, when every node runs Talos.
    pub fn talos(&self) -> Option<Version> {
        let versions: Option<Vec<Version>> =
            self.os_images.iter().map(|i| talos_version(i)).collect();
        versions?.into_iter().min()
    }

    /// `Talos 1.11.2`, or the images the nodes report, for messages.
    pub fn describe(&self) -> String {
        match self.talos() {
            Some(v) => format!("Talos {v}"),
            None if self.os_images.is_empty() => "an unknown operating system".into(),
            None => self
                .os_images
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The release in a Talos `osImage` (`Talos (v1.11.2)`); None for any other operating system.
pub fn talos_version(os_image: &str) -> Option<Version> {
    let inner = os_image.strip_prefix("Talos (")?.strip_suffix(')')?;
    Version::parse(inner)
}

pub async fn node_os(client: &kube::Client) -> Result<NodeOs, KitError> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(KitError::api("list nodes".to_string()))?;
    Ok(NodeOs::from_nodes(&nodes.items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talos_reports_its_release_in_the_os_image() {
        assert_eq!(
            talos_version("Talos (v1.11.2)"),
            Some(Version::new(1, 11, 2))
        );
        assert_eq!(talos_version("Debian GNU/Linux 12 (bookworm)"), None);
        let mixed = NodeOs {
            os_images: ["Talos (v1.11.2)".to_string(), "Talos (v1.10.7)".to_string()].into(),
        };
        assert_eq!(mixed.talos(), Some(Version::new(1, 10, 7)));
        let other = NodeOs {
            os_images: [
                "Talos (v1.11.2)".to_string(),
                "Ubuntu 24.04.1 LTS".to_string(),
            ]
            .into(),
        };
        assert_eq!(other.talos(), None);
        assert_eq!(NodeOs::default().talos(), None);
    }
}
