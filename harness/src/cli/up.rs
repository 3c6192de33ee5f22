//! `harness up`: one Talos-in-Docker cluster to poke at, with how to reach it.
//!
//! Every problem with the request is found before anything is created (exit 2). A failure
//! after that removes what was made (or keeps it with `--keep-on-failure`) and exits 3; an
//! interrupt removes it and exits 130/143. Whatever way provisioning ends short of a kept
//! cluster, a final sweep removes everything labelled with the run id.

use super::args::{ClusterArgs, RunArgs, StateArgs};
use crate::errors::{Error, InputError, Refused, RunError};
use crate::preflight;
use crate::run::Verdict;
use crate::run::signals::{self, Signal};
use crate::run::sweep::Sweep;
use crate::run::talos_docker::{gc_command, run_tag};
use clap::Args;
use std::path::PathBuf;
use talos_docker::spec::DEFAULT_TALOS_VERSION;
use talos_docker::{
    ApiServerReadiness, Cluster, ClusterSpec, ConfigPatch, Ipv4Net, PatchSource, PatchTarget,
    PreflightError, RunId, TalosVersion,
};

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Cluster name: the Docker network and the node-name prefix [default: harness-<run tag>].
    #[arg(long)]
    pub name: Option<String>,
    /// Talos version; talosctl must have the same minor version.
    #[arg(long, default_value = DEFAULT_TALOS_VERSION)]
    pub talos_version: String,
    /// Node image [default: <talos-image-repo>:<talos-version>], e.g. a stand-in.
    #[arg(long)]
    pub image: Option<String>,
    /// Kubernetes version, e.g. 1.34.1 [default: the Talos release's default].
    #[arg(long)]
    pub kubernetes_version: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// IPv4 subnet of the cluster network [default: the first free /24 in 10.5.0.0/16].
    #[arg(long)]
    pub subnet: Option<String>,
    /// MTU of the cluster network (1430 is safe behind tunnels).
    #[arg(long, default_value_t = 1500)]
    pub mtu: u32,
    /// Talos config patch for every node: @FILE or the YAML itself; repeatable.
    #[arg(long = "config-patch", value_name = "@FILE|YAML")]
    pub config_patches: Vec<String>,
    /// Talos config patch for control planes only; repeatable.
    #[arg(long = "config-patch-control-plane", value_name = "@FILE|YAML")]
    pub config_patches_control_plane: Vec<String>,
    /// Talos config patch for workers only; repeatable.
    #[arg(long = "config-patch-worker", value_name = "@FILE|YAML")]
    pub config_patches_worker: Vec<String>,
}

impl UpArgs {
    /// The cluster to make, and every problem the flags alone show.
    pub fn spec(&self) -> (ClusterSpec, Vec<InputError>) {
        let mut problems: Vec<InputError> = Vec::new();
        let run_id = self.run.run_id().unwrap_or_else(|e| {
            problems.push(e);
            RunId::generate()
        });
        let mut spec = self.cluster.base_spec(&run_id, &self.state.dir());
        spec.name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("harness-{}", run_tag(&run_id)));
        match TalosVersion::parse(&self.talos_version) {
            Ok(v) => spec.talos_version = v,
            Err(e) => problems.push(e.into()),
        }
        spec.image = Some(self.image.clone().unwrap_or_else(|| {
            format!("{}:{}", self.cluster.talos_image_repo, spec.talos_version)
        }));
        spec.kubernetes_version = self.kubernetes_version.clone();
        if let Some(s) = &self.subnet {
            match s.parse::<Ipv4Net>() {
                Ok(net) => spec.subnet = Some(net),
                Err(why) => problems.push(
                    PreflightError::InvalidValue {
                        what: "subnet",
                        given: s.to_string(),
                        why,
                        example: "10.5.0.0/24",
                    }
                    .into(),
                ),
            }
        }
        spec.mtu = self.mtu;
        let patches = [
            (PatchTarget::All, &self.config_patches, "--config-patch"),
            (
                PatchTarget::ControlPlane,
                &self.config_patches_control_plane,
                "--config-patch-control-plane",
            ),
            (
                PatchTarget::Worker,
                &self.config_patches_worker,
                "--config-patch-worker",
            ),
        ];
        for (target, args, flag) in patches {
            for a in args {
                let patch = ConfigPatch::parse(target, a);
                if let Err(e) = patch_is_yaml(flag, &patch) {
                    problems.push(e);
                }
                spec.patches.push(patch);
            }
        }
        if let Ok(release) = crate::version::TalosVersion::parse(&self.talos_version)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                crate::releases::ReleaseTable::embedded()
                    .talos(&v)
                    .map_err(|e| e.to_string())
            })
        {
            spec.patches.extend(crate::registry_mirror::patch(
                &self.cluster.registry_mirrors,
                release,
            ));
        }
        spec.keep_on_failure = self.run.keep_on_failure;
        if let Err(e) = spec.validate()
            && !problems.iter().any(|p| p.to_string() == e.to_string())
        {
            problems.push(e.into());
        }
        (spec, problems)
    }
}

