//! HTTP probes with curl, told apart by exit code the way `cilium connectivity test` reads them:
//! 28 is a timeout (packets dropped), 22 an HTTP error status, 35 a TLS failure, 6 and 7 name
//! resolution and connection failures. Each kind points at a different layer, so the judge's
//! message says which one to look at.

use crate::kit::exec::ExecOutput;
use crate::kit::verdict::Verdict;

/// cilium-cli's defaults: short enough that a dropped SYN shows up as a timeout quickly.
pub const CONNECT_TIMEOUT_S: u32 = 2;
pub const MAX_TIME_S: u32 = 10;

/// `http_code remote_ip:remote_port`, written even when `--fail` turns a 4xx/5xx into exit 22.
const WRITE_OUT: &str = "%{http_code} %{remote_ip}:%{remote_port}";

pub fn argv(url: &str) -> Vec<String> {
    [
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "--connect-timeout",
        &CONNECT_TIMEOUT_S.to_string(),
        "--max-time",
        &MAX_TIME_S.to_string(),
        "--output",
        "/dev/null",
        "--write-out",
        WRITE_OUT,
        url,
    ]
    .map(String::from)
    .to_vec()
}

/// What curl left behind, parsed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CurlResult {
    pub exit_code: i32,
    /// 0 when no response arrived.
    pub http_code: u16,
    pub remote: Option<String>,
    /// curl's own error line, e.g. `curl: (28) Connection timed out after 2002 milliseconds`.
    pub error: Option<String>,
}

