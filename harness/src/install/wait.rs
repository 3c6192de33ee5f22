//! Bounded, watch-based waits. A timeout names what was awaited and what was last seen.

use super::conditions::Readiness;
use futures::{StreamExt, TryStreamExt};
use kube::runtime::watcher::{self, watch_object};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WaitError {
    #[error("timed out after {}s waiting for {what}; last seen: {last_seen}", timeout.as_secs())]
    Timeout {
        what: String,
        timeout: Duration,
        last_seen: String,
    },
    #[error("watching {what} failed: {message}")]
    Watch { what: String, message: String },
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
    let mut last_seen = "nothing yet".to_string();
    let watch = async {
        let mut stream = std::pin::pin!(watch_object(api, name));
        while let Some(event) = stream.next().await {
            let obj = event.map_err(|e| WaitError::Watch { what: what.to_string(), message: e.to_string() })?;
            match ready(obj.as_ref()) {
                Ok(()) => return Ok(()),
                Err(seen) => last_seen = seen,
            }
        }
        Err(WaitError::Watch { what: what.to_string(), message: "the watch ended".into() })
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(result) => result,
        Err(_) => Err(WaitError::Timeout { what: what.to_string(), timeout, last_seen }),
    }
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
    let mut last_seen = "nothing yet".to_string();
    let watch = async {
        let (reader, writer) = kube::runtime::reflector::store();
        let stream = kube::runtime::reflector(writer, watcher::watcher(api, watcher::Config::default()));
        let mut stream = std::pin::pin!(stream.map_err(|e| WaitError::Watch { what: what.to_string(), message: e.to_string() }));
        while stream.try_next().await?.is_some() {
            let objects: Vec<K> = reader.state().iter().map(|o| (**o).clone()).collect();
            match ready(&objects) {
                Ok(()) => return Ok(()),
                Err(seen) => last_seen = seen,
            }
        }
        Err(WaitError::Watch { what: what.to_string(), message: "the watch ended".into() })
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(result) => result,
        Err(_) => Err(WaitError::Timeout { what: what.to_string(), timeout, last_seen }),
    }
}
