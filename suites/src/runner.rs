//! Running a suite's checks against a cluster: select, set up, observe and judge each check, tear
//! down. This is the entry point the harness calls; it never panics on cluster behaviour and always
//! returns one result per selected check.
//!
//! A check ends in exactly one of: passed (its judge said so), failed (its judge said the cluster
//! misbehaved), error (the kit could not observe: setup, API or exec failure), skipped (not
//! applicable to this cell, or not implemented in this version). Nothing unimplemented passes.

use crate::catalog::{self, CheckDecl, NOT_IMPLEMENTED, SuiteDecl, SuiteName};
use crate::context::{Applicability, RunContext};
use crate::filter::CheckFilter;
use crate::kit::api_log::{ApiLog, ApiRead};
use crate::kit::check::{CheckCtx, Env, Judged, RunFn, Timeouts};
use crate::kit::errors::KitError;
use crate::kit::exec::{Executor, KubeExecutor};
use crate::kit::images::Images;
use crate::kit::namespace::{self, KeepNamespaces, PsaLabels, RunId};
use crate::kit::outside::OutsideExec;
use crate::kit::retry::RetryPolicy;
use crate::kit::transcript::Transcript;
use crate::kit::verdict::Verdict;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How a run is configured; everything has a default except the run id.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub run_id: String,
    pub images: Images,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    pub keep: KeepNamespaces,
    pub cluster_domain: String,
    /// The CIDR of the pool the lb-ipam suite creates for itself; small, so it can be exhausted,
    /// and outside every other pool, or Cilium reports a conflict.
    pub lb_ipam_block: String,
    /// When the run is recorded: the log the suite's client keeps its API answers in (see
    /// [`ApiLog`]), one per suite run.
    pub api_log: Option<ApiLog>,
}

impl RunOptions {
    pub fn new(run_id: impl Into<String>) -> RunOptions {
        RunOptions {
            run_id: run_id.into(),
            images: Images::pinned(),
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            keep: KeepNamespaces::default(),
            cluster_domain: "cluster.local".into(),
            lb_ipam_block: crate::lb_ipam::DEFAULT_BLOCK.into(),
            api_log: None,
        }
    }

    /// Defaults with the image overrides from the environment (`HARNESS_IMAGE_*`).
    pub fn from_env(run_id: impl Into<String>) -> Result<RunOptions, KitError> {
        Ok(RunOptions {
            images: Images::from_env()?,
            ..RunOptions::new(run_id)
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    Passed { evidence: String },
    Failed { message: String },
    Error { message: String },
    Skipped { reason: String },
}

impl From<Verdict> for CheckOutcome {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Pass(evidence) => CheckOutcome::Passed { evidence },
            Verdict::Fail(message) => CheckOutcome::Failed { message },
        }
    }
}

impl CheckOutcome {
    pub fn is_bad(&self) -> bool {
        matches!(
            self,
            CheckOutcome::Failed { .. } | CheckOutcome::Error { .. }
        )
    }
}

#[derive(Clone, Debug)]
pub struct CheckRun {
    pub suite: SuiteName,
    pub check: &'static str,
    pub outcome: CheckOutcome,
    pub duration: Duration,
    /// The check's probes; render with [`Transcript::render`] for JUnit system-out.
    pub transcript: Transcript,
    /// What the judge was given, as JSON; `None` when the check never got as far as judging.
    pub observation: Option<serde_json::Value>,
    /// The API server's answers the check read, when the run is recorded.
    pub api: Vec<ApiRead>,
}

impl CheckRun {
    /// `suite::check`, the name filters and reports use.
    pub fn name(&self) -> String {
        format!("{}::{}", self.suite, self.check)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    /// No check needed the cluster, so nothing was created.
    NothingCreated,
    Deleted {
        namespaces: Vec<String>,
    },
    Kept {
        namespaces: Vec<String>,
        why: String,
    },
    Failed {
        message: String,
    },
}

#[derive(Clone, Debug)]
pub struct SuiteRun {
    pub suite: SuiteName,
    pub namespace: Option<String>,
    /// Workload creation and readiness, shared by all checks.
    pub setup: Transcript,
    pub setup_duration: Duration,
    /// One per selected check, in catalog order.
    pub checks: Vec<CheckRun>,
    pub cleanup: Cleanup,
    /// The API server's answers setup and tear-down read, when the run is recorded.
    pub setup_api: Vec<ApiRead>,
}

impl SuiteRun {
    pub fn any_bad(&self) -> bool {
        self.checks.iter().any(|c| c.outcome.is_bad())
    }
}

/// How a suite deploys what its checks share. The suite's declaration (`SUITE` in its folder)
/// names the implementation with [`runner`], which is all the registry needs to run it.
pub(crate) trait SuiteImpl: 'static {
    type Fixture: Send + Sync + 'static;

