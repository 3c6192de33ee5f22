//! What the cluster says about the Cilium it runs: the agent's version (from the `cilium`
//! DaemonSet's image) and its configuration (the `cilium-config` ConfigMap the Helm chart
//! renders). Judges use these to know which upstream behaviour applies, and hints use them to
//! name a known bug only where its version range and mode match.

use crate::kit::errors::KitError;
use crate::kit::exec::PodRef;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const NAMESPACE: &str = "kube-system";
pub const DAEMONSET: &str = "cilium";
pub const AGENT_CONTAINER: &str = "cilium-agent";
pub const CONFIG_MAP: &str = "cilium-config";
/// The agents' pods, as the chart labels them.
pub const AGENT_SELECTOR: &str = "k8s-app=cilium";

/// One agent: the node it serves and the container to exec into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub node: String,
    pub pod: PodRef,
}

/// The Ready agents, one per node, in node order; an error when there is none.
pub async fn ready_agents(client: &kube::Client) -> Result<Vec<Agent>, KitError> {
    let pods = Api::<Pod>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default().labels(AGENT_SELECTOR))
        .await
        .map_err(KitError::api(format!(
            "list pods {AGENT_SELECTOR} in {NAMESPACE}"
        )))?;
    let mut agents: Vec<Agent> = pods
        .items
        .iter()
        .filter(|p| crate::kit::wait::is_ready(p))
        .filter_map(|p| {
            Some(Agent {
                node: p.spec.as_ref()?.node_name.clone()?,
                pod: PodRef {
                    namespace: NAMESPACE.into(),
                    name: p.metadata.name.clone()?,
                    container: AGENT_CONTAINER.into(),
                },
            })
        })
        .collect();
    agents.sort_by(|a, b| a.node.cmp(&b.node));
    if agents.is_empty() {
        return Err(KitError::Missing {
            what: format!("a Ready Cilium agent ({AGENT_SELECTOR} in {NAMESPACE})"),
            hint: format!(
                "{} pods matched, none Ready with a node; is Cilium installed and healthy?",
                pods.items.len()
            ),
        });
    }
    Ok(agents)
}

/// A Cilium release, as `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// The leading `v?X.Y.Z` of an image tag or a `cilium-dbg version` line; a pre-release
    /// suffix (`-rc.1`) is ignored.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim().trim_start_matches('v');
        let core: String = t
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        Some(Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().flatten().unwrap_or(0),
        })
    }

    pub fn at_least(self, major: u32, minor: u32, patch: u32) -> bool {
        self >= Version::new(major, minor, patch)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The Cilium a run sees. Either part may be missing (a cluster that names things differently);
/// judges then say what they could not tell rather than guess.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiliumFacts {
    /// The agent image, as the DaemonSet names it.
    pub image: Option<String>,
    pub version: Option<Version>,
    /// `cilium-config` as rendered: keys such as `routing-mode`, `ipam`,
    /// `enable-host-legacy-routing`, `gateway-api-hostnetwork-enabled`.
    pub config: BTreeMap<String, String>,
}

impl CiliumFacts {
    pub fn flag(&self, key: &str) -> Option<bool> {
        match self.config.get(key).map(|v| v.trim()) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        }
    }

    /// `Cilium 1.19.4` or `Cilium (version unknown)`, for messages.
    pub fn describe_version(&self) -> String {
        match self.version {
            Some(v) => format!("Cilium {v}"),
            None => "Cilium (version unknown)".into(),
        }
    }
}

/// The image tag (or digest-less reference) of the agent container.
pub fn agent_version(image: &str) -> Option<Version> {
    let without_digest = image.split('@').next()?;
    let last = without_digest.rsplit('/').next()?;
    let (_, tag) = last.split_once(':')?;
    Version::parse(tag)
}

/// Reads the agent image and `cilium-config`; a missing object leaves its part empty.
pub async fn facts(client: &kube::Client) -> Result<CiliumFacts, KitError> {
    let ds = Api::<DaemonSet>::namespaced(client.clone(), NAMESPACE)
        .get_opt(DAEMONSET)
        .await
        .map_err(KitError::api(format!(
            "get daemonset {NAMESPACE}/{DAEMONSET}"
        )))?;
    let image = ds
        .and_then(|d| d.spec)
        .and_then(|s| s.template.spec)
        .and_then(|s| {
            s.containers
                .into_iter()
                .find(|c| c.name == AGENT_CONTAINER)
                .and_then(|c| c.image)
        });
    let config = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE)
        .get_opt(CONFIG_MAP)
        .await
        .map_err(KitError::api(format!(
            "get configmap {NAMESPACE}/{CONFIG_MAP}"
        )))?
        .and_then(|c| c.data)
        .unwrap_or_default();
    Ok(CiliumFacts {
        version: image.as_deref().and_then(agent_version),
        image,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_image_tags_and_version_lines() {
        assert_eq!(
            agent_version("quay.io/cilium/cilium:v1.18.4"),
            Some(Version::new(1, 18, 4))
        );
        assert_eq!(
            agent_version("registry.local:5000/cilium/cilium:v1.19.0-rc.1"),
            Some(Version::new(1, 19, 0))
        );
        assert_eq!(agent_version("quay.io/cilium/cilium@sha256:abc"), None);
        assert_eq!(
            // The `cilium-version` of a published 1.18.0 debug report.
            Version::parse(
                "1.18.0 274205f0 2025-07-28T15:22:50+02:00 go version go1.24.5 linux/amd64"
            ),
            Some(Version::new(1, 18, 0))
        );
        assert!(Version::new(1, 19, 5).at_least(1, 19, 5));
        assert!(!Version::new(1, 18, 12).at_least(1, 19, 0));
    }
}
