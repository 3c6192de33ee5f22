//! Moving a cluster's nodes to another Talos image. `talosctl upgrade` is masked on container
//! nodes ("not supported in container mode"), so a node is replaced: stopped (as gracefully as
//! its release is), removed without its volumes, and created again from the new image on the
//! same volumes, IP, hostname, labels, machine config and published ports. Control planes go
//! one at a time, then workers, each waiting on the caller's readiness before the next. This is
//! this crate's own mechanism; Talos does not test it upstream.
//!
//! Every object keeps the cluster's labels, so an interrupt at any point leaves nothing that
//! [`Cluster::destroy`] does not find.

use std::collections::HashMap;

use futures::future::BoxFuture;

use crate::bollard::models::{ContainerInspectResponse, MountType, PortBinding};
use crate::bollard::query_parameters::{
    InspectContainerOptions, RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions,
};
use crate::cluster::{Cluster, Node};
use crate::docker::{self, KUBE_API_PORT, NodeContainer, TALOS_API_PORT};
use crate::errors::Error;
use crate::spec::{NodePlan, NodeRole, TalosVersion};

/// What "the replaced node is back" means to the caller: on a real cluster, the node reports
/// the new Talos version and is Ready.
pub trait NodeReady: Sync {
    fn wait<'a>(
        &'a self,
        node: &'a Node,
        version: &'a TalosVersion,
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// One node's replacement, for the transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaced {
    pub node: Node,
    /// Volumes the new release no longer mounts, removed with the old container's state.
    pub dropped_volumes: Vec<String>,
}

/// Control planes first, each in the order they were made, then workers.
pub fn replacement_order(nodes: &[Node]) -> Vec<&Node> {
    let mut order: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.role == NodeRole::ControlPlane)
        .collect();
    order.extend(nodes.iter().filter(|n| n.role == NodeRole::Worker));
    order
}

impl Cluster {
    /// Replaces every node with `image` of Talos `to`, one at a time (control planes, then
    /// workers), waiting on `ready` after each. `from` decides how long a node gets to stop.
    pub async fn replace_nodes(
        &self,
        image: &str,
        from: &TalosVersion,
        to: &TalosVersion,
        ready: &dyn NodeReady,
    ) -> Result<Vec<Replaced>, Error> {
        let mut done = Vec::new();
        for node in replacement_order(self.nodes()) {
            tracing::info!(node = %node.name, %image, "replacing the node container");
            let replaced = self.replace_node(node, image, from, to).await?;
            ready.wait(&replaced.node, to).await?;
            done.push(replaced);
        }
        Ok(done)
    }

