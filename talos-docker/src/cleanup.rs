//! Finding and removing harness objects by label. Every operation is idempotent: what is already
//! gone counts as removed, so `destroy`, `down` and `gc` can run any number of times.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use crate::bollard::errors::Error as DockerError;
use crate::bollard::models::NetworkDisconnectRequest;
use crate::bollard::query_parameters::{
    InspectNetworkOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptions, RemoveVolumeOptions,
};
use crate::docker::Engine;
use crate::errors::Error;
use crate::labels::{self, Selector};
use crate::run::{RunDir, unix_now};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Container,
    Network,
    Volume,
}

/// One labelled Docker object.
#[derive(Clone, Debug)]
pub struct Object {
    pub kind: Kind,
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    /// Containers: whether it runs. Networks: their IPv4 subnets. Volumes: empty.
    pub detail: String,
}

impl Object {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub fn run_id(&self) -> Option<&str> {
        self.label(labels::RUN_ID)
    }

    pub fn cluster(&self) -> Option<&str> {
        self.label(labels::CLUSTER)
    }

    /// Seconds since creation, from the harness label.
    pub fn age(&self) -> Option<Duration> {
        let created: u64 = self.label(labels::CREATED)?.parse().ok()?;
        Some(Duration::from_secs(unix_now().saturating_sub(created)))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub containers: Vec<Object>,
    pub networks: Vec<Object>,
    pub volumes: Vec<Object>,
}

impl Inventory {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }

    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.containers
            .iter()
            .chain(&self.networks)
            .chain(&self.volumes)
    }

    fn retain(&mut self, keep: impl Fn(&Object) -> bool) {
        self.containers.retain(&keep);
        self.networks.retain(&keep);
        self.volumes.retain(&keep);
    }
}

pub async fn inventory(engine: &Engine, selector: &Selector) -> Result<Inventory, Error> {
    let docker = engine.client();
    let filters = selector.filters();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list containers", e))?;
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(|e| Error::docker("list networks", e))?;
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| Error::docker("list volumes", e))?;
    Ok(Inventory {
        containers: containers
            .into_iter()
            .map(|c| Object {
                kind: Kind::Container,
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                detail: c.state.map(|s| s.to_string()).unwrap_or_default(),
            })
            .collect(),
        networks: networks
            .into_iter()
            .map(|n| Object {
                kind: Kind::Network,
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default(),
                detail: n
                    .ipam
                    .and_then(|i| i.config)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|c| c.subnet)
                    .collect::<Vec<_>>()
                    .join(","),
            })
            .collect(),
        volumes: volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Object {
                kind: Kind::Volume,
                id: v.name.clone(),
                name: v.name,
                labels: v.labels,
                detail: String::new(),
            })
            .collect(),
    })
}

/// What a removal took away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub run_dirs: Vec<PathBuf>,
}

impl Removed {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.run_dirs.is_empty()
    }

    fn absorb(&mut self, other: Removed) {
        self.containers.extend(other.containers);
        self.networks.extend(other.networks);
        self.volumes.extend(other.volumes);
        self.run_dirs.extend(other.run_dirs);
    }
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} container(s), {} network(s), {} volume(s), {} run dir(s)",
            self.containers.len(),
            self.networks.len(),
            self.volumes.len(),
            self.run_dirs.len()
        )
    }
}

