//! The Docker objects of a cluster, made through the engine API that testcontainers re-exports
//! (bollard): testcontainers itself has no network IPAM nor static IPs.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use tokio::time::Instant;

use crate::bollard::Docker;
use crate::bollard::errors::Error as DockerError;
use crate::bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig, Mount,
    MountType, MountVolumeOptions, NetworkCreateRequest, NetworkingConfig, PortBinding,
};
use crate::bollard::query_parameters::{
    ContainerArchiveInfoOptions, CreateContainerOptions, CreateImageOptions,
    InspectContainerOptions, ListNetworksOptions, RemoveContainerOptions,
};
use crate::errors::{Error, PreflightError};
use crate::spec::{NodePlan, TMPFS_MOUNTS, TalosVersion, Timeouts};
use crate::subnet::Ipv4Net;

pub const TALOS_API_PORT: &str = "50000/tcp";
pub const KUBE_API_PORT: &str = "6443/tcp";
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// `DOCKER_HOST`, or the local socket bollard falls back to.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// Where the ports the engine publishes are, seen from this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedAddress {
    /// The host address the ports bind to on the engine's machine.
    pub bind: &'static str,
    /// The address the harness (and the person) reaches them at.
    pub reach: String,
}

impl PublishedAddress {
    /// `reach:port`, bracketed for IPv6.
    pub fn with_port(&self, port: u16) -> String {
        if self.reach.contains(':') {
            format!("[{}]:{port}", self.reach)
        } else {
            format!("{}:{port}", self.reach)
        }
    }
}

/// The engine of `DOCKER_HOST`: a local socket (Linux, and Docker Desktop and Colima, which
/// forward published ports to this machine's loopback) publishes on 127.0.0.1; a remote engine
/// (`tcp://`, `ssh://`) publishes on its own machine, so the ports bind to every address there
/// (the Talos and Kubernetes APIs take mutual TLS) and are reached at the engine's address.
pub fn published_address() -> PublishedAddress {
    address_for(&docker_host())
}

