//! The flag groups several commands share, each defined once and flattened where it is used:
//! selection (plan, e2e, check), cluster sizing, images and tools (up, e2e), run identity (up,
//! e2e, check), state directory (up, e2e, down, ls, gc) and reporting (e2e, check).

use crate::errors::InputError;
use crate::matrix::{AxisFlags, MatrixSpec, expand};
use crate::plan::{Plan, PlanOptions, ValuesFile, plan};
use crate::profile::Catalog;
use crate::profile::overlay::Overlay;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;
use suites::CheckFilter;
use talos_docker::spec::TALOS_IMAGE_REPO;
use talos_docker::{ClusterSpec, RunId, default_state_dir};

#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// Directory of extra profiles (<name>.yaml); they add to or override the embedded ones.
    #[arg(long, env = "HARNESS_PROFILES_DIR")]
    pub profiles_dir: Option<PathBuf>,
}

/// Which cells and checks: the matrix axes, extra values and check filters.
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
    /// Host that egress checks reach from pods (a DNS name or an IP address).
    #[arg(
        long,
        default_value = "one.one.one.one",
        conflicts_with = "no_external_target"
    )]
    pub external_target: String,
    /// Skip egress checks (for CI runners without internet).
    #[arg(long)]
    pub no_external_target: bool,
}

/// A plan and what made it.
pub struct Selection {
    pub plan: Plan,
    pub overlay: Overlay,
    pub options: PlanOptions,
}

fn read(path: &Path) -> Result<String, InputError> {
    crate::yaml::read(path)
}

impl SelectArgs {
    /// `nodes`: schedulable nodes per cluster, which decides the cross-node checks. Every
    /// values file and the check filter are read, and every problem is returned.
    /// `outside`: the client north-south checks probe from, if the run has one.
    pub fn options(
        &self,
        nodes: u32,
        outside: Option<suites::OutsideClient>,
    ) -> Result<PlanOptions, Vec<InputError>> {
        let mut problems = Vec::new();
        let mut values_files = Vec::new();
        for p in &self.values {
            match read(p).and_then(|text| ValuesFile::parse(&p.display().to_string(), &text)) {
                Ok(v) => values_files.push(v),
                Err(e) => problems.push(e),
            }
        }
        let filter = CheckFilter::new(&self.suites, &self.checks)
            .map_err(|e| problems.push(e.into()))
            .ok();
        let external_target = (!self.no_external_target).then(|| self.external_target.clone());
        match filter {
            Some(filter) if problems.is_empty() => Ok(PlanOptions {
                values_files,
                filter,
                nodes,
                external_target,
                outside,
            }),
            _ => Err(problems),
        }
    }

    /// The external target is a host name pods can look up (checked apart from the plan, so a
    /// bad one is reported together with the plan's own problems).
    pub fn check_external_target(&self) -> Result<(), InputError> {
        if self.no_external_target {
            return Ok(());
        }
        crate::preflight::external_target(&self.external_target)
    }

    /// The plan for the Talos-in-Docker clusters the harness builds (with their outside client).
    pub fn select(&self, nodes: u32) -> Result<Selection, Vec<InputError>> {
        self.select_on(nodes, None, Some(crate::plan::talos_in_docker_outside()))
    }

    /// The plan for cells on `cluster` (`None`: the Talos-in-Docker cluster the harness builds),
    /// whose facts the values are linted against; `outside`: the client north-south checks
    /// probe from, if the run has one. Or every problem found with the selection (catalog,
    /// values files, filters, matrix, each axis entry) at once.
    pub fn select_on(
        &self,
        nodes: u32,
        cluster: Option<&crate::cluster::ClusterDescription>,
        outside: Option<suites::OutsideClient>,
    ) -> Result<Selection, Vec<InputError>> {
        let mut problems = Vec::new();
        let catalog = Catalog::with_dir(self.catalog.profiles_dir.as_deref())
            .map_err(|e| problems.push(e))
            .ok();
        let options = self
            .options(nodes, outside)
            .map_err(|e| problems.extend(e))
            .ok();
        let spec = MatrixSpec::load(
            self.matrix.as_deref(),
            AxisFlags {
                profiles: self.profiles.clone(),
                cilium_versions: self.cilium_versions.clone(),
                talos_versions: self.talos_versions.clone(),
                kubernetes_versions: self.kubernetes_versions.clone(),
            },
        )
        .map_err(|e| problems.push(e))
        .ok();
        if let (Some(spec), Some(catalog)) = (&spec, &catalog) {
            problems.extend(crate::matrix::axis_problems(spec, catalog));
        }
        let (Some(catalog), Some(options), Some(spec), true) =
            (catalog, options, spec, problems.is_empty())
        else {
            return Err(problems);
        };
        let (cells, excluded) = expand(&spec, &catalog).map_err(|e| vec![e])?;
        let overlay = Overlay::embedded();
        let plan = match cluster {
            Some(c) => crate::plan::plan_on(&cells, excluded, &catalog, &overlay, c, &options),
            None => plan(&cells, excluded, &catalog, &overlay, &options),
        }
        .map_err(|e| vec![e])?;
        Ok(Selection {
            plan,
            overlay,
            options,
        })
    }
}