    /// One node: the new container takes the old one's name, hostname, IP, labels, environment
    /// (the machine config), resources and published host ports, and mounts the old volumes by
    /// name at the paths the new release still uses.
    pub async fn replace_node(
        &self,
        node: &Node,
        image: &str,
        from: &TalosVersion,
        to: &TalosVersion,
    ) -> Result<Replaced, Error> {
        let docker = self.engine().client();
        let old = docker
            .inspect_container(&node.name, None::<InspectContainerOptions>)
            .await
            .map_err(|e| Error::docker(format!("inspect container {}", node.name), e))?;
        let kept = Kept::from(&old);

        let grace = from.stop_grace();
        docker
            .stop_container(
                &node.name,
                Some(StopContainerOptions {
                    t: Some(grace.as_secs() as i32),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| Error::docker(format!("stop container {}", node.name), e))?;
        // Without `v`: the volumes are what the new container boots from.
        docker
            .remove_container(
                &node.name,
                Some(RemoveContainerOptions {
                    force: true,
                    v: false,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| Error::docker(format!("remove container {}", node.name), e))?;

        let plan = NodePlan {
            name: node.name.clone(),
            role: node.role,
            ip: node.ip,
        };
        let mut body = docker::node_body(&NodeContainer {
            plan: &plan,
            image,
            network: self.name(),
            machine_config: b"",
            cpus: kept.nano_cpus as f64 / 1e9,
            memory_mib: (kept.memory / (1024 * 1024)) as u64,
            privileged: kept.privileged,
            talos_version: to,
            labels: kept.labels.clone(),
            publish: !kept.ports.is_empty(),
        });
        body.env = Some(kept.env.clone());
        let mut reused = Vec::new();
        if let Some(hc) = body.host_config.as_mut() {
            for m in hc.mounts.iter_mut().flatten() {
                if m.typ != Some(MountType::VOLUME) {
                    continue;
                }
                let target = m.target.clone().unwrap_or_default();
                if let Some(name) = kept.volumes.get(&target) {
                    m.source = Some(name.clone());
                    reused.push(name.clone());
                }
            }
            if let Some(bindings) = hc.port_bindings.as_mut() {
                for (port, host_port) in &kept.ports {
                    bindings.insert(
                        port.clone(),
                        Some(vec![PortBinding {
                            host_ip: Some(std::net::Ipv4Addr::LOCALHOST.to_string()),
                            host_port: Some(host_port.to_string()),
                        }]),
                    );
                }
            }
        }
        let id = self.engine().create_container(&node.name, body).await?;
        self.engine().start_container(&node.name).await?;

        let mut dropped = Vec::new();
        for name in kept.volumes.values().filter(|v| !reused.contains(v)) {
            docker
                .remove_volume(name, None::<RemoveVolumeOptions>)
                .await
                .map_err(|e| Error::docker(format!("remove volume {name}"), e))?;
            dropped.push(name.clone());
        }
        Ok(Replaced {
            node: Node {
                container_id: id,
                ..node.clone()
            },
            dropped_volumes: dropped,
        })
    }
}

/// What a replaced node keeps of its container.
struct Kept {
    env: Vec<String>,
    /// Without the role label, which the body adds again.
    labels: HashMap<String, String>,
    /// Mount path -> volume name.
    volumes: HashMap<String, String>,
    /// Container port -> host port, for the first control plane.
    ports: Vec<(String, u16)>,
    nano_cpus: i64,
    memory: i64,
    privileged: bool,
}

impl From<&ContainerInspectResponse> for Kept {
    fn from(c: &ContainerInspectResponse) -> Self {
        let config = c.config.clone().unwrap_or_default();
        let hc = c.host_config.clone().unwrap_or_default();
        let mut labels = config.labels.unwrap_or_default();
        labels.remove(crate::labels::TALOS_TYPE);
        let volumes = c
            .mounts
            .iter()
            .flatten()
            .filter(|m| m.typ.as_deref() == Some("volume"))
            .filter_map(|m| Some((m.destination.clone()?, m.name.clone()?)))
            .collect();
        let published = c
            .network_settings
            .as_ref()
            .and_then(|n| n.ports.clone())
            .unwrap_or_default();
        let ports = [TALOS_API_PORT, KUBE_API_PORT]
            .iter()
            .filter_map(|p| {
                let port = published
                    .get(*p)?
                    .as_ref()?
                    .iter()
                    .find_map(|b| b.host_port.as_deref()?.parse().ok())?;
                Some((p.to_string(), port))
            })
            .collect();
        Kept {
            env: config.env.unwrap_or_default(),
            labels,
            volumes,
            ports,
            nano_cpus: hc.nano_cpus.unwrap_or(1_000_000_000),
            memory: hc.memory.unwrap_or(1024 * 1024 * 1024),
            privileged: hc.privileged.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn node(name: &str, role: NodeRole) -> Node {
        Node {
            name: name.into(),
            role,
            ip: Ipv4Addr::new(10, 5, 0, 2),
            container_id: String::new(),
        }
    }

    #[test]
    fn control_planes_go_first_then_workers() {
        let nodes = [
            node("c-worker-1", NodeRole::Worker),
            node("c-controlplane-1", NodeRole::ControlPlane),
            node("c-worker-2", NodeRole::Worker),
            node("c-controlplane-2", NodeRole::ControlPlane),
        ];
        let order: Vec<&str> = replacement_order(&nodes)
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "c-controlplane-1",
                "c-controlplane-2",
                "c-worker-1",
                "c-worker-2"
            ]
        );
    }
}
