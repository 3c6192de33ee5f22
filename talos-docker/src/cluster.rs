//! [`Cluster`]: provisioning in order, and removal of everything made when it does not finish.
//!
//! Whatever way provisioning stops short (an error, a panic, or the future being dropped, e.g.
//! on a signal), what it made is removed, unless the spec says to keep it on failure.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cleanup::{self, Removed};
use crate::docker::{self, Engine, KUBE_API_PORT, NodeContainer, TALOS_API_PORT};
use crate::errors::{Error, PreflightError};
use crate::kubeconfig;
use crate::labels::{self, Selector};
use crate::preflight::{self, Prepared};
use crate::run::{RunDir, RunId, unix_now};
use crate::spec::{ClusterSpec, NodeRole, PatchSource, PatchTarget};
use crate::subnet::{self, Ipv4Net};
use crate::talosctl::{self, GenConfig};
use crate::wait::{Readiness, ReadinessTarget};

/// One node as created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Container name, hostname and Kubernetes node name.
    pub name: String,
    pub role: NodeRole,
    pub ip: Ipv4Addr,
    pub container_id: String,
}

/// A provisioned cluster (or, inside [`Error::Kept`], as much of one as was made).
#[derive(Debug)]
pub struct Cluster {
    name: String,
    run_id: RunId,
    run_dir: PathBuf,
    nodes: Vec<Node>,
    network_id: Option<String>,
    subnet: Option<Ipv4Net>,
    talos_api_port: Option<u16>,
    kube_api_port: Option<u16>,
    engine: Engine,
}

/// Removes everything of a run/cluster when dropped while armed: covers panics and dropped
/// futures, which cannot run async cleanup themselves.
struct Guard {
    selector: Selector,
    run_dir: PathBuf,
    timeout: Duration,
    armed: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        tracing::warn!(selector = ?self.selector, "provisioning stopped short; removing what it made");
        if let Err(e) = cleanup::remove_blocking(self.selector.clone(), self.timeout) {
            tracing::error!("{e}");
        }
        remove_run_dir(&self.run_dir, &self.selector);
    }
}

fn remove_run_dir(path: &Path, selector: &Selector) {
    let (Some(run), cluster) = (&selector.run_id, selector.cluster.as_deref()) else {
        return;
    };
    if let Err(e) = RunDir::remove_checked(path, run, cluster) {
        tracing::error!("{e}");
    }
}

impl Cluster {
    /// Checks the request (see [`PreflightError`]), then creates the network, the configs, the
    /// node containers, bootstraps etcd, fetches the kubeconfig and waits on `readiness`.
    pub async fn create(spec: ClusterSpec, readiness: &dyn Readiness) -> Result<Cluster, Error> {
        let Prepared { engine, talosctl } = preflight::check(&spec).await?;
        let selector = Selector::run_cluster(spec.run_id.as_str(), &spec.name);
        let run_dir = RunDir::path_for(&spec.state_dir, &spec.run_id, &spec.name);
        let mut guard = Guard {
            selector: selector.clone(),
            run_dir: run_dir.clone(),
            timeout: spec.timeouts.docker,
            armed: true,
        };
        let mut cluster = Cluster {
            name: spec.name.clone(),
            run_id: spec.run_id.clone(),
            run_dir,
            nodes: Vec::new(),
            network_id: None,
            subnet: None,
            talos_api_port: None,
            kube_api_port: None,
            engine,
        };
        let result = cluster.build(&spec, &talosctl, readiness).await;
        match result {
            Ok(()) => {
                guard.armed = false;
                Ok(cluster)
            }
            Err(source) if spec.keep_on_failure => {
                guard.armed = false;
                Err(Error::Kept {
                    cluster: Box::new(cluster),
                    source: Box::new(source),
                })
            }
            Err(source) => {
                // The guard stays armed until the destroy has finished: if this future is
                // dropped mid-destroy (an interrupt), the guard still removes everything.
                match cluster.destroy().await {
                    Ok(_) => guard.armed = false,
                    Err(e) => tracing::error!("after `{source}`: {e}"),
                }
                Err(source)
            }
        }
    }

