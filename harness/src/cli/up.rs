//! `harness up | down | ls | gc`: Talos-in-Docker clusters by hand, and cleanup after crashes.
//!
//! Exit statuses: 0 done; 2 bad input or a missing part, with nothing created (an
//! [`InputError`]); 1 provisioning failed (what it made is removed, or kept with
//! `--keep-on-failure`); 130/143 interrupted by SIGINT/SIGTERM, after removing what was made.
//! `main` maps only `Ok`/`InputError`, so the other statuses are set here, once cleanup is done.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process;
use std::time::Duration;

use clap::Args;
use talos_docker::cleanup::{self, Inventory, Removed};
use talos_docker::docker::Engine;
use talos_docker::labels::Selector;
use talos_docker::spec::DEFAULT_TALOS_VERSION;
use talos_docker::{
    ApiServerReadiness, Cluster, ClusterSpec, ConfigPatch, Error, Ipv4Net, PatchTarget,
    PreflightError, RunDir, RunId, TalosVersion, default_state_dir,
};
use tokio::signal::unix::{SignalKind, signal};

use crate::errors::InputError;

const DOCKER_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Cluster name: the Docker network and the node-name prefix [default: harness-<random>].
    #[arg(long)]
    pub name: Option<String>,
    /// Talos version; talosctl must have the same minor version.
    #[arg(long, default_value = DEFAULT_TALOS_VERSION)]
    pub talos_version: String,
    /// Node image [default: ghcr.io/siderolabs/talos:<talos-version>], e.g. from a mirror.
    #[arg(long)]
    pub image: Option<String>,
    /// Kubernetes version, e.g. 1.34.1 [default: the Talos release's default].
    #[arg(long)]
    pub kubernetes_version: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub control_planes: u32,
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// IPv4 subnet of the cluster network [default: the first free /24 in 10.5.0.0/16].
    #[arg(long)]
    pub subnet: Option<String>,
    /// MTU of the cluster network (1430 is safe behind tunnels).
    #[arg(long, default_value_t = 1500)]
    pub mtu: u32,
    /// CPUs per node.
    #[arg(long, default_value_t = 2.0)]
    pub cpus: f64,
    /// Memory per node, in MiB or with a unit (512MiB, 2GiB).
    #[arg(long, default_value = "2GiB", value_parser = parse_memory_mib)]
    pub memory: u64,
    /// Talos config patch for every node: @FILE or the YAML itself; repeatable.
    #[arg(long = "config-patch", value_name = "@FILE|YAML")]
    pub config_patches: Vec<String>,
    /// Talos config patch for control planes only; repeatable.
    #[arg(long = "config-patch-control-plane", value_name = "@FILE|YAML")]
    pub config_patches_control_plane: Vec<String>,
    /// Talos config patch for workers only; repeatable.
    #[arg(long = "config-patch-worker", value_name = "@FILE|YAML")]
    pub config_patches_worker: Vec<String>,
    /// On failure keep the cluster to debug it (remove it later with `harness down`). An
    /// interrupt (SIGINT/SIGTERM) still removes it.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// The talosctl to use [default: talosctl on PATH].
    #[arg(long, value_name = "PATH")]
    pub talosctl: Option<PathBuf>,
    /// Where run directories (secrets, talosconfig, kubeconfig) go
    /// [default: $XDG_STATE_HOME/harness or ~/.local/state/harness].
    #[arg(long, env = "HARNESS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Label the cluster's Docker objects with this run id (for `gc --run-id`) [default: generated].
    #[arg(long)]
    pub run_id: Option<String>,
    /// How long `talosctl bootstrap` may keep being retried.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub bootstrap_timeout: Duration,
    /// How long to wait for the API server to list every node.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,
    /// How long pulling an absent image may take.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub pull_timeout: Duration,
    /// Unprivileged nodes: Talos cannot boot so. Only for stand-in images on Docker hosts that
    /// cannot start privileged containers (the harness's own tests).
    #[arg(long, hide = true)]
    pub unprivileged: bool,
}

