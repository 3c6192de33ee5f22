//! A check is declared, not engineered: a name from the catalog, an observe step that talks to
//! the cluster and returns plain data, and a pure judge over that data. [`CheckImpl`] holds the
//! two halves as separate functions so a judge can never reach the cluster, and the type has no
//! way to exist without both.

use crate::catalog::SuiteName;
use crate::kit::errors::KitError;
use crate::kit::exec::{ExecOutput, Executor};
use crate::kit::images::Images;
use crate::kit::probe::Probe;
use crate::kit::retry::{RetryPolicy, Series, until_stable};
use crate::kit::transcript::{Attempt, Ended, Peer, ProbeLabel, Transcript};
use crate::kit::verdict::Verdict;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds for everything the kit waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A workload pod from creation to Ready; includes image pulls.
    pub pod_ready: Duration,
    /// One exec, start to exit status.
    pub exec: Duration,
    /// A controller reacting to an object (e.g. a ReplicaSet recording FailedCreate).
    pub controller: Duration,
    /// One whole check, the last line of defence against a wait this code forgot to bound.
    pub check: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            pod_ready: Duration::from_secs(180),
            exec: Duration::from_secs(30),
            controller: Duration::from_secs(60),
            check: Duration::from_secs(600),
        }
    }
}

/// What every check of a suite run shares.
pub struct Env {
    pub client: kube::Client,
    pub exec: Arc<dyn Executor>,
    pub suite: SuiteName,
    /// The suite's own test namespace (enforce=privileged).
    pub namespace: String,
    pub run_id: crate::kit::namespace::RunId,
    pub images: Images,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    /// Usually `cluster.local`; DNS checks build names with it.
    pub cluster_domain: String,
    /// The CIDR of the lb-ipam suite's own pool ([`crate::RunOptions::lb_ipam_block`]).
    pub lb_ipam_block: String,
    pub external_target: Option<String>,
    pub nodes: u32,
}

impl Env {
    pub fn run_labels(&self) -> std::collections::BTreeMap<String, String> {
        crate::kit::namespace::run_labels(&self.run_id, self.suite)
    }
}

/// One check's view of the run: the environment plus its own transcript.
pub struct CheckCtx<'a> {
    pub env: &'a Env,
    /// `suite/check`, the prefix of every probe label.
    pub scope: String,
    transcript: Mutex<Transcript>,
}

impl<'a> CheckCtx<'a> {
    pub fn new(env: &'a Env, check: &str) -> CheckCtx<'a> {
        CheckCtx {
            env,
            scope: format!("{}/{check}", env.suite),
            transcript: Mutex::new(Transcript::new()),
        }
    }

    pub fn label(&self, action: &str, from: Peer, to: Peer) -> ProbeLabel {
        ProbeLabel {
            check: self.scope.clone(),
            action: action.into(),
            from,
            to,
        }
    }

    pub fn note(&self, text: impl Into<String>) {
        if let Ok(mut t) = self.transcript.lock() {
            t.note(text);
        }
    }

    /// Runs a probe once and records the attempt, whatever its outcome.
    pub async fn run(&self, probe: &Probe) -> Result<ExecOutput, KitError> {
        self.run_bounded(probe, None).await
    }

    /// [`CheckCtx::run`] for a probe that runs longer than one request (a batch): the exec
    /// bound is at least `bound` instead of [`Timeouts::exec`].
    pub async fn run_within(&self, probe: &Probe, bound: Duration) -> Result<ExecOutput, KitError> {
        self.run_bounded(probe, Some(bound)).await
    }

    async fn run_bounded(
        &self,
        probe: &Probe,
        bound: Option<Duration>,
    ) -> Result<ExecOutput, KitError> {
        let started = Timestamp::now();
        let clock = tokio::time::Instant::now();
        let result = match bound {
            Some(b) => self.env.exec.exec_within(&probe.pod, &probe.argv, b).await,
            None => self.env.exec.exec(&probe.pod, &probe.argv).await,
        };
        let ended = match &result {
            Ok(o) => Ended::Exited {
                code: o.exit_code,
                stdout: o.stdout.clone(),
                stderr: o.stderr.clone(),
            },
            Err(e) => Ended::NoExit(e.to_string()),
        };
        if let Ok(mut t) = self.transcript.lock() {
            t.attempt(Attempt {
                label: probe.label.clone(),
                argv: probe.argv.clone(),
                started,
                duration: clock.elapsed(),
                ended,
            });
        }
        result
    }

    /// Runs a probe under the retry policy: `parse` turns output into data, `judge` decides
    /// whether an attempt counts toward the streak (and is what the check's judge reuses).
    pub async fn until_stable<T>(
        &self,
        probe: &Probe,
        parse: impl Fn(&ExecOutput) -> T,
        judge: impl Fn(&T) -> Verdict,
    ) -> Result<Series<T>, KitError> {
        until_stable(
            &self.env.retry,
            || async { self.run(probe).await.map(|o| parse(&o)) },
            |t| judge(t).is_pass(),
        )
        .await
    }

    pub fn into_transcript(self) -> Transcript {
        self.transcript.into_inner().unwrap_or_default()
    }
}

/// How a check observes: given the suite's deployed fixture and the check's context.
pub type ObserveFn<F, O> =
    for<'a> fn(&'a F, &'a CheckCtx<'a>) -> BoxFuture<'a, Result<O, KitError>>;

/// A check's two halves.
pub struct CheckImpl<F, O> {
    pub name: &'static str,
    pub observe: ObserveFn<F, O>,
    pub judge: fn(&O) -> Verdict,
}

/// A check with its observation type erased, so a suite can list its checks.
pub trait Runnable<F>: Send + Sync {
    fn name(&self) -> &'static str;
    fn run<'a>(
        &'a self,
        fixture: &'a F,
        ctx: &'a CheckCtx<'a>,
    ) -> BoxFuture<'a, Result<Verdict, KitError>>;
}

impl<F: Sync, O: Debug + Send + 'static> Runnable<F> for CheckImpl<F, O> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run<'a>(
        &'a self,
        fixture: &'a F,
        ctx: &'a CheckCtx<'a>,
    ) -> BoxFuture<'a, Result<Verdict, KitError>> {
        Box::pin(async move {
            let observation = (self.observe)(fixture, ctx).await?;
            Ok((self.judge)(&observation))
        })
    }
}

/// `check_impl!("name", observe_fn, judge_fn)` boxes a [`CheckImpl`]; `observe_fn` is an
/// `async fn(&Fixture, &CheckCtx) -> Result<Observation, KitError>`.
macro_rules! check_impl {
    ($name:literal, $observe:path, $judge:path) => {
        Box::new($crate::kit::check::CheckImpl {
            name: $name,
            observe: |f, c| Box::pin($observe(f, c)),
            judge: $judge,
        })
    };
}

pub(crate) use check_impl;