    /// Namespaces besides the suite's own that setup may create; deleted with it.
    fn extra_namespaces(_env: &Env) -> Vec<String> {
        Vec::new()
    }

    /// `wanted` holds the selected checks that apply, so setup deploys only what they use.
    fn setup(
        env: &Env,
        wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> impl Future<Output = Result<Self::Fixture, KitError>> + Send;

    /// Removes what setup made outside the suite's namespaces (cluster-scoped objects that
    /// deleting the namespaces would leave behind, or remove only later), after the checks and
    /// before the namespaces go. With `keep` the namespaces stay, and so should these objects;
    /// the returned sentences name what was kept, for [`Cleanup::Kept`].
    fn teardown(
        _env: &Env,
        _fixture: &Self::Fixture,
        _keep: bool,
        _log: &CheckCtx<'_>,
    ) -> impl Future<Output = Result<Vec<String>, KitError>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// What a suite's run gets from [`run_suite_with`].
pub(crate) struct RunArgs<'a> {
    client: &'a kube::Client,
    exec: Arc<dyn Executor>,
    outside: Option<Arc<dyn OutsideExec>>,
    decl: &'static SuiteDecl,
    ctx: &'a RunContext,
    opts: &'a RunOptions,
    wanted: &'a [&'static str],
    run: &'a mut SuiteRun,
}

/// A suite's set-up, checks and tear-down with its fixture type erased, so the registry can
/// hold every suite.
pub(crate) type SuiteRunFn = for<'a> fn(RunArgs<'a>) -> BoxFuture<'a, Vec<CheckRun>>;

/// The [`SuiteRunFn`] of an implementation, for its suite's declaration.
pub(crate) fn runner<S: SuiteImpl>(args: RunArgs<'_>) -> BoxFuture<'_, Vec<CheckRun>> {
    Box::pin(run_impl::<S>(args))
}

/// The names of the checks a suite implements (observe + judge), for coverage tests and plans.
pub fn implemented_checks(suite: SuiteName) -> Vec<&'static str> {
    catalog::suite(suite)
        .checks
        .iter()
        .filter(|c| c.run.is_some())
        .map(|c| c.name)
        .collect()
}

/// Runs the selected checks of one suite against the cluster behind `client`, probing by exec.
pub async fn run_suite(
    client: &kube::Client,
    suite: SuiteName,
    ctx: &RunContext,
    filter: &CheckFilter,
    opts: &RunOptions,
) -> SuiteRun {
    let exec = Arc::new(KubeExecutor::new(client.clone(), opts.timeouts.exec));
    run_suite_with(client, exec, suite, ctx, filter, opts).await
}

/// [`run_suite`] with the executor supplied, so tests can script probe output.
pub async fn run_suite_with(
    client: &kube::Client,
    exec: Arc<dyn Executor>,
    suite: SuiteName,
    ctx: &RunContext,
    filter: &CheckFilter,
    opts: &RunOptions,
) -> SuiteRun {
    run_suite_from(client, exec, None, suite, ctx, filter, opts).await
}

