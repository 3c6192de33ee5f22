//! Every check as a nextest trial named `profile::suite::check`, so `cargo nextest run` can list,
//! filter, retry, partition and report the checks against a cluster you already have:
//!
//!     harness up --name dev && (install Cilium with a profile's values)
//!     HARNESS_KUBECONFIG=... HARNESS_PROFILE=talos-hubble cargo nextest run -p harness \
//!         --test cluster_checks -E 'test(/^talos-hubble::dns::/)'
//!
//! Whether a trial can run is decided while listing (a skip at run time would show as a pass):
//! without a cluster, or for a check the profile does not need, the trial is ignored, and forcing
//! it with `--run-ignored` fails it with the reason. Listing never contacts a cluster.

use harness::matrix::{Cell, MatrixSpec, expand};
use harness::plan::{PlanOptions, plan_cell};
use harness::profile::Catalog;
use harness::profile::overlay::Overlay;
use libtest_mimic::{Arguments, Failed, Trial};
use std::sync::OnceLock;
use suites::{Applicability, CheckFilter, CheckOutcome, RunContext, SuiteName};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().expect("a tokio runtime"))
}

struct Target {
    kubeconfig: String,
    profile: String,
}

fn target() -> Option<Target> {
    Some(Target {
        kubeconfig: std::env::var("HARNESS_KUBECONFIG").ok()?,
        profile: std::env::var("HARNESS_PROFILE").ok()?,
    })
}

fn run_check(
    kubeconfig: &str,
    suite: SuiteName,
    check: &str,
    ctx: &RunContext,
) -> Result<(), Failed> {
    runtime().block_on(async {
        let (client, _) = harness::run::kube::KubeAccess::new(kubeconfig)
            .client()
            .await
            .map_err(|e| e.to_string())?;
        let filter =
            CheckFilter::new(&[], &[format!("{suite}::{check}")]).map_err(|e| e.to_string())?;
        let run_id = format!("nextest-{}", std::process::id());
        let opts = suites::RunOptions::from_env(run_id).map_err(|e| e.to_string())?;
        let run = suites::run_suite(&client, suite, ctx, &filter, &opts).await;
        let result = run.checks.first().ok_or("the suite ran no check")?;
        match &result.outcome {
            CheckOutcome::Passed { .. } => Ok(()),
            CheckOutcome::Failed { message } | CheckOutcome::Error { message } => {
                Err(format!("{message}\n{}", result.transcript.render()).into())
            }
            CheckOutcome::Skipped { reason } => {
                Err(format!("skipped at run time: {reason}").into())
            }
        }
    })
}

fn main() {
    let args = Arguments::from_args();
    let catalog = Catalog::embedded();
    let overlay = Overlay::embedded();
    let target = target();
    let workers: u32 = std::env::var("HARNESS_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let external = std::env::var("HARNESS_EXTERNAL_TARGET").ok();
    let default = MatrixSpec::embedded_default();
    let mut trials = Vec::new();
    for profile in catalog.profiles() {
        let spec = MatrixSpec {
            profiles: vec![profile.name.clone()],
            cilium_versions: vec![
                profile
                    .cilium_version
                    .clone()
                    .unwrap_or_else(|| harness::matrix::NEWEST.to_string()),
            ],
            talos_versions: default.talos_versions.clone(),
            kubernetes_versions: vec![],
        };
        let (cells, _) = expand(&spec, &catalog).expect("embedded profiles expand");
        let cell: &Cell = &cells[0];
        let opts = PlanOptions {
            values_files: vec![],
            filter: CheckFilter::new(&[], &[]).expect("no filter"),
            nodes: workers,
            external_target: external.clone(),
            outside: None,
        };
        let planned = plan_cell(cell, &catalog, &overlay, &opts).expect("embedded profiles plan");
        let ctx = RunContext {
            features: planned.features.clone(),
            nodes: workers,
            external_target: external.clone(),
            outside: None,
        };
        for suite in &planned.suites {
            for check in &suite.checks {
                let name = format!("{}::{}", profile.name, check.name);
                let short = check
                    .name
                    .split("::")
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let ignored = match (&target, &check.applicability) {
                    (_, Applicability::Skipped(why)) => Some(why.clone()),
                    (None, _) => Some(
                        "no cluster: set HARNESS_KUBECONFIG and HARNESS_PROFILE (see `harness up`)"
                            .into(),
                    ),
                    (Some(t), _) if t.profile != profile.name => {
                        Some(format!("the cluster runs profile {}", t.profile))
                    }
                    _ => None,
                };
                let kubeconfig = target
                    .as_ref()
                    .map(|t| t.kubeconfig.clone())
                    .unwrap_or_default();
                let (suite_name, ctx) = (suite.suite, ctx.clone());
                let is_ignored = ignored.is_some();
                // Forced with --run-ignored, a trial that cannot run fails with its reason: it
                // never passes without having checked anything.
                let trial = Trial::test(name, move || match ignored {
                    Some(why) => Err(format!("cannot run: {why}").into()),
                    None => run_check(&kubeconfig, suite_name, &short, &ctx),
                });
                trials.push(trial.with_ignored_flag(is_ignored));
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
