//! Replacing Talos-in-Docker nodes with another image (the upgrade gate's Talos move), against
//! the real Docker engine with the stand-in image: the new container keeps the old one's
//! volumes (and what is on them), IP, hostname, labels and published ports; control planes go
//! first, then workers, each waited on; volumes the new release no longer mounts are removed;
//! and an interrupt at any point leaves nothing that the cluster's destroy does not remove.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use talos_docker::bollard::errors::Error as DockerError;
use talos_docker::bollard::models::ContainerInspectResponse;
use talos_docker::bollard::query_parameters::{InspectContainerOptions, RemoveContainerOptions};
use talos_docker::docker::Engine;
use talos_docker::replace::NodeReady;
use talos_docker::{Cluster, Error, Node, TalosVersion};

#[derive(Default)]
struct Recording(Mutex<Vec<(String, String)>>);

impl NodeReady for Recording {
    fn wait<'a>(&'a self, node: &'a Node, v: &'a TalosVersion) -> BoxFuture<'a, Result<(), Error>> {
        self.0
            .lock()
            .unwrap()
            .push((node.name.clone(), v.to_string()));
        Box::pin(async { Ok(()) })
    }
}

/// Never ready from the `at`-th node on, and says when it got there.
struct HangsAt {
    at: usize,
    seen: AtomicUsize,
    reached: tokio::sync::Notify,
}

impl NodeReady for HangsAt {
    fn wait<'a>(&'a self, _: &'a Node, _: &'a TalosVersion) -> BoxFuture<'a, Result<(), Error>> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n >= self.at {
                self.reached.notify_one();
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}

async fn inspect(engine: &Engine, name: &str) -> ContainerInspectResponse {
    engine
        .client()
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .unwrap()
}

/// Mount path -> volume name.
fn volumes(c: &ContainerInspectResponse) -> HashMap<String, String> {
    c.mounts
        .iter()
        .flatten()
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .map(|m| (m.destination.clone().unwrap(), m.name.clone().unwrap()))
        .collect()
}

fn ip(c: &ContainerInspectResponse, network: &str) -> String {
    c.network_settings
        .as_ref()
        .unwrap()
        .networks
        .as_ref()
        .unwrap()[network]
        .ip_address
        .clone()
        .unwrap()
}