    async fn build(
        &mut self,
        spec: &ClusterSpec,
        talosctl: &talosctl::Talosctl,
        readiness: &dyn Readiness,
    ) -> Result<(), Error> {
        let t = &spec.timeouts;
        let dir = RunDir::create(&spec.state_dir, &spec.run_id, &spec.name)?;
        let owned_labels = labels::with_run_dir(
            labels::object(spec.run_id.as_str(), &spec.name, unix_now()),
            dir.path(),
        );

        let subnet = self.create_network(spec, owned_labels.clone()).await?;
        let plan = spec.layout(subnet);
        let first_cp = plan[0].ip;
        tracing::info!(network = %spec.name, %subnet, "created the cluster network");

        talosctl.gen_secrets(&dir, t.talosctl).await?;
        let patches = write_patches(spec, &dir)?;
        talosctl
            .gen_config(
                &dir,
                &GenConfig {
                    cluster: &spec.name,
                    endpoint: &format!("https://{first_cp}:6443"),
                    talos_version: &spec.talos_version,
                    kubernetes_version: spec.kubernetes_version.as_deref(),
                    patches: &patches,
                    timeout: t.talosctl,
                },
            )
            .await?;
        dir.tighten()?;
        let read =
            |name: &str| std::fs::read(dir.file(name)).map_err(|e| Error::io(dir.file(name), e));
        let controlplane_config = read(talosctl::CONTROLPLANE_CONFIG)?;
        let worker_config = read(talosctl::WORKER_CONFIG)?;

        let image = spec.image();
        for (i, node) in plan.iter().enumerate() {
            let body = docker::node_body(&NodeContainer {
                plan: node,
                image: &image,
                network: &spec.name,
                machine_config: match node.role {
                    NodeRole::ControlPlane => &controlplane_config,
                    NodeRole::Worker => &worker_config,
                },
                cpus: spec.cpus,
                memory_mib: spec.memory_mib,
                privileged: spec.privileged,
                talos_version: &spec.talos_version,
                labels: owned_labels.clone(),
                publish: i == 0,
            });
            let id = self.engine.create_container(&node.name, body).await?;
            self.nodes.push(Node {
                name: node.name.clone(),
                role: node.role,
                ip: node.ip,
                container_id: id,
            });
        }
        for node in &self.nodes {
            self.engine.start_container(&node.name).await?;
        }
        let first = &self.nodes[0].name;
        let talos_port = self.engine.published_port(first, TALOS_API_PORT).await?;
        let kube_port = self.engine.published_port(first, KUBE_API_PORT).await?;
        self.talos_api_port = Some(talos_port);
        self.kube_api_port = Some(kube_port);
        tracing::info!(
            nodes = self.nodes.len(),
            talos_port,
            kube_port,
            "node containers started"
        );

        let first_cp = first_cp.to_string();
        let at = crate::docker::published_address();
        talosctl
            .set_endpoint(&dir, &at.with_port(talos_port), t.talosctl)
            .await?;
        talosctl.set_node(&dir, &first_cp, t.talosctl).await?;
        tracing::info!("bootstrapping etcd on {first}");
        talosctl.bootstrap(&dir, &first_cp, t.bootstrap).await?;
        talosctl.kubeconfig(&dir, &first_cp, t.kubeconfig).await?;
        let api_server = format!("https://{}", at.with_port(kube_port));
        kubeconfig::rewrite_server(&dir, talosctl::KUBECONFIG, &api_server)?;
        dir.tighten()?;

        tracing::info!("waiting for the API server at {api_server} to list every node");
        readiness
            .wait(&ReadinessTarget {
                kubeconfig: dir.file(talosctl::KUBECONFIG),
                api_server,
                nodes: self.nodes.iter().map(|n| n.name.clone()).collect(),
                timeout: t.ready,
            })
            .await
    }

    /// The given subnet, or the first free /24 of 10.5.0.0/16. Creating the network is what
    /// claims a subnet, so a concurrent run that took the candidate first makes us try the next.
    async fn create_network(
        &mut self,
        spec: &ClusterSpec,
        labels: std::collections::HashMap<String, String>,
    ) -> Result<Ipv4Net, Error> {
        let mut lost = Vec::new();
        let subnet = loop {
            let candidate = match spec.subnet {
                Some(s) => s,
                None => {
                    let mut taken: Vec<_> = self
                        .engine
                        .networks()
                        .await?
                        .into_iter()
                        .flat_map(|n| n.subnets)
                        .collect();
                    taken.extend(&lost);
                    subnet::first_free(&taken).ok_or(PreflightError::NoFreeSubnet)?
                }
            };
            match self
                .engine
                .create_network(&spec.name, candidate, spec.mtu, labels.clone())
                .await
            {
                Ok(id) => {
                    self.network_id = Some(id);
                    break candidate;
                }
                Err(e)
                    if spec.subnet.is_none()
                        && docker::is_subnet_overlap(&e)
                        && lost.len() < 32 =>
                {
                    lost.push(candidate)
                }
                Err(e) => return Err(e),
            }
        };
        self.subnet = Some(subnet);
        // The engine (before API 1.44) accepts duplicate network names; a concurrent run with the
        // same cluster name is caught here instead.
        let ours = self.network_id.as_deref();
        let twins: Vec<_> = self
            .engine
            .networks()
            .await?
            .into_iter()
            .filter(|n| n.name == spec.name && Some(n.id.as_str()) != ours)
            .collect();
        if !twins.is_empty() {
            return Err(PreflightError::NameClash {
                name: spec.name.clone(),
                objects: format!("network '{}' made concurrently", spec.name),
            }
            .into());
        }
        Ok(subnet)
    }