/// Worker nodes: how many clusters get, and so which cross-node checks apply.
#[derive(Args, Debug)]
pub struct WorkersArg {
    /// Worker nodes per cluster (cross-node checks need two).
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
}

/// How big each cluster is: node counts and sizes (`plan` uses them for the default --jobs).
#[derive(Args, Debug)]
pub struct NodeSizeArgs {
    #[arg(long, default_value_t = 1)]
    pub control_planes: u32,
    #[command(flatten)]
    pub workers: WorkersArg,
    /// CPUs per node.
    #[arg(long, default_value_t = 2.0)]
    pub cpus: f64,
    /// Memory per node, in MiB or with a unit (512MiB, 2GiB).
    #[arg(long, default_value = "2GiB", value_parser = parse_memory_mib)]
    pub memory: u64,
}

impl NodeSizeArgs {
    pub fn cluster_size(&self) -> crate::capacity::ClusterSize {
        crate::capacity::ClusterSize {
            nodes: self.control_planes + self.workers.workers,
            cpus_per_node: self.cpus,
            memory_mib_per_node: self.memory,
        }
    }
}

/// Where the Cilium chart and helm come from (e2e, images).
#[derive(Args, Debug)]
pub struct ChartArgs {
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
}

impl ChartArgs {
    pub fn source(&self) -> crate::install::helm::ChartSource {
        use crate::install::helm::ChartSource;
        match &self.chart {
            Some(c) => ChartSource::Chart(c.clone()),
            None => ChartSource::Repo(self.chart_repo.clone()),
        }
    }
}

/// How many suites run at once inside a cell.
#[derive(Args, Debug)]
pub struct SuiteJobsArg {
    /// Suites to run at once on a cluster, each in its own namespace; a suite that changes or
    /// counts cluster-wide state (lb-ipam) still runs alone.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub suite_jobs: u32,
}

/// How many cells run at once.
#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(flatten)]
    pub suite_jobs: SuiteJobsArg,
    /// Cells to run at once, each on its own cluster [default: as many as the host's free
    /// memory and CPUs hold; `harness plan` shows the number and why].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,
    /// Compute the default --jobs for a host with this many CPUs instead of this one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub host_cpus: Option<u32>,
    /// Compute the default --jobs for a host with this much free memory (e.g. 32GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_mib)]
    pub host_memory: Option<u64>,
}

impl JobsArgs {
    pub fn jobs(&self, size: crate::capacity::ClusterSize, cells: usize) -> crate::capacity::Jobs {
        let host = crate::capacity::HostFacts::current(self.host_cpus, self.host_memory);
        crate::capacity::jobs(self.jobs, host, size, cells)
    }
}

/// What a Talos-in-Docker cluster is made of: node counts and sizes, image, talosctl, bounds.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub sizes: NodeSizeArgs,
    /// Talos image repository; the tag is the Talos version (for mirrors).
    #[arg(long, default_value = TALOS_IMAGE_REPO)]
    pub talos_image_repo: String,
    /// The talosctl to use; its minor version must match the Talos version [default: on PATH].
    #[arg(long, value_name = "PATH")]
    pub talosctl: Option<PathBuf>,
    /// How long `talosctl bootstrap` may keep being retried.
    #[arg(long, default_value = "5m", value_parser = crate::cli::args::parse_duration)]
    pub bootstrap_timeout: Duration,
    /// How long the API server may take to list every node after bootstrap.
    #[arg(long, default_value = "10m", value_parser = crate::cli::args::parse_duration)]
    pub ready_timeout: Duration,
    /// How long pulling an absent image may take.
    #[arg(long, default_value = "15m", value_parser = crate::cli::args::parse_duration)]
    pub pull_timeout: Duration,
    /// Nodes pull through this registry: `URL` for every registry or `REGISTRY=URL` for one
    /// (e.g. quay.io=http://10.5.0.1:5001); repeatable. `make cache` starts pull-through ones.
    #[arg(long = "registry-mirror", value_name = "[REGISTRY=]URL", value_parser = parse_mirror)]
    pub registry_mirrors: Vec<crate::registry_mirror::Mirror>,
    /// Start nodes unprivileged: only for stand-in images on hosts that cannot run privileged
    /// containers (the harness's own tests); Talos does not boot that way.
    #[arg(long, hide = true)]
    pub unprivileged: bool,
    /// Do not wait for the API server after bootstrap: only for stand-in nodes, which run none
    /// (the harness's own tests, which then reach the install and the outside client).
    #[arg(long, hide = true)]
    pub no_api_wait: bool,
}

