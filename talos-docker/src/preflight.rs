//! Everything that can be wrong with a request, found before anything is created: a failed
//! check leaves no container, network, volume or file behind.

use crate::bollard::query_parameters::ListContainersOptions;
use crate::docker::Engine;
use crate::errors::{Error, PreflightError};
use crate::labels;
use crate::spec::ClusterSpec;
use crate::subnet;
use crate::talosctl::Talosctl;

pub(crate) struct Prepared {
    pub engine: Engine,
    pub talosctl: Talosctl,
}

/// Cheap checks first, the image (which may need a pull) last.
pub(crate) async fn check(spec: &ClusterSpec) -> Result<Prepared, Error> {
    spec.validate()?;
    let talosctl = Talosctl::locate(
        spec.talosctl.as_deref(),
        &spec.talos_version,
        spec.timeouts.talosctl,
    )
    .await?;
    let engine = Engine::connect(spec.timeouts.docker).await?;
    tracing::debug!(host = engine.host(), api = %engine.api_version(), "connected to Docker");
    check_resources(spec, &engine).await?;
    check_name(spec, &engine).await?;
    check_subnet(spec, &engine).await?;
    engine.ensure_image(&spec.image(), &spec.timeouts).await?;
    Ok(Prepared { engine, talosctl })
}

async fn check_resources(spec: &ClusterSpec, engine: &Engine) -> Result<(), Error> {
    let host = engine.host_resources().await?;
    if host.cpus > 0 && spec.cpus > host.cpus as f64 {
        return Err(PreflightError::TooManyCpus {
            requested: spec.cpus,
            host: host.cpus,
        }
        .into());
    }
    let host_mib = host.mem_total_bytes / (1024 * 1024);
    let total_mib = spec.memory_mib * u64::from(spec.node_count());
    if host_mib > 0 && total_mib > host_mib {
        return Err(PreflightError::NotEnoughMemory {
            nodes: spec.node_count(),
            per_node_mib: spec.memory_mib,
            total_mib,
            host_mib,
        }
        .into());
    }
    Ok(())
}

/// A network or node container of that name, whoever made it (talosctl's own clusters too).
async fn check_name(spec: &ClusterSpec, engine: &Engine) -> Result<(), Error> {
    let name = &spec.name;
    let mut found = Vec::new();
    for n in engine.networks().await? {
        if &n.name == name || n.labels.get(labels::TALOS_CLUSTER) == Some(name) {
            found.push(format!("network '{}'", n.name));
        }
    }
    let containers = engine
        .client()
        .list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .map_err(|e| Error::docker("list containers", e))?;
    let prefixes = [format!("{name}-controlplane-"), format!("{name}-worker-")];
    for c in containers {
        let labelled = c.labels.as_ref().and_then(|l| l.get(labels::TALOS_CLUSTER)) == Some(name);
        for n in c.names.unwrap_or_default() {
            let n = n.trim_start_matches('/');
            if labelled || prefixes.iter().any(|p| n.starts_with(p.as_str())) {
                found.push(format!("container '{n}'"));
            }
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::NameClash {
            name: name.clone(),
            objects: found.join(", "),
        }
        .into())
    }
}

async fn check_subnet(spec: &ClusterSpec, engine: &Engine) -> Result<(), Error> {
    let networks = engine.networks().await?;
    match spec.subnet {
        Some(wanted) => {
            for n in &networks {
                if let Some(used) = n.subnets.iter().find(|s| s.overlaps(&wanted)) {
                    return Err(PreflightError::SubnetTaken {
                        subnet: wanted.to_string(),
                        network: n.name.clone(),
                        network_subnet: used.to_string(),
                    }
                    .into());
                }
            }
        }
        None => {
            let taken: Vec<_> = networks.iter().flat_map(|n| n.subnets.clone()).collect();
            subnet::first_free(&taken).ok_or(PreflightError::NoFreeSubnet)?;
        }
    }
    Ok(())
}
