//! The second probe origin: a client outside the cluster.
//!
//! Pod exec proves the path from a pod's network namespace; what users of NodePorts, LB IPAM
//! with L2 announcements and the Gateway API care about is traffic that arrives from elsewhere:
//! a LoadBalancer IP answered over ARP by the announcing node, a Gateway at its external
//! address, a NodePort reached from another host. An outside probe runs the same argv (curl,
//! `ip neigh`) from a machine on the nodes' network that is not a node, and goes through the
//! same transcript, retry and pass rules as a pod probe ([`crate::kit::CheckCtx::run`]).
//!
//! Two origins exist: a container on the cluster's docker network (the harness starts it; this
//! crate never talks to Docker, it gets an [`OutsideExec`]) and the host the harness runs on
//! ([`HostExec`]).

use crate::kit::errors::KitError;
use crate::kit::exec::ExecOutput;
use crate::kit::transcript::Peer;
use futures::future::BoxFuture;
use std::process::Stdio;
use std::time::Duration;

/// Runs a command outside the cluster.
pub trait OutsideExec: Send + Sync {
    /// The probe source as the transcript names it, e.g. `outside h1-0-basic-outside (10.5.0.6)`.
    fn peer(&self) -> Peer;

    /// Runs `argv` and waits at most `bound` for it to exit.
    fn exec<'a>(
        &'a self,
        argv: &'a [String],
        bound: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>>;
}

/// Probes from the machine the harness runs on (`--outside-client host`): the argv runs as a
/// child process, killed when its bound passes.
pub struct HostExec {
    name: String,
}

impl HostExec {
    pub fn new() -> HostExec {
        let name = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        HostExec { name }
    }
}

impl Default for HostExec {
    fn default() -> Self {
        HostExec::new()
    }
}

impl OutsideExec for HostExec {
    fn peer(&self) -> Peer {
        Peer::new(format!("host {}", self.name), None)
    }

    fn exec<'a>(
        &'a self,
        argv: &'a [String],
        bound: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        Box::pin(async move {
            let fail = |reason: String| KitError::Exec {
                pod: format!("host {}", self.name),
                argv0: argv.first().cloned().unwrap_or_default(),
                reason,
            };
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| fail("empty command".into()))?;
            let child = tokio::process::Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| fail(format!("cannot start it: {e}")))?;
            match tokio::time::timeout(bound, child.wait_with_output()).await {
                Err(_) => Err(fail(format!(
                    "did not finish within {}s (killed)",
                    bound.as_secs()
                ))),
                Ok(Err(e)) => Err(fail(format!("waiting for it: {e}"))),
                Ok(Ok(out)) => Ok(ExecOutput {
                    // A signal leaves no code; report it the way a shell does.
                    exit_code: out.status.code().unwrap_or(128),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn a_host_probe_reports_exit_code_and_both_streams() {
        let out = HostExec::new()
            .exec(
                &argv(&["sh", "-c", "echo out; echo err >&2; exit 7"]),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(
            out,
            ExecOutput {
                exit_code: 7,
                stdout: "out\n".into(),
                stderr: "err\n".into()
            }
        );
    }

    #[tokio::test]
    async fn a_host_probe_past_its_bound_is_killed_and_says_so() {
        let started = std::time::Instant::now();
        let e = HostExec::new()
            .exec(&argv(&["sleep", "30"]), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(e.to_string().contains("did not finish within"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_not_an_exit_code() {
        let e = HostExec::new()
            .exec(&argv(&["/nonexistent/curl"]), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cannot start it"), "{e}");
    }
}
