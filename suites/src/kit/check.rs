//! A check is declared, not engineered: a name, an observe step that talks to the cluster and
//! returns plain data, and a pure judge over that data. The `check!` macro puts the two halves
//! into one declaration as separate functions, so a judge can never reach the cluster, and an
//! implemented check has no way to exist without both. This module also holds what every check
//! of a run shares ([`Env`]) and each check's own view of it ([`CheckCtx`]).

use crate::catalog::SuiteName;
use crate::kit::errors::KitError;
use crate::kit::exec::{ExecOutput, Executor};
use crate::kit::images::Images;
use crate::kit::outside::OutsideExec;
use crate::kit::probe::{Origin, Probe};
use crate::kit::retry::{RetryPolicy, Series, until_stable};
use crate::kit::transcript::{Attempt, Ended, Peer, ProbeLabel, Transcript};
use crate::kit::verdict::Verdict;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
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
    /// Where the suite's client keeps the API answers, when the run is recorded.
    pub api_log: Option<crate::kit::ApiLog>,
    /// What the cluster's values turn on (Hubble, the L7 proxy, ...), for checks that read
    /// more when a feature is there to read.
    pub features: crate::context::Features,
    /// The run's client outside the cluster, when it has one ([`crate::RunContext::outside`]).
    pub outside: Option<Arc<dyn OutsideExec>>,
    /// A block of LoadBalancer addresses on the outside client's L2 segment, for the
    /// lb-ipam suite's announced pool ([`crate::OutsideClient::l2_block`]).
    pub lb_l2_block: Option<String>,
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

    /// The outside client as a probe source, or why the run has none.
    pub fn outside_peer(&self) -> Result<Peer, KitError> {
        self.env
            .outside
            .as_ref()
            .map(|o| o.peer())
            .ok_or_else(no_outside_client)
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
        let result = match (&probe.origin, bound) {
            (Origin::Pod(pod), Some(b)) => self.env.exec.exec_within(pod, &probe.argv, b).await,
            (Origin::Pod(pod), None) => self.env.exec.exec(pod, &probe.argv).await,
            (Origin::Outside, bound) => match &self.env.outside {
                Some(o) => {
                    let b = bound.map_or(self.env.timeouts.exec, |b| b.max(self.env.timeouts.exec));
                    o.exec(&probe.argv, b).await
                }
                None => Err(no_outside_client()),
            },
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

fn no_outside_client() -> KitError {
    KitError::Missing {
        what: "the run's outside client".into(),
        hint: "this check probes from outside the cluster, and the run was given none (`harness check --outside-client docker-network|host`)".into(),
    }
}

/// A check's observation, as the judge saw it: plain data, kept as JSON so a run can later be
/// recorded and judged again without a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    pub verdict: Verdict,
    pub observation: serde_json::Value,
}

/// A declared check's observe step and judge, with the suite's fixture type erased so one list
/// can hold every suite's checks. The `check!` macro builds it; the fixture is downcast back to
/// the type the observe step takes.
pub(crate) type RunFn = for<'a> fn(
    &'a (dyn Any + Send + Sync),
    &'a CheckCtx<'a>,
) -> BoxFuture<'a, Result<Judged, KitError>>;

/// Gives a closure the [`RunFn`] signature it must have, so `check!` can build one in a const.
pub(crate) const fn run_fn(f: RunFn) -> RunFn {
    f
}

/// The suite's fixture as the type its observe steps take.
/// A check's judge, reached by the shape of its observation as JSON: what a recorded
/// observation is judged with again, and what the verdict snapshots drive.
#[derive(Clone, Copy)]
pub struct RecordedJudge {
    /// The judge function's path in its suite, e.g. `judge::http`.
    pub name: &'static str,
    pub(crate) judge: fn(&serde_json::Value) -> Result<Verdict, serde_json::Error>,
}

impl std::fmt::Debug for RecordedJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

