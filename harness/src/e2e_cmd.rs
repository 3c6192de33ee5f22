//! `harness e2e`: plan, check the host, then run every cell and write the JUnit report.
//! Everything that can be wrong with the input or the host is found before the first container
//! exists; after that a failure is a test result, and an interrupt still destroys and reports.

use crate::cli::SelectArgs;
use crate::errors::InputError;
use crate::install::InstallOptions;
use crate::install::helm::ChartSource;
use crate::preflight::{self, Host, Needs};
use crate::report::provenance::{CellProvenance, ImagePin, Provenance};
use crate::report::{self, junit};
use crate::run::live::Live;
use crate::run::{RunOptions, exit_status, run_plan, signals};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use talos_docker::docker::Engine;
use talos_docker::spec::{TalosVersion, Timeouts};
use talos_docker::talosctl::Talosctl;

#[derive(Args, Debug)]
pub struct E2eArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Run only this shard's cells: a stable hash of each cell id picks one of N shards, so N
    /// jobs with hash:1/N .. hash:N/N run every cell exactly once.
    #[arg(long, value_name = "hash:K/N", value_parser = crate::partition::Partition::parse)]
    pub partition: Option<crate::partition::Partition>,
    /// Where the JUnit report goes (rewritten after every cell).
    #[arg(long, default_value = "reports/junit.xml")]
    pub junit: PathBuf,
    /// Where diagnostics of failed cells go.
    #[arg(long, default_value = "reports/artifacts")]
    pub artifacts: PathBuf,
    /// Keep a failed cell's cluster (and its test namespaces) for debugging.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// The talosctl to use; its minor version must match each cell's Talos.
    #[arg(long)]
    pub talosctl: Option<PathBuf>,
    /// The Helm 3 binary.
    #[arg(long, default_value = "helm")]
    pub helm: PathBuf,
    /// Cilium chart: a directory, .tgz or oci:// reference instead of the Cilium Helm repository.
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
    /// Bound on each install wait (CRDs, rollouts, nodes Ready).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub install_timeout: Duration,
    /// Where run directories (secrets, talosconfig, kubeconfig; mode 0600) go.
    #[arg(long, env = "HARNESS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Label this run's Docker objects with this id (e.g. the CI job id, for `harness gc --run-id`).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Talos image repository; the tag is each cell's Talos version (for mirrors).
    #[arg(long, default_value = "ghcr.io/siderolabs/talos")]
    pub talos_image_repo: String,
    /// CPUs per node.
    #[arg(long, default_value_t = 2.0)]
    pub cpus: f64,
    /// Memory per node, in MiB or with a unit (512MiB, 2GiB).
    #[arg(long, default_value = "2GiB", value_parser = crate::cluster_cmd::parse_memory_mib)]
    pub memory: u64,
    /// How long the API server may take to list every node after bootstrap.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,
    /// Start nodes unprivileged: only for stand-in images on hosts that cannot run privileged
    /// containers (tests); Talos does not boot that way.
    #[arg(long, hide = true)]
    pub unprivileged: bool,
}

impl E2eArgs {
    fn image(&self, talos: &str) -> String {
        format!("{}:{talos}", self.talos_image_repo)
    }
}

fn refuse(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    2
}