fn gone(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Removes every object `selector` matches and `keep_if` accepts, then their run directories.
/// Containers go first with their anonymous volumes (RemoveVolumes), then networks, then any
/// labelled volume still left. Continues past failures and reports them together.
pub async fn remove(
    engine: &Engine,
    selector: &Selector,
    select: impl Fn(&Object) -> bool,
) -> Result<Removed, Error> {
    let mut inv = inventory(engine, selector).await?;
    inv.retain(&select);
    let docker = engine.client();
    let mut removed = Removed::default();
    let mut failures = Vec::new();
    let mut run_dirs = BTreeSet::new();
    for o in inv.containers.iter().chain(&inv.networks) {
        if let (Some(dir), Some(run)) = (o.label(labels::RUN_DIR), o.run_id()) {
            run_dirs.insert((
                PathBuf::from(dir),
                run.to_string(),
                o.cluster().map(str::to_string),
            ));
        }
    }

    for c in &inv.containers {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match docker.remove_container(&c.id, Some(options)).await {
            Ok(()) => removed.containers.push(c.name.clone()),
            Err(e) if gone(&e) => {}
            // A concurrent remove of the same container (e.g. two `down`s) is already doing it.
            Err(DockerError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("in progress") => {}
            Err(e) => failures.push(format!("container {}: {e}", c.name)),
        }
    }
    for n in &inv.networks {
        match remove_network(engine, &n.id).await {
            Ok(true) => removed.networks.push(n.name.clone()),
            Ok(false) => {}
            Err(e) => failures.push(format!("network {}: {e}", n.name)),
        }
    }
    // Volumes of the removed containers went with them; list again for the orphans.
    let mut orphans = inventory(engine, selector).await?.volumes;
    orphans.retain(&select);
    removed.volumes.extend(
        inv.volumes
            .iter()
            .filter(|v| !orphans.iter().any(|o| o.name == v.name))
            .map(|v| v.name.clone()),
    );
    for v in &orphans {
        match docker
            .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
            .await
        {
            Ok(()) => removed.volumes.push(v.name.clone()),
            Err(e) if gone(&e) => {}
            Err(e) => failures.push(format!("volume {}: {e}", v.name)),
        }
    }
    for (dir, run, cluster) in run_dirs {
        match RunDir::remove_checked(&dir, &run, cluster.as_deref()) {
            Ok(true) => removed.run_dirs.push(dir),
            Ok(false) => {}
            Err(e) => failures.push(e.to_string()),
        }
    }
    if failures.is_empty() {
        Ok(removed)
    } else {
        Err(Error::Cleanup(failures.join("; ")))
    }
}

/// Removes a network, first disconnecting anything still attached (e.g. a helper container
/// someone joined to the cluster network). `Ok(false)`: it was already gone.
async fn remove_network(engine: &Engine, id: &str) -> Result<bool, DockerError> {
    let docker = engine.client();
    match docker.remove_network(id).await {
        Ok(()) => return Ok(true),
        Err(e) if gone(&e) => return Ok(false),
        Err(_) => {}
    }
    let info = match docker
        .inspect_network(id, None::<InspectNetworkOptions>)
        .await
    {
        Ok(info) => info,
        Err(e) if gone(&e) => return Ok(false),
        Err(e) => return Err(e),
    };
    for container in info.containers.unwrap_or_default().into_keys() {
        let request = NetworkDisconnectRequest {
            container,
            force: Some(true),
        };
        let _ = docker.disconnect_network(id, request).await;
    }
    match docker.remove_network(id).await {
        Ok(()) => Ok(true),
        Err(e) if gone(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes until nothing matching is left: a create the engine was still processing when its
/// caller went away can land after the first pass.
pub async fn remove_settled(engine: &Engine, selector: &Selector) -> Result<Removed, Error> {
    let mut total = Removed::default();
    for pass in 0..4 {
        let removed = remove(engine, selector, |_| true).await?;
        let settled = removed.is_empty() && pass > 0;
        total.absorb(removed);
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(total)
}

/// For `Drop` paths: runs [`remove_settled`] on a fresh runtime in its own thread (the caller's
/// runtime may be shutting down or be single-threaded) and waits for it.
pub fn remove_blocking(selector: Selector, timeout: Duration) -> Result<Removed, Error> {
    let worker = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Cleanup(format!("cannot start a cleanup runtime: {e}")))?;
        runtime.block_on(async {
            let engine = Engine::connect(timeout).await?;
            tokio::time::timeout(timeout * 4, remove_settled(&engine, &selector))
                .await
                .map_err(|_| {
                    Error::Cleanup(format!("cleanup took longer than {:?}", timeout * 4))
                })?
        })
    });
    worker
        .join()
        .unwrap_or_else(|_| Err(Error::Cleanup("the cleanup thread panicked".into())))
}
