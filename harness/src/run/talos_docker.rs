//! The Talos-in-Docker deployer: talos-docker provisions a cell's cluster, `install` puts Cilium
//! on it, and tear-down destroys it. Cluster names derive from a hash of the whole run id, so
//! concurrent runs whose ids share a tail (`amd64-shard-1`, `arm64-shard-1`) never collide.

use super::Deployer;
use super::kube::KubeAccess;
use super::outside::{self, DockerOutside, Outside};
use super::tester::KubeTarget;
use crate::install::{self, InstallOptions};
use crate::plan::CellPlan;
use crate::profile::overlay::Overlay;
use std::sync::{Arc, Mutex};
use talos_docker::{
    ApiServerReadiness, Cluster, ClusterSpec, Error, PreflightError, Readiness, RunId,
};

/// Provisioning that ends once the nodes are bootstrapped (stand-in nodes run no API server).
struct NoApiWait;

impl Readiness for NoApiWait {
    fn wait<'a>(
        &'a self,
        _: &'a talos_docker::ReadinessTarget,
    ) -> futures::future::BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
}

/// Eight hex digits naming a run: FNV-1a of the whole run id, so every character counts.
pub fn run_tag(run_id: &RunId) -> String {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(run_id.as_str().as_bytes());
    let v = h.finish();
    format!("{:08x}", (v ^ (v >> 32)) & 0xffff_ffff)
}

pub struct TalosDocker {
    /// The plan's cell ids, in order: a cell's position makes its cluster name unique.
    pub cells: Vec<String>,
    /// Everything but the per-cell parts (name, versions, image, patch): sizes, tools,
    /// timeouts, state directory, run id.
    pub base: ClusterSpec,
    /// The image is `<repo>:<cell's Talos version>`.
    pub image_repo: String,
    pub install: InstallOptions,
    pub overlay: Overlay,
    /// Whether `--state-dir` was given, for the clean-up advice.
    pub state_dir_given: bool,
    /// `--registry-mirror`: added to every node's config in its release's form.
    pub mirrors: Vec<crate::registry_mirror::Mirror>,
    /// The image of the client outside the cluster (the pinned probe client).
    pub outside_image: String,
    /// Whether provisioning waits for the API server to list the nodes; off only for stand-in
    /// nodes in the harness's own tests (`--no-api-wait`, hidden).
    pub api_wait: bool,
    kept: Mutex<Vec<String>>,
}

/// Bound on starting the outside client (the image is present: preflight made sure).
const OUTSIDE_START: std::time::Duration = std::time::Duration::from_secs(60);

/// A provisioned cluster, with its outside client when a planned check needs one.
pub struct DockerCluster {
    cluster: Cluster,
    outside: Option<Outside>,
}

impl DockerCluster {
    /// The cluster itself, for steps beyond install (the upgrade gate's moves).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

impl TalosDocker {
    pub fn new(
        cells: Vec<String>,
        base: ClusterSpec,
        image_repo: String,
        install: InstallOptions,
        overlay: Overlay,
        state_dir_given: bool,
    ) -> Self {
        TalosDocker {
            cells,
            base,
            image_repo,
            install,
            overlay,
            state_dir_given,
            mirrors: Vec::new(),
            outside_image: suites::kit::Images::pinned().client.to_string(),
            api_wait: true,
            kept: Mutex::new(Vec::new()),
        }
    }

    pub fn run_id(&self) -> &RunId {
        &self.base.run_id
    }

    /// The cluster a cell runs on. Built (and validated) for every cell before the run starts,
    /// so a bad size or version is refused before the first container exists.
    pub fn spec(&self, cell: &CellPlan) -> Result<ClusterSpec, PreflightError> {
        let spec = self.spec_unchecked(cell)?;
        spec.validate().map_err(|e| match e {
            // The name comes from the profile here, not from a --name flag.
            PreflightError::InvalidName { name, why, .. } => PreflightError::InvalidValue {
                what: "cluster name made from the profile name",
                given: name,
                why: why.to_string(),
                example: "a profile named with lowercase letters, digits and '-', at most 27 characters",
            },
            other => other,
        })?;
        Ok(spec)
    }

    /// [`Self::spec`] without the size and name checks, so the host checks can still run on it.
    pub fn spec_unchecked(&self, cell: &CellPlan) -> Result<ClusterSpec, PreflightError> {
        let mut spec = self.base.clone();
        // Short (it prefixes every node's hostname) and unique per cell of the run: a profile
        // appears once per Cilium version, and a kept cluster must not clash with the next one.
        spec.name = format!(
            "h{}-{}-{}",
            run_tag(&self.base.run_id),
            self.cell_index(cell),
            cell.profile.name
        );
        spec.talos_version = talos_docker::TalosVersion::parse(&cell.cell.talos.to_string())?;
        spec.kubernetes_version = Some(cell.cell.kubernetes.to_string());
        spec.image = Some(format!("{}:{}", self.image_repo, cell.cell.talos));
        spec.patches = cell.talos_patch.config_patches();
        if let Ok(release) = crate::releases::ReleaseTable::embedded().talos(&cell.cell.talos) {
            spec.patches
                .extend(crate::registry_mirror::patch(&self.mirrors, release));
        }
        Ok(spec)
    }

