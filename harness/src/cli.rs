//! The command line: `plan`, `lint`, `profiles`, `report merge`.

use crate::errors::InputError;
use crate::matrix::{AxisFlags, MatrixSpec, expand};
use crate::plan::{PlanOptions, ValuesFile, plan, text};
use crate::profile::Catalog;
use crate::profile::overlay::Overlay;
use crate::{render, report};
use clap::{Args, Parser, Subcommand, ValueEnum};
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
    /// Lint Helm values files and Cilium manifests (LB pools, L2 policies, Services) for a
    /// Cilium version and a cluster: the Talos-in-Docker one the harness builds, or one
    /// described by --pod-cidr, --k8s-service-host/--k8s-service-port and the other facts.
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
}

pub use crate::profile::lint::files::LintArgs;

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Join the JUnit files of several shards into one.
    Merge {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
    },
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

/// Run a parsed command line. `Ok(false)` means the command ran and found problems.
pub fn run(cli: Cli) -> Result<bool, InputError> {
    match cli.command {
        Command::Plan(args) => {
            let (plan, overlay) = args.select.plan()?;
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
        Command::Lint(args) => crate::profile::lint::files::run(&args),
        Command::Report(ReportCommand::Merge { inputs, output }) => {
            let merged = report::merge::merge_to(&inputs, &output)?;
            eprintln!(
                "merged {} file(s): {} testsuites, {} tests, {} failures, {} errors -> {}",
                inputs.len(),
                merged.test_suites.len(),
                merged.tests,
                merged.failures,
                merged.errors,
                output.display()
            );
            Ok(true)
        }
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
    }
}
