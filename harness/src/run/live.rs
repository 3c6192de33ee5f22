//! The phases bound to the real thing: talos-docker provisions, `install` installs Cilium, the
//! suites crate runs the checks, and a failure leaves pod and event listings behind.

use super::Phases;
use crate::install::{self, InstallOptions};
use crate::plan::CellPlan;
use crate::profile::overlay::Overlay;
use crate::report::{CheckReport, Outcome, SuiteReport};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::{Api, Client};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use suites::{CheckFilter, CheckOutcome, RunContext, SuiteRun};
use talos_docker::{ApiServerReadiness, Cluster, ClusterSpec, RunId};

pub struct Live<'a> {
    pub run_id: RunId,
    /// The plan's cell ids, in order: a cell's position makes its cluster name unique.
    pub cells: Vec<String>,
    pub talosctl: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub talos_image_repo: String,
    pub cpus: f64,
    pub memory_mib: u64,
    pub ready_timeout: std::time::Duration,
    pub privileged: bool,
    pub workers: u32,
    pub install: InstallOptions,
    pub suites: suites::RunOptions,
    pub filter: &'a CheckFilter,
    pub external_target: Option<String>,
    pub overlay: Overlay,
    pub artifacts: PathBuf,
}

/// A provisioned cluster. The Kubernetes client is made per phase, so provisioning has no await
/// after `Cluster::create` at which an interrupt could drop a running cluster unrecorded.
pub struct LiveCluster {
    cluster: Cluster,
}

impl LiveCluster {
    async fn client(&self) -> Result<Client, String> {
        client_for(&self.cluster.kubeconfig()).await
    }
}

async fn client_for(kubeconfig: &Path) -> Result<Client, String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| format!("reading the kubeconfig: {e}"))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| format!("the kubeconfig does not load: {e}"))?;
    Client::try_from(config).map_err(|e| format!("no Kubernetes client from the kubeconfig: {e}"))
}

fn check_report(run: &suites::CheckRun) -> CheckReport {
    let mut transcript = run.transcript.render();
    let outcome = match &run.outcome {
        CheckOutcome::Passed { evidence } => {
            if !evidence.is_empty() {
                transcript = format!("evidence: {evidence}\n{transcript}");
            }
            Outcome::Passed
        }
        CheckOutcome::Failed { message } => Outcome::Failed {
            message: message.clone(),
            detail: String::new(),
        },
        CheckOutcome::Error { message } => Outcome::Error {
            message: message.clone(),
            detail: String::new(),
        },
        CheckOutcome::Skipped { reason } => Outcome::Skipped {
            reason: reason.clone(),
        },
    };
    CheckReport {
        name: run.name(),
        duration: run.duration,
        outcome,
        transcript,
    }
}

/// A suite run as the report holds it.
pub fn suite_report(run: &SuiteRun) -> SuiteReport {
    let mut setup = run.setup.render();
    match &run.cleanup {
        suites::Cleanup::Kept { namespaces, why } => {
            let _ = writeln!(setup, "kept namespaces {} ({why})", namespaces.join(", "));
        }
        suites::Cleanup::Failed { message } => {
            let _ = writeln!(setup, "cleanup failed: {message}");
        }
        _ => {}
    }
    SuiteReport {
        suite: run.suite.to_string(),
        checks: run.checks.iter().map(check_report).collect(),
        setup_transcript: setup,
    }
}

impl Live<'_> {
    /// The cluster a cell runs on. Built (and validated) for every cell before the run starts,
    /// so a bad size or version is refused before the first container exists.
    pub fn spec(&self, cell: &CellPlan) -> Result<ClusterSpec, talos_docker::PreflightError> {
        // Short names (they prefix every node's hostname), unique per cell of the run: a profile
        // appears once per Cilium version, and a kept cluster must not clash with the next one.
        let id = self.run_id.as_str();
        let mut spec = ClusterSpec::new(format!(
            "h{}-{}-{}",
            &id[id.len().saturating_sub(6)..],
            self.cell_index(cell),
            cell.profile.name
        ));
        spec.run_id = self.run_id.clone();
        spec.talos_version = talos_docker::spec::TalosVersion::parse(&cell.cell.talos.to_string())?;
        spec.kubernetes_version = Some(cell.cell.kubernetes.to_string());
        spec.workers = self.workers;
        spec.image = Some(format!("{}:{}", self.talos_image_repo, cell.cell.talos));
        spec.cpus = self.cpus;
        spec.memory_mib = self.memory_mib;
        spec.timeouts.ready = self.ready_timeout;
        spec.privileged = self.privileged;
        spec.talosctl = self.talosctl.clone();
        if let Some(dir) = &self.state_dir {
            spec.state_dir = dir.clone();
        }
        spec.patches = cell.talos_patch.config_patches();
        spec.validate()?;
        Ok(spec)
    }

    fn cell_index(&self, cell: &CellPlan) -> usize {
        self.cells.iter().position(|id| *id == cell.id).unwrap_or(0)
    }
}

