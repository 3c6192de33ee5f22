//! The command line: `plan`, `lint`, `profiles`, `report merge`.

use crate::errors::InputError;
use crate::matrix::{AxisFlags, MatrixSpec, expand};
use crate::plan::{PlanOptions, ValuesFile, plan, text};
use crate::profile::Catalog;
use crate::profile::lint::{self, Finding, Severity};
use crate::profile::overlay::Overlay;
use crate::version::CiliumVersion;
use crate::{render, report};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use std::path::{Path, PathBuf};
use suites::CheckFilter;

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
    Plan(Box<PlanArgs>),
    /// List the profile catalog with the seed each profile comes from.
    Profiles(CatalogArgs),
    /// Lint Helm values files and Cilium manifests (LB pools, Services) for a Cilium version.
    Lint(LintArgs),
    /// Work with JUnit reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Run the suites against an existing cluster (its kubeconfig and the profile it runs).
    Check(Box<crate::check_cmd::CheckArgs>),
    /// Run the matrix: provision, install Cilium, run the suites, destroy; write JUnit.
    E2e(Box<crate::e2e_cmd::E2eArgs>),
    /// Provision a Talos-in-Docker cluster and print how to reach it.
    Up(Box<crate::cluster_cmd::UpArgs>),
    /// Remove a cluster: its containers, volumes, network and run directory.
    Down(crate::cluster_cmd::DownArgs),
    /// List harness clusters and runs with their age.
    Ls(crate::cluster_cmd::LsArgs),
    /// Remove leftovers of harness runs (all, or by --run-id / --older-than).
    Gc(crate::cluster_cmd::GcArgs),
    /// Install the pinned helm and talosctl into the project (`make tools`).
    #[command(subcommand)]
    Tools(crate::tools::ToolsCommand),
}

