//! `harness check`: the run engine over the existing-cluster deployer: the suites against a
//! cluster given by its kubeconfig and the profile it runs (a homelab, an Omni cluster, one from
//! `harness up`). The suites never know how a cluster was made; only the features derived from
//! the profile's values matter. Tear-down removes the run's test namespaces, nothing else.

use super::args::{ReportArgs, RunArgs, SelectArgs, SuiteJobsArg};
use crate::errors::{Error, InputError, Refused, RunError};
use crate::preflight;
use crate::run::existing::Existing;
use crate::run::kube::{CONNECT_TIMEOUT, KubeAccess, default_kubeconfig};
use crate::run::signals;
use crate::run::tester::KubeTester;
use crate::run::{Engine, EngineOptions, Step, Verdict};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub suite_jobs: SuiteJobsArg,
    /// The cluster's kubeconfig, read only; a `:`-separated list is merged like kubectl does
    /// [default: $KUBECONFIG, else ~/.kube/config].
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
}

/// Cross-node checks are planned for two schedulable nodes; at run time the suites judge
/// applicability on the count the deployer found.
const PLANNED_NODES: u32 = 2;

fn note<T>(problems: &mut Vec<InputError>, r: Result<T, impl Into<InputError>>) -> Option<T> {
    r.map_err(|e| problems.push(e.into())).ok()
}

pub async fn run(args: CheckArgs) -> Result<Verdict, Error> {
    let mut problems = Vec::new();
    let selection = note(&mut problems, args.select.select(PLANNED_NODES));
    if let Some(s) = &selection
        && s.plan.cells.len() != 1
    {
        problems.push(InputError::problem(
            format!(
                "check runs one cell, the one the cluster is, but this selection has {} cells",
                s.plan.cells.len()
            ),
            "name its profile with --profile (and --cilium-version, --talos-version)",
        ));
    }
    note(&mut problems, args.select.check_external_target());
    let run_id = note(&mut problems, args.run.run_id());
    let label = run_id.as_ref().map(|id| id.to_string()).unwrap_or_default();
    let suite_options = note(
        &mut problems,
        suites::RunOptions::from_env(label.as_str()).map_err(|e| {
            InputError::problem(
                e.to_string(),
                "set each HARNESS_IMAGE_* variable to an image with a tag or a digest",
            )
        }),
    );
    note(
        &mut problems,
        preflight::output_file("--junit", &args.report.junit),
    );
    note(
        &mut problems,
        preflight::output_dir("--artifacts", &args.report.artifacts),
    );
    let client = match args.kubeconfig.clone().or_else(default_kubeconfig) {
        None => {
            problems.push(InputError::problem(
                "no kubeconfig",
                "pass --kubeconfig or set KUBECONFIG",
            ));
            None
        }
        Some(path) => {
            let access = KubeAccess {
                kubeconfig: path,
                context: args.context.clone(),
            };
            match access.connect(CONNECT_TIMEOUT).await {
                Ok(connected) => Some(connected),
                Err(e) => {
                    problems.push(InputError::problem(
                        e.to_string(),
                        "pass a working one with --kubeconfig (and --context)",
                    ));
                    None
                }
            }
        }
    };
    let (Some(selection), Some(run_id), Some(mut suite_options), Some((client, server)), true) = (
        selection,
        run_id,
        suite_options,
        client,
        problems.is_empty(),
    ) else {
        return Err(Refused(problems).into());
    };

    if args.run.keep_on_failure {
        suite_options.keep = suites::kit::namespace::KeepNamespaces::OnFailure;
    }
    let deployer = Existing::new(client, run_id.as_str());
    let tester = KubeTester {
        filter: selection.options.filter,
        options: suite_options,
        external_target: selection.options.external_target,
        artifacts: args.report.artifacts.clone(),
    };
    let cleanup = crate::run::Deployer::leftovers(&deployer);
    let interrupt =
        signals::install(run_id.as_str(), cleanup.clone()).map_err(|source| RunError::Os {
            what: "install the SIGINT/SIGTERM handlers",
            source,
        })?;
    let plan = &selection.plan;
    eprintln!("run {run_id}: checking {server} as {}", plan.cells[0].id);
    let progress = crate::run::progress::for_stderr();
    let engine = Engine {
        deployer: &deployer,
        tester: &tester,
        steps: &[Step::Suites { label: None }],
        opts: EngineOptions {
            run_id: run_id.to_string(),
            keep_on_failure: args.run.keep_on_failure,
            jobs: 1,
            suite_jobs: args.suite_jobs.suite_jobs as usize,
            provenance: crate::report::provenance::Provenance {
                cells: plan
                    .cells
                    .iter()
                    .map(|c| {
                        let cell = crate::report::provenance::CellProvenance {
                            probe_images: crate::report::provenance::probe_images(
                                &tester.options.images,
                            ),
                            ..Default::default()
                        };
                        (c.id.clone(), cell)
                    })
                    .collect(),
                ..Default::default()
            },
        },
        progress: progress.as_ref(),
    };
    let (outcome, report_error) = engine
        .run_to_junit(plan, &interrupt, &args.report.junit)
        .await;
    eprintln!("report: {}", args.report.junit.display());
    // Tear-down was the sweep: nothing of this run lives outside its namespaces.
    super::finish(outcome.verdict, report_error, Ok(()), &cleanup)
}
