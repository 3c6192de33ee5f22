//! `harness upgrade`: the upgrade gate. The selection flags name the starting point A, the
//! `--to-*` flags the versions to move to; everything is checked before anything exists (the
//! path against the release table, B's values against B's chart), then the engine runs the
//! gate's steps on a Talos-in-Docker cluster and the gate judges the report.

use super::args::{ClusterArgs, ReportArgs, RunArgs, SelectArgs, StateArgs};
use crate::errors::{Error, InputError, Refused, RunError};
use crate::install::InstallOptions;
use crate::install::helm::{ChartSource, HelmInstall};
use crate::plan::Plan;
use crate::preflight::{self, Host, Needs};
use crate::profile::Catalog;
use crate::run::signals::{self, Stop};
use crate::run::sweep::Sweep;
use crate::run::talos_docker::TalosDocker;
use crate::run::tester::KubeTester;
use crate::run::{Engine, EngineOptions, GateStep, Step, Verdict};
use crate::upgrade::gate::{self, AFTER, AFTER_DOWNGRADE, BEFORE};
use crate::upgrade::{self, Targets, UpgradePlan};
use crate::version::{CiliumVersion, KubernetesVersion, TalosVersion};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct UpgradeArgs {
    /// The starting point A: one --profile, and at most one of each version.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Cilium version to upgrade to (B), e.g. 1.20.2.
    #[arg(long, value_name = "V")]
    pub to_cilium_version: Option<String>,
    /// Talos version to upgrade to (B), e.g. v1.14.0; its nodes are replaced one at a time.
    #[arg(long, value_name = "V")]
    pub to_talos_version: Option<String>,
    /// Kubernetes version to upgrade to (B), e.g. 1.37.0, with `talosctl upgrade-k8s`.
    #[arg(long, value_name = "V")]
    pub to_kubernetes_version: Option<String>,
    /// After the suites at B, go back to the starting Cilium and run them again (Talos and
    /// Kubernetes downgrades are not supported upstream).
    #[arg(long)]
    pub downgrade: bool,
    /// Print the phases, versions and commands, and create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The talosctl of the Talos version upgraded to, for `upgrade-k8s` after a Talos move
    /// [default: --talosctl, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub to_talosctl: Option<PathBuf>,
    /// Bound on readiness after each move: every Cilium workload and node ready (a readiness
    /// past it is a regression).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub ready_bound: Duration,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    /// The Helm 3 binary.
    #[arg(long, default_value = "helm")]
    pub helm: PathBuf,
    /// Cilium chart: a directory or oci:// reference holding every version the gate installs,
    /// instead of the Cilium Helm repository.
    #[arg(long)]
    pub chart: Option<String>,
    /// Cilium Helm repository URL (for a mirror).
    #[arg(
        long,
        default_value = "https://helm.cilium.io",
        conflicts_with = "chart"
    )]
    pub chart_repo: String,
    /// Local Gateway API bundles: DIR/<version>/<channel>-install.yaml (runners without internet).
    #[arg(long)]
    pub gateway_api_dir: Option<PathBuf>,
    /// Bound on each install wait (CRDs, rollouts, nodes Ready) at A.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub install_timeout: Duration,
}

fn note<T>(problems: &mut Vec<InputError>, r: Result<T, impl Into<InputError>>) -> Option<T> {
    r.map_err(|e| problems.push(e.into())).ok()
}

impl UpgradeArgs {
    fn targets(&self, problems: &mut Vec<InputError>) -> Targets {
        Targets {
            cilium: self
                .to_cilium_version
                .as_deref()
                .and_then(|v| note(problems, CiliumVersion::parse(v))),
            talos: self
                .to_talos_version
                .as_deref()
                .and_then(|v| note(problems, TalosVersion::parse(v))),
            kubernetes: self
                .to_kubernetes_version
                .as_deref()
                .and_then(|v| note(problems, KubernetesVersion::parse(v))),
        }
    }

    fn install_options(&self) -> InstallOptions {
        InstallOptions {
            helm: self.helm.clone(),
            chart: match &self.chart {
                Some(c) => ChartSource::Chart(c.clone()),
                None => ChartSource::Repo(self.chart_repo.clone()),
            },
            gateway_api_dir: self.gateway_api_dir.clone(),
            timeout: self.install_timeout,
        }
    }
}

/// The engine's steps for a plan: install A, the suites before, the workload, the moves,
/// readiness, the disruption judge, the suites after, and the same again for a downgrade.
pub fn steps(plan: &UpgradePlan) -> Vec<Step> {
    let mut steps = vec![
        Step::Install,
        Step::Suites {
            label: Some(BEFORE),
        },
        Step::Gate(GateStep::StartDisruption),
        Step::Gate(GateStep::Upgrade),
        Step::Gate(GateStep::Readiness),
        Step::Gate(GateStep::JudgeDisruption),
        Step::Suites { label: Some(AFTER) },
    ];
    if plan.downgrade.is_some() {
        steps.extend([
            Step::Gate(GateStep::Downgrade),
            Step::Gate(GateStep::DowngradeReadiness),
            Step::Gate(GateStep::JudgeDisruptionAfterDowngrade),
            Step::Suites {
                label: Some(AFTER_DOWNGRADE),
            },
        ]);
    }
    steps
}