#[derive(Args, Debug)]
pub struct DownArgs {
    /// The cluster to remove (as `harness ls` shows it).
    pub cluster: String,
    /// Also look for its run directory here.
    #[arg(long, env = "HARNESS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Also list run directories left here without Docker objects.
    #[arg(long, env = "HARNESS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Only this run's objects.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Only objects at least this old, e.g. 2h.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,
    /// Also remove matching run directories left here.
    #[arg(long, env = "HARNESS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
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

impl UpArgs {
    pub fn spec(&self) -> Result<ClusterSpec, InputError> {
        let run_id = match &self.run_id {
            Some(id) => RunId::parse(id)?,
            None => RunId::generate(),
        };
        let name = self.name.clone().unwrap_or_else(|| {
            let tail = run_id.as_str().rsplit('-').next().unwrap_or("0");
            format!("harness-{tail}")
        });
        let mut spec = ClusterSpec::new(name);
        spec.run_id = run_id;
        spec.talos_version = TalosVersion::parse(&self.talos_version)?;
        spec.image = self.image.clone();
        spec.kubernetes_version = self.kubernetes_version.clone();
        spec.control_planes = self.control_planes;
        spec.workers = self.workers;
        spec.subnet = self
            .subnet
            .as_deref()
            .map(|s| {
                s.parse::<Ipv4Net>()
                    .map_err(|why| PreflightError::InvalidValue {
                        what: "subnet",
                        given: s.to_string(),
                        why,
                        example: "10.5.0.0/24",
                    })
            })
            .transpose()?;
        spec.mtu = self.mtu;
        spec.cpus = self.cpus;
        spec.memory_mib = self.memory;
        let patches = [
            (PatchTarget::All, &self.config_patches),
            (
                PatchTarget::ControlPlane,
                &self.config_patches_control_plane,
            ),
            (PatchTarget::Worker, &self.config_patches_worker),
        ];
        spec.patches = patches
            .into_iter()
            .flat_map(|(target, args)| args.iter().map(move |a| ConfigPatch::parse(target, a)))
            .collect();
        spec.keep_on_failure = self.keep_on_failure;
        spec.talosctl = self.talosctl.clone();
        if let Some(dir) = &self.state_dir {
            spec.state_dir = dir.clone();
        }
        spec.privileged = !self.unprivileged;
        spec.timeouts.bootstrap = self.bootstrap_timeout;
        spec.timeouts.ready = self.ready_timeout;
        spec.timeouts.pull = self.pull_timeout;
        Ok(spec)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the async runtime: {e}"), 1))
}

/// Progress to stderr; `RUST_LOG` overrides. Another subscriber set first wins.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("talos_docker=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

fn fail(message: &str, status: i32) -> ! {
    eprintln!("error: {message}");
    process::exit(status)
}

async fn connect() -> Result<Engine, InputError> {
    Ok(Engine::connect(DOCKER_TIMEOUT).await?)
}

enum Outcome {
    Up(Cluster),
    Refused(PreflightError),
    Failed(Error),
    Panicked(String),
    Interrupted { signal: &'static str, status: i32 },
}

pub fn up(args: UpArgs) -> Result<bool, InputError> {
    init_logging();
    let spec = args.spec()?;
    let (name, run_id) = (spec.name.clone(), spec.run_id.clone());
    let run_dir = RunDir::path_for(&spec.state_dir, &spec.run_id, &spec.name);
    let outcome = runtime().block_on(provision(spec));
    match outcome {
        Outcome::Up(cluster) => {
            print_up(&cluster);
            Ok(true)
        }
        Outcome::Refused(p) => Err(p.into()),
        Outcome::Failed(Error::Kept { cluster, source }) => {
            eprintln!("error: {source}");
            print_kept(&cluster);
            process::exit(1)
        }
        Outcome::Failed(e) => fail(
            &format!("{e}\nthe cluster {name} (run {run_id}) was removed"),
            1,
        ),
        Outcome::Panicked(msg) => fail(
            &format!(
                "internal error: provisioning panicked: {msg}\nwhat it made was removed (check with `harness ls`)"
            ),
            101,
        ),
        Outcome::Interrupted { signal, status } => {
            eprintln!(
                "interrupted by {signal}: removed the cluster {name} (run {run_id}) and {}",
                run_dir.display()
            );
            process::exit(status)
        }
    }
}

/// Provisions in a task so that a signal can stop it: dropping the task's future removes what
/// it made (see `Cluster::create`), then one more sweep catches a create the engine was still
/// processing.
async fn provision(spec: ClusterSpec) -> Outcome {
    let (Ok(mut sigint), Ok(mut sigterm)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        fail("cannot install the SIGINT/SIGTERM handlers", 1);
    };
    let selector = Selector::run_cluster(spec.run_id.as_str(), &spec.name);
    let run_dir = RunDir::path_for(&spec.state_dir, &spec.run_id, &spec.name);
    let run_id = spec.run_id.to_string();
    let cluster_name = spec.name.clone();
    let mut task = tokio::spawn(async move { Cluster::create(spec, &ApiServerReadiness).await });
    let (signal, status) = tokio::select! {
        joined = &mut task => {
            return match joined {
                Ok(Ok(cluster)) => Outcome::Up(cluster),
                Ok(Err(Error::Preflight(p))) => Outcome::Refused(p),
                Ok(Err(e)) => Outcome::Failed(e),
                Err(j) if j.is_panic() => {
                    let p = j.into_panic();
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Outcome::Panicked(msg)
                }
                Err(j) => Outcome::Panicked(j.to_string()),
            };
        }
        _ = sigint.recv() => ("SIGINT", 130),
        _ = sigterm.recv() => ("SIGTERM", 143),
    };
    eprintln!("{signal}: removing the cluster {cluster_name} (run {run_id})…");
    task.abort();
    let _ = task.await;
    if let Ok(engine) = Engine::connect(DOCKER_TIMEOUT).await
        && let Err(e) = cleanup::remove_settled(&engine, &selector).await
    {
        eprintln!("error: {e}");
    }
    let _ = RunDir::remove_checked(&run_dir, &run_id, Some(&cluster_name));
    Outcome::Interrupted { signal, status }
}

fn print_nodes(cluster: &Cluster) {
    println!("  {:<40} {:<13} IP", "NODE", "ROLE");
    for n in cluster.nodes() {
        println!("  {:<40} {:<13} {}", n.name, n.role.as_str(), n.ip);
    }
}

fn print_up(cluster: &Cluster) {
    let subnet = cluster.subnet().map(|s| s.to_string()).unwrap_or_default();
    println!(
        "cluster {} is up (run {}, network {} {subnet})",
        cluster.name(),
        cluster.run_id(),
        cluster.network_name()
    );
    println!("kubeconfig:  {}", cluster.kubeconfig().display());
    println!("talosconfig: {}", cluster.talosconfig().display());
    if let (Some(talos), Some(kube)) = (cluster.talos_api_port(), cluster.kube_api_port()) {
        println!("talos api:   127.0.0.1:{talos}    kubernetes api: https://127.0.0.1:{kube}");
    }
    print_nodes(cluster);
    println!(
        "use it:    export KUBECONFIG={} TALOSCONFIG={}",
        cluster.kubeconfig().display(),
        cluster.talosconfig().display()
    );
    println!("remove it: harness down {}", cluster.name());
}

/// To stderr: the command failed, and this says how to debug and remove what is left.
fn print_kept(cluster: &Cluster) {
    let note = |p: PathBuf| {
        if p.exists() {
            p.display().to_string()
        } else {
            format!("{} (not written: the failure came first)", p.display())
        }
    };
    eprintln!(
        "the cluster {} was kept (--keep-on-failure), run {}:",
        cluster.name(),
        cluster.run_id()
    );
    eprintln!("  kubeconfig:  {}", note(cluster.kubeconfig()));
    eprintln!("  talosconfig: {}", note(cluster.talosconfig()));
    if let Some(port) = cluster.talos_api_port() {
        eprintln!(
            "  reach it:    talosctl --talosconfig {} -e 127.0.0.1:{port} -n {} dmesg",
            cluster.talosconfig().display(),
            cluster
                .nodes()
                .first()
                .map(|n| n.ip.to_string())
                .unwrap_or_default()
        );
    }
    for n in cluster.nodes() {
        eprintln!("  node:        {} {} {}", n.name, n.role.as_str(), n.ip);
    }
    eprintln!("  remove it:   harness down {}", cluster.name());
}

fn report_removed(what: &str, result: Result<Removed, Error>) {
    match result {
        Ok(removed) if removed.is_empty() => println!("{what}: nothing to remove"),
        Ok(removed) => println!("{what}: removed {removed}"),
        Err(e) => fail(&e.to_string(), 1),
    }
}

/// Run directories under `state_dir` that `keep` accepts, removed (marker-checked).
fn remove_run_dirs(
    state_dir: Option<PathBuf>,
    keep: impl Fn(&talos_docker::RunDirInfo) -> bool,
) -> Vec<PathBuf> {
    let state_dir = state_dir.unwrap_or_else(default_state_dir);
    RunDir::scan(&state_dir)
        .into_iter()
        .filter(|info| keep(info))
        .filter(|info| {
            RunDir::remove_checked(&info.path, &info.run_id, Some(&info.cluster)).unwrap_or(false)
        })
        .map(|info| info.path)
        .collect()
}

pub fn down(args: DownArgs) -> Result<bool, InputError> {
    runtime().block_on(async {
        let engine = connect().await?;
        let result = cleanup::remove(&engine, &Selector::cluster(&args.cluster), |_| true)
            .await
            .map(|mut removed| {
                removed
                    .run_dirs
                    .extend(remove_run_dirs(args.state_dir, |i| {
                        i.cluster == args.cluster
                    }));
                removed
            });
        report_removed(&format!("cluster {}", args.cluster), result);
        Ok(true)
    })
}

pub fn gc(args: GcArgs) -> Result<bool, InputError> {
    if let Some(id) = &args.run_id {
        RunId::parse(id)?;
    }
    runtime().block_on(async {
        let engine = connect().await?;
        let selector = match &args.run_id {
            Some(id) => Selector::run(id),
            None => Selector::all(),
        };
        let old_enough = |age: Option<Duration>| match (args.older_than, age) {
            (None, _) | (Some(_), None) => true,
            (Some(min), Some(age)) => age >= min,
        };
        let result = cleanup::remove(&engine, &selector, |o| old_enough(o.age()))
            .await
            .map(|mut removed| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                removed
                    .run_dirs
                    .extend(remove_run_dirs(args.state_dir.clone(), |i| {
                        args.run_id.as_ref().is_none_or(|id| *id == i.run_id)
                            && old_enough(Some(Duration::from_secs(now.saturating_sub(i.created))))
                    }));
                removed
            });
        let what = match &args.run_id {
            Some(id) => format!("run {id}"),
            None => "every harness run".to_string(),
        };
        report_removed(&what, result);
        Ok(true)
    })
}

/// One row of `ls`: the objects of one cluster of one run.
#[derive(Default)]
struct Row {
    containers: usize,
    running: usize,
    subnet: String,
    volumes: usize,
    age: Option<Duration>,
}

fn rows(inv: &Inventory) -> BTreeMap<(String, String), Row> {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for o in inv.objects() {
        let key = (
            o.cluster().unwrap_or("?").to_string(),
            o.run_id().unwrap_or("?").to_string(),
        );
        let row = rows.entry(key).or_default();
        row.age = row.age.max(o.age());
        match o.kind {
            cleanup::Kind::Container => {
                row.containers += 1;
                row.running += usize::from(o.detail == "running");
            }
            cleanup::Kind::Network => row.subnet = o.detail.clone(),
            cleanup::Kind::Volume => row.volumes += 1,
        }
    }
    rows
}

pub fn format_age(age: Option<Duration>) -> String {
    let Some(age) = age else {
        return "?".to_string();
    };
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

pub fn ls(args: LsArgs) -> Result<bool, InputError> {
    runtime().block_on(async {
        let engine = connect().await?;
        let inv = cleanup::inventory(&engine, &Selector::all())
            .await
            .unwrap_or_else(|e| fail(&e.to_string(), 1));
        let rows = rows(&inv);
        let state_dir = args.state_dir.unwrap_or_else(default_state_dir);
        let orphans: Vec<_> = RunDir::scan(&state_dir)
            .into_iter()
            .filter(|i| !rows.contains_key(&(i.cluster.clone(), i.run_id.clone())))
            .collect();
        if rows.is_empty() && orphans.is_empty() {
            println!("no harness clusters");
            return Ok(true);
        }
        println!(
            "{:<30} {:<28} {:>7}  {:<13} {:>7}  NETWORK",
            "CLUSTER", "RUN ID", "AGE", "NODES", "VOLUMES"
        );
        for ((cluster, run), row) in &rows {
            println!(
                "{cluster:<30} {run:<28} {:>7}  {:<13} {:>7}  {}",
                format_age(row.age),
                format!("{}/{} running", row.running, row.containers),
                row.volumes,
                if row.subnet.is_empty() {
                    "-"
                } else {
                    &row.subnet
                },
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        for o in orphans {
            println!(
                "{:<30} {:<28} {:>7}  {:<13} {:>7}  (run directory only: {})",
                o.cluster,
                o.run_id,
                format_age(Some(Duration::from_secs(now.saturating_sub(o.created)))),
                "-",
                "-",
                o.path.display()
            );
        }
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpArgs,
    }

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

    #[test]
    fn up_flags_become_a_spec() {
        let cli = Cli::parse_from([
            "up",
            "--name",
            "e2e",
            "--talos-version",
            "v1.14.0",
            "--workers",
            "3",
            "--subnet",
            "10.5.7.0/24",
            "--memory",
            "3GiB",
            "--config-patch",
            "@a.yaml",
            "--config-patch-worker",
            "machine: {}",
            "--run-id",
            "ci-7",
            "--ready-timeout",
            "90s",
        ]);
        let spec = cli.up.spec().unwrap();
        assert_eq!(spec.name, "e2e");
        assert_eq!(spec.image(), "ghcr.io/siderolabs/talos:v1.14.0");
        assert_eq!(spec.workers, 3);
        assert_eq!(spec.subnet.unwrap().to_string(), "10.5.7.0/24");
        assert_eq!(spec.memory_mib, 3072);
        assert_eq!(spec.patches.len(), 2);
        assert_eq!(spec.patches[1].target, PatchTarget::Worker);
        assert_eq!(spec.run_id.as_str(), "ci-7");
        assert_eq!(spec.timeouts.ready, Duration::from_secs(90));
        assert!(spec.privileged);
    }

    #[test]
    fn bad_flags_are_input_errors() {
        let spec = |args: &[&str]| {
            let mut all = vec!["up"];
            all.extend(args);
            Cli::parse_from(all).up.spec()
        };
        let e = spec(&["--subnet", "10.5.7.9/24"]).unwrap_err().to_string();
        assert!(e.contains("10.5.7.0/24"), "{e}");
        let e = spec(&["--talos-version", "latest"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("v1.11.5"), "{e}");
        let e = spec(&["--run-id", "Bad Id"]).unwrap_err().to_string();
        assert!(e.contains("run id"), "{e}");
        let default = spec(&[]).unwrap();
        assert!(default.name.starts_with("harness-"), "{}", default.name);
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        assert_eq!(format_age(Some(Duration::from_secs(42))), "42s");
        assert_eq!(format_age(Some(Duration::from_secs(600))), "10m");
        assert_eq!(format_age(Some(Duration::from_secs(7260))), "2h1m");
        assert_eq!(format_age(Some(Duration::from_secs(90000))), "1d1h");
        assert_eq!(format_age(None), "?");
    }
}
