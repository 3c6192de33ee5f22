//! The Talos machine-config patch a profile needs, derived from its Helm values: no Talos CNI,
//! no kube-proxy when Cilium replaces it, KubePrism on the port Cilium is told to use.

use crate::values::{get, text};
use serde::Serialize;
use serde_json::Value;
use suites::Features;

/// The KubePrism port Talos enables by default.
pub const KUBEPRISM_PORT: u16 = 7445;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Patch {
    pub machine: MachinePatch,
    pub cluster: ClusterPatch,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MachinePatch {
    pub features: MachineFeatures,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineFeatures {
    pub kube_prism: KubePrism,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KubePrism {
    pub enabled: bool,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterPatch {
    pub network: Network,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Network {
    pub cni: Cni,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cni {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Proxy {
    pub disabled: bool,
}

/// The patch for every node. Control planes and workers get the same one: Talos writes the
/// cluster section into each node's config, and nothing here is specific to a role.
pub fn patch(values: &Value, features: &Features) -> Patch {
    let port = match (
        text(values, "k8sServiceHost").as_deref(),
        get(values, "k8sServicePort"),
    ) {
        (Some("localhost") | Some("127.0.0.1"), Some(p)) => p
            .as_u64()
            .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(KUBEPRISM_PORT),
        _ => KUBEPRISM_PORT,
    };
    Patch {
        machine: MachinePatch {
            features: MachineFeatures {
                kube_prism: KubePrism {
                    enabled: true,
                    port,
                },
            },
        },
        cluster: ClusterPatch {
            network: Network {
                cni: Cni {
                    name: "none".into(),
                },
            },
            proxy: features
                .kube_proxy_replacement
                .then_some(Proxy { disabled: true }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::features::derive;
    use serde_json::json;

    #[test]
    fn proxy_is_disabled_only_with_kube_proxy_replacement() {
        let v = json!({"kubeProxyReplacement": true, "k8sServiceHost": "localhost", "k8sServicePort": 7445});
        let p = patch(&v, &derive(&v));
        assert_eq!(p.cluster.proxy, Some(Proxy { disabled: true }));
        assert_eq!(p.cluster.network.cni.name, "none");
        assert_eq!(
            p.machine.features.kube_prism,
            KubePrism {
                enabled: true,
                port: 7445
            }
        );
        let v = json!({});
        assert_eq!(patch(&v, &derive(&v)).cluster.proxy, None);
    }

    #[test]
    fn kubeprism_follows_the_port_cilium_uses() {
        let v = json!({"kubeProxyReplacement": true, "k8sServiceHost": "localhost", "k8sServicePort": "7446"});
        assert_eq!(
            patch(&v, &derive(&v)).machine.features.kube_prism.port,
            7446
        );
    }
}