/// A patch that is not YAML would only fail inside `talosctl gen config`, after the network
/// exists; read it now. A file that cannot be read is reported by the spec's own validation.
fn patch_is_yaml(flag: &str, patch: &ConfigPatch) -> Result<(), InputError> {
    let (name, text) = match &patch.source {
        PatchSource::Inline(yaml) => (format!("{flag} (inline)"), yaml.clone()),
        PatchSource::File(path) => match crate::yaml::read(path) {
            Ok(text) => (path.display().to_string(), text),
            // A missing file is reported by the spec's own validation.
            Err(InputError::Read { .. }) => return Ok(()),
            Err(e) => return Err(e),
        },
    };
    match crate::yaml::from_multiple::<serde_json::Value>(&text) {
        Ok(docs) if docs.iter().any(|d| d.is_object()) => Ok(()),
        Ok(_) => Err(InputError::problem(
            format!("{name}: is not a Talos config patch (no YAML mapping in it)"),
            format!(
                "pass a strategic merge patch such as {flag} 'machine: {{network: {{hostname: n1}}}}', or @FILE"
            ),
        )),
        Err(e) => Err(InputError::yaml(&name, &e)),
    }
}

pub async fn run(args: UpArgs) -> Result<Verdict, Error> {
    super::init_logging();
    let (spec, mut problems) = args.spec();
    if let Err(e) = preflight::output_dir("--state-dir", &args.state.dir()) {
        problems.push(e);
    }
    problems.extend(preflight::docker_host(std::slice::from_ref(&spec), 1, &[]).await);
    for m in &args.cluster.registry_mirrors {
        if let Err(e) = crate::registry_mirror::answers(m).await {
            problems.push(e);
        }
    }
    if !problems.is_empty() {
        return Err(Refused(problems).into());
    }

    let (name, run_id) = (spec.name.clone(), spec.run_id.clone());
    let gc = gc_command(&spec, args.state.state_dir.is_some());
    let interrupt =
        signals::install(run_id.as_str(), gc.clone()).map_err(|source| RunError::Os {
            what: "install the SIGINT/SIGTERM handlers",
            source,
        })?;
    let sweep = Sweep::arm(&run_id, &spec.state_dir, vec![name.clone()]);
    let run_dir = talos_docker::RunDir::path_for(&spec.state_dir, &run_id, &name);
    // In a task, so that a signal can stop it: dropping the task's future removes what it made
    // (see `Cluster::create`); the sweep then catches a create the engine was still processing.
    let mut task = tokio::spawn(async move { Cluster::create(spec, &ApiServerReadiness).await });
    let mut rx = interrupt.clone();
    let sig: Signal = tokio::select! {
        joined = &mut task => {
            return match joined {
                Ok(Ok(cluster)) => {
                    sweep.disarm();
                    print_up(&cluster);
                    Ok(Verdict::Passed)
                }
                Ok(Err(talos_docker::Error::Kept { cluster, source })) => {
                    sweep.disarm();
                    Err(RunError::Provision {
                        message: source.to_string(),
                        aftermath: kept(&cluster),
                    }
                    .into())
                }
                Ok(Err(talos_docker::Error::Preflight(p))) => {
                    let _ = sweep.run(&[]).await;
                    Err(p.into())
                }
                Ok(Err(e)) => {
                    let aftermath = match sweep.run(&[]).await {
                        Ok(_) => format!("the cluster {name} (run {run_id}) was removed"),
                        Err(s) => format!("removing the cluster {name} failed too: {s}; run `{gc}`"),
                    };
                    Err(RunError::Provision {
                        message: e.to_string(),
                        aftermath,
                    }
                    .into())
                }
                Err(j) => {
                    let _ = sweep.run(&[]).await;
                    let message = if j.is_panic() {
                        let p = j.into_panic();
                        p.downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_default()
                    } else {
                        j.to_string()
                    };
                    Err(RunError::Panicked(message).into())
                }
            };
        }
        sig = signals::wait(&mut rx, false) => sig,
    };
    task.abort();
    let _ = task.await;
    let mut rx = interrupt.clone();
    let swept = tokio::select! {
        r = sweep.run(&[]) => r.map(|_| ()),
        _ = signals::wait(&mut rx, true) => Err("skipped on request".to_string()),
    };
    match swept {
        Ok(()) => eprintln!(
            "interrupted by {sig}: removed the cluster {name} (run {run_id}) and {}",
            run_dir.display()
        ),
        Err(e) => eprintln!(
            "interrupted by {sig}: the clean-up of the cluster {name} did not finish ({e}); remove what is left with `{gc}`"
        ),
    }
    Ok(Verdict::Interrupted(sig))
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
        let host = cluster.api_host();
        println!("talos api:   {host}:{talos}    kubernetes api: https://{host}:{kube}");
    }
    print_nodes(cluster);
    println!(
        "use it:    export KUBECONFIG={} TALOSCONFIG={}",
        cluster.kubeconfig().display(),
        cluster.talosconfig().display()
    );
    println!("remove it: harness down {}", cluster.name());
}