fn address_for(docker_host: &str) -> PublishedAddress {
    let remote = docker_host
        .split_once("://")
        .and_then(|(scheme, rest)| match scheme {
            "tcp" | "http" | "https" | "ssh" => {
                let authority = rest.split('/').next().unwrap_or(rest);
                let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next(),
                    None => authority.split(':').next(),
                }
            }
            _ => None,
        })
        .filter(|h| !h.is_empty())
        .filter(|h| {
            *h != "localhost"
                && !h
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    match remote {
        Some(h) => PublishedAddress {
            bind: "0.0.0.0",
            reach: h.to_string(),
        },
        None => PublishedAddress {
            bind: "127.0.0.1",
            reach: "127.0.0.1".to_string(),
        },
    }
}

/// A connected, version-negotiated engine client.
#[derive(Clone, Debug)]
pub struct Engine {
    docker: Docker,
    host: String,
}

/// What the Docker host offers, for the resource checks.
#[derive(Clone, Copy, Debug)]
pub struct HostResources {
    pub mem_total_bytes: u64,
    pub cpus: i64,
}

/// A Docker network, reduced to what subnet and name checks need.
#[derive(Clone, Debug)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    pub subnets: Vec<Ipv4Net>,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// Connects to `DOCKER_HOST` (or the local socket) and agrees on an API version: bollard's
    /// default is newer than older engines (20.10 speaks 1.41) accept.
    pub async fn connect(timeout: Duration) -> Result<Engine, PreflightError> {
        let host = docker_host();
        let unreachable = |reason: String| PreflightError::DockerUnreachable {
            host: host.clone(),
            reason,
        };
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
        let docker = match tokio::time::timeout(timeout, docker.negotiate_version()).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable(format!("no answer within {timeout:?}"))),
        };
        match tokio::time::timeout(timeout, docker.ping()).await {
            Ok(Ok(_)) => Ok(Engine { docker, host }),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable(format!("no answer within {timeout:?}"))),
        }
    }

    pub fn client(&self) -> &Docker {
        &self.docker
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The engine API version in use after negotiation, e.g. `1.41`.
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    pub async fn host_resources(&self) -> Result<HostResources, Error> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| Error::docker("read the daemon's info", e))?;
        Ok(HostResources {
            mem_total_bytes: info.mem_total.unwrap_or_default().max(0) as u64,
            cpus: info.ncpu.unwrap_or_default(),
        })
    }

    pub async fn networks(&self) -> Result<Vec<NetworkSummary>, Error> {
        let networks = self
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(|e| Error::docker("list networks", e))?;
        Ok(networks
            .into_iter()
            .map(|n| NetworkSummary {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                subnets: n
                    .ipam
                    .and_then(|i| i.config)
                    .unwrap_or_default()
                    .iter()
                    // IPv6 subnets cannot overlap ours; malformed ones are not ours to judge.
                    .filter_map(|c| c.subnet.as_deref()?.parse().ok())
                    .collect(),
                labels: n.labels.unwrap_or_default(),
            })
            .collect())
    }

    /// Present locally, or pulled within the bounds; never hangs on a registry that does not
    /// answer. "Cannot pull" is a missing part, reported as a preflight error.
    pub async fn ensure_image(
        &self,
        image: &str,
        timeouts: &Timeouts,
    ) -> Result<(), PreflightError> {
        let unavailable = |reason: String| PreflightError::ImageUnavailable {
            image: image.to_string(),
            reason,
        };
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(unavailable(e.to_string())),
        }
        let (repo, tag) = split_image(image);
        let options = CreateImageOptions {
            from_image: Some(repo.to_string()),
            tag: tag.map(str::to_string),
            ..Default::default()
        };
        let mut progress = self.docker.create_image(Some(options), None, None);
        let deadline = Instant::now() + timeouts.pull;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let step = remaining.min(timeouts.pull_stall);
            match tokio::time::timeout(step, progress.next()).await {
                Ok(None) => break,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(unavailable(format!("pull failed: {e}"))),
                Err(_) if step == remaining => {
                    return Err(unavailable(format!(
                        "the pull did not finish within {:?}",
                        timeouts.pull
                    )));
                }
                Err(_) => {
                    return Err(unavailable(format!(
                        "the pull made no progress for {:?}",
                        timeouts.pull_stall
                    )));
                }
            }
        }
        self.docker
            .inspect_image(image)
            .await
            .map(|_| ())
            .map_err(|e| unavailable(format!("still absent after the pull: {e}")))
    }

    pub async fn create_network(
        &self,
        name: &str,
        subnet: Ipv4Net,
        mtu: u32,
        labels: HashMap<String, String>,
    ) -> Result<String, Error> {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            ipam: Some(Ipam {
                driver: Some("default".to_string()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    ..Default::default()
                }]),
                options: None,
            }),
            options: Some(HashMap::from([(MTU_OPTION.to_string(), mtu.to_string())])),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map(|r| r.id)
            .map_err(|e| Error::docker(format!("create network {name} ({subnet})"), e))
    }

    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, Error> {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(options), body)
            .await
            .map(|r| r.id)
            .map_err(|e| Error::docker(format!("create container {name}"), e))
    }

    /// Which of `modules` the kernel of the engine's machine has loaded: the nodes share that
    /// kernel, which is not this machine's under Docker Desktop, Colima or a remote engine.
    /// A container of `image` (present already; never started) with that machine's
    /// `/sys/module` bind-mounted is asked through the archive API, then removed. `labels` let
    /// `gc` find it should the harness die in between.
    pub async fn loaded_modules(
        &self,
        image: &str,
        modules: &[&str],
        labels: HashMap<String, String>,
        timeout: Duration,
    ) -> Result<Vec<String>, Error> {
        const AT: &str = "/harness-host-sys-module";
        let name = format!(
            "harness-kernel-probe-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default()
        );
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Never run: the archive API reads a created container's mounts.
            cmd: Some(vec!["/harness-never-started".to_string()]),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("/sys/module:{AT}:ro")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let probe = async {
            self.create_container(&name, body).await?;
            let mut present = Vec::new();
            for m in modules {
                let options = ContainerArchiveInfoOptions {
                    path: format!("{AT}/{m}"),
                };
                match self
                    .docker
                    .get_container_archive_info(&name, Some(options))
                    .await
                {
                    Ok(_) => present.push(m.to_string()),
                    Err(DockerError::DockerResponseServerError {
                        status_code: 404, ..
                    }) => {}
                    Err(e) => return Err(Error::docker(format!("look for {AT}/{m} in {name}"), e)),
                }
            }
            Ok(present)
        };
        let result = match tokio::time::timeout(timeout, probe).await {
            Ok(r) => r,
            Err(_) => Err(Error::WaitTimeout {
                what: format!("container {name} to show the Docker host's /sys/module"),
                timeout,
                last_seen: "no answer from the engine".to_string(),
            }),
        };
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let removed =
            tokio::time::timeout(timeout, self.docker.remove_container(&name, Some(options))).await;
        match removed {
            Ok(Ok(()))
            | Ok(Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            })) => {}
            Ok(Err(e)) => return Err(Error::docker(format!("remove container {name}"), e)),
            Err(_) => {
                return Err(Error::WaitTimeout {
                    what: format!("the removal of container {name}"),
                    timeout,
                    last_seen: "no answer from the engine".to_string(),
                });
            }
        }
        result
    }

    pub async fn start_container(&self, name: &str) -> Result<(), Error> {
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| Error::docker(format!("start container {name}"), e))
    }

    /// The host port Docker picked for `port` (assigned when the container starts).
    pub async fn published_port(&self, container: &str, port: &'static str) -> Result<u16, Error> {
        let info = self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(|e| Error::docker(format!("inspect container {container}"), e))?;
        let bindings = info
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|mut p| p.remove(port).flatten())
            .unwrap_or_default();
        bindings
            .iter()
            .find_map(|b| b.host_port.as_deref()?.parse().ok())
            .ok_or_else(|| Error::NoPublishedPort {
                port,
                why: format!("{container} reports bindings {bindings:?}"),
            })
    }
}