#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// Directory of extra profiles (<name>.yaml); they add to or override the embedded ones.
    #[arg(long, env = "HARNESS_PROFILES_DIR")]
    pub profiles_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SelectArgs {
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Matrix file (profiles, cilium_versions, talos_versions, kubernetes_versions).
    #[arg(long)]
    pub matrix: Option<PathBuf>,
    /// Profile to run; repeatable. Replaces the matrix's profiles.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Cilium chart version, e.g. 1.18.4; repeatable.
    #[arg(long = "cilium-version", value_name = "V")]
    pub cilium_versions: Vec<String>,
    /// Talos version, e.g. v1.11.5; repeatable.
    #[arg(long = "talos-version", value_name = "V")]
    pub talos_versions: Vec<String>,
    /// Kubernetes version, e.g. 1.34.1; repeatable. Defaults to each Talos release's default.
    #[arg(long = "kubernetes-version", value_name = "V")]
    pub kubernetes_versions: Vec<String>,
    /// Extra Helm values, layered last like `helm -f`; repeatable.
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Run only these suites; repeatable.
    #[arg(long = "suite", value_name = "NAME")]
    pub suites: Vec<String>,
    /// `suite::check` glob to run, or `!glob` to leave out; repeatable.
    #[arg(long = "check", value_name = "PATTERN")]
    pub checks: Vec<String>,
    /// Host that egress checks reach from pods.
    #[arg(
        long,
        default_value = "one.one.one.one",
        conflicts_with = "no_external_target"
    )]
    pub external_target: String,
    /// Skip egress checks (for CI runners without internet).
    #[arg(long)]
    pub no_external_target: bool,
    /// Worker nodes per cluster (cross-node checks need two).
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Output {
    Text,
    Json,
    /// `{"include":[...]}` for a GitHub Actions matrix, one entry per shard (see --shards).
    GithubMatrix,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Write each cell's merged values, Talos patches and Gateway API CRD reference here.
    #[arg(long, value_name = "DIR")]
    pub render: Option<PathBuf>,
    /// Only this shard's cells: a stable hash of each cell id picks one of N shards.
    #[arg(long, value_name = "hash:K/N", value_parser = crate::partition::Partition::parse)]
    pub partition: Option<crate::partition::Partition>,
    /// With --output github-matrix: how many shards to split the cells into (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256), conflicts_with = "partition")]
    pub shards: Option<u32>,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// The Cilium version to lint for.
    #[arg(long, default_value = "1.18.4")]
    pub cilium_version: String,
    /// Helm values files, or manifests of CiliumLoadBalancerIPPool or Service objects.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Join the JUnit files of several shards into one.
    Merge {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Markdown of one run: a row per cell, the failures, and with --baseline what changed.
    Summary(report::cmd::SummaryArgs),
    /// What changed between two reports, as Markdown; exits 1 when a check newly fails.
    Diff(report::cmd::DiffArgs),
}

fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl SelectArgs {
    pub fn options(&self) -> Result<PlanOptions, InputError> {
        let values_files = self
            .values
            .iter()
            .map(|p| ValuesFile::parse(&p.display().to_string(), &read(p)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PlanOptions {
            values_files,
            filter: CheckFilter::new(&self.suites, &self.checks)?,
            nodes: self.workers,
            external_target: (!self.no_external_target).then(|| self.external_target.clone()),
        })
    }

    pub fn plan(&self) -> Result<(crate::plan::Plan, Overlay), InputError> {
        let catalog = Catalog::with_dir(self.catalog.profiles_dir.as_deref())?;
        let options = self.options()?;
        let spec = MatrixSpec::load(
            self.matrix.as_deref(),
            AxisFlags {
                profiles: self.profiles.clone(),
                cilium_versions: self.cilium_versions.clone(),
                talos_versions: self.talos_versions.clone(),
                kubernetes_versions: self.kubernetes_versions.clone(),
            },
        )?;
        let (cells, excluded) = expand(&spec, &catalog)?;
        let overlay = Overlay::embedded();
        Ok((
            plan(&cells, excluded, &catalog, &overlay, &options)?,
            overlay,
        ))
    }
}

fn print_findings(file: &str, findings: &[Finding]) {
    for f in findings {
        let tag = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        println!("{file}: {tag}: {}: {}; fix: {}", f.key, f.problem, f.fix);
    }
}

fn lint_files(args: &LintArgs) -> Result<bool, InputError> {
    let cilium = CiliumVersion::parse(&args.cilium_version)?;
    cilium.release()?;
    let mut clean = true;
    for path in &args.files {
        let name = path.display().to_string();
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&read(path)?).map_err(|e| InputError::yaml(&name, &e))?;
        for doc in docs.iter().filter(|d| !d.is_null()) {
            let findings = match doc.get("kind").and_then(Value::as_str) {
                Some("CiliumLoadBalancerIPPool") => lint::lb_pool(doc, &cilium),
                Some("Service") => lint::service_annotations(doc),
                Some(other) => {
                    return Err(InputError::InvalidFile {
                        file: name,
                        message: format!(
                            "cannot lint kind {other}; pass Helm values, CiliumLoadBalancerIPPool or Service manifests"
                        ),
                    });
                }
                None => lint::values(doc, &cilium),
            };
            clean &= findings.iter().all(|f| f.severity != Severity::Error);
            print_findings(&name, &findings);
        }
    }
    Ok(clean)
}

/// Run a parsed command line. `Ok(false)` means the command ran and found problems.
pub fn run(cli: Cli) -> Result<bool, InputError> {
    match cli.command {
        Command::Plan(args) => {
            if args.shards.is_some() && !matches!(args.output, Output::GithubMatrix) {
                return Err(InputError::Unsupported(
                    "--shards only applies to --output github-matrix; add that or drop --shards"
                        .into(),
                ));
            }
            let (mut plan, overlay) = args.select.plan()?;
            if let Some(p) = &args.partition {
                p.select(&mut plan).map_err(InputError::Unsupported)?;
            }
            if let Some(dir) = &args.render {
                let n = render::write(&plan, &overlay, dir)?;
                eprintln!(
                    "rendered {n} files for {} cell(s) under {}",
                    plan.cells.len(),
                    dir.display()
                );
            }
            match args.output {
                Output::Text => print!("{}", text::render(&plan)),
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&plan).expect("the plan is plain data")
                ),
                Output::GithubMatrix => println!(
                    "{}",
                    crate::github_matrix::to_json(&crate::github_matrix::matrix(
                        &plan,
                        args.shards.unwrap_or(1)
                    ))
                ),
            }
            Ok(true)
        }
        Command::Profiles(args) => {
            let catalog = Catalog::with_dir(args.profiles_dir.as_deref())?;
            for p in catalog.profiles() {
                let opt = if p.opt_in { " (opt-in)" } else { "" };
                println!(
                    "{}{opt}\n  seed: {} ({})\n  {}",
                    p.name, p.source.seed, p.source.section, p.description
                );
            }
            Ok(true)
        }
        Command::Lint(args) => lint_files(&args),
        Command::Report(ReportCommand::Merge { inputs, output }) => {
            report::cmd::merge(&inputs, &output).map(|()| true)
        }
        Command::Report(ReportCommand::Summary(args)) => report::cmd::summary(&args).map(|()| true),
        Command::Report(ReportCommand::Diff(args)) => match report::cmd::diff(&args)? {
            0 => Ok(true),
            code => std::process::exit(code.into()),
        },
        Command::Check(args) => match crate::check_cmd::check(*args)? {
            0 => Ok(true),
            code => std::process::exit(code.into()),
        },
        Command::E2e(args) => match crate::e2e_cmd::e2e(*args) {
            0 => Ok(true),
            // A run's status (1 failed checks, 2 refused input, 130/143 interrupted) is final.
            code => std::process::exit(code.into()),
        },
        Command::Up(args) => crate::cluster_cmd::up(*args),
        Command::Down(args) => crate::cluster_cmd::down(args),
        Command::Ls(args) => crate::cluster_cmd::ls(args),
        Command::Gc(args) => crate::cluster_cmd::gc(args),
        Command::Tools(command) => crate::tools::run(command),
    }
}
