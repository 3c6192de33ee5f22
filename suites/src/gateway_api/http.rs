//! Requests to the Gateway from the client pod, and what came back.
//!
//! One request is one `curl --dump-header -` run in the client pod: the status line and headers
//! (for redirects' `Location`) and the body, which the conformance echo server (`echo-basic`)
//! fills with JSON naming the pod that answered and the request it saw (path, host, headers).
//! curl runs without `--fail`, so a 404 from the Gateway is data, not a curl error.

use crate::kit::exec::ExecOutput;
use crate::kit::probe::curl::{self, CONNECT_TIMEOUT_S, CurlResult, MAX_TIME_S};
use crate::kit::verdict::Verdict;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What `echo-basic` answers: the request as the backend saw it, and which pod it was.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
pub struct Echo {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub method: String,
    /// Header names as Go canonicalises them (`X-Header-Set`), each with its values.
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub pod: String,
}

impl Echo {
    /// The values of a header, case-insensitively, with comma-joined values split, as a proxy
    /// may fold repeated headers into one line.
    pub fn header(&self, name: &str) -> Option<Vec<String>> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, vs)| {
                vs.iter()
                    .flat_map(|v| v.split(','))
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect()
            })
    }
}

/// A request as a conformance test states it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// The `Host` header; may carry a port.
    pub host: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn new(host: &str, path: &str) -> Request {
        Request {
            host: host.into(),
            path: path.into(),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `host/path [name: value]`, for messages.
    pub fn describe(&self) -> String {
        let mut s = format!("GET {}{}", self.host, self.path);
        for (k, v) in &self.headers {
            s.push_str(&format!(" [{k}: {v}]"));
        }
        s
    }

    pub fn argv(&self, addr: &str, port: u16) -> Vec<String> {
        let mut a: Vec<String> = [
            "curl",
            "--silent",
            "--show-error",
            "--connect-timeout",
            &CONNECT_TIMEOUT_S.to_string(),
            "--max-time",
            &MAX_TIME_S.to_string(),
            "--dump-header",
            "-",
            "-H",
        ]
        .map(String::from)
        .to_vec();
        a.push(format!("Host: {}", self.host));
        for (k, v) in &self.headers {
            a.push("-H".into());
            a.push(format!("{k}: {v}"));
        }
        a.push(url(addr, port, &self.path));
        a
    }
}

/// `http://addr:port/path`, with brackets around an IPv6 address.
pub fn url(addr: &str, port: u16, path: &str) -> String {
    if addr.contains(':') {
        format!("http://[{addr}]:{port}{path}")
    } else {
        format!("http://{addr}:{port}{path}")
    }
}

/// One response, parsed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpReply {
    pub exit_code: i32,
    /// 0 when no response arrived.
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// The echo server's JSON, when the body was that.
    pub echo: Option<Echo>,
    /// The start of a body that was not echo JSON (e.g. Envoy's `no healthy upstream`).
    pub other_body: Option<String>,
    /// curl's own error line.
    pub error: Option<String>,
}