/// The rounds the gate compares with the baseline.
pub fn later_rounds(plan: &UpgradePlan) -> Vec<&'static str> {
    let mut rounds = vec![AFTER];
    if plan.downgrade.is_some() {
        rounds.push(AFTER_DOWNGRADE);
    }
    rounds
}

pub async fn run(args: UpgradeArgs) -> Result<Verdict, Error> {
    super::init_logging();
    let mut problems = Vec::new();
    let targets = args.targets(&mut problems);
    let selection = args
        .select
        .select(args.cluster.sizes.workers.workers)
        .map_err(|e| problems.extend(e))
        .ok();
    if let Some(s) = &selection
        && s.plan.cells.len() != 1
    {
        problems.push(InputError::problem(
            format!(
                "the upgrade gate starts from one cell, but this selection has {}",
                s.plan.cells.len()
            ),
            "pass one --profile, and at most one --cilium-version, --talos-version and --kubernetes-version",
        ));
    }
    note(&mut problems, args.select.check_external_target());
    let (run_id, suite_options) = args.run.run_id_and_suite_options(&mut problems);
    if args.report.record.is_some() {
        problems.push(InputError::problem(
            "--record is not supported by the upgrade gate yet",
            "leave out --record; record the starting point with `harness e2e --record DIR`",
        ));
    }
    let catalog = note(
        &mut problems,
        Catalog::with_dir(args.select.catalog.profiles_dir.as_deref()),
    );
    let upgrade = match (&selection, &catalog, problems.is_empty()) {
        (Some(s), Some(catalog), true) => {
            match upgrade::plan_upgrade(
                s.plan.cells[0].clone(),
                &targets,
                args.downgrade,
                catalog,
                &s.overlay,
                &s.options,
            ) {
                Ok(p) => Some(p),
                Err(errors) => {
                    problems.extend(errors);
                    None
                }
            }
        }
        _ => None,
    };
    let (Some(selection), Some(run_id), Some(suite_options), Some(upgrade), true) = (
        selection,
        run_id,
        suite_options,
        upgrade,
        problems.is_empty(),
    ) else {
        return Err(Refused(problems).into());
    };

    let state_dir = args.state.dir();
    let base = args.cluster.base_spec(&run_id, &state_dir);
    let mut deployer = TalosDocker::new(
        vec![upgrade.before.id.clone()],
        base,
        args.cluster.talos_image_repo.clone(),
        args.install_options(),
        selection.overlay.clone(),
        args.state.state_dir.is_some(),
    );
    deployer.outside_image = suite_options.images.client.to_string();
    let spec = deployer
        .spec_unchecked(&upgrade.before)
        .map_err(InputError::from)?;

    if args.dry_run {
        let run_dir = talos_docker::RunDir::path_for(&state_dir, &run_id, &spec.name);
        let subnet = "10.5.0.0/24".parse().expect("a valid subnet");
        let dry = upgrade::text::DryRun {
            run_id: run_id.to_string(),
            cluster: spec.name.clone(),
            nodes: spec.layout(subnet).into_iter().map(|n| n.name).collect(),
            control_planes: spec.control_planes,
            workers: spec.workers,
            image_repo: args.cluster.talos_image_repo.clone(),
            helm: HelmInstall {
                helm: args.helm.clone(),
                kubeconfig: run_dir.join(talos_docker::talosctl::KUBECONFIG),
                chart: args.install_options().chart,
                version: upgrade.before.cell.cilium.to_string(),
                values: run_dir.join("values.yaml"),
                timeout: args.install_timeout,
            },
            talosctl: args
                .to_talosctl
                .as_ref()
                .or(args.cluster.talosctl.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "talosctl".into()),
            ready_bound: args.ready_bound,
            run_dir,
        };
        print!("{}", upgrade::text::render(&upgrade, &dry));
        return Ok(Verdict::Passed);
    }

    live(
        args,
        selection.options,
        suite_options,
        upgrade,
        deployer,
        run_id,
    )
    .await
}