pub(crate) fn judge_json<O: DeserializeOwned>(
    observation: &serde_json::Value,
    judge: fn(&O) -> Verdict,
) -> Result<Verdict, serde_json::Error> {
    O::deserialize(observation).map(|o| judge(&o))
}

pub(crate) fn fixture<F: 'static>(f: &(dyn Any + Send + Sync)) -> Result<&F, KitError> {
    f.downcast_ref::<F>().ok_or_else(|| KitError::Missing {
        what: format!("the suite's fixture as {}", std::any::type_name::<F>()),
        hint: "a check was declared in a suite whose setup builds another fixture; declare it in its own suite".into(),
    })
}

/// Judges an observation after a round trip through JSON: what the judge sees is exactly what a
/// recording of this run would hold, so judging a recording gives the same verdict.
pub(crate) fn conclude<O: Serialize + DeserializeOwned>(
    observation: O,
    judge: fn(&O) -> Verdict,
) -> Result<Judged, KitError> {
    let as_json = |e: serde_json::Error| KitError::Parse {
        what: format!("the observation {} as JSON", std::any::type_name::<O>()),
        detail: e.to_string(),
    };
    let value = serde_json::to_value(&observation).map_err(as_json)?;
    let replayed: O = serde_json::from_value(value.clone()).map_err(as_json)?;
    Ok(Judged {
        verdict: judge(&replayed),
        observation: value,
    })
}

/// Declares a check once, next to its observe step and judge:
///
/// ```ignore
/// check! {
///     name: "peers-per-node",
///     proves: "every agent has one peer per other node",
///     anchor: "cilium-dbg status: wireguard peer-count",
///     assumes: "the agent keeps one peer per remote node that publishes a key (all versions)",
///     applies: rules::two_nodes,      // optional; the suite's own rule always comes first
///     outside: true,                  // optional: it probes from the run's outside client
///     observe: observe::snapshot,     // async fn(&Fixture, &CheckCtx) -> Result<Observation, KitError>
///     judge: judge::peer_count,       // fn(&Observation) -> Verdict, pure
/// }
/// ```
///
/// `check! { pending, name: ..., proves: ..., anchor: ..., assumes: ..., applies: ... }` declares
/// one this version cannot run yet; the runner skips it as not implemented.
macro_rules! check {
    (
        name: $name:expr,
        proves: $proves:literal,
        anchor: $anchor:literal,
        assumes: $assumes:literal,
        $(applies: $rule:expr,)?
        $(outside: $outside:literal,)?
        observe: $observe:path,
        judge: $judge:path $(,)?
    ) => {
        $crate::catalog::CheckDecl {
            name: $name,
            proves: $proves,
            anchor: $anchor,
            assumes: $assumes,
            applies: $crate::kit::check::check!(@rule $($rule)?),
            outside: $crate::kit::check::check!(@outside $($outside)?),
            run: Some($crate::kit::check::run_fn(|f, c| {
                Box::pin(async move {
                    let fixture = $crate::kit::check::fixture(f)?;
                    let observation = $observe(fixture, c).await?;
                    $crate::kit::check::conclude(observation, $judge)
                })
            })),
            judge: Some($crate::kit::check::RecordedJudge {
                name: stringify!($judge),
                judge: |v| $crate::kit::check::judge_json(v, $judge),
            }),
        }
    };
    (
        pending,
        name: $name:expr,
        proves: $proves:literal,
        anchor: $anchor:literal,
        assumes: $assumes:literal
        $(, applies: $rule:expr)? $(,)?
    ) => {
        $crate::catalog::CheckDecl {
            name: $name,
            proves: $proves,
            anchor: $anchor,
            assumes: $assumes,
            applies: $crate::kit::check::check!(@rule $($rule)?),
            outside: false,
            run: None,
            judge: None,
        }
    };
    (@rule) => {
        $crate::rules::always
    };
    (@rule $rule:expr) => {
        $rule
    };
    (@outside) => {
        false
    };
    (@outside $outside:literal) => {
        $outside
    };
}

pub(crate) use check;
