//! Bounded waits. Each names what it awaits and, on timeout, what it saw last.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::time::Instant;

use crate::errors::Error;

/// One look at the awaited condition.
pub enum Probe<T> {
    Ready(T),
    /// Not yet; the text says what was seen, for the timeout message.
    NotYet(String),
}

/// Calls `probe` every `interval` until it is ready, fails, or `timeout` has passed. A probe
/// still running at the deadline is cut short, so the bound holds.
pub async fn poll<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>, Error>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_seen = "nothing yet".to_string();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, probe()).await {
            Ok(Ok(Probe::Ready(v))) => return Ok(v),
            Ok(Ok(Probe::NotYet(seen))) => last_seen = seen,
            Ok(Err(e)) => return Err(e),
            Err(_) => last_seen = format!("{last_seen} (then an attempt that did not return)"),
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::WaitTimeout {
                what: what.to_string(),
                timeout,
                last_seen,
            });
        }
        tokio::time::sleep(interval.min(remaining)).await;
    }
}

/// What "the cluster is up" means for a CNI-less cluster: the API server answers and every node
/// has registered (they stay NotReady until a CNI runs).
#[derive(Clone, Debug)]
pub struct ReadinessTarget {
    pub kubeconfig: PathBuf,
    /// For messages: the server the kubeconfig points at.
    pub api_server: String,
    /// Node names (the container hostnames) that must be registered.
    pub nodes: Vec<String>,
    pub timeout: Duration,
}

/// The last provisioning step, behind a trait so tests with stand-in nodes (which run no API
/// server) can replace it.
pub trait Readiness: Send + Sync {
    fn wait<'a>(&'a self, target: &'a ReadinessTarget) -> BoxFuture<'a, Result<(), Error>>;
}

/// Polls `GET /api/v1/nodes` with kube-rs until every expected node is listed.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiServerReadiness;

impl Readiness for ApiServerReadiness {
    fn wait<'a>(&'a self, target: &'a ReadinessTarget) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(wait_for_nodes(target, Duration::from_secs(2)))
    }
}

pub async fn wait_for_nodes(target: &ReadinessTarget, interval: Duration) -> Result<(), Error> {
    let invalid = |why: String| Error::Kubeconfig {
        path: target.kubeconfig.clone(),
        why,
    };
    let kubeconfig =
        Kubeconfig::read_from(&target.kubeconfig).map_err(|e| invalid(e.to_string()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| invalid(e.to_string()))?;
    // A booting API server accepts connections it never answers; keep each try short.
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(10));
    let client = kube::Client::try_from(config).map_err(|e| invalid(e.to_string()))?;
    let api: Api<Node> = Api::all(client);
    let expected: BTreeSet<&str> = target.nodes.iter().map(String::as_str).collect();
    let what = format!(
        "the API server at {} to list all {} node(s) ({})",
        target.api_server,
        expected.len(),
        target.nodes.join(", ")
    );
    poll(&what, target.timeout, interval, || async {
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) => return Ok(Probe::NotYet(format!("GET /api/v1/nodes: {}", chain(&e)))),
        };
        let seen: BTreeSet<String> = list
            .items
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let missing: Vec<&str> = expected
            .iter()
            .filter(|n| !seen.contains(**n))
            .copied()
            .collect();
        if missing.is_empty() {
            Ok(Probe::Ready(()))
        } else {
            Ok(Probe::NotYet(format!(
                "registered [{}], missing [{}]",
                seen.into_iter().collect::<Vec<_>>().join(", "),
                missing.join(", ")
            )))
        }
    })
    .await
}

