//! The Talos machine-config patch a profile needs: no Talos CNI, no kube-proxy when Cilium
//! replaces it and host DNS forwarding off when the values turn BPF host routing back on (from
//! the values), KubePrism on the port of the cluster description. The port is the cluster's,
//! never the values': values that point Cilium elsewhere are a lint error, not a reason to move
//! KubePrism (onto 6443, say, where the API server listens on control planes). Each setting is
//! written in the form the cell's Talos release takes (release table): a v1alpha1 key up to
//! Talos 1.13, its own document from 1.14.

use crate::cluster::ClusterDescription;
use crate::releases::{Form, TalosRelease};
use crate::values::{self, get, text};
use serde_json::{Map, Value, json};
use suites::Features;
use talos_docker::{ConfigPatch, PatchSource, PatchTarget};

/// The KubePrism port Talos enables by default.
pub const KUBEPRISM_PORT: u16 = 7445;

/// What the harness asks of Talos for one cell, whatever form the release takes it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub kube_proxy_off: bool,
    pub kubeprism_port: u16,
    /// `Some(false)`: CoreDNS upstream queries do not go through Talos' host DNS.
    pub forward_kube_dns_to_host: Option<bool>,
}

/// Derive the settings from the cluster description and the merged Helm values.
pub fn settings(cluster: &ClusterDescription, values: &Value, features: &Features) -> Settings {
    // Talos runs KubePrism on its default port unless the cluster says otherwise.
    let kubeprism_port = cluster.kubeprism_port().unwrap_or(KUBEPRISM_PORT);
    // With BPF host routing, replies from Talos' host DNS to CoreDNS are lost (the overlay's
    // reason for bpf.hostLegacyRouting); values that turn legacy routing off take the other
    // documented way out: CoreDNS asks the upstream resolvers itself.
    let bpf_host_routing = get(values, "bpf.hostLegacyRouting") == Some(&Value::Bool(false))
        || text(values, "bpf.hostLegacyRouting").as_deref() == Some("false");
    Settings {
        kube_proxy_off: features.kube_proxy_replacement,
        kubeprism_port,
        forward_kube_dns_to_host: bpf_host_routing.then_some(false),
    }
}

/// The patch documents for control planes and for workers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Patch {
    pub control_plane: Vec<Value>,
    pub worker: Vec<Value>,
}

/// Which nodes a document goes to. Documents that exist only in control-plane configs (Flannel,
/// kube-proxy) are patched there alone, as Talos' own CI does (`--config-patch-control-plane`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nodes {
    All,
    ControlPlanes,
}

#[derive(Default)]
struct Builder {
    /// The v1alpha1 document, shared by every node (its cluster section is in each config).
    v1alpha1: Map<String, Value>,
    documents: Vec<(Nodes, Value)>,
}

impl Builder {
    fn set(
        &mut self,
        form: &Form,
        nodes: Nodes,
        v1alpha1_value: Value,
        document: Map<String, Value>,
    ) {
        match form {
            Form::V1alpha1(path) => {
                let mut root = Value::Object(std::mem::take(&mut self.v1alpha1));
                values::set(&mut root, path, v1alpha1_value);
                self.v1alpha1 = match root {
                    Value::Object(m) => m,
                    _ => unreachable!("set keeps an object at the root"),
                };
            }
            Form::Document(kind) => {
                let mut doc = Map::new();
                doc.insert("apiVersion".into(), json!("v1alpha1"));
                doc.insert("kind".into(), json!(kind));
                doc.extend(document);
                self.documents.push((nodes, Value::Object(doc)));
            }
        }
    }

    fn finish(self) -> Patch {
        let mut patch = Patch::default();
        if !self.v1alpha1.is_empty() {
            let doc = Value::Object(self.v1alpha1);
            patch.control_plane.push(doc.clone());
            patch.worker.push(doc);
        }
        for (nodes, doc) in self.documents {
            if nodes == Nodes::All {
                patch.worker.push(doc.clone());
            }
            patch.control_plane.push(doc);
        }
        patch
    }
}

fn fields(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The patch for one Talos release.
pub fn patch(settings: &Settings, talos: &TalosRelease) -> Patch {
    let forms = &talos.config;
    let mut b = Builder::default();
    // Flannel is the default CNI; with documents it exists while its document does.
    b.set(
        &forms.cni_none,
        Nodes::ControlPlanes,
        json!("none"),
        fields(json!({"$patch": "delete"})),
    );
    if settings.kube_proxy_off {
        b.set(
            &forms.kube_proxy_off,
            Nodes::ControlPlanes,
            json!(true),
            fields(json!({"enabled": false})),
        );
    }
    b.set(
        &forms.kubeprism,
        Nodes::All,
        json!({"enabled": true, "port": settings.kubeprism_port}),
        fields(json!({"port": settings.kubeprism_port})),
    );
    if let Some(forward) = settings.forward_kube_dns_to_host {
        b.set(
            &forms.host_dns,
            Nodes::All,
            json!({"forwardKubeDNSToHost": forward}),
            fields(json!({"hostDNS": {"forwardKubeDNSToHost": forward}})),
        );
    }
    b.finish()
}

/// Documents as one multi-document YAML text.
pub fn yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_saphyr::to_string(d).expect("plain data always serialises"))
        .collect::<Vec<_>>()
        .join("---\n")
}