/// [`run_suite_with`] with the run's outside client, the origin of the north-south probes
/// (`ctx.outside` says what it is; `outside` runs its commands).
pub async fn run_suite_from(
    client: &kube::Client,
    exec: Arc<dyn Executor>,
    outside: Option<Arc<dyn OutsideExec>>,
    suite: SuiteName,
    ctx: &RunContext,
    filter: &CheckFilter,
    opts: &RunOptions,
) -> SuiteRun {
    let decl = catalog::suite(suite);
    let mut slots: Vec<(&'static CheckDecl, Option<CheckRun>)> = Vec::new();
    for c in decl.checks.iter().filter(|c| filter.selects(decl, c.name)) {
        let done = match decl.check_runnability(c, ctx) {
            Applicability::Applies => None,
            Applicability::Skipped(reason) => {
                Some(finished(suite, c.name, CheckOutcome::Skipped { reason }))
            }
        };
        slots.push((c, done));
    }
    let mut run = SuiteRun {
        suite,
        namespace: None,
        setup: Transcript::new(),
        setup_duration: Duration::ZERO,
        checks: Vec::new(),
        cleanup: Cleanup::NothingCreated,
        setup_api: Vec::new(),
    };
    let wanted: Vec<&'static str> = slots
        .iter()
        .filter(|(_, d)| d.is_none())
        .map(|(c, _)| c.name)
        .collect();
    if !wanted.is_empty() {
        let results = match decl.run {
            Some(run_fn) => {
                run_fn(RunArgs {
                    client,
                    exec,
                    outside,
                    decl,
                    ctx,
                    opts,
                    wanted: &wanted,
                    run: &mut run,
                })
                .await
            }
            None => wanted
                .iter()
                .map(|c| {
                    finished(
                        suite,
                        c,
                        CheckOutcome::Skipped {
                            reason: NOT_IMPLEMENTED.into(),
                        },
                    )
                })
                .collect(),
        };
        let mut results = results.into_iter();
        for (_, done) in slots.iter_mut().filter(|(_, d)| d.is_none()) {
            *done = results.next();
        }
    }
    run.checks = slots.into_iter().filter_map(|(_, d)| d).collect();
    run
}

fn finished(suite: SuiteName, check: &str, outcome: CheckOutcome) -> CheckRun {
    CheckRun {
        suite,
        check: catalog::suite(suite)
            .check(check)
            .map_or("unknown", |c| c.name),
        outcome,
        duration: Duration::ZERO,
        transcript: Transcript::new(),
        observation: None,
        api: Vec::new(),
    }
}

async fn run_impl<S: SuiteImpl>(args: RunArgs<'_>) -> Vec<CheckRun> {
    let RunArgs {
        client,
        exec,
        outside,
        decl,
        ctx,
        opts,
        wanted,
        run,
    } = args;
    let suite = decl.name;
    let all_error = |message: String| -> Vec<CheckRun> {
        wanted
            .iter()
            .map(|c| {
                finished(
                    suite,
                    c,
                    CheckOutcome::Error {
                        message: message.clone(),
                    },
                )
            })
            .collect()
    };
    let run_id = match RunId::new(&opts.run_id) {
        Ok(r) => r,
        Err(e) => return all_error(e.to_string()),
    };
    let ns_name = namespace::namespace_name(&run_id, suite, None);
    let env = Env {
        client: client.clone(),
        exec,
        suite,
        namespace: ns_name.clone(),
        run_id: run_id.clone(),
        images: opts.images.clone(),
        retry: opts.retry,
        timeouts: opts.timeouts,
        cluster_domain: opts.cluster_domain.clone(),
        lb_ipam_block: opts.lb_ipam_block.clone(),
        external_target: ctx.external_target.clone(),
        nodes: ctx.nodes,
        api_log: opts.api_log.clone(),
        features: ctx.features.clone(),
        outside: if ctx.outside.is_some() { outside } else { None },
        lb_l2_block: ctx
            .outside
            .as_ref()
            .and_then(|o| o.l2_cidr())
            .map(String::from),
    };
    let mut namespaces = vec![ns_name.clone()];
    namespaces.extend(S::extra_namespaces(&env));
    run.namespace = Some(ns_name.clone());

    let started = tokio::time::Instant::now();
    if let Some(log) = &env.api_log {
        log.begin(SETUP);
    }
    let setup_log = CheckCtx::new(&env, "setup");
    let ns = namespace::test_namespace(&ns_name, &run_id, suite, PsaLabels::PRIVILEGED);
    let fixture = match namespace::create(client, &ns).await {
        Ok(_) => {
            setup_log.note(format!(
                "namespace {ns_name} created with pod-security.kubernetes.io/enforce=privileged"
            ));
            S::setup(&env, wanted, &setup_log).await
        }
        Err(e) => {
            // Nothing of ours exists if the namespace could not be created.
            namespaces.clear();
            Err(e)
        }
    };
    run.setup_duration = started.elapsed();

    let (results, fixture) = match fixture {
        Err(e) => (
            all_error(
                KitError::Setup {
                    suite: suite.to_string(),
                    cause: e.to_string(),
                }
                .to_string(),
            ),
            None,
        ),
        Ok(fixture) => {
            let mut out = Vec::new();
            for name in wanted {
                let run_fn = decl.check(name).and_then(|c| c.run);
                let Some(run_fn) = run_fn else {
                    out.push(finished(suite, name, CheckOutcome::Error {
                        message: format!("{suite}::{name} was selected to run but has no observe/judge in this build"),
                    }));
                    continue;
                };
                out.push(run_check(&env, run_fn, &fixture, name).await);
            }
            (out, Some(fixture))
        }
    };

    if let Some(log) = &env.api_log {
        log.begin(SETUP);
    }
    let bad = results.iter().any(|r| r.outcome.is_bad());
    let keep = !namespaces.is_empty() && opts.keep.keeps(bad);
    let mut errors = Vec::new();
    let mut kept_too = Vec::new();
    if let Some(fixture) = &fixture {
        match S::teardown(&env, fixture, keep, &setup_log).await {
            Ok(kept) => kept_too = kept,
            Err(e) => {
                setup_log.note(format!("teardown: {e}"));
                errors.push(e.to_string());
            }
        }
    }
    run.setup = setup_log.into_transcript();
    if let Some(log) = &env.api_log {
        run.setup_api = log.take(SETUP);
    }
    run.cleanup = if namespaces.is_empty() {
        Cleanup::NothingCreated
    } else if keep {
        let mut why: String = if bad {
            "kept because a check failed (keep on failure)".into()
        } else {
            "kept on request".into()
        };
        for k in kept_too.iter().chain(&errors) {
            why.push_str("; ");
            why.push_str(k);
        }
        Cleanup::Kept { why, namespaces }
    } else {
        for ns in &namespaces {
            if let Err(e) = namespace::delete(client, ns).await {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Cleanup::Deleted { namespaces }
        } else {
            Cleanup::Failed {
                message: errors.join("; "),
            }
        }
    };
    results
}

async fn run_check<F: Send + Sync + 'static>(
    env: &Env,
    run_fn: RunFn,
    fixture: &F,
    name: &'static str,
) -> CheckRun {
    let ctx = CheckCtx::new(env, name);
    if let Some(log) = &env.api_log {
        log.begin(name);
    }
    let started = tokio::time::Instant::now();
    let budget = env.timeouts.check;
    let mut observation = None;
    let outcome = match tokio::time::timeout(budget, run_fn(fixture, &ctx)).await {
        Ok(Ok(Judged {
            verdict,
            observation: seen,
        })) => {
            observation = Some(seen);
            CheckOutcome::from(verdict)
        }
        Ok(Err(e)) => CheckOutcome::Error {
            message: e.to_string(),
        },
        Err(_) => CheckOutcome::Error {
            message: format!(
                "the check did not finish within its {}s budget; the transcript shows how far it got",
                budget.as_secs()
            ),
        },
    };
    CheckRun {
        suite: env.suite,
        check: name,
        outcome,
        duration: started.elapsed(),
        transcript: ctx.into_transcript(),
        observation,
        api: env.api_log.as_ref().map_or_else(Vec::new, |l| l.take(name)),
    }
}

/// Whose API reads setup's and tear-down's are; no check has this name.
const SETUP: &str = "(setup)";