    /// `talosctl upgrade-k8s --to <to>` against this cluster, bounded by `timeout`; returns what
    /// it printed. `talosctl` should be the one of the Talos release the nodes run.
    pub async fn upgrade_kubernetes(
        &self,
        talosctl: &talosctl::Talosctl,
        to: &str,
        timeout: Duration,
    ) -> Result<String, Error> {
        talosctl
            .upgrade_k8s(&RunDir::at(self.run_dir.clone()), to, timeout)
            .await
    }

    /// Removes the containers (with their anonymous volumes), the network, leftover volumes and
    /// the run directory. Safe to call again, or on a cluster that is already gone.
    pub async fn destroy(&self) -> Result<Removed, Error> {
        let selector = Selector::run_cluster(self.run_id.as_str(), &self.name);
        let mut removed = cleanup::remove(&self.engine, &selector, |_| true).await?;
        if RunDir::remove_checked(&self.run_dir, self.run_id.as_str(), Some(&self.name))? {
            removed.run_dirs.push(self.run_dir.clone());
        }
        removed.run_dirs.dedup();
        Ok(removed)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Also the Docker network's name.
    pub fn network_name(&self) -> &str {
        &self.name
    }

    pub fn network_id(&self) -> Option<&str> {
        self.network_id.as_deref()
    }

    pub fn subnet(&self) -> Option<Ipv4Net> {
        self.subnet
    }

    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.run_dir.join(talosctl::KUBECONFIG)
    }

    pub fn talosconfig(&self) -> PathBuf {
        self.run_dir.join(talosctl::TALOSCONFIG)
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn container_ids(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.container_id.as_str()).collect()
    }

    /// Where the published ports are (127.0.0.1 for a local engine).
    pub fn api_host(&self) -> String {
        crate::docker::published_address().reach
    }

    /// Host port (on [`Self::api_host`]) of apid on the first control plane.
    pub fn talos_api_port(&self) -> Option<u16> {
        self.talos_api_port
    }

    /// Host port (on [`Self::api_host`]) of the Kubernetes API server on the first control plane.
    pub fn kube_api_port(&self) -> Option<u16> {
        self.kube_api_port
    }

    /// Starts a client outside the cluster on its network ([`crate::outside`]), labelled as the
    /// cluster's, so [`Cluster::destroy`] and `gc` remove it with the nodes.
    pub async fn start_outside_client(
        &self,
        image: &str,
        timeout: Duration,
    ) -> Result<crate::outside::OutsideClient, Error> {
        let labels = labels::with_run_dir(
            labels::object(self.run_id.as_str(), &self.name, unix_now()),
            &self.run_dir,
        );
        crate::outside::OutsideClient::start(
            &self.engine,
            &crate::outside::container_name(&self.name),
            image,
            &self.name,
            labels,
            timeout,
        )
        .await
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Patches as files for `--config-patch*`: inline ones are written into the run directory, and
/// Talos before v1.12 gets talosctl's container-mode patch leaving eth0 to Docker.
fn write_patches(spec: &ClusterSpec, dir: &RunDir) -> Result<Vec<(&'static str, PathBuf)>, Error> {
    let mut out = Vec::new();
    if spec.talos_version.needs_eth0_ignore() {
        let path = dir.write(
            "patch-docker-eth0.yaml",
            b"machine:\n  network:\n    interfaces:\n      - interface: eth0\n        ignore: true\n",
        )?;
        out.push((PatchTarget::All.flag(), path));
    }
    for (i, patch) in spec.patches.iter().enumerate() {
        let path = match &patch.source {
            PatchSource::File(p) => std::path::absolute(p).map_err(|e| Error::io(p, e))?,
            PatchSource::Inline(yaml) => dir.write(&format!("patch-{i}.yaml"), yaml.as_bytes())?,
        };
        out.push((patch.target.flag(), path));
    }
    Ok(out)
}
