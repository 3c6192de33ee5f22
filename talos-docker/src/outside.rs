//! A client outside the cluster: one container on the cluster's docker network that is not a
//! node, from which north-south probes run (curl to a NodePort, a LoadBalancer IP announced over
//! L2, a Gateway's external address; `ip neigh` to see who answered ARP).
//!
//! It carries the cluster's labels (run id, cluster, run directory, `talos.*`) plus
//! [`ROLE`]`=`[`ROLE_OUTSIDE`], so whatever removes the cluster removes it too: [`Cluster::destroy`],
//! `harness down`, and `harness gc` after a SIGKILL. It is not privileged and publishes nothing.
//!
//! [`Cluster::destroy`]: crate::Cluster::destroy

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;

use crate::bollard::container::LogOutput;
use crate::bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use crate::bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};
use crate::bollard::query_parameters::{InspectContainerOptions, RemoveContainerOptions};
use crate::docker::Engine;
use crate::errors::Error;

/// The label naming what a harness container is, beside the cluster labels.
pub const ROLE: &str = "io.harness.role";
pub const ROLE_OUTSIDE: &str = "outside-client";

/// Bytes kept of each stream of one command: probes print a status line, not a body.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// The container name for a cluster's outside client.
pub fn container_name(cluster: &str) -> String {
    format!("{cluster}-outside")
}

/// The create request: the image's entrypoint (alpine-curl's is curl) replaced by a sleep, so
/// the container idles until it is removed and every probe is an exec into it.
pub fn body(image: &str, network: &str, labels: HashMap<String, String>) -> ContainerCreateBody {
    let mut labels = labels;
    labels.insert(ROLE.to_string(), ROLE_OUTSIDE.to_string());
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sleep".to_string()]),
        // About 68 years: `sleep infinity` is a GNU extension that busybox builds may lack.
        cmd: Some(vec!["2147483647".to_string()]),
        labels: Some(labels),
        // Not privileged, nothing published, no restart policy: removed by label with the cluster.
        host_config: Some(HostConfig::default()),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_string(),
                EndpointSettings::default(),
            )])),
        }),
        ..Default::default()
    }
}

/// What one command left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// A running outside client.
#[derive(Clone, Debug)]
pub struct OutsideClient {
    engine: Engine,
    name: String,
    id: String,
    ip: Ipv4Addr,
}

impl OutsideClient {
    /// Creates and starts the container on `network` and reads the address Docker gave it.
    /// On any failure after the create, the container is removed again before returning.
    pub async fn start(
        engine: &Engine,
        name: &str,
        image: &str,
        network: &str,
        labels: HashMap<String, String>,
        timeout: Duration,
    ) -> Result<OutsideClient, Error> {
        let made = tokio::time::timeout(timeout, async {
            let id = engine
                .create_container(name, body(image, network, labels))
                .await?;
            let client = OutsideClient {
                engine: engine.clone(),
                name: name.to_string(),
                id,
                ip: Ipv4Addr::UNSPECIFIED,
            };
            match client.started(network).await {
                Ok(ip) => Ok(OutsideClient { ip, ..client }),
                Err(e) => {
                    let _ = client.remove().await;
                    Err(e)
                }
            }
        })
        .await;
        match made {
            Ok(r) => r,
            Err(_) => {
                // The create may have landed after all; the labels let gc find it otherwise.
                let _ = remove_by_name(engine, name).await;
                Err(Error::WaitTimeout {
                    what: format!("the outside client {name} to start on network {network}"),
                    timeout,
                    last_seen: "the engine had not answered the create/start".into(),
                })
            }
        }
    }

    async fn started(&self, network: &str) -> Result<Ipv4Addr, Error> {
        self.engine.start_container(&self.id).await?;
        let info = self
            .engine
            .client()
            .inspect_container(&self.id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| Error::docker(format!("inspect container {}", self.name), e))?;
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse().ok());
        ip.ok_or_else(|| Error::WaitTimeout {
            what: format!("an address for {} on network {network}", self.name),
            timeout: Duration::ZERO,
            last_seen: "the container runs but has no IPv4 address on that network".into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its address on the cluster network.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Runs `argv` in the container and waits at most `bound` for it to exit.
    pub async fn exec(&self, argv: &[String], bound: Duration) -> Result<ExecOutput, Error> {
        match tokio::time::timeout(bound, self.exec_unbounded(argv)).await {
            Ok(r) => r,
            Err(_) => Err(Error::WaitTimeout {
                what: format!(
                    "`{}` in the outside client {}",
                    argv.first().map(String::as_str).unwrap_or_default(),
                    self.name
                ),
                timeout: bound,
                last_seen: "the command had not exited".into(),
            }),
        }
    }

    async fn exec_unbounded(&self, argv: &[String]) -> Result<ExecOutput, Error> {
        let docker = self.engine.client();
        let action = || {
            format!(
                "exec `{}` in {}",
                argv.first().map(String::as_str).unwrap_or_default(),
                self.name
            )
        };
        let exec = docker
            .create_exec(
                &self.id,
                CreateExecOptions {
                    cmd: Some(argv.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| Error::docker(action(), e))?;
        let started = docker
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await
            .map_err(|e| Error::docker(action(), e))?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = started {
            while let Some(chunk) = output.next().await {
                let (buf, bytes) = match chunk.map_err(|e| Error::docker(action(), e))? {
                    LogOutput::StdOut { message } => (&mut stdout, message),
                    LogOutput::StdErr { message } => (&mut stderr, message),
                    _ => continue,
                };
                let room = OUTPUT_LIMIT.saturating_sub(buf.len());
                buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        }
        let info = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| Error::docker(action(), e))?;
        Ok(ExecOutput {
            // The engine reports no code only while the command runs; the stream has ended.
            exit_code: info.exit_code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Removes the container; one already gone counts as removed.
    pub async fn remove(&self) -> Result<(), Error> {
        remove_by_name(&self.engine, &self.id).await
    }
}

async fn remove_by_name(engine: &Engine, name: &str) -> Result<(), Error> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match engine.client().remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(crate::bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(Error::docker(format!("remove container {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_idles_on_the_cluster_network_with_the_cluster_labels() {
        let b = body(
            "quay.io/cilium/alpine-curl:v1.10.0",
            "h1-0-basic",
            crate::labels::object("r1", "h1-0-basic", 7),
        );
        assert_eq!(b.entrypoint, Some(vec!["sleep".to_string()]));
        let labels = b.labels.unwrap();
        assert_eq!(labels[ROLE], ROLE_OUTSIDE);
        assert_eq!(labels[crate::labels::RUN_ID], "r1");
        assert_eq!(labels[crate::labels::CLUSTER], "h1-0-basic");
        assert!(
            !labels.contains_key(crate::labels::TALOS_TYPE),
            "not a node"
        );
        let hc = b.host_config.unwrap();
        assert_eq!(hc.privileged, None);
        assert_eq!(hc.port_bindings, None);
        assert!(
            b.networking_config
                .unwrap()
                .endpoints_config
                .unwrap()
                .contains_key("h1-0-basic")
        );
    }
}