impl ClusterArgs {
    /// The spec every cluster of the command starts from; the command sets the name, versions,
    /// image and patches.
    pub fn base_spec(&self, run_id: &RunId, state_dir: &Path) -> ClusterSpec {
        let mut spec = ClusterSpec::new("unnamed");
        spec.run_id = run_id.clone();
        spec.control_planes = self.sizes.control_planes;
        spec.workers = self.sizes.workers.workers;
        spec.cpus = self.sizes.cpus;
        spec.memory_mib = self.sizes.memory;
        spec.talosctl = self.talosctl.clone();
        spec.state_dir = state_dir.to_path_buf();
        spec.privileged = !self.unprivileged;
        spec.timeouts.bootstrap = self.bootstrap_timeout;
        spec.timeouts.ready = self.ready_timeout;
        spec.timeouts.pull = self.pull_timeout;
        spec
    }
}

/// How a run is named and what it leaves when something fails.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Label everything this run makes with this id (e.g. the CI job id), for `harness gc
    /// --run-id` [default: generated].
    #[arg(long, env = "HARNESS_RUN_ID")]
    pub run_id: Option<String>,
    /// Keep what a failed run made (its cluster; on an existing cluster, its test namespaces)
    /// for debugging. An interrupt (SIGINT/SIGTERM) still removes it.
    #[arg(long)]
    pub keep_on_failure: bool,
}

impl RunArgs {
    pub fn run_id(&self) -> Result<RunId, InputError> {
        match &self.run_id {
            Some(id) => Ok(RunId::parse(id)?),
            None => Ok(RunId::generate()),
        }
    }

    /// The run id and the suites' options for it (pinned images with the `HARNESS_IMAGE_*`
    /// overrides), each problem pushed onto `problems`.
    pub fn run_id_and_suite_options(
        &self,
        problems: &mut Vec<InputError>,
    ) -> (Option<RunId>, Option<suites::RunOptions>) {
        let run_id = self.run_id().map_err(|e| problems.push(e)).ok();
        let label = run_id.as_ref().map(|id| id.to_string()).unwrap_or_default();
        let options = suites::RunOptions::from_env(label.as_str())
            .map_err(|e| {
                problems.push(InputError::problem(
                    e.to_string(),
                    "set each HARNESS_IMAGE_* variable to an image with a tag or a digest",
                ))
            })
            .ok();
        (run_id, options)
    }
}

/// Where run directories (Talos secrets, talosconfig, kubeconfig; mode 0600) go.
#[derive(Args, Debug)]
pub struct StateArgs {
    /// Where run directories (secrets, talosconfig, kubeconfig) go
    /// [default: $XDG_STATE_HOME/harness or ~/.local/state/harness].
    #[arg(long, env = "HARNESS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    pub fn dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(default_state_dir)
    }
}

/// Where the results go.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Where the JUnit report goes (rewritten after every cell).
    #[arg(long, default_value = "reports/junit.xml")]
    pub junit: PathBuf,
    /// Where diagnostics of failed cells go.
    #[arg(long, default_value = "reports/artifacts")]
    pub artifacts: PathBuf,
    /// Record every observation the checks make (what each judge was given: the API objects
    /// read and the parsed probe output; each probe's command, output, exit code and timing;
    /// the cell's versions and features) as plain files in this new directory, credentials
    /// redacted; `harness replay DIR` judges them again.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
}

impl ReportArgs {
    /// Every problem with the output paths, before anything is created.
    pub fn check(&self) -> Vec<InputError> {
        let mut problems = Vec::new();
        let checks = [
            crate::preflight::output_file("--junit", &self.junit),
            crate::preflight::output_dir("--artifacts", &self.artifacts),
            self.record.as_deref().map_or(Ok(()), |d| {
                crate::recording::Recorder::check_dir("--record", d)
            }),
        ];
        for c in checks {
            if let Err(e) = c {
                problems.push(e);
            }
        }
        problems
    }