impl CurlResult {
    pub fn parse(out: &ExecOutput) -> CurlResult {
        let mut words = out.stdout.split_whitespace();
        let http_code = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let remote = words
            .next()
            .filter(|r| !r.starts_with(':') && !r.is_empty())
            .map(String::from);
        let error = out.first_error_line();
        CurlResult {
            exit_code: out.exit_code,
            http_code,
            remote,
            error,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CurlOutcome {
    Ok { status: u16 },
    Timeout,
    HttpError { status: u16 },
    Tls,
    Resolve,
    Refused,
    NoRoute,
    Reset,
    MissingTool,
    Other { exit_code: i32 },
}

pub fn classify(r: &CurlResult) -> CurlOutcome {
    let err = r.error.as_deref().unwrap_or("").to_ascii_lowercase();
    match r.exit_code {
        0 => CurlOutcome::Ok {
            status: r.http_code,
        },
        28 => CurlOutcome::Timeout,
        22 => CurlOutcome::HttpError {
            status: if r.http_code != 0 {
                r.http_code
            } else {
                // Older curls print the status only in the error line.
                err.rsplit(' ').find_map(|w| w.parse().ok()).unwrap_or(0)
            },
        },
        35 | 60 => CurlOutcome::Tls,
        6 => CurlOutcome::Resolve,
        7 if err.contains("no route to host") || err.contains("network is unreachable") => {
            CurlOutcome::NoRoute
        }
        7 => CurlOutcome::Refused,
        52 | 56 => CurlOutcome::Reset,
        126 | 127 => CurlOutcome::MissingTool,
        other => CurlOutcome::Other { exit_code: other },
    }
}

/// Judges one HTTP attempt. A 2xx or 3xx answer passes; everything else fails with the layer to
/// look at.
pub fn judge(r: &CurlResult) -> Verdict {
    let seen = r
        .error
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    match classify(r) {
        CurlOutcome::Ok { status } if (200..400).contains(&status) => Verdict::Pass(format!(
            "HTTP {status}{}",
            r.remote
                .as_deref()
                .map(|a| format!(" from {a}"))
                .unwrap_or_default()
        )),
        CurlOutcome::Ok { status } => Verdict::Fail(format!(
            "curl exited 0 but reported HTTP status {status}; expected a 2xx/3xx answer"
        )),
        CurlOutcome::Timeout => Verdict::Fail(format!(
            "timeout (curl exit 28): no answer within {CONNECT_TIMEOUT_S}s to connect / {MAX_TIME_S}s in total, so packets are being dropped; look for drops with `hubble observe --verdict DROPPED` or `cilium-dbg monitor --type drop` on both nodes{seen}"
        )),
        CurlOutcome::HttpError { status } => Verdict::Fail(format!(
            "HTTP error {status} (curl exit 22): the connection worked but the server refused the request{seen}"
        )),
        CurlOutcome::Tls => Verdict::Fail(format!(
            "TLS handshake failed (curl exit {}): something between pod and target (proxy, MTU on large handshake packets, intercepting middlebox) broke TLS{seen}",
            r.exit_code
        )),
        CurlOutcome::Resolve => Verdict::Fail(format!(
            "could not resolve the host name (curl exit 6): pod DNS is broken; run the dns suite{seen}"
        )),
        CurlOutcome::Refused => Verdict::Fail(format!(
            "connection refused (curl exit 7): the address is reachable but nothing accepted the connection; for a Service, check it has ready endpoints (`kubectl get endpointslices`) and that Cilium programmed it (`cilium-dbg service list`){seen}"
        )),
        CurlOutcome::NoRoute => Verdict::Fail(format!(
            "no route to the destination (curl exit 7): check node routes / tunnel state (`cilium-dbg status`){seen}"
        )),
        CurlOutcome::Reset => Verdict::Fail(format!(
            "the connection was reset or closed without a reply (curl exit {}){seen}",
            r.exit_code
        )),
        CurlOutcome::MissingTool => Verdict::Fail(format!(
            "curl is not in the client image (exit {}); an image override must ship curl{seen}",
            r.exit_code
        )),
        CurlOutcome::Other { exit_code } => {
            Verdict::Fail(format!("curl failed with exit code {exit_code}{seen}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(exit_code: i32, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    /// Fixtures: `curl-<case>.txt` hold the real shape of curl's stdout and stderr, separated
    /// by a line `--- stderr`.
    fn fixture(name: &str, exit_code: i32) -> CurlResult {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (stdout, stderr) = text.split_once("--- stderr\n").unwrap();
        CurlResult::parse(&out(exit_code, stdout.trim_end(), stderr))
    }

    #[test]
    fn argv_carries_the_cilium_cli_timeouts() {
        let a = argv("http://10.244.1.7:8080/");
        let s = a.join(" ");
        assert!(
            s.starts_with("curl --silent --show-error --fail --connect-timeout 2 --max-time 10 "),
            "{s}"
        );
        assert_eq!(a.last().unwrap(), "http://10.244.1.7:8080/");
    }

    #[test]
    fn success_reports_status_and_remote() {
        let r = fixture("curl-ok-200.txt", 0);
        assert_eq!(r.http_code, 200);
        assert_eq!(r.remote.as_deref(), Some("10.244.1.7:8080"));
        assert_eq!(
            judge(&r),
            Verdict::Pass("HTTP 200 from 10.244.1.7:8080".into())
        );
    }

    #[test]
    fn exit_28_is_a_timeout_that_points_at_drops() {
        let r = fixture("curl-timeout-28.txt", 28);
        assert_eq!(classify(&r), CurlOutcome::Timeout);
        let v = judge(&r);
        assert!(!v.is_pass());
        assert!(
            v.message().starts_with("timeout (curl exit 28)"),
            "{}",
            v.message()
        );
        assert!(v.message().contains("hubble observe --verdict DROPPED"));
        assert!(
            v.message()
                .contains("Connection timed out after 2002 milliseconds")
        );
    }

    #[test]
    fn exit_22_is_an_http_error_with_its_status() {
        let r = fixture("curl-http-error-503.txt", 22);
        assert_eq!(classify(&r), CurlOutcome::HttpError { status: 503 });
        assert!(
            judge(&r)
                .message()
                .starts_with("HTTP error 503 (curl exit 22)")
        );
    }

    #[test]
    fn exit_22_without_write_out_takes_the_status_from_the_error_line() {
        let r = CurlResult::parse(&out(
            22,
            "",
            "curl: (22) The requested URL returned error: 404\n",
        ));
        assert_eq!(classify(&r), CurlOutcome::HttpError { status: 404 });
    }

    #[test]
    fn tls_resolve_refused_and_no_route_are_told_apart() {
        assert_eq!(classify(&fixture("curl-tls-35.txt", 35)), CurlOutcome::Tls);
        assert_eq!(
            classify(&fixture("curl-resolve-6.txt", 6)),
            CurlOutcome::Resolve
        );
        assert_eq!(
            classify(&fixture("curl-refused-7.txt", 7)),
            CurlOutcome::Refused
        );
        assert_eq!(
            classify(&CurlResult::parse(&out(
                7,
                "000 :0",
                "curl: (7) Failed to connect to 10.0.0.9 port 31234 after 3 ms: Could not connect to server: No route to host"
            ))),
            CurlOutcome::NoRoute
        );
        assert!(
            judge(&fixture("curl-refused-7.txt", 7))
                .message()
                .contains("endpointslices")
        );
        assert!(
            judge(&fixture("curl-resolve-6.txt", 6))
                .message()
                .contains("dns suite")
        );
    }

    #[test]
    fn a_missing_remote_is_not_invented() {
        let r = fixture("curl-timeout-28.txt", 28);
        assert_eq!(r.remote, None);
        assert_eq!(r.http_code, 0);
    }
}