pub fn e2e(args: E2eArgs) -> u8 {
    let (mut plan, overlay) = match args.select.plan() {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    if let Some(Err(e)) = args.partition.map(|p| p.select(&mut plan)) {
        return refuse(e);
    }
    let options = match args.select.options() {
        Ok(o) => o,
        Err(e) => return refuse(e),
    };
    let run_id = match args.run_id.as_deref().map(talos_docker::RunId::parse) {
        None => talos_docker::RunId::generate(),
        Some(Ok(id)) => id,
        Some(Err(e)) => return refuse(e),
    };
    let mut suite_opts = match suites::RunOptions::from_env(run_id.as_str()) {
        Ok(o) => o,
        Err(e) => return refuse(format!("{e}; fix the HARNESS_IMAGE_* variables")),
    };
    if args.keep_on_failure {
        suite_opts.keep = suites::kit::namespace::KeepNamespaces::OnFailure;
    }
    let live = Live {
        run_id: run_id.clone(),
        cells: plan.cells.iter().map(|c| c.id.clone()).collect(),
        talosctl: args.talosctl.clone(),
        state_dir: args.state_dir.clone(),
        talos_image_repo: args.talos_image_repo.clone(),
        cpus: args.cpus,
        memory_mib: args.memory,
        ready_timeout: args.ready_timeout,
        privileged: !args.unprivileged,
        workers: options.nodes,
        install: InstallOptions {
            helm: args.helm.clone(),
            chart: match &args.chart {
                Some(c) => ChartSource::Chart(c.clone()),
                None => ChartSource::Repo(args.chart_repo.clone()),
            },
            gateway_api_dir: args.gateway_api_dir.clone(),
            timeout: args.install_timeout,
        },
        suites: suite_opts,
        filter: &options.filter,
        external_target: options.external_target.clone(),
        overlay,
        artifacts: args.artifacts.clone(),
    };
    for cell in &plan.cells {
        if let Err(e) = live.spec(cell) {
            return refuse(format!("{}: {e}", cell.id));
        }
    }
    let problems = preflight::check(
        &plan,
        &Needs {
            helm: &args.helm,
            gateway_api_dir: args.gateway_api_dir.as_deref(),
            chart: args.chart.as_deref(),
        },
        &Host::current(),
    );
    if !problems.is_empty() {
        return refuse(preflight::message(&problems));
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async {
        let talos_digests = match docker_preflight(&plan, &args).await {
            Ok(d) => d,
            Err(e) => return refuse(e),
        };
        // Last of the checks, so a refused run leaves no directory behind.
        for dir in [
            args.junit.parent().unwrap_or(std::path::Path::new(".")),
            args.artifacts.as_path(),
        ] {
            if let Err(e) = writable(dir) {
                return refuse(format!(
                    "{} is not writable ({e}); pass --junit/--artifacts paths you can write",
                    dir.display()
                ));
            }
        }
        let interrupt = match signals::install() {
            Ok(rx) => rx,
            Err(e) => {
                eprintln!("error: cannot install signal handlers: {e}");
                return 1;
            }
        };
        eprintln!(
            "run {}: {} cell(s); report: {}",
            run_id.as_str(),
            plan.cells.len(),
            args.junit.display()
        );
        let opts = RunOptions {
            keep_on_failure: args.keep_on_failure,
            provenance: provenance(&plan, &args, &live.suites.images, &talos_digests),
        };
        let mut report_failed = false;
        let (run, notes) = run_plan(&live, &plan, run_id.as_str(), &opts, interrupt, |r| {
            if let Err(e) = junit::write(r, &args.junit) {
                eprintln!("error: {e}");
                report_failed = true;
            }
        })
        .await;
        for n in notes {
            eprintln!("{n}");
        }
        match exit_status(&run) {
            // A run without its report has not passed, whatever its checks said.
            0 if report_failed => 1,
            status => status,
        }
    })
}

fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    std::fs::create_dir_all(dir)?;
    tempfile::tempfile_in(dir).map(drop)
}

/// The Docker engine answers, talosctl matches each Talos minor, and every Talos image is here
/// (or pulled now, within bounds), before the first cell starts. Returns each Talos image's
/// registry digest where Docker knows one (an imported or locally built image has none).
async fn docker_preflight(
    plan: &crate::plan::Plan,
    args: &E2eArgs,
) -> Result<BTreeMap<String, String>, InputError> {
    let timeouts = Timeouts::default();
    let engine = Engine::connect(timeouts.docker).await?;
    let mut seen = Vec::new();
    let mut digests = BTreeMap::new();
    for cell in &plan.cells {
        let talos = cell.cell.talos.to_string();
        if seen.contains(&talos) {
            continue;
        }
        let version = TalosVersion::parse(&talos)?;
        Talosctl::locate(args.talosctl.as_deref(), &version, timeouts.talosctl).await?;
        let image = args.image(&talos);
        engine.ensure_image(&image, &timeouts).await?;
        // Provenance only: a slow or failed inspect leaves the digest unknown, not the run stopped.
        if let Ok(Ok(inspect)) =
            tokio::time::timeout(timeouts.docker, engine.client().inspect_image(&image)).await
            && let Some(digest) = inspect
                .repo_digests
                .unwrap_or_default()
                .iter()
                .find_map(|d| d.split_once('@').map(|(_, d)| d.to_string()))
        {
            digests.insert(image, digest);
        }
        seen.push(talos);
    }
    Ok(digests)
}

/// What each cell runs on, for the report: the chart (with its sha256 when it is a local
/// archive), the Talos image and its digest, and the probe images.
fn provenance(
    plan: &crate::plan::Plan,
    args: &E2eArgs,
    images: &suites::kit::images::Images,
    talos_digests: &BTreeMap<String, String>,
) -> Provenance {
    let chart_digest = args
        .chart
        .as_deref()
        .map(std::path::Path::new)
        .filter(|p| p.is_file())
        .and_then(|p| upstream::Sha256::of_file(p).ok())
        .map(|sum| format!("sha256:{sum}"));
    let probes = report::provenance::probe_images(images);
    let cells = plan
        .cells
        .iter()
        .map(|c| {
            let image = args.image(&c.cell.talos.to_string());
            let cell = CellProvenance {
                chart_version: Some(c.cell.cilium.to_string()),
                chart_digest: chart_digest.clone(),
                talos_image: Some(ImagePin {
                    role: "talos".into(),
                    digest: talos_digests.get(&image).cloned(),
                    reference: image,
                }),
                probe_images: probes.clone(),
            };
            (c.id.clone(), cell)
        })
        .collect();
    Provenance {
        cells,
        artifacts: Some(args.artifacts.clone()),
        ..Provenance::default()
    }
}