/// Whether creating a network failed because its subnet is taken (e.g. by a concurrent run).
pub fn is_subnet_overlap(err: &Error) -> bool {
    matches!(err, Error::Docker { source: DockerError::DockerResponseServerError { message, .. }, .. }
        if message.contains("overlaps"))
}

/// `repo[:tag]`, leaving digests (`@sha256:…`) whole, since the engine pulls every tag when
/// given a bare repository.
fn split_image(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], Some(&image[last_slash + i + 1..])),
        None => (image, Some("latest")),
    }
}

/// Everything one node container needs.
pub struct NodeContainer<'a> {
    pub plan: &'a NodePlan,
    pub image: &'a str,
    pub network: &'a str,
    pub machine_config: &'a [u8],
    pub cpus: f64,
    pub memory_mib: u64,
    pub privileged: bool,
    pub talos_version: &'a TalosVersion,
    pub labels: HashMap<String, String>,
    /// Only the first control plane publishes the Talos and Kubernetes APIs on the host.
    pub publish: bool,
}

/// The create request for one node, as the Talos docker provisioner builds it.
pub fn node_body(n: &NodeContainer<'_>) -> ContainerCreateBody {
    let nano_cpus = (n.cpus * 1e9).round() as i64;
    let memory = n.memory_mib as i64 * 1024 * 1024;
    let env = vec![
        "PLATFORM=container".to_string(),
        // Talos derives its SKU the same way: whole CPUs, MiB of memory.
        format!(
            "TALOSSKU={}CPU-{}RAM",
            nano_cpus / 1_000_000_000,
            n.memory_mib
        ),
        format!(
            "USERDATA={}",
            base64::engine::general_purpose::STANDARD.encode(n.machine_config)
        ),
    ];
    let mut mounts: Vec<Mount> = TMPFS_MOUNTS
        .iter()
        .map(|target| Mount {
            target: Some(target.to_string()),
            typ: Some(MountType::TMPFS),
            ..Default::default()
        })
        .collect();
    // Anonymous (no source), so removing the container with RemoveVolumes removes them, and
    // labelled, so `gc` still finds any a crash left behind.
    mounts.extend(
        n.talos_version
            .anonymous_volumes()
            .iter()
            .map(|target| Mount {
                target: Some(target.to_string()),
                typ: Some(MountType::VOLUME),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(n.labels.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
    );
    let (exposed_ports, port_bindings) = if n.publish {
        let bind = published_address().bind;
        let loopback = || {
            Some(vec![PortBinding {
                host_ip: Some(bind.to_string()),
                // Empty: Docker picks a free port, so clusters never collide on the host.
                host_port: Some(String::new()),
            }])
        };
        (
            Some(vec![TALOS_API_PORT.to_string(), KUBE_API_PORT.to_string()]),
            Some(HashMap::from([
                (TALOS_API_PORT.to_string(), loopback()),
                (KUBE_API_PORT.to_string(), loopback()),
            ])),
        )
    } else {
        (None, None)
    };
    let mut labels = n.labels.clone();
    labels.insert(
        crate::labels::TALOS_TYPE.to_string(),
        n.plan.role.as_str().to_string(),
    );
    ContainerCreateBody {
        hostname: Some(n.plan.name.clone()),
        image: Some(n.image.to_string()),
        env: Some(env),
        labels: Some(labels),
        exposed_ports,
        host_config: Some(HostConfig {
            privileged: Some(n.privileged),
            security_opt: Some(vec!["seccomp=unconfined".to_string()]),
            readonly_rootfs: Some(true),
            nano_cpus: Some(nano_cpus),
            memory: Some(memory),
            mounts: Some(mounts),
            port_bindings,
            sysctls: Some(HashMap::from([(
                "net.ipv6.conf.all.disable_ipv6".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                n.network.to_string(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(n.plan.ip.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_reached_where_the_engine_publishes_them() {
        let local = |h| address_for(h).reach == "127.0.0.1" && address_for(h).bind == "127.0.0.1";
        assert!(local("unix:///var/run/docker.sock"));
        assert!(local("unix:///Users/me/.colima/default/docker.sock"));
        assert!(local("tcp://127.0.0.1:2375"));
        assert!(local("tcp://localhost:2375"));
        assert!(local("npipe:////./pipe/docker_engine"));
        let remote = address_for("tcp://10.0.0.7:2376");
        assert_eq!(remote.reach, "10.0.0.7");
        assert_eq!(remote.bind, "0.0.0.0");
        assert_eq!(remote.with_port(6443), "10.0.0.7:6443");
        assert_eq!(address_for("ssh://me@builder.lan").reach, "builder.lan");
        let v6 = address_for("tcp://[fd00::7]:2376");
        assert_eq!(v6.with_port(50000), "[fd00::7]:50000");
    }
    use crate::spec::NodeRole;
    use std::net::Ipv4Addr;

    #[test]
    fn image_references_split_like_the_engine_expects() {
        assert_eq!(
            split_image("ghcr.io/siderolabs/talos:v1.11.5"),
            ("ghcr.io/siderolabs/talos", Some("v1.11.5"))
        );
        assert_eq!(
            split_image("localhost:5000/talos"),
            ("localhost:5000/talos", Some("latest"))
        );
        assert_eq!(split_image("talos@sha256:ab"), ("talos@sha256:ab", None));
    }

    fn body(role: NodeRole, version: &str, publish: bool) -> ContainerCreateBody {
        let plan = NodePlan {
            name: format!("c-{role}-1"),
            role,
            ip: Ipv4Addr::new(10, 5, 0, 2),
        };
        let v = TalosVersion::parse(version).unwrap();
        node_body(&NodeContainer {
            plan: &plan,
            image: "img",
            network: "c",
            machine_config: b"version: v1alpha1\n",
            cpus: 2.0,
            memory_mib: 2048,
            privileged: true,
            talos_version: &v,
            labels: crate::labels::object("r", "c", 1),
            publish,
        })
    }

    #[test]
    fn node_body_matches_the_talos_provisioner() {
        let b = body(NodeRole::ControlPlane, "v1.11.5", true);
        let env = b.env.clone().unwrap();
        assert_eq!(env[0], "PLATFORM=container");
        assert_eq!(env[1], "TALOSSKU=2CPU-2048RAM");
        assert_eq!(env[2], "USERDATA=dmVyc2lvbjogdjFhbHBoYTEK");
        let hc = b.host_config.unwrap();
        assert_eq!(hc.privileged, Some(true));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.nano_cpus, Some(2_000_000_000));
        assert_eq!(hc.memory, Some(2048 * 1024 * 1024));
        let mounts: Vec<_> = hc
            .mounts
            .unwrap()
            .into_iter()
            .map(|m| format!("{}:{}", m.typ.unwrap(), m.target.unwrap()))
            .collect();
        assert_eq!(
            mounts,
            [
                "tmpfs:/run",
                "tmpfs:/system",
                "tmpfs:/tmp",
                "volume:/var",
                "volume:/system/state",
                "volume:/etc/cni",
                "volume:/etc/kubernetes",
                "volume:/usr/libexec/kubernetes",
                "volume:/opt"
            ]
        );
        assert_eq!(hc.port_bindings.unwrap().len(), 2);
        assert_eq!(b.labels.unwrap()["talos.type"], "controlplane");
    }

    #[test]
    fn workers_publish_nothing_and_v1_14_has_fewer_volumes() {
        let b = body(NodeRole::Worker, "v1.14.0", false);
        let hc = b.host_config.unwrap();
        assert!(hc.port_bindings.is_none());
        assert!(b.exposed_ports.is_none());
        assert_eq!(hc.mounts.unwrap().len(), 3 + 3);
        assert_eq!(b.labels.unwrap()["talos.type"], "worker");
    }
}