impl Phases for Live<'_> {
    type Cluster = LiveCluster;

    async fn provision(&self, cell: &CellPlan) -> Result<LiveCluster, String> {
        let spec = self.spec(cell).map_err(|e| e.to_string())?;
        let cluster = Cluster::create(spec, &ApiServerReadiness)
            .await
            .map_err(|e| e.to_string())?;
        Ok(LiveCluster { cluster })
    }

    async fn install(&self, cell: &CellPlan, c: &LiveCluster) -> Result<String, String> {
        let subnet = c.cluster.subnet().ok_or("the cluster has no subnet")?;
        let client = c.client().await?;
        let steps = install::install(
            &client,
            &c.cluster.kubeconfig(),
            c.cluster.run_dir(),
            cell,
            &self.overlay,
            subnet,
            c.cluster.nodes().len(),
            &self.install,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(steps
            .iter()
            .map(|s| format!("{} ({:.1}s)\n", s.name, s.duration.as_secs_f64()))
            .collect())
    }

    async fn suites(&self, cell: &CellPlan, c: &LiveCluster) -> Vec<SuiteReport> {
        let ctx = RunContext {
            features: cell.features.clone(),
            nodes: self.workers,
            external_target: self.external_target.clone(),
        };
        let client = match c.client().await {
            Ok(client) => client,
            Err(e) => return super::skipped_checks(cell, &format!("not run: {e}")),
        };
        let mut out = Vec::new();
        for s in &cell.suites {
            let run = suites::run_suite(&client, s.suite, &ctx, self.filter, &self.suites).await;
            out.push(suite_report(&run));
        }
        out
    }

    async fn collect(&self, cell: &CellPlan, c: &LiveCluster) -> Result<String, String> {
        let dir = self.artifacts.join(&cell.id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let client = c.client().await?;
        let pods: Api<Pod> = Api::all(client.clone());
        let mut text = String::new();
        for p in pods
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing pods: {e}"))?
        {
            let st = p.status.unwrap_or_default();
            let _ = writeln!(
                text,
                "{}/{} {} node={} ip={}",
                p.metadata.namespace.unwrap_or_default(),
                p.metadata.name.unwrap_or_default(),
                st.phase.unwrap_or_default(),
                p.spec.and_then(|s| s.node_name).unwrap_or_default(),
                st.pod_ip.unwrap_or_default()
            );
        }
        std::fs::write(dir.join("pods.txt"), text).map_err(|e| e.to_string())?;
        let events: Api<Event> = Api::all(client);
        let mut text = String::new();
        for e in events
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing events: {e}"))?
        {
            let _ = writeln!(
                text,
                "{} {}/{} {}: {}",
                e.type_.unwrap_or_default(),
                e.involved_object.namespace.unwrap_or_default(),
                e.involved_object.name.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            );
        }
        std::fs::write(dir.join("events.txt"), text).map_err(|e| e.to_string())?;
        Ok(dir.display().to_string())
    }

    async fn destroy(&self, c: LiveCluster) -> Result<(), String> {
        c.cluster
            .destroy()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn keep(&self, c: &LiveCluster) -> String {
        format!(
            "KUBECONFIG={} kubectl get pods -A; TALOSCONFIG={} talosctl health; remove with `harness down {}`",
            c.cluster.kubeconfig().display(),
            c.cluster.talosconfig().display(),
            c.cluster.name()
        )
    }
}
