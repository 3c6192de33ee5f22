//! Readiness of what a Cilium install creates, as pure functions over the observed object.
//! `Ok(())` means ready; `Err` describes what was last seen, for timeout messages.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub type Readiness = Result<(), String>;

fn generation_seen(meta_gen: Option<i64>, observed: Option<i64>) -> Readiness {
    match (meta_gen, observed) {
        (Some(g), Some(o)) if o >= g => Ok(()),
        (Some(g), o) => Err(format!(
            "controller has not observed generation {g} (observed {o:?})"
        )),
        (None, _) => Ok(()),
    }
}

/// Every scheduled pod is updated, ready and available, as `kubectl rollout status` wants.
pub fn daemonset_rolled_out(ds: Option<&DaemonSet>) -> Readiness {
    let ds = ds.ok_or("not created yet")?;
    let st = ds.status.as_ref().ok_or("no status yet")?;
    generation_seen(ds.metadata.generation, st.observed_generation)?;
    let desired = st.desired_number_scheduled;
    let updated = st.updated_number_scheduled.unwrap_or(0);
    let available = st.number_available.unwrap_or(0);
    if desired > 0 && updated == desired && st.number_ready == desired && available == desired {
        Ok(())
    } else {
        Err(format!(
            "{desired} desired, {updated} updated, {} ready, {available} available",
            st.number_ready
        ))
    }
}

/// All replicas updated and available.
pub fn deployment_available(d: Option<&Deployment>) -> Readiness {
    let d = d.ok_or("not created yet")?;
    let st = d.status.as_ref().ok_or("no status yet")?;
    generation_seen(d.metadata.generation, st.observed_generation)?;
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if updated == want && available == want && st.unavailable_replicas.unwrap_or(0) == 0 {
        Ok(())
    } else {
        Err(format!(
            "{want} wanted, {updated} updated, {available} available"
        ))
    }
}

/// Every replica ready and on the update revision, as `kubectl rollout status` judges a
/// StatefulSet with the RollingUpdate strategy (kubectl's StatefulSetStatusViewer).
pub fn statefulset_ready(s: Option<&StatefulSet>) -> Readiness {
    let s = s.ok_or("not created yet")?;
    let st = s.status.as_ref().ok_or("no status yet")?;
    generation_seen(s.metadata.generation, st.observed_generation)?;
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = st.ready_replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let same_revision = st.update_revision.is_none() || st.current_revision == st.update_revision;
    if ready == want && updated == want && same_revision {
        Ok(())
    } else {
        Err(format!("{want} wanted, {ready} ready, {updated} updated"))
    }
}

pub fn crd_established(crd: Option<&CustomResourceDefinition>) -> Readiness {
    let crd = crd.ok_or("not created yet")?;
    let conds = crd.status.as_ref().and_then(|s| s.conditions.as_ref());
    match conds.and_then(|c| c.iter().find(|c| c.type_ == "Established")) {
        Some(c) if c.status == "True" => Ok(()),
        Some(c) => Err(format!(
            "Established={} ({})",
            c.status,
            c.message.clone().unwrap_or_default()
        )),
        None => Err("no Established condition yet".into()),
    }
}

/// A node's Ready condition, with the kubelet's reason when it is not.
pub fn node_ready(node: &Node) -> Readiness {
    let conds = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    match conds.and_then(|c| c.iter().find(|c| c.type_ == "Ready")) {
        Some(c) if c.status == "True" => Ok(()),
        Some(c) => Err(format!(
            "Ready={} ({}: {})",
            c.status,
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default()
        )),
        None => Err("no Ready condition yet".into()),
    }
}

/// `expected` nodes registered and Ready.
pub fn nodes_ready(nodes: &[Node], expected: usize) -> Readiness {
    let not_ready: Vec<String> = nodes
        .iter()
        .filter_map(|n| {
            node_ready(n)
                .err()
                .map(|why| format!("{} {why}", n.metadata.name.clone().unwrap_or_default()))
        })
        .collect();
    if nodes.len() >= expected && not_ready.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {expected} nodes registered; not ready: [{}]",
            nodes.len(),
            not_ready.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    fn fixture<T: DeserializeOwned>(name: &str) -> T {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/install")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn daemonset_mid_rollout_reports_counts() {
        let ds: DaemonSet = fixture("daemonset-cilium-rolling.json");
        assert_eq!(
            daemonset_rolled_out(Some(&ds)),
            Err("3 desired, 2 updated, 2 ready, 2 available".into())
        );
        let ds: DaemonSet = fixture("daemonset-cilium-ready.json");
        assert_eq!(daemonset_rolled_out(Some(&ds)), Ok(()));
        assert_eq!(daemonset_rolled_out(None), Err("not created yet".into()));
    }

    #[test]
    fn stale_status_is_not_ready() {
        let mut ds: DaemonSet = fixture("daemonset-cilium-ready.json");
        ds.metadata.generation = Some(3);
        assert!(
            daemonset_rolled_out(Some(&ds))
                .unwrap_err()
                .contains("generation 3")
        );
    }

    #[test]
    fn deployment_availability() {
        let d: Deployment = fixture("deployment-cilium-operator-progressing.json");
        assert_eq!(
            deployment_available(Some(&d)),
            Err("1 wanted, 1 updated, 0 available".into())
        );
        let d: Deployment = fixture("deployment-cilium-operator-available.json");
        assert_eq!(deployment_available(Some(&d)), Ok(()));
    }

    #[test]
    fn nodes_without_cni_are_not_ready_with_the_kubelet_reason() {
        let nodes: Vec<Node> = fixture("nodes-cni-not-initialized.json");
        let err = nodes_ready(&nodes, 3).unwrap_err();
        assert!(err.starts_with("3 of 3 nodes registered; not ready: [t-worker-1 Ready=False (KubeletNotReady: container runtime network not ready"), "{err}");
        assert!(
            nodes_ready(&nodes[..1], 3)
                .unwrap_err()
                .starts_with("1 of 3")
        );
    }

    #[test]
    fn statefulset_readiness() {
        use k8s_openapi::api::apps::v1::{StatefulSetSpec, StatefulSetStatus};
        let sts = |ready, updated| StatefulSet {
            metadata: kube::api::ObjectMeta {
                generation: Some(1),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(1),
                ..Default::default()
            }),
            status: Some(StatefulSetStatus {
                observed_generation: Some(1),
                replicas: 1,
                ready_replicas: Some(ready),
                updated_replicas: Some(updated),
                current_revision: Some("spire-server-6d4f".into()),
                update_revision: Some("spire-server-6d4f".into()),
                ..Default::default()
            }),
        };
        assert_eq!(statefulset_ready(Some(&sts(1, 1))), Ok(()));
        assert_eq!(
            statefulset_ready(Some(&sts(0, 1))),
            Err("1 wanted, 0 ready, 1 updated".into())
        );
        assert_eq!(statefulset_ready(None), Err("not created yet".into()));
    }

    #[test]
    fn crd_establishment() {
        let crd: CustomResourceDefinition = fixture("crd-gateways-established.json");
        assert_eq!(crd_established(Some(&crd)), Ok(()));
        let mut pending = crd.clone();
        pending.status = None;
        assert_eq!(
            crd_established(Some(&pending)),
            Err("no Established condition yet".into())
        );
    }
}