/// What a person needs to debug and then remove a kept cluster.
fn kept(cluster: &Cluster) -> String {
    let note = |p: PathBuf| {
        if p.exists() {
            p.display().to_string()
        } else {
            format!("{} (not written: the failure came first)", p.display())
        }
    };
    let mut out = format!(
        "the cluster {} was kept (--keep-on-failure), run {}:\n",
        cluster.name(),
        cluster.run_id()
    );
    out.push_str(&format!("  kubeconfig:  {}\n", note(cluster.kubeconfig())));
    out.push_str(&format!("  talosconfig: {}\n", note(cluster.talosconfig())));
    if let Some(port) = cluster.talos_api_port() {
        out.push_str(&format!(
            "  reach it:    talosctl --talosconfig {} -e {}:{port} -n {} dmesg\n",
            cluster.talosconfig().display(),
            cluster.api_host(),
            cluster
                .nodes()
                .first()
                .map(|n| n.ip.to_string())
                .unwrap_or_default()
        ));
    }
    for n in cluster.nodes() {
        out.push_str(&format!(
            "  node:        {} {} {}\n",
            n.name,
            n.role.as_str(),
            n.ip
        ));
    }
    out.push_str(&format!("  remove it:   harness down {}", cluster.name()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpArgs,
    }

    fn spec(args: &[&str]) -> Result<ClusterSpec, Vec<InputError>> {
        let mut all = vec!["up"];
        all.extend(args);
        match Cli::parse_from(all).up.spec() {
            (spec, problems) if problems.is_empty() => Ok(spec),
            (_, problems) => Err(problems),
        }
    }

    fn text(e: Vec<InputError>) -> String {
        e.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn up_flags_become_a_spec() {
        let spec = spec(&[
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
            "machine: {}",
            "--config-patch-worker",
            "machine: {}",
            "--run-id",
            "ci-7",
            "--ready-timeout",
            "90s",
        ])
        .unwrap();
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
    fn bad_flags_are_input_errors_reported_together() {
        let e = text(spec(&["--subnet", "10.5.7.9/24"]).unwrap_err());
        assert!(e.contains("10.5.7.0/24"), "{e}");
        let e = text(spec(&["--talos-version", "latest"]).unwrap_err());
        assert!(e.contains("v1.11.5"), "{e}");
        let e = text(spec(&["--run-id", "Bad Id"]).unwrap_err());
        assert!(e.contains("run id"), "{e}");
        let all = spec(&[
            "--run-id",
            "Bad Id",
            "--talos-version",
            "latest",
            "--config-patch",
            "machine: [unclosed",
            "--memory",
            "512MiB",
        ])
        .unwrap_err();
        assert_eq!(all.len(), 4, "{}", text(all));
        let default = spec(&[]).unwrap();
        assert!(default.name.starts_with("harness-"), "{}", default.name);
    }

    #[test]
    fn default_names_use_the_whole_run_id() {
        let a = spec(&["--run-id", "amd64-shard-1"]).unwrap();
        let b = spec(&["--run-id", "arm64-shard-1"]).unwrap();
        assert_ne!(a.name, b.name);
    }

    #[test]
    fn a_patch_must_be_a_yaml_mapping() {
        let e = text(spec(&["--config-patch", "machine: [unclosed"]).unwrap_err());
        assert!(e.starts_with("--config-patch (inline):1:"), "{e}");
        let e = text(spec(&["--config-patch-worker", "just words"]).unwrap_err());
        assert!(e.contains("no YAML mapping"), "{e}");
    }
}
