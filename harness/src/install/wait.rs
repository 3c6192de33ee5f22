//! Bounded, watch-based waits. A timeout names what was awaited and what was last seen.

use super::conditions::Readiness;
use futures::{Stream, StreamExt, TryStreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watch_object};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WaitError {
    #[error("timed out after {timeout:?} waiting for {what}; last seen: {last_seen}")]
    Timeout {
        what: String,
        timeout: Duration,
        last_seen: String,
    },
    #[error("watching {what} failed: {message}")]
    Watch { what: String, message: String },
}

/// Judge each item of a watch until one is ready, for at most `timeout`; remember what the
/// last unready item (or watch error) looked like for the timeout message. Watch errors (a 410
/// Gone, a dropped connection) are retried with the watcher's backoff, not fatal: the timeout
/// is the only bound.
async fn judge_stream<T, E: std::fmt::Display>(
    stream: impl Stream<Item = Result<T, E>>,
    mut judge: impl FnMut(T) -> Readiness,
    what: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let mut last_seen = "nothing yet".to_string();
    let watch = async {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item
                .map_err(|e| format!("watch error: {e}"))
                .and_then(&mut judge)
            {
                Ok(()) => return Ok(()),
                Err(seen) => last_seen = seen,
            }
        }
        Err(WaitError::Watch {
            what: what.to_string(),
            message: "the watch ended".into(),
        })
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(result) => result,
        Err(_) => Err(WaitError::Timeout {
            what: what.to_string(),
            timeout,
            last_seen,
        }),
    }
}

/// Watch one object until `ready` says so, for at most `timeout`.
pub async fn object<K>(
    api: Api<K>,
    name: &str,
    what: &str,
    ready: fn(Option<&K>) -> Readiness,
    timeout: Duration,
) -> Result<(), WaitError>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    judge_stream(
        watch_object(api, name).default_backoff(),
        |obj| ready(obj.as_ref()),
        what,
        timeout,
    )
    .await
}

/// Watch every object of a kind until `ready` holds for the whole list.
pub async fn all<K>(
    api: Api<K>,
    what: &str,
    ready: impl Fn(&[K]) -> Readiness,
    timeout: Duration,
) -> Result<(), WaitError>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = kube::runtime::reflector::store();
    let events =
        kube::runtime::reflector(writer, watcher::watcher(api, watcher::Config::default()))
            .default_backoff();
    let snapshots = events.map_ok(move |_| {
        reader
            .state()
            .iter()
            .map(|o| (**o).clone())
            .collect::<Vec<K>>()
    });
    judge_stream(snapshots, |objects| ready(&objects), what, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::conditions::daemonset_rolled_out;
    use http::{Request, Response};
    use k8s_openapi::api::apps::v1::DaemonSet;
    use kube::client::Body;

    fn rolling_list() -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/install/daemonset-cilium-rolling.json");
        let ds: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSetList", "metadata": {"resourceVersion": "100"}, "items": [ds]}).to_string()
    }

    #[tokio::test]
    async fn a_timeout_names_what_was_awaited_and_what_was_last_seen() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let server = tokio::spawn(async move {
            // The watcher lists first (by name), then opens a watch that never brings news.
            let (request, send) = handle.next_request().await.expect("a list request");
            assert_eq!(request.method(), "GET");
            let uri = request.uri().to_string();
            assert!(
                uri.starts_with("/apis/apps/v1/namespaces/kube-system/daemonsets?"),
                "{uri}"
            );
            assert!(
                uri.contains("fieldSelector=metadata.name%3Dcilium"),
                "{uri}"
            );
            send.send_response(
                Response::builder()
                    .body(Body::from(rolling_list().into_bytes()))
                    .unwrap(),
            );
            let (watch, _held) = handle.next_request().await.expect("a watch request");
            assert!(watch.uri().to_string().contains("watch=true"));
            std::future::pending::<()>().await;
        });
        let api: Api<DaemonSet> = Api::namespaced(client, "kube-system");
        let err = object(
            api,
            "cilium",
            "DaemonSet kube-system/cilium to be ready",
            daemonset_rolled_out,
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 300ms waiting for DaemonSet kube-system/cilium to be ready; last seen: 3 desired, 2 updated, 2 ready, 2 available"
        );
        server.abort();
    }
}