/// Everything the host must have for both ends of the gate, then the run itself.
async fn live(
    args: UpgradeArgs,
    options: crate::plan::PlanOptions,
    mut suite_options: suites::RunOptions,
    upgrade: UpgradePlan,
    deployer: TalosDocker,
    run_id: talos_docker::RunId,
) -> Result<Verdict, Error> {
    let mut problems = args.report.check();
    let state_dir = args.state.dir();
    note(
        &mut problems,
        preflight::output_dir("--state-dir", &state_dir),
    );
    if args.chart.is_none() {
        note(
            &mut problems,
            preflight::http_url("--chart-repo", &args.chart_repo),
        );
    }
    // Both ends: the tools and images of A and of B.
    let both = Plan {
        cells: vec![upgrade.before.clone(), upgrade.after.clone()],
        excluded: vec![],
        not_in_matrix: vec![],
    };
    let host = Host::current();
    let needs = Needs {
        helm: &args.helm,
        gateway_api_dir: args.gateway_api_dir.as_deref(),
        chart: args.chart.as_deref(),
    };
    problems.extend(
        preflight::check(&both, &needs, &host)
            .into_iter()
            .map(Into::into),
    );
    if let Some(helm) = host.find(&args.helm) {
        note(&mut problems, preflight::helm_runs(&helm).await);
    }
    let mut specs = Vec::new();
    match deployer.spec(&upgrade.before) {
        Ok(s) => specs.push(s),
        Err(e) => problems.push(e.into()),
    }
    // The outside client starts from the probe client image, when a planned check needs one.
    let outside_images: Vec<String> = [&upgrade.before, &upgrade.after]
        .into_iter()
        .any(crate::run::outside::needed)
        .then(|| deployer.outside_image.clone())
        .into_iter()
        .collect();
    problems.extend(preflight::docker_host(&specs, 1, &outside_images).await);
    if !problems.is_empty() {
        return Err(Refused(problems).into());
    }
    if args.run.keep_on_failure {
        suite_options.keep = suites::kit::namespace::KeepNamespaces::OnFailure;
    }

    let tester = KubeTester {
        filter: options.filter,
        options: suite_options,
        external_target: options.external_target,
        artifacts: args.report.artifacts.clone(),
        // --record is refused for the gate before this point.
        record_api: false,
    };
    let gc = deployer.gc_command();
    let interrupt =
        signals::install(run_id.as_str(), gc.clone()).map_err(|source| RunError::Os {
            what: "install the SIGINT/SIGTERM handlers",
            source,
        })?;
    let plan = Plan {
        cells: vec![upgrade.before.clone()],
        excluded: vec![],
        not_in_matrix: vec![],
    };
    let sweep = Sweep::arm(&run_id, &state_dir, deployer.cluster_names(&plan));
    let steps = steps(&upgrade);
    let later = later_rounds(&upgrade);
    let gate_deployer = crate::upgrade::live::Gate::new(
        &deployer,
        &upgrade,
        crate::upgrade::live::GateOptions {
            ready_bound: args.ready_bound,
            talosctl: args.to_talosctl.clone().or(args.cluster.talosctl.clone()),
            image_repo: args.cluster.talos_image_repo.clone(),
            run_id: run_id.to_string(),
        },
    );
    eprintln!(
        "run {run_id}: upgrade gate {}; report: {}",
        upgrade.before.profile.name,
        args.report.junit.display()
    );
    let progress = crate::run::progress::for_stderr();
    let engine = Engine {
        deployer: &gate_deployer,
        tester: &tester,
        steps: &steps,
        opts: EngineOptions {
            run_id: run_id.to_string(),
            keep_on_failure: args.run.keep_on_failure,
            jobs: 1,
            suite_jobs: 1,
            provenance: Default::default(),
        },
        progress: progress.as_ref(),
    };
    let mut report_error = None;
    let mut outcome = engine
        .run(&plan, &interrupt, |r| {
            if let Err(e) = crate::report::junit::write(r, &args.report.junit) {
                report_error = Some(RunError::Report {
                    message: e.to_string(),
                });
            }
        })
        .await;
    for n in &outcome.notes {
        eprintln!("{n}");
    }
    let verdict = judge_into(&mut outcome.report, &later);
    if let Err(e) = crate::report::junit::write(&outcome.report, &args.report.junit) {
        report_error = Some(RunError::Report {
            message: e.to_string(),
        });
    }
    let kept = deployer.kept();
    let swept = if matches!(*interrupt.borrow(), Stop::Abandon(_)) {
        sweep.disarm();
        eprintln!("clean-up skipped on request; remove what is left with `{gc}`");
        Ok(())
    } else {
        sweep.run(&kept).await.map(|removed| {
            if !removed.is_empty() {
                eprintln!("final sweep of run {run_id}: removed {removed}");
            }
        })
    };
    eprintln!("report: {}", args.report.junit.display());
    let verdict = match outcome.verdict {
        Verdict::Interrupted(s) => Verdict::Interrupted(s),
        _ => verdict,
    };
    super::finish(verdict, report_error, swept, &gc)
}

/// Adds each cell's `gate` testsuite to the report and returns the gate's verdict (the worst
/// cell's); says a gate that could not be carried out in its own words on stderr.
pub fn judge_into(report: &mut crate::report::RunReport, later: &[&str]) -> Verdict {
    let mut verdict = Verdict::Passed;
    for cell in &mut report.cells {
        let (suite, v) = gate::judge(cell, later);
        cell.suites.push(suite);
        if let gate::GateVerdict::NotCarriedOut(why) = &v {
            eprintln!("the gate could not be carried out: {why}");
        }
        verdict = match (verdict, v.exit_verdict()) {
            (Verdict::PhaseFailed, _) | (_, Verdict::PhaseFailed) => Verdict::PhaseFailed,
            (Verdict::ChecksFailed, _) | (_, Verdict::ChecksFailed) => Verdict::ChecksFailed,
            (v, _) => v,
        };
    }
    verdict
}
