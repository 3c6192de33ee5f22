//! The Talos machine-config patch a profile needs: no Talos CNI, no kube-proxy when Cilium
//! replaces it (from the values), KubePrism on the port of the cluster description. The port is
//! the cluster's, never the values': values that point Cilium elsewhere are a lint error, not a
//! reason to move KubePrism (onto 6443, say, where the API server listens on control planes).

use crate::cluster::ClusterDescription;
use serde::Serialize;
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
pub fn patch(cluster: &ClusterDescription, features: &Features) -> Patch {
    // Talos runs KubePrism on its default port even when Cilium is told to go elsewhere.
    let port = cluster.kubeprism_port().unwrap_or(KUBEPRISM_PORT);
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
    use crate::profile::overlay::Overlay;
    use serde_json::json;

    fn harness_cluster() -> ClusterDescription {
        ClusterDescription::talos_in_docker(&Overlay::embedded())
    }

    #[test]
    fn proxy_is_disabled_only_with_kube_proxy_replacement() {
        let v = json!({"kubeProxyReplacement": true, "k8sServiceHost": "localhost", "k8sServicePort": 7445});
        let p = patch(&harness_cluster(), &derive(&v));
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
        assert_eq!(patch(&harness_cluster(), &derive(&v)).cluster.proxy, None);
    }

    #[test]
    fn kubeprism_stays_on_the_cluster_port_whatever_the_values_say() {
        // A values file migrated from k3s: the patch must not move KubePrism onto 6443.
        let v = json!({"kubeProxyReplacement": true, "k8sServiceHost": "127.0.0.1", "k8sServicePort": 6443});
        assert_eq!(
            patch(&harness_cluster(), &derive(&v))
                .machine
                .features
                .kube_prism
                .port,
            7445
        );
    }
}
