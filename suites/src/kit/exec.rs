//! Running a command inside a pod.
//!
//! Why exec rather than an HTTP agent behind the API server's pod proxy: what is under test is
//! the path from a pod's own network namespace (its veth, its node's BPF programs, its DNS
//! config) to a destination. Exec puts curl, ping and dig in exactly that namespace, and it can
//! probe ICMP, DNS and arbitrary TCP ports. The pod proxy would originate traffic from the API
//! server's host network and only speak HTTP to the proxied pod, which tests a different path.
//! Exec is also what `cilium connectivity test` does, so a result here reads the same as one there.
//! The cost is one websocket per attempt, bounded by [`crate::kit::Timeouts::exec`].
//!
//! The [`Executor`] trait is the seam: the kube implementation talks to the cluster, and tests
//! script outputs to drive retries and judges without one.

use crate::kit::errors::{KitError, describe_kube_error};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The container a command runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub container: String,
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What a finished command left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    /// The first non-empty line of stderr: where curl, ping and friends say what went wrong.
    pub fn first_error_line(&self) -> Option<String> {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(String::from)
    }
}

pub trait Executor: Send + Sync {
    fn exec<'a>(
        &'a self,
        pod: &'a PodRef,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>>;

    /// Like [`Executor::exec`], for a command known to run longer than one probe (e.g. a batch
    /// of requests): the exec bound is at least `bound`. An executor without its own bound
    /// ignores it.
    fn exec_within<'a>(
        &'a self,
        pod: &'a PodRef,
        argv: &'a [String],
        bound: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        let _ = bound;
        self.exec(pod, argv)
    }
}

/// Exec over the API server's websocket (kube's `ws` feature).
pub struct KubeExecutor {
    client: kube::Client,
    timeout: Duration,
}

impl KubeExecutor {
    pub fn new(client: kube::Client, timeout: Duration) -> KubeExecutor {
        KubeExecutor { client, timeout }
    }

    async fn run(&self, pod: &PodRef, argv: &[String]) -> Result<ExecOutput, KitError> {
        let fail = |reason: String| KitError::Exec {
            pod: pod.to_string(),
            argv0: argv.first().cloned().unwrap_or_default(),
            reason,
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let params = AttachParams::default()
            .container(pod.container.clone())
            .stdin(false)
            .stdout(true)
            .stderr(true);
        let mut proc = api
            .exec(&pod.name, argv.to_vec(), &params)
            .await
            .map_err(|e| fail(describe_kube_error(&e)))?;
        let mut stdout = proc
            .stdout()
            .ok_or_else(|| fail("no stdout stream".into()))?;
        let mut stderr = proc
            .stderr()
            .ok_or_else(|| fail("no stderr stream".into()))?;
        let status = proc
            .take_status()
            .ok_or_else(|| fail("no status channel".into()))?;
        // Drain both streams while waiting for the status: kube's pipes are small, and an
        // unread one would stall the remote command.
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (r_out, r_err, status) = tokio::join!(
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err),
            status
        );
        r_out.map_err(|e| fail(format!("reading stdout: {e}")))?;
        r_err.map_err(|e| fail(format!("reading stderr: {e}")))?;
        let exit_code = exit_code(status.as_ref()).map_err(fail)?;
        Ok(ExecOutput {
            exit_code,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }
}

impl KubeExecutor {
    async fn bounded(
        &self,
        pod: &PodRef,
        argv: &[String],
        bound: Duration,
    ) -> Result<ExecOutput, KitError> {
        match tokio::time::timeout(bound, self.run(pod, argv)).await {
            Ok(r) => r,
            Err(_) => Err(KitError::Exec {
                pod: pod.to_string(),
                argv0: argv.first().cloned().unwrap_or_default(),
                reason: format!(
                    "did not finish within {}s (the exec bound; the probe's own timeouts are shorter, so the API server or kubelet is slow)",
                    bound.as_secs()
                ),
            }),
        }
    }
}

impl Executor for KubeExecutor {
    fn exec<'a>(
        &'a self,
        pod: &'a PodRef,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        Box::pin(self.bounded(pod, argv, self.timeout))
    }

    fn exec_within<'a>(
        &'a self,
        pod: &'a PodRef,
        argv: &'a [String],
        bound: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        Box::pin(self.bounded(pod, argv, self.timeout.max(bound)))
    }
}

/// The exit code the kubelet reported in the exec stream's closing Status.
///
/// Success carries no code; a non-zero exit is `Failure/NonZeroExitCode` with the code in a cause
/// of reason `ExitCode`. Anything else (binary not found, container gone) has no exit code, and
/// the Status message says why.
pub fn exit_code(status: Option<&Status>) -> Result<i32, String> {
    let Some(status) = status else {
        return Err("the exec stream closed without a status".into());
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode")
        && let Some(code) = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
    {
        return code
            .trim()
            .parse()
            .map_err(|_| format!("exit code {code:?} is not a number"));
    }
    match status.message.as_deref() {
        Some(m) if !m.is_empty() => Err(m.to_string()),
        _ => Err(format!(
            "exec failed ({})",
            status.reason.as_deref().unwrap_or("no reason given")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Status {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn success_status_is_exit_zero() {
        assert_eq!(exit_code(Some(&fixture("exec-status-success.json"))), Ok(0));
    }

    #[test]
    fn non_zero_exit_code_comes_from_the_cause() {
        assert_eq!(
            exit_code(Some(&fixture("exec-status-nonzero-28.json"))),
            Ok(28)
        );
    }

    #[test]
    fn a_missing_binary_is_an_error_with_the_kubelets_message() {
        let e = exit_code(Some(&fixture("exec-status-executable-not-found.json"))).unwrap_err();
        assert!(e.contains("executable file not found in $PATH"), "{e}");
    }

    #[test]
    fn a_closed_stream_without_status_is_an_error() {
        assert!(exit_code(None).is_err());
    }
}