/// An error with its causes: kube's own text often hides the one that matters (e.g. "client
/// error (Connect)" over "Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test(start_paused = true)]
    async fn poll_times_out_naming_what_and_last_seen() {
        let calls = AtomicUsize::new(0);
        let err = poll(
            "the thing",
            Duration::from_secs(5),
            Duration::from_secs(1),
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, Error>(Probe::<()>::NotYet(format!("try {n}"))) }
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("waiting for the thing"), "{err}");
        assert!(err.contains("last seen: try 5"), "{err}");
        assert!(err.contains("5s"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn poll_cuts_a_hanging_probe_at_the_deadline() {
        let err = poll(
            "a hang",
            Duration::from_secs(3),
            Duration::from_secs(1),
            || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, Error>(Probe::Ready(()))
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("did not return"), "{err}");
    }

    #[tokio::test]
    async fn poll_returns_once_ready_and_stops_on_errors() {
        let calls = AtomicUsize::new(0);
        let v = poll(
            "x",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok::<_, Error>(if n < 2 {
                        Probe::NotYet("no".into())
                    } else {
                        Probe::Ready(n)
                    })
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(v, 2);
        let e = poll::<(), _, _>(
            "x",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || async { Err(Error::Cleanup("boom".into())) },
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("boom"));
    }

    /// A stand-in API server on 127.0.0.1 answering `GET /api/v1/nodes` with `names`.
    async fn mock_api_server(names: Vec<&'static str>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let items: Vec<String> = names
                    .iter()
                    .map(|n| format!(r#"{{"metadata":{{"name":"{n}"}}}}"#))
                    .collect();
                let body = format!(
                    r#"{{"kind":"NodeList","apiVersion":"v1","metadata":{{}},"items":[{}]}}"#,
                    items.join(",")
                );
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut req = Vec::new();
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        let Ok(n) = sock.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        req.extend_from_slice(&buf[..n]);
                    }
                    let head = String::from_utf8_lossy(&req);
                    let reply = if head.starts_with("GET /api/v1/nodes") {
                        counter.fetch_add(1, Ordering::SeqCst);
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_string()
                    };
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        (format!("http://{addr}"), hits)
    }

    fn kubeconfig(dir: &std::path::Path, server: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: admin@c\n  context:\n    cluster: c\n    user: admin\ncurrent-context: admin@c\nusers:\n- name: admin\n  user:\n    token: not-a-secret\n"
            ),
        )
        .unwrap();
        path
    }

    fn target(kubeconfig: PathBuf, server: &str, timeout: Duration) -> ReadinessTarget {
        ReadinessTarget {
            kubeconfig,
            api_server: server.to_string(),
            nodes: vec!["c-controlplane-1".into(), "c-worker-1".into()],
            timeout,
        }
    }

    #[tokio::test]
    async fn ready_once_every_node_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let (server, hits) = mock_api_server(vec!["c-controlplane-1", "c-worker-1"]).await;
        let t = target(
            kubeconfig(dir.path(), &server),
            &server,
            Duration::from_secs(20),
        );
        ApiServerReadiness.wait(&t).await.unwrap();
        assert!(hits.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn a_missing_node_times_out_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (server, hits) = mock_api_server(vec!["c-controlplane-1"]).await;
        let t = target(
            kubeconfig(dir.path(), &server),
            &server,
            Duration::from_secs(2),
        );
        let err = wait_for_nodes(&t, Duration::from_millis(200))
            .await
            .unwrap_err()
            .to_string();
        assert!(hits.load(Ordering::SeqCst) >= 2, "it polls");
        assert!(
            err.contains(&format!("the API server at {server}")),
            "{err}"
        );
        assert!(
            err.contains("registered [c-controlplane-1], missing [c-worker-1]"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_absent_server_times_out_with_the_connection_error() {
        let dir = tempfile::tempdir().unwrap();
        // Bind then drop: a port on which nothing listens.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("http://127.0.0.1:{port}");
        let t = target(
            kubeconfig(dir.path(), &server),
            &server,
            Duration::from_secs(1),
        );
        let err = wait_for_nodes(&t, Duration::from_millis(200))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("timed out after 1s"), "{err}");
        assert!(err.contains("GET /api/v1/nodes"), "{err}");
    }

    #[tokio::test]
    async fn an_unreadable_kubeconfig_is_not_a_wait() {
        let t = target(
            "/nonexistent/kubeconfig".into(),
            "x",
            Duration::from_secs(60),
        );
        let err = wait_for_nodes(&t, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Kubeconfig { .. }), "{err}");
    }
}
