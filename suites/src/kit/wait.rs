//! Bounded, watch-based waits.
//!
//! Each wait is kube's `await_condition` (a watch on one named object) under a tokio timeout. The
//! condition also records a description of the last version it saw, so a timeout says what was
//! awaited and what the object looked like at the end (e.g. `ImagePullBackOff` for a pinned image
//! that the nodes cannot pull), which is usually the whole diagnosis.

use crate::kit::errors::{KitError, describe_kube_error};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Waits until `done` holds for the object `name`, for at most `timeout`.
pub async fn until<K>(
    api: Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&K) -> bool + Send + 'static,
    describe: impl Fn(Option<&K>) -> String + Send + 'static,
) -> Result<K, KitError>
where
    K: kube::Resource + Clone + Debug + Send + DeserializeOwned + 'static,
{
    let last = Arc::new(Mutex::new(String::from(
        "nothing yet (no watch event arrived)",
    )));
    let seen = Arc::clone(&last);
    let cond = move |obj: Option<&K>| {
        if let Ok(mut l) = seen.lock() {
            *l = describe(obj);
        }
        obj.is_some_and(&done)
    };
    match tokio::time::timeout(timeout, await_condition(api, name, cond)).await {
        Ok(Ok(Some(obj))) => Ok(obj),
        Ok(Ok(None)) => Err(KitError::Missing {
            what: what.to_string(),
            hint: "the object disappeared while being awaited".into(),
        }),
        Ok(Err(e)) => Err(KitError::Api {
            action: format!("watch for {what}"),
            detail: match e {
                kube::runtime::wait::Error::ProbeFailed(
                    kube::runtime::watcher::Error::InitialListFailed(k),
                )
                | kube::runtime::wait::Error::ProbeFailed(
                    kube::runtime::watcher::Error::WatchStartFailed(k),
                )
                | kube::runtime::wait::Error::ProbeFailed(
                    kube::runtime::watcher::Error::WatchFailed(k),
                ) => describe_kube_error(&k),
                other => other.to_string(),
            },
        }),
        Err(_) => Err(KitError::Timeout {
            what: what.to_string(),
            waited: timeout,
            last_seen: last.lock().map(|l| l.clone()).unwrap_or_default(),
        }),
    }
}

pub async fn pod_ready(api: Api<Pod>, name: &str, timeout: Duration) -> Result<Pod, KitError> {
    let what = format!("pod {}/{name} to be Ready", api_namespace(&api));
    until(api, name, &what, timeout, is_ready, describe_pod).await
}

/// Running with an IP, Ready or not: for pods that are meant never to become Ready.
pub async fn pod_running(api: Api<Pod>, name: &str, timeout: Duration) -> Result<Pod, KitError> {
    let what = format!("pod {}/{name} to be Running", api_namespace(&api));
    until(
        api,
        name,
        &what,
        timeout,
        |p: &Pod| {
            let s = p.status.as_ref();
            s.and_then(|s| s.phase.as_deref()) == Some("Running")
                && s.and_then(|s| s.pod_ip.as_deref()).is_some()
        },
        describe_pod,
    )
    .await
}

fn api_namespace(api: &Api<Pod>) -> String {
    // kube's Api keeps its namespace private; the URL path carries it.
    api.resource_url()
        .split('/')
        .skip_while(|s| *s != "namespaces")
        .nth(1)
        .unwrap_or("?")
        .to_string()
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One line about where a pod is stuck: phase, node, unmet conditions, waiting containers.
pub fn describe_pod(pod: Option<&Pod>) -> String {
    let Some(pod) = pod else {
        return "the pod does not exist".into();
    };
    let Some(status) = &pod.status else {
        return "no status yet".into();
    };
    let mut parts = vec![status.phase.clone().unwrap_or_else(|| "no phase".into())];
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        parts.push(format!("on node {node}"));
    }
    if let Some(ip) = &status.pod_ip {
        parts.push(format!("ip {ip}"));
    }
    for c in status.conditions.iter().flatten() {
        if c.status != "True" {
            let why = [c.reason.as_deref(), c.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            parts.push(if why.is_empty() {
                format!("{}=False", c.type_)
            } else {
                format!("{}=False ({why})", c.type_)
            });
        }
    }
    let mut pull_failed = false;
    for cs in status.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_default();
            pull_failed |= matches!(reason.as_str(), "ImagePullBackOff" | "ErrImagePull");
            let msg = w
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            parts.push(format!("container {} waiting: {reason}{msg}", cs.name));
        }
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            parts.push(format!(
                "container {} terminated: exit {} {}",
                cs.name,
                t.exit_code,
                t.reason.clone().unwrap_or_default()
            ));
        }
    }
    let mut line = parts.join("; ");
    if pull_failed {
        line.push_str(&format!(
            " -> the nodes cannot pull the image; point {} at a reachable mirror or override the image",
            crate::kit::images::ENV_REGISTRY
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> Pod {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn a_pull_failure_names_the_image_and_the_fix() {
        let d = describe_pod(Some(&pod("pod-pending-imagepullbackoff.json")));
        assert!(d.starts_with("Pending; on node w1; ip 10.244.1.12; Ready=False (ContainersNotReady: containers with unready status: [client])"), "{d}");
        assert!(d.contains("container client waiting: ImagePullBackOff (Back-off pulling image \"quay.io/cilium/alpine-curl:v1.10.0@sha256:913e8c9f3d960dde03882defa0edd3a919d529c2eb167caa7f54194528bde364\")"), "{d}");
        assert!(
            d.ends_with("point HARNESS_IMAGE_REGISTRY at a reachable mirror or override the image"),
            "{d}"
        );
        assert!(!is_ready(&pod("pod-pending-imagepullbackoff.json")));
    }

    #[test]
    fn an_unschedulable_pod_says_why() {
        let d = describe_pod(Some(&pod("pod-unschedulable-anti-affinity.json")));
        assert_eq!(
            d,
            "Pending; PodScheduled=False (Unschedulable: 0/2 nodes are available: 1 node(s) didn't match pod anti-affinity rules, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.)"
        );
    }

    #[test]
    fn ready_pods_are_ready() {
        assert!(is_ready(&pod("pod-client-ready.json")));
        assert_eq!(describe_pod(None), "the pod does not exist");
    }
}