impl HttpReply {
    pub fn parse(out: &ExecOutput) -> HttpReply {
        let text = out.stdout.replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .filter(|l| l.starts_with("HTTP/"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let body = body.trim();
        let echo = serde_json::from_str::<Echo>(body).ok();
        let other_body =
            (echo.is_none() && !body.is_empty()).then(|| body.chars().take(200).collect());
        let error = out.first_error_line();
        HttpReply {
            exit_code: out.exit_code,
            status,
            headers,
            echo,
            other_body,
            error,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Who answered, in a few words.
    pub fn summary(&self) -> String {
        match (&self.echo, &self.other_body) {
            (Some(e), _) => format!("HTTP {} from {} (path {})", self.status, e.pod, e.path),
            (None, Some(b)) => format!("HTTP {} with body {b:?}", self.status),
            (None, None) => format!("HTTP {} with no body", self.status),
        }
    }
}

/// What a request must get.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Expect {
    /// 200 from this echo pod.
    Backend(String),
    /// 200 from any of these echo pods.
    AnyBackend(Vec<String>),
    /// This status and no backend (e.g. 404 for a request no route matches).
    Status(u16),
    /// A redirect with this status to `http://host/path` (port 80 may be explicit).
    Redirect {
        status: u16,
        host: String,
        path: String,
    },
    /// 200 from this pod, which saw these headers with exactly these values and not those.
    Headers {
        backend: String,
        exact: Vec<(String, Vec<String>)>,
        absent: Vec<String>,
    },
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Backend(b) => write!(f, "HTTP 200 from {b}"),
            Expect::AnyBackend(bs) => write!(f, "HTTP 200 from one of {}", bs.join(", ")),
            Expect::Status(s) => write!(f, "HTTP {s}"),
            Expect::Redirect { status, host, path } => {
                write!(f, "HTTP {status} with Location http://{host}{path}")
            }
            Expect::Headers { backend, .. } => {
                write!(f, "HTTP 200 from {backend} with the modified headers")
            }
        }
    }
}

/// Judges one response against what the route must do.
pub fn judge_reply(r: &HttpReply, expect: &Expect) -> Verdict {
    if r.exit_code != 0 {
        // No HTTP exchange completed: the kit's curl judge names the layer to look at.
        let c = CurlResult {
            exit_code: r.exit_code,
            http_code: r.status,
            remote: None,
            error: r.error.clone(),
        };
        return Verdict::Fail(curl::judge(&c).message().to_string());
    }
    let got = r.summary();
    match expect {
        Expect::Backend(b) => from_backend(r, std::slice::from_ref(b), expect),
        Expect::AnyBackend(bs) => from_backend(r, bs, expect),
        Expect::Status(s) => match &r.echo {
            // The status alone does not prove that no route matched: a backend that answered
            // (whatever its status) means the request was routed.
            Some(e) => Verdict::Fail(format!(
                "got {got}, expected {expect} from the Gateway itself: backend {} answered, so a route matched the request",
                if e.pod.is_empty() {
                    "(unnamed pod)"
                } else {
                    e.pod.as_str()
                }
            )),
            None if r.status == *s => Verdict::Pass(got),
            None => Verdict::Fail(format!("got {got}, expected {expect}")),
        },
        Expect::Redirect { status, host, path } => {
            let Some(loc) = r.header("location") else {
                return Verdict::Fail(format!(
                    "got {got} without a Location header, expected {expect}"
                ));
            };
            let (l_host, l_path) = split_location(loc);
            let host_ok = l_host == *host || l_host == format!("{host}:80");
            if r.status == *status && host_ok && l_path == *path {
                Verdict::Pass(format!("HTTP {} Location {loc}", r.status))
            } else {
                Verdict::Fail(format!(
                    "got HTTP {} with Location {loc}, expected {expect}",
                    r.status
                ))
            }
        }
        Expect::Headers {
            backend,
            exact,
            absent,
        } => {
            let v = from_backend(r, std::slice::from_ref(backend), expect);
            if !v.is_pass() {
                return v;
            }
            let Some(e) = &r.echo else {
                return Verdict::Fail(format!("got {got}, expected echo JSON"));
            };
            let mut wrong = Vec::new();
            for (name, want) in exact {
                let mut have = e.header(name).unwrap_or_default();
                have.sort();
                let mut want = want.clone();
                want.sort();
                if have != want {
                    wrong.push(format!(
                        "{name} reached the backend as [{}], expected [{}]",
                        have.join(", "),
                        want.join(", ")
                    ));
                }
            }
            for name in absent {
                if let Some(v) = e.header(name) {
                    wrong.push(format!(
                        "{name} reached the backend as [{}] but the filter removes it",
                        v.join(", ")
                    ));
                }
            }
            if wrong.is_empty() {
                Verdict::Pass(format!(
                    "{got}; the backend saw {}; {} removed",
                    exact
                        .iter()
                        .map(|(n, v)| format!("{n}: {}", v.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; "),
                    absent.join(", ")
                ))
            } else {
                Verdict::Fail(wrong.join("; "))
            }
        }
    }
}

fn from_backend(r: &HttpReply, backends: &[String], expect: &Expect) -> Verdict {
    let got = r.summary();
    match &r.echo {
        Some(e) if r.status == 200 && backends.contains(&e.pod) => Verdict::Pass(got),
        Some(_) if r.status == 200 => Verdict::Fail(format!(
            "got {got}, expected {expect}: the request matched the wrong rule"
        )),
        _ => Verdict::Fail(format!("got {got}, expected {expect}")),
    }
}

/// `http://example.org/path` -> (`example.org`, `/path`); a relative Location has no host.
fn split_location(loc: &str) -> (String, String) {
    let rest = loc
        .strip_prefix("http://")
        .or_else(|| loc.strip_prefix("https://"));
    match rest {
        Some(r) => match r.find('/') {
            Some(i) => (r[..i].to_string(), r[i..].to_string()),
            None => (r.to_string(), "/".to_string()),
        },
        None => (String::new(), loc.to_string()),
    }
}

/// One request of a batch (weighted backends): its status, curl exit and answering pod.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub exit_code: i32,
    pub status: u16,
    pub pod: Option<String>,
}

/// A shell loop in the client pod: `n` requests, each followed by a line `@@ <status> <exit>`;
/// it stops at the first request curl could not complete, so a dead path ends the exec early.
pub fn batch_argv(addr: &str, port: u16, host: &str, path: &str, n: u32) -> Vec<String> {
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do i=$((i+1)); curl --silent --connect-timeout {CONNECT_TIMEOUT_S} --max-time {MAX_TIME_S} -H 'Host: {host}' --write-out '\\n@@ %{{http_code}} ' '{}'; rc=$?; echo \"$rc\"; [ \"$rc\" -eq 0 ] || break; done",
        url(addr, port, path)
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// The exec bound for a batch of `n` requests: every request may take curl's whole
/// `--max-time`, plus `overhead` for the exec itself (the ordinary exec bound).
pub fn batch_bound(n: u32, overhead: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(n) * u64::from(MAX_TIME_S)) + overhead
}

pub fn parse_batch(out: &ExecOutput) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut body = String::new();
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix("@@ ") {
            let mut w = rest.split_whitespace();
            let status = w.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let exit_code = w.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
            let pod = serde_json::from_str::<Echo>(body.trim())
                .ok()
                .map(|e| e.pod)
                .filter(|p| !p.is_empty());
            samples.push(Sample {
                exit_code,
                status,
                pod,
            });
            body.clear();
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_sends_the_host_header_and_dumps_headers() {
        let a = Request::new("very.specific.com:1234", "/")
            .header("version", "one")
            .argv("10.96.40.2", 80);
        assert_eq!(
            a.join(" "),
            "curl --silent --show-error --connect-timeout 2 --max-time 10 --dump-header - -H Host: very.specific.com:1234 -H version: one http://10.96.40.2:80/"
        );
        assert_eq!(url("fd00::5", 80, "/v2"), "http://[fd00::5]:80/v2");
    }

    #[test]
    fn a_batch_is_read_back_one_sample_per_marker() {
        // The batch loop's own `@@ <status> <exit>` markers after each body: echo-basic JSON
        // (indented or not), Envoy's 503 body `upstream connect error or disconnect/reset before
        // headers...` cut short, and a curl timeout (exit 28) with no body.
        let out = ExecOutput {
            exit_code: 0,
            stdout: "{\n \"pod\": \"echo-v1\"\n}\n@@ 200 0\n{\"pod\": \"echo-v2\"}\n@@ 200 0\nupstream connect error\n@@ 503 0\n\n@@ 000 28\n".into(),
            stderr: String::new(),
        };
        let s = parse_batch(&out);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].pod.as_deref(), Some("echo-v1"));
        assert_eq!(s[1].pod.as_deref(), Some("echo-v2"));
        assert_eq!((s[2].status, s[2].pod.clone()), (503, None));
        assert_eq!((s[3].status, s[3].exit_code), (0, 28));
        let argv = batch_argv("10.0.0.1", 80, "weights.example.com", "/", 200);
        assert!(argv[2].contains("while [ $i -lt 200 ]"), "{}", argv[2]);
        assert!(argv[2].contains("-H 'Host: weights.example.com'"));
    }

    #[test]
    fn a_batch_bound_covers_every_request_taking_curls_max_time() {
        let b = batch_bound(20, std::time::Duration::from_secs(30));
        assert_eq!(b, std::time::Duration::from_secs(20 * 10 + 30));
        assert!(b >= std::time::Duration::from_secs(20 * u64::from(MAX_TIME_S)));
    }
}
