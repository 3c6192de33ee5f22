//! `harness e2e`: the run engine over the Talos-in-Docker deployer, one cluster per cell.
//! Everything that can be wrong with the input or the host is found, all at once, before the
//! first Docker object exists; after that a failure is a test result, an interrupt still tears
//! down and reports, and a final sweep removes whatever carries the run id.

use super::args::{ChartArgs, ClusterArgs, JobsArgs, ReportArgs, RunArgs, SelectArgs, StateArgs};
use crate::errors::{Error, InputError, Refused, RunError};
use crate::install::InstallOptions;
use crate::preflight::{self, Host, Needs};
use crate::report::{
    self,
    provenance::{CellProvenance, ImagePin, Provenance},
};
use crate::run::outside;
use crate::run::signals::{self, Stop};
use crate::run::sweep::Sweep;
use crate::run::talos_docker::TalosDocker;
use crate::run::tester::KubeTester;
use crate::run::{Engine, EngineOptions, Step, Verdict};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct E2eArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub chart: ChartArgs,
    /// Local Gateway API bundles: DIR/<version>/<channel>-install.yaml (runners without internet).
    #[arg(long)]
    pub gateway_api_dir: Option<PathBuf>,
    /// Run only this shard's cells: a stable hash of each cell id picks one of N shards, so N
    /// jobs with hash:1/N .. hash:N/N run every cell exactly once.
    #[arg(long, value_name = "hash:K/N", value_parser = crate::partition::Partition::parse)]
    pub partition: Option<crate::partition::Partition>,
    /// Bound on each install wait (CRDs, rollouts, nodes Ready).
    #[arg(long, default_value = "10m", value_parser = crate::cli::args::parse_duration)]
    pub install_timeout: Duration,
}

/// The problems inside a refusal.
fn e_problems(e: Error) -> Vec<InputError> {
    match e {
        Error::Refused(Refused(problems)) => problems,
        Error::Run(r) => vec![InputError::problem(
            r.to_string(),
            "check the engine with `docker info`",
        )],
    }
}

/// Keeps the first error of each step and goes on, so every problem is reported at once.
fn note<T>(problems: &mut Vec<InputError>, r: Result<T, impl Into<InputError>>) -> Option<T> {
    r.map_err(|e| problems.push(e.into())).ok()
}

