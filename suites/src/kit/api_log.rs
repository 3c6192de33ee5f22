//! What a suite's checks read from the API server, answer by answer, for a recording
//! (`--record`): a tower layer on the suite's own client keeps each response (method, path,
//! status, body, timing) under the check that was running, since a suite runs its checks one
//! after another. Watches and exec streams pass through unrecorded: they never end, and what
//! they carried reaches the observation anyway.

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::{BodyExt, Either, Full};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One answer of the API server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiRead {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub status: u16,
    #[serde(with = "crate::kit::as_text::timestamp")]
    pub started: Timestamp,
    #[serde(with = "crate::kit::as_text::duration")]
    pub duration: Duration,
    /// The body as JSON, or as text when it is not JSON.
    pub body: serde_json::Value,
}

#[derive(Default)]
struct State {
    /// Who is reading now: `setup` or a check's name.
    current: String,
    reads: Vec<(String, ApiRead)>,
}

/// The reads of one suite run, shared by its client's layer and its runner.
#[derive(Clone, Default)]
pub struct ApiLog {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for ApiLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiLog")
    }
}

impl ApiLog {
    pub fn new() -> ApiLog {
        ApiLog::default()
    }

    /// The layer for the suite's client (`kube::client::ClientBuilder::with_layer`).
    pub fn layer(&self) -> ApiLogLayer {
        ApiLogLayer { log: self.clone() }
    }

    /// Reads from now on belong to `who`.
    pub fn begin(&self, who: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.current = who.to_string();
        }
    }

    /// The reads that belong to `who`, removed from the log.
    pub fn take(&self, who: &str) -> Vec<ApiRead> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        let (mine, rest) = std::mem::take(&mut s.reads)
            .into_iter()
            .partition(|(w, _)| w == who);
        s.reads = rest;
        mine.into_iter().map(|(_, r)| r).collect()
    }

    fn push(&self, who: Option<String>, read: ApiRead) {
        if let Ok(mut s) = self.state.lock() {
            let who = who.unwrap_or_else(|| s.current.clone());
            s.reads.push((who, read));
        }
    }

    fn current(&self) -> Option<String> {
        self.state.lock().ok().map(|s| s.current.clone())
    }
}

#[derive(Clone)]
pub struct ApiLogLayer {
    log: ApiLog,
}

impl<S> tower::Layer<S> for ApiLogLayer {
    type Service = Logged<S>;
    fn layer(&self, inner: S) -> Logged<S> {
        Logged {
            inner,
            log: self.log.clone(),
        }
    }
}

pub struct Logged<S> {
    inner: S,
    log: ApiLog,
}

fn streams<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(http::header::UPGRADE)
        || req.uri().query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv == "watch=true" || kv == "follow=true")
        })
}

impl<S, ReqB, B> tower::Service<Request<ReqB>> for Logged<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Either<B, Full<Bytes>>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let keep = !streams(&req);
        let method = req.method().to_string();
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(String::new, |p| p.to_string());
        // Whose read this is is decided when it is sent, not when the answer comes.
        let who = self.log.current();
        let log = self.log.clone();
        let started = Timestamp::now();
        let clock = std::time::Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await.map_err(Into::into)?;
            if !keep {
                return Ok(res.map(Either::Left));
            }
            let (parts, body) = res.into_parts();
            let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
            });
            log.push(
                who,
                ApiRead {
                    method,
                    path,
                    status: parts.status.as_u16(),
                    started,
                    duration: clock.elapsed(),
                    body,
                },
            );
            Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    #[tokio::test]
    async fn answers_are_kept_under_the_reader_and_passed_on_unchanged() {
        let log = ApiLog::new();
        let inner = tower::service_fn(|req: Request<String>| async move {
            let body = if req.uri().path() == "/api/v1/nodes" {
                r#"{"kind":"NodeList","items":[]}"#
            } else {
                "not json"
            };
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(body))))
        });
        let mut svc = log.layer().layer(inner);
        log.begin("pod-security::namespace-levels");
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(Request::get("/api/v1/nodes").body(String::new()).unwrap())
            .await
            .unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"kind":"NodeList","items":[]}"#);
        log.begin("other");
        svc.ready()
            .await
            .unwrap()
            .call(Request::get("/x?watch=true").body(String::new()).unwrap())
            .await
            .unwrap();
        svc.ready()
            .await
            .unwrap()
            .call(Request::get("/version").body(String::new()).unwrap())
            .await
            .unwrap();
        let mine = log.take("pod-security::namespace-levels");
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].path, "/api/v1/nodes");
        assert_eq!(mine[0].body["kind"], "NodeList");
        let other = log.take("other");
        assert_eq!(other.len(), 1, "the watch is not kept");
        assert_eq!(other[0].body, "not json");
        assert!(log.take("other").is_empty());
    }
}