impl Patch {
    /// The patches as `talosctl gen config` takes them: one for every node when both roles get
    /// the same documents, else one per role.
    pub fn config_patches(&self) -> Vec<ConfigPatch> {
        let inline = |target, docs: &[Value]| ConfigPatch {
            target,
            source: PatchSource::Inline(yaml(docs)),
        };
        if self.control_plane == self.worker {
            return vec![inline(PatchTarget::All, &self.control_plane)];
        }
        let mut out = vec![inline(PatchTarget::ControlPlane, &self.control_plane)];
        if !self.worker.is_empty() {
            out.push(inline(PatchTarget::Worker, &self.worker));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::features::derive;
    use crate::profile::overlay::Overlay;
    use crate::releases::{Minor, ReleaseTable};

    fn harness_cluster() -> ClusterDescription {
        ClusterDescription::talos_in_docker(&Overlay::embedded())
    }

    fn talos(minor: u64) -> &'static TalosRelease {
        ReleaseTable::embedded()
            .talos
            .iter()
            .find(|t| t.minor == Minor(1, minor))
            .unwrap()
    }

    fn kpr() -> Value {
        json!({"kubeProxyReplacement": true, "k8sServiceHost": "localhost", "k8sServicePort": 7445})
    }

    fn of(v: &Value, minor: u64) -> Patch {
        patch(&settings(&harness_cluster(), v, &derive(v)), talos(minor))
    }

    #[test]
    fn before_1_14_one_v1alpha1_patch_for_every_node() {
        let p = of(&kpr(), 13);
        assert_eq!(p.control_plane, p.worker);
        assert_eq!(
            p.control_plane,
            vec![json!({
                "cluster": {"network": {"cni": {"name": "none"}}, "proxy": {"disabled": true}},
                "machine": {"features": {"kubePrism": {"enabled": true, "port": 7445}}}
            })]
        );
        assert_eq!(p.config_patches().len(), 1);
        let without = of(&json!({}), 13);
        assert_eq!(without.control_plane[0]["cluster"].get("proxy"), None);
    }

    #[test]
    fn talos_1_14_takes_documents_and_control_planes_get_their_own() {
        let p = of(&kpr(), 14);
        assert_eq!(
            p.control_plane,
            vec![
                json!({"apiVersion": "v1alpha1", "kind": "KubeFlannelCNIConfig", "$patch": "delete"}),
                json!({"apiVersion": "v1alpha1", "kind": "KubeProxyConfig", "enabled": false}),
                json!({"apiVersion": "v1alpha1", "kind": "KubePrismConfig", "port": 7445}),
            ]
        );
        assert_eq!(
            p.worker,
            vec![json!({"apiVersion": "v1alpha1", "kind": "KubePrismConfig", "port": 7445})]
        );
        let targets: Vec<PatchTarget> = p.config_patches().iter().map(|c| c.target).collect();
        assert_eq!(targets, [PatchTarget::ControlPlane, PatchTarget::Worker]);
        // kube-proxy stays when Cilium does not replace it.
        assert!(
            !of(&json!({}), 14)
                .control_plane
                .iter()
                .any(|d| d["kind"] == "KubeProxyConfig")
        );
    }

    #[test]
    fn kubeprism_stays_on_the_cluster_port_whatever_the_values_say() {
        // A values file migrated from k3s: the patch must not move KubePrism onto 6443.
        let mut v = kpr();
        v["k8sServiceHost"] = json!("127.0.0.1");
        v["k8sServicePort"] = json!(6443);
        assert_eq!(
            of(&v, 12).worker[0]["machine"]["features"]["kubePrism"]["port"],
            7445
        );
        assert_eq!(of(&v, 14).worker[0]["port"], 7445);
    }

    #[test]
    fn host_dns_forwarding_goes_off_only_with_bpf_host_routing() {
        let mut v = kpr();
        assert_eq!(
            settings(&harness_cluster(), &v, &derive(&v)).forward_kube_dns_to_host,
            None
        );
        values::set(&mut v, "bpf.hostLegacyRouting", json!(false));
        let p13 = of(&v, 13);
        assert_eq!(
            p13.worker[0]["machine"]["features"]["hostDNS"],
            json!({"forwardKubeDNSToHost": false})
        );
        let p14 = of(&v, 14);
        assert!(p14.worker.contains(
            &json!({"apiVersion": "v1alpha1", "kind": "ResolverConfig", "hostDNS": {"forwardKubeDNSToHost": false}})
        ));
    }

    #[test]
    fn the_yaml_is_one_document_per_entry() {
        let text = yaml(&of(&kpr(), 14).control_plane);
        let back: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        assert_eq!(back, of(&kpr(), 14).control_plane);
        assert!(text.contains("$patch: delete"), "{text}");
    }
}