    /// The outside client on the cluster's network, and the block of that network the lb-ipam
    /// suite announces its pool from.
    async fn start_outside(&self, cluster: &Cluster) -> Result<Outside, String> {
        let subnet = cluster.subnet().ok_or("the cluster has no subnet")?;
        let block =
            crate::lb_ipam::suite_l2_block(&self.overlay, subnet).map_err(|e| e.to_string())?;
        let client = cluster
            .start_outside_client(&self.outside_image, OUTSIDE_START)
            .await
            .map_err(|e| format!("cannot start the outside client: {e}"))?;
        tracing::info!(container = client.name(), ip = %client.ip(), "started the outside client");
        Ok(Outside {
            client: suites::OutsideClient {
                origin: suites::OutsideOrigin::DockerNetwork,
                l2_block: Some(suites::L2Block::Cidr(block.to_string())),
            },
            exec: Arc::new(DockerOutside(client)),
        })
    }

    fn cell_index(&self, cell: &CellPlan) -> usize {
        self.cells.iter().position(|id| *id == cell.id).unwrap_or(0)
    }

    /// The name of every cluster the plan's cells get.
    pub fn cluster_names(&self, plan: &crate::plan::Plan) -> Vec<String> {
        plan.cells
            .iter()
            .filter_map(|c| self.spec_unchecked(c).ok())
            .map(|s| s.name)
            .collect()
    }

    /// Clusters kept by `--keep-on-failure`, which the final sweep must leave alone.
    pub fn kept(&self) -> Vec<String> {
        self.kept.lock().expect("not poisoned").clone()
    }

    /// `harness gc` limited to this run.
    pub fn gc_command(&self) -> String {
        gc_command(&self.base, self.state_dir_given)
    }
}

/// talos-docker's messages suggest `up`'s flags; say what works for a run of cells instead.
pub fn explain(e: Error, run_id: &RunId, gc: &str) -> String {
    match e {
        Error::Preflight(PreflightError::NameClash { name, objects }) => format!(
            "a cluster named '{name}' already exists ({objects}): another run used the run id {run_id}; pass another --run-id, or remove the other run with `{gc}`"
        ),
        Error::Preflight(PreflightError::NoFreeSubnet) => "no /24 in 10.5.0.0/16 is free: every one overlaps an existing docker network; remove unused networks (`harness gc`, `docker network prune`)".to_string(),
        other => other.to_string(),
    }
}

/// `harness gc --run-id <id>` (with the state directory when it is not the default).
pub fn gc_command(spec: &ClusterSpec, state_dir_given: bool) -> String {
    let mut cmd = format!("harness gc --run-id {}", spec.run_id);
    if state_dir_given {
        cmd.push_str(&format!(" --state-dir {}", spec.state_dir.display()));
    }
    cmd
}

impl Deployer for TalosDocker {
    type Cluster = DockerCluster;
    type Target = KubeTarget;

    async fn provision(&self, cell: &CellPlan) -> Result<DockerCluster, String> {
        let spec = self.spec(cell).map_err(|e| e.to_string())?;
        let readiness: &dyn Readiness = if self.api_wait {
            &ApiServerReadiness
        } else {
            &NoApiWait
        };
        let cluster = Cluster::create(spec, readiness)
            .await
            .map_err(|e| explain(e, &self.base.run_id, &self.gc_command()))?;
        if !outside::needed(cell) {
            return Ok(DockerCluster {
                cluster,
                outside: None,
            });
        }
        match self.start_outside(&cluster).await {
            Ok(outside) => Ok(DockerCluster {
                cluster,
                outside: Some(outside),
            }),
            Err(e) => {
                // The engine tears down only what provisioning handed over.
                let removed = match cluster.destroy().await {
                    Ok(r) => format!("removed {r}"),
                    Err(d) => format!("{d}; remove the rest with `{}`", self.gc_command()),
                };
                Err(format!("{e}; the cluster was torn down: {removed}"))
            }
        }
    }

    async fn install(&self, cell: &CellPlan, c: &DockerCluster) -> Result<String, String> {
        let subnet = c.cluster.subnet().ok_or("the cluster has no subnet")?;
        let target = self.target(c).await?;
        let steps = install::install(
            &target.client,
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
        Ok(install::transcript(&steps))
    }

    async fn target(&self, c: &DockerCluster) -> Result<KubeTarget, String> {
        let config = KubeAccess::new(c.cluster.kubeconfig())
            .config()
            .await
            .map_err(|e| e.to_string())?;
        let client = kube::Client::try_from(config.clone()).map_err(|e| e.to_string())?;
        Ok(KubeTarget {
            client,
            // Talos taints its control planes, so the workers take the probes.
            nodes: self.base.workers,
            config: Some(config),
            outside: c.outside.clone(),
        })
    }

    async fn tear_down(&self, c: DockerCluster) -> Result<String, String> {
        c.cluster
            .destroy()
            .await
            .map(|removed| format!("removed {removed}"))
            .map_err(|e| e.to_string())
    }

    fn keep(&self, c: &DockerCluster) -> String {
        self.kept
            .lock()
            .expect("not poisoned")
            .push(c.cluster.name().to_string());
        format!(
            "KUBECONFIG={} kubectl get pods -A; TALOSCONFIG={} talosctl health; remove with `harness down {}`",
            c.cluster.kubeconfig().display(),
            c.cluster.talosconfig().display(),
            c.cluster.name()
        )
    }

    fn leftovers(&self) -> String {
        self.gc_command()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sharing_a_tail_get_different_tags() {
        let tag = |s: &str| run_tag(&RunId::parse(s).unwrap());
        assert_ne!(tag("amd64-shard-1"), tag("arm64-shard-1"));
        assert_eq!(tag("amd64-shard-1"), tag("amd64-shard-1"));
        assert_eq!(tag("ci-1").len(), 8);
    }
}