fn docker_exec(container: &str, script: &str) -> String {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker exec {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn volume_exists(engine: &Engine, name: &str) -> bool {
    match engine.client().inspect_volume(name).await {
        Ok(_) => true,
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(e) => panic!("inspect volume {name}: {e}"),
    }
}

async fn assert_gone(engine: &Engine, run_id: &str, volumes: &[String]) {
    let left = leftovers(engine, run_id).await;
    assert!(left.is_empty(), "left behind: {}", describe(&left));
    for v in volumes {
        assert!(!volume_exists(engine, v).await, "volume {v} survived");
    }
}

async fn stand_in_cluster(env: &TestEnv) -> Cluster {
    let spec = env.spec("v1.11.5", env.talosctl(&[]));
    Cluster::create(spec, &RecordingReadiness::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn replaced_nodes_keep_volumes_ip_hostname_labels_and_ports() {
    let Some(engine) = engine_or_skip("node_replacement").await else {
        return;
    };
    let env = TestEnv::new("td-repl");
    let cluster = stand_in_cluster(&env).await;
    let network = cluster.network_name().to_string();
    let mut before = HashMap::new();
    for node in cluster.nodes() {
        docker_exec(&node.name, &format!("echo {} > /var/marker", node.name));
        before.insert(node.name.clone(), inspect(&engine, &node.name).await);
    }
    let all_volumes: Vec<String> = before
        .values()
        .flat_map(|c| volumes(c).into_values())
        .collect();

    let (from, to) = (
        TalosVersion::parse("v1.11.5").unwrap(),
        TalosVersion::parse("v1.14.0").unwrap(),
    );
    let ready = Recording::default();
    let replaced = cluster
        .replace_nodes(&standin("v1.14.0"), &from, &to, &ready)
        .await
        .unwrap();

    let order: Vec<String> = ready
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(
        order,
        [
            format!("{}-controlplane-1", env.name),
            format!("{}-worker-1", env.name),
            format!("{}-worker-2", env.name),
        ],
        "control planes first, then workers, each waited on"
    );
    assert!(ready.0.lock().unwrap().iter().all(|(_, v)| v == "v1.14.0"));

    for r in &replaced {
        let old = &before[&r.node.name];
        let new = inspect(&engine, &r.node.name).await;
        assert_ne!(new.id, old.id, "{} is a new container", r.node.name);
        assert_eq!(new.id.as_deref(), Some(r.node.container_id.as_str()));
        let (oc, nc) = (old.config.clone().unwrap(), new.config.clone().unwrap());
        assert_eq!(nc.image.as_deref(), Some(standin("v1.14.0").as_str()));
        assert_eq!(nc.hostname, oc.hostname);
        assert_eq!(nc.labels, oc.labels, "{}", r.node.name);
        assert_eq!(nc.env, oc.env, "the same machine config");
        assert_eq!(ip(&new, &network), ip(old, &network));
        assert_eq!(new.state.as_ref().unwrap().running, Some(true));

        // v1.14 mounts /var, /system/state and /opt: the old volumes, with their contents.
        let (ov, nv) = (volumes(old), volumes(&new));
        assert_eq!(nv.len(), 3, "{nv:?}");
        for path in ["/var", "/system/state", "/opt"] {
            assert_eq!(nv[path], ov[path], "{} {path}", r.node.name);
        }
        assert_eq!(
            docker_exec(&r.node.name, "cat /var/marker").trim(),
            r.node.name
        );
        // The overlays v1.14 no longer has are gone.
        assert_eq!(r.dropped_volumes.len(), 3, "{:?}", r.dropped_volumes);
        for path in ["/etc/cni", "/etc/kubernetes", "/usr/libexec/kubernetes"] {
            assert!(!volume_exists(&engine, &ov[path]).await, "{path} kept");
        }
        let ports = |c: &ContainerInspectResponse| {
            let mut p: Vec<String> = c
                .network_settings
                .as_ref()
                .unwrap()
                .ports
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| Some(format!("{k}={}", v?[0].host_port.clone()?)))
                .collect();
            p.sort();
            p
        };
        assert_eq!(
            ports(&new),
            ports(old),
            "{} keeps its published ports",
            r.node.name
        );
    }
    assert_eq!(
        cluster.talos_api_port(),
        Some(
            talos_docker::docker::Engine::connect(Duration::from_secs(5))
                .await
                .unwrap()
                .published_port(&cluster.nodes()[0].name, "50000/tcp")
                .await
                .unwrap()
        ),
        "the talosconfig's endpoint still reaches the first control plane"
    );

    cluster.destroy().await.unwrap();
    assert_gone(&engine, &env.run_id, &all_volumes).await;
}

#[tokio::test]
async fn an_interrupt_mid_replacement_leaves_nothing_after_the_tear_down() {
    let Some(engine) = engine_or_skip("interrupted_replacement").await else {
        return;
    };
    let env = TestEnv::new("td-repl-int");
    let cluster = stand_in_cluster(&env).await;
    let mut all_volumes = Vec::new();
    for node in cluster.nodes() {
        all_volumes.extend(volumes(&inspect(&engine, &node.name).await).into_values());
    }
    let (from, to) = (
        TalosVersion::parse("v1.11.5").unwrap(),
        TalosVersion::parse("v1.14.0").unwrap(),
    );
    // The second node is never ready: the first is replaced, the second is mid-way.
    let ready = HangsAt {
        at: 1,
        seen: AtomicUsize::new(0),
        reached: tokio::sync::Notify::new(),
    };
    let image = standin("v1.14.0");
    let mut replacing = Box::pin(cluster.replace_nodes(&image, &from, &to, &ready));
    tokio::select! {
        r = &mut replacing => panic!("replacement finished: {r:?}"),
        () = ready.reached.notified() => {}
    }
    drop(replacing);
    let mid = leftovers(&engine, &env.run_id).await;
    assert_eq!(mid.containers.len(), 3, "{}", describe(&mid));

    // Between removing a node and creating its successor, its volumes exist on their own.
    let third = &cluster.nodes()[2].name;
    engine
        .client()
        .remove_container(
            third,
            Some(RemoveContainerOptions {
                force: true,
                v: false,
                ..Default::default()
            }),
        )
        .await
        .unwrap();

    cluster.destroy().await.unwrap();
    assert_gone(&engine, &env.run_id, &all_volumes).await;
}

/// `upgrade-k8s` against a stand-in cluster through the fake talosctl (which accepts what each
/// talosctl accepts): its progress comes back for the transcript; an unreachable node is a
/// talosctl failure naming the step, within the bound.
#[tokio::test]
async fn kubernetes_is_upgraded_with_talosctl_upgrade_k8s() {
    let Some(_engine) = engine_or_skip("upgrade_k8s").await else {
        return;
    };
    let env = TestEnv::new("td-k8s");
    let cluster = stand_in_cluster(&env).await;
    let version = TalosVersion::parse("v1.11.5").unwrap();
    let version = &version;
    let locate = |settings: &[(&str, &str)]| {
        let path = env.talosctl(settings);
        async move {
            talos_docker::talosctl::Talosctl::locate(Some(&path), version, Duration::from_secs(10))
                .await
                .unwrap()
        }
    };
    let talosctl = locate(&[]).await;
    let out = cluster
        .upgrade_kubernetes(&talosctl, "1.35.0", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        out.contains("updating \"kube-apiserver\" to version \"1.35.0\""),
        "{out}"
    );
    let last = env.talosctl_calls().pop().unwrap();
    assert!(last.is("upgrade-k8s"), "{:?}", last.refused);
    assert_eq!(last.value_of("--to"), Some("1.35.0"));

    let unreachable = locate(&[("NODES", "unreachable")]).await;
    let err = cluster
        .upgrade_kubernetes(&unreachable, "1.35.0", Duration::from_secs(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("talosctl upgrade-k8s failed"), "{err}");
    cluster.destroy().await.unwrap();
}
