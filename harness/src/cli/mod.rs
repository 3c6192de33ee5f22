//! The command line: one file per command, the shared flag groups in [`args`]. Every command
//! returns a [`Verdict`] or an [`Error`]; `main` alone turns them into the exit status.

pub mod args;
pub mod check;
pub mod down;
pub mod e2e;
pub mod gc;
pub mod images;
pub mod lint;
pub mod ls;
pub mod plan;
pub mod profiles;
pub mod replay;
pub mod report;
pub mod up;
pub mod upgrade;

use crate::errors::Error;
use crate::run::Verdict;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    version,
    about = "Conformance harness for Talos Linux clusters with the Cilium CNI"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Expand the matrix and show, per cell, the values, features and checks that apply.
    Plan(Box<plan::PlanArgs>),
    /// List the profile catalog with the seed each profile comes from.
    Profiles(args::CatalogArgs),
    /// Lint Helm values files and Cilium manifests (LB pools, L2 policies, Services) for a
    /// Cilium version and a cluster: the Talos-in-Docker one the harness builds, or one
    /// described by --pod-cidr, --k8s-service-host/--k8s-service-port and the other facts.
    Lint(lint::LintArgs),
    /// Work with JUnit reports.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Run the suites against an existing cluster (its kubeconfig and the profile it runs).
    Check(Box<check::CheckArgs>),
    /// Run the matrix: provision, install Cilium, run the suites, destroy; write JUnit.
    E2e(Box<e2e::E2eArgs>),
    /// Judge a recorded run (`--record DIR`) again with this build's judges; write its JUnit.
    Replay(replay::ReplayArgs),
    /// The upgrade gate: install A, run the suites, upgrade Cilium, Kubernetes and Talos to B
    /// with a connection-disruption workload running, run the suites again and judge: exit 1 on
    /// a regression, 3 when the gate could not be carried out.
    Upgrade(Box<upgrade::UpgradeArgs>),
    /// Provision a Talos-in-Docker cluster and print how to reach it.
    Up(Box<up::UpArgs>),
    /// Remove a cluster: its containers, volumes, network and run directory.
    Down(down::DownArgs),
    /// List harness clusters and runs with their age.
    Ls(ls::LsArgs),
    /// Remove leftovers of harness runs (all, or by --run-id / --older-than).
    Gc(gc::GcArgs),
    /// The images a matrix needs: list, pull, and save to / load from a cache directory.
    #[command(subcommand)]
    Images(images::ImagesCommand),
    /// Install the pinned helm and talosctl into the project (`make tools`).
    #[command(subcommand)]
    Tools(crate::tools::ToolsCommand),
    /// Runs a kubeconfig's exec credential plugin for kube: non-interactive, bounded, quiet.
    #[command(name = "exec-credential", hide = true)]
    ExecCredential(crate::run::exec_plugin::ExecCredentialArgs),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<Verdict, Error> {
    match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Profiles(args) => profiles::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Report(command) => report::run(command),
        Command::Check(args) => check::run(*args).await,
        Command::E2e(args) => e2e::run(*args).await,
        Command::Replay(args) => replay::run(&args),
        Command::Upgrade(args) => upgrade::run(*args).await,
        Command::Up(args) => up::run(*args).await,
        Command::Down(args) => down::run(args).await,
        Command::Ls(args) => ls::run(args).await,
        Command::Gc(args) => gc::run(args).await,
        Command::Images(command) => images::run(command).await,
        // The downloads use a blocking HTTP client, which must not run on the runtime's threads.
        Command::ExecCredential(args) => crate::run::exec_plugin::run(args).await,
        Command::Tools(command) => tokio::task::spawn_blocking(move || crate::tools::run(command))
            .await
            .expect("the tools command does not panic"),
    }
}

/// Progress to stderr; `RUST_LOG` overrides. Another subscriber set first wins.
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("talos_docker=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactedStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

/// Log lines pass through the one redaction on their way to stderr (the fmt layer writes each
/// event with one `write`).
struct RedactedStderr;

impl std::io::Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = crate::report::redact::redact(&String::from_utf8_lossy(buf));
        std::io::stderr().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

const DOCKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn connect() -> Result<talos_docker::docker::Engine, Error> {
    Ok(talos_docker::docker::Engine::connect(DOCKER_TIMEOUT).await?)
}

/// Run directories under the state directory that `keep` accepts, removed (marker-checked).
fn remove_run_dirs(
    state: &args::StateArgs,
    keep: impl Fn(&talos_docker::RunDirInfo) -> bool,
) -> Vec<std::path::PathBuf> {
    talos_docker::RunDir::scan(&state.dir())
        .into_iter()
        .filter(|info| keep(info))
        .filter(|info| {
            talos_docker::RunDir::remove_checked(&info.path, &info.run_id, Some(&info.cluster))
                .unwrap_or(false)
        })
        .map(|info| info.path)
        .collect()
}

/// `down` and `gc` say what they removed; a failure to remove is a run that was not carried out.
fn said_removed(
    what: &str,
    result: Result<talos_docker::cleanup::Removed, talos_docker::Error>,
    again: &str,
) -> Result<Verdict, Error> {
    match result {
        Ok(removed) if removed.is_empty() => println!("{what}: nothing to remove"),
        Ok(removed) => println!("{what}: removed {removed}"),
        Err(e) => {
            return Err(crate::errors::RunError::Cleanup {
                message: match e {
                    talos_docker::Error::Cleanup(m) => m,
                    other => other.to_string(),
                },
                retry: again.to_string(),
            }
            .into());
        }
    }
    Ok(Verdict::Passed)
}

/// The run's verdict, unless the report or the final sweep failed: a run without its report,
/// or one that leaves objects behind, was not carried out (an interrupt still says so).
fn finish(
    verdict: Verdict,
    report_error: Option<crate::errors::RunError>,
    swept: Result<(), String>,
    retry: &str,
) -> Result<Verdict, Error> {
    if let Verdict::Interrupted(_) = verdict {
        if let Some(e) = report_error {
            eprintln!("error: {e}");
        }
        if let Err(e) = swept {
            eprintln!("error: {e}; run `{retry}`");
        }
        return Ok(verdict);
    }
    if let Some(e) = report_error {
        return Err(e.into());
    }
    if let Err(message) = swept {
        return Err(crate::errors::RunError::Cleanup {
            message,
            retry: retry.to_string(),
        }
        .into());
    }
    Ok(verdict)
}