pub async fn run(args: E2eArgs) -> Result<Verdict, Error> {
    super::init_logging();
    let mut problems = Vec::new();
    let mut selection = args
        .select
        .select(args.cluster.sizes.workers.workers)
        .map_err(|e| problems.extend(e))
        .ok();
    if let (Some(s), Some(p)) = (&mut selection, &args.partition) {
        note(
            &mut problems,
            p.select(&mut s.plan).map_err(InputError::Unsupported),
        );
    }
    note(&mut problems, args.select.check_external_target());
    let (run_id, suite_options) = args.run.run_id_and_suite_options(&mut problems);
    let state_dir = args.state.dir();
    problems.extend(args.report.check());
    note(
        &mut problems,
        preflight::output_dir("--state-dir", &state_dir),
    );
    if args.chart.chart.is_none() {
        note(
            &mut problems,
            preflight::http_url("--chart-repo", &args.chart.chart_repo),
        );
    }
    let mut host = Host::current();

    let jobs = args.jobs.jobs(
        args.cluster.sizes.cluster_size(),
        selection.as_ref().map_or(1, |s| s.plan.cells.len()),
    );
    let deployer = match (&selection, &run_id) {
        (Some(s), Some(id)) => {
            let base = args.cluster.base_spec(id, &state_dir);
            let mut deployer = TalosDocker::new(
                s.plan.cells.iter().map(|c| c.id.clone()).collect(),
                base,
                args.cluster.talos_image_repo.clone(),
                InstallOptions {
                    helm: args.chart.helm.clone(),
                    chart: args.chart.source(),
                    gateway_api_dir: args.gateway_api_dir.clone(),
                    timeout: args.install_timeout,
                },
                s.overlay.clone(),
                args.state.state_dir.is_some(),
            );
            deployer.mirrors = args.cluster.registry_mirrors.clone();
            let mut specs = Vec::new();
            for cell in &s.plan.cells {
                let checked = deployer.spec(cell);
                match checked {
                    Ok(_) => {}
                    // Sizes are the same for every cell: say each problem once.
                    Err(e) if problems.iter().any(|p| p.to_string() == e.to_string()) => {}
                    Err(e) => problems.push(e.into()),
                }
                if let Ok(spec) = deployer.spec_unchecked(cell) {
                    specs.push(spec);
                }
            }
            if let Some(o) = &suite_options {
                deployer.outside_image = o.images.client.to_string();
            }
            deployer.api_wait = !args.cluster.no_api_wait;
            // The outside client starts from the probe client image, when a cell needs one; with
            // the probe images refused (reported above) there is no image to look for yet.
            let outside_images: Vec<String> =
                if suite_options.is_some() && s.plan.cells.iter().any(outside::needed) {
                    vec![deployer.outside_image.clone()]
                } else {
                    Vec::new()
                };
            let docker_problems = preflight::docker_host(&specs, jobs.jobs, &outside_images).await;
            // The nodes share the engine's kernel: ask it, once the engine and image are known good.
            if docker_problems.is_empty()
                && let Some(spec) = specs.first()
            {
                match preflight::engine_modules(&s.plan, &spec.image(), id, spec.timeouts.docker)
                    .await
                {
                    Ok(modules) => host.engine_modules = modules,
                    Err(e) => problems.push(e),
                }
            }
            problems.extend(docker_problems);
            for m in &args.cluster.registry_mirrors {
                note(&mut problems, crate::registry_mirror::answers(m).await);
            }
            Some(deployer)
        }
        _ => {
            // No cells to size: still say what is wrong with the node sizes and the engine,
            // so one run reports every problem.
            let id = run_id.clone().unwrap_or_else(talos_docker::RunId::generate);
            let spec = args.cluster.base_spec(&id, &state_dir);
            if let Err(e) = spec.validate() {
                problems.push(e.into());
            }
            if let Err(e) = super::connect().await {
                problems.extend(e_problems(e));
            }
            None
        }
    };
    if let Some(s) = &selection {
        let needs = Needs {
            helm: &args.chart.helm,
            gateway_api_dir: args.gateway_api_dir.as_deref(),
            chart: args.chart.chart.as_deref(),
        };
        problems.extend(
            preflight::check(&s.plan, &needs, &host)
                .into_iter()
                .map(Into::into),
        );
    }
    if let Some(helm) = host.find(&args.chart.helm) {
        note(&mut problems, preflight::helm_runs(&helm).await);
    }
    let (Some(selection), Some(run_id), Some(mut suite_options), Some(deployer), true) = (
        selection,
        run_id,
        suite_options,
        deployer,
        problems.is_empty(),
    ) else {
        return Err(Refused(problems).into());
    };

    if args.run.keep_on_failure {
        suite_options.keep = suites::kit::namespace::KeepNamespaces::OnFailure;
    }
    let plan = &selection.plan;
    let tester = KubeTester {
        filter: selection.options.filter,
        options: suite_options,
        external_target: selection.options.external_target,
        artifacts: args.report.artifacts.clone(),
        record_api: args.report.record.is_some(),
    };
    let gc = deployer.gc_command();
    let interrupt =
        signals::install(run_id.as_str(), gc.clone()).map_err(|source| RunError::Os {
            what: "install the SIGINT/SIGTERM handlers",
            source,
        })?;
    let sweep = Sweep::arm(&run_id, &state_dir, deployer.cluster_names(plan));
    eprintln!(
        "run {run_id}: {} cell(s), {jobs}; report: {}",
        plan.cells.len(),
        args.report.junit.display()
    );
    let provenance = provenance(plan, &args, &tester.options.images).await;
    let progress = crate::run::progress::for_stderr();
    let engine = Engine {
        deployer: &deployer,
        tester: &tester,
        steps: &[Step::Install, Step::Suites { label: None }],
        opts: EngineOptions {
            run_id: run_id.to_string(),
            keep_on_failure: args.run.keep_on_failure,
            jobs: jobs.jobs,
            suite_jobs: args.jobs.suite_jobs.suite_jobs as usize,
            provenance,
        },
        progress: progress.as_ref(),
    };
    let (outcome, report_error) = engine
        .run_to_junit(
            plan,
            &interrupt,
            &args.report.junit,
            args.report.recorder("e2e").as_ref(),
        )
        .await;
    let kept = deployer.kept();
    let swept = if matches!(*interrupt.borrow(), Stop::Abandon(_)) {
        sweep.disarm();
        eprintln!("clean-up skipped on request; remove what is left with `{gc}`");
        Ok(())
    } else {
        let mut rx = interrupt.clone();
        tokio::select! {
            r = sweep.run(&kept) => r.map(|removed| {
                if !removed.is_empty() {
                    eprintln!("final sweep of run {run_id}: removed {removed}");
                }
            }),
            _ = signals::wait(&mut rx, true) => {
                eprintln!("clean-up skipped on request; remove what is left with `{gc}`");
                Ok(())
            }
        }
    };
    eprintln!("report: {}", args.report.junit.display());
    if let Some(dir) = &args.report.record {
        eprintln!(
            "recording: {} (judge it again with `harness replay {}`)",
            dir.display(),
            dir.display()
        );
    }
    super::finish(outcome.verdict, report_error, swept, &gc)
}

/// What each cell runs on, for the report: the chart (with its sha256 when it is a local
/// archive), the Talos image with its registry digest where Docker knows one (an imported or
/// locally built image has none), and the probe images. Provenance only: a slow or failed
/// inspect leaves a digest unknown, it does not stop the run.
async fn provenance(
    plan: &crate::plan::Plan,
    args: &E2eArgs,
    images: &suites::kit::images::Images,
) -> Provenance {
    let chart_digest = args
        .chart
        .chart
        .as_deref()
        .map(std::path::Path::new)
        .filter(|p| p.is_file())
        .and_then(|p| upstream::Sha256::of_file(p).ok())
        .map(|sum| format!("sha256:{sum}"));
    let engine = super::connect().await.ok();
    let mut digests = BTreeMap::new();
    let probes = report::provenance::probe_images(images);
    let mut cells = BTreeMap::new();
    for c in &plan.cells {
        let image = format!("{}:{}", args.cluster.talos_image_repo, c.cell.talos);
        if !digests.contains_key(&image)
            && let Some(engine) = &engine
        {
            let digest = tokio::time::timeout(
                Duration::from_secs(15),
                engine.client().inspect_image(&image),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|i| {
                i.repo_digests
                    .unwrap_or_default()
                    .iter()
                    .find_map(|d| d.split_once('@').map(|(_, d)| d.to_string()))
            });
            digests.insert(image.clone(), digest);
        }
        cells.insert(
            c.id.clone(),
            CellProvenance {
                chart_version: Some(c.cell.cilium.to_string()),
                chart_digest: chart_digest.clone(),
                talos_image: Some(ImagePin {
                    role: "talos".into(),
                    digest: digests.get(&image).cloned().flatten(),
                    reference: image,
                }),
                probe_images: probes.clone(),
            },
        );
    }
    Provenance {
        cells,
        artifacts: Some(args.report.artifacts.clone()),
        ..Provenance::default()
    }
}