    pub fn recorder(&self, command: &'static str) -> Option<crate::recording::Recorder> {
        self.record
            .clone()
            .map(|dir| crate::recording::Recorder::of_run(dir, command))
    }
}

fn parse_mirror(s: &str) -> Result<crate::registry_mirror::Mirror, String> {
    crate::registry_mirror::Mirror::parse(s).map_err(|e| e.to_string())
}

/// A duration as humantime reads it (`90s`, `10m`, `1h30m`), refused in words with examples.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|_| format!("'{s}' is not a duration; write it like 90s, 10m or 1h30m"))
}

/// `512`, `512MiB`, `512M`, `2GiB`, `2G` → MiB.
pub fn parse_memory_mib(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size; write it like 2048, 512MiB or 2GiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mi" | "mib" | "mb" => 1,
        "g" | "gi" | "gib" | "gb" => 1024,
        other => return Err(format!("unknown unit '{other}'; use MiB or GiB")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_mib("2048"), Ok(2048));
        assert_eq!(parse_memory_mib("512MiB"), Ok(512));
        assert_eq!(parse_memory_mib("2GiB"), Ok(2048));
        assert_eq!(parse_memory_mib("3g"), Ok(3072));
        assert!(
            parse_memory_mib("2TB")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_memory_mib("lots").unwrap_err().contains("2GiB"));
    }
}

/// Where a `check` run's north-south probes come from.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutsideClientArg {
    /// A container of the probe client image on the cluster's docker network (--docker-network).
    DockerNetwork,
    /// The machine the harness runs on (needs curl and ip).
    Host,
    /// None: the north-south checks are skipped, saying so.
    None,
}

/// The client outside the cluster for `check` (an `e2e` run always has one).
#[derive(Args, Debug)]
pub struct OutsideArgs {
    /// Where north-south checks (NodePort from outside, an L2-announced LoadBalancer IP, the
    /// Gateway's external address) probe from.
    #[arg(long, value_enum, default_value = "none")]
    pub outside_client: OutsideClientArg,
    /// The cluster's docker network, for `--outside-client docker-network` (a `harness up`
    /// cluster's network is named like the cluster).
    #[arg(long, value_name = "NAME")]
    pub docker_network: Option<String>,
    /// A free block of the outside client's L2 segment (e.g. 192.168.1.248/29) for the
    /// lb-ipam suite's announced pool (lb-ipam::l2-reachable-from-host).
    #[arg(long, value_name = "CIDR")]
    pub lb_l2_block: Option<String>,
}

impl OutsideArgs {
    /// What the plan knows of the outside client, and every problem with the flags.
    pub fn client(&self) -> Result<Option<suites::OutsideClient>, Vec<InputError>> {
        let mut problems = Vec::new();
        let origin = match self.outside_client {
            OutsideClientArg::DockerNetwork => Some(suites::OutsideOrigin::DockerNetwork),
            OutsideClientArg::Host => Some(suites::OutsideOrigin::Host),
            OutsideClientArg::None => None,
        };
        match (&self.docker_network, self.outside_client) {
            (None, OutsideClientArg::DockerNetwork) => problems.push(InputError::problem(
                "--outside-client docker-network needs the cluster's docker network",
                "name it with --docker-network (see `docker network ls`; a `harness up` cluster's network is named like the cluster)",
            )),
            (Some(n), OutsideClientArg::Host | OutsideClientArg::None) => {
                problems.push(InputError::problem(
                    format!("--docker-network {n} is used only with --outside-client docker-network"),
                    "add --outside-client docker-network, or drop --docker-network",
                ))
            }
            _ => {}
        }
        if let Some(block) = &self.lb_l2_block {
            if let Err(why) = suites::lb_ipam::blocks::parse_block(block) {
                problems.push(InputError::problem(
                    format!("--lb-l2-block: {why}"),
                    "name a free IPv4 block of the outside client's L2 segment, /24 to /32, e.g. 192.168.1.248/29",
                ));
            }
            if origin.is_none() {
                problems.push(InputError::problem(
                    "--lb-l2-block is probed from an outside client, and --outside-client is none",
                    "add --outside-client docker-network or host, or drop --lb-l2-block",
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(origin.map(|origin| suites::OutsideClient {
            origin,
            l2_block: self.lb_l2_block.clone().map(suites::L2Block::Cidr),
        }))
    }
}
