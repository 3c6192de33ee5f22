//! Against the real Docker engine, with a stand-in image and the fake talosctl (which refuses
//! what the real one refuses): the Docker objects have the shape the Talos docker provisioner
//! gives them, every talosctl call is one each supported talosctl accepts, and nothing is left
//! behind however provisioning ends.

mod common;
#[path = "support/talosctl_grammar.rs"]
mod grammar;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use talos_docker::bollard::errors::Error as DockerError;
use talos_docker::bollard::models::{ContainerInspectResponse, MountType};
use talos_docker::bollard::query_parameters::{
    InspectContainerOptions, InspectNetworkOptions, ListVolumesOptions,
};
use talos_docker::docker::{Engine, MTU_OPTION};
use talos_docker::{Cluster, Error, NodeRole, PreflightError};

async fn inspect(engine: &Engine, id: &str) -> ContainerInspectResponse {
    engine
        .client()
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .unwrap()
}

/// Names of the anonymous volumes mounted in a container.
fn volume_names(c: &ContainerInspectResponse) -> Vec<String> {
    c.mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.name)
        .collect()
}

async fn assert_gone(engine: &Engine, run_id: &str, volumes: &[String]) {
    let left = leftovers(engine, run_id).await;
    assert!(left.is_empty(), "left behind: {}", describe(&left));
    for v in volumes {
        match engine.client().inspect_volume(v).await {
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            other => panic!("anonymous volume {v} survived: {other:?}"),
        }
    }
}

/// Checks every node container against what Talos expects, returns their volume names.
async fn assert_talos_shaped(
    engine: &Engine,
    cluster: &Cluster,
    version: &str,
    privileged: bool,
) -> Vec<String> {
    let mut volumes = Vec::new();
    let expected_volumes: &[&str] = if version.starts_with("v1.14") {
        &["/var", "/system/state", "/opt"]
    } else {
        &[
            "/var",
            "/system/state",
            "/etc/cni",
            "/etc/kubernetes",
            "/usr/libexec/kubernetes",
            "/opt",
        ]
    };
    let subnet = cluster.subnet().unwrap();
    for (i, node) in cluster.nodes().iter().enumerate() {
        let c = inspect(engine, &node.container_id).await;
        let config = c.config.clone().unwrap();
        let hc = c.host_config.clone().unwrap();
        assert_eq!(c.name.as_deref(), Some(format!("/{}", node.name).as_str()));
        assert_eq!(config.hostname.as_deref(), Some(node.name.as_str()));
        assert_eq!(hc.privileged, Some(privileged), "{}", node.name);
        // Docker adds `label=disable` to privileged containers itself.
        let security = hc.security_opt.clone().unwrap_or_default();
        assert!(
            security.contains(&"seccomp=unconfined".to_string()),
            "{security:?}"
        );
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.memory, Some(1024 * 1024 * 1024));

        let mounts: Vec<(MountType, String)> = hc
            .mounts
            .clone()
            .unwrap()
            .into_iter()
            .map(|m| (m.typ.unwrap(), m.target.unwrap()))
            .collect();
        let tmpfs: Vec<&str> = mounts
            .iter()
            .filter(|(t, _)| *t == MountType::TMPFS)
            .map(|(_, p)| p.as_str())
            .collect();
        let vols: Vec<&str> = mounts
            .iter()
            .filter(|(t, _)| *t == MountType::VOLUME)
            .map(|(_, p)| p.as_str())
            .collect();
        assert_eq!(tmpfs, ["/run", "/system", "/tmp"]);
        assert_eq!(vols, expected_volumes, "volumes of {}", node.name);
        let names = volume_names(&c);
        assert_eq!(names.len(), expected_volumes.len());
        for v in &names {
            let vol = engine.client().inspect_volume(v).await.unwrap();
            assert_eq!(
                vol.labels.get("io.harness.run-id").map(String::as_str),
                Some(cluster.run_id().as_str()),
                "volume {v} is labelled for gc"
            );
        }
        volumes.extend(names);

        let env: HashMap<String, String> = config
            .env
            .clone()
            .unwrap()
            .into_iter()
            .filter_map(|e| e.split_once('=').map(|(k, v)| (k.into(), v.into())))
            .collect();
        assert_eq!(env["PLATFORM"], "container");
        assert_eq!(env["TALOSSKU"], "0CPU-1024RAM");
        let userdata = base64::engine::general_purpose::STANDARD
            .decode(&env["USERDATA"])
            .unwrap();
        let file = match node.role {
            NodeRole::ControlPlane => "controlplane.yaml",
            NodeRole::Worker => "worker.yaml",
        };
        assert_eq!(
            userdata,
            std::fs::read(cluster.run_dir().join(file)).unwrap(),
            "USERDATA of {} is the generated {file}",
            node.name
        );

        let labels = config.labels.clone().unwrap();
        assert_eq!(labels["talos.owned"], "true");
        assert_eq!(labels["talos.cluster.name"], cluster.name());
        assert_eq!(labels["talos.type"], node.role.as_str());
        assert_eq!(labels["io.harness.run-id"], cluster.run_id().as_str());
        assert_eq!(labels["io.harness.cluster"], cluster.name());

        let endpoint = &c.network_settings.clone().unwrap().networks.unwrap()[cluster.name()];
        let want_ip = subnet.nth(2 + i as u32).unwrap();
        assert_eq!(node.ip, want_ip, "control planes first, from .2");
        assert_eq!(
            endpoint
                .ipam_config
                .as_ref()
                .and_then(|c| c.ipv4_address.as_deref()),
            Some(want_ip.to_string().as_str())
        );

        let bindings = hc.port_bindings.clone().unwrap_or_default();
        if i == 0 {
            let mut ports: Vec<_> = bindings.keys().cloned().collect();
            ports.sort();
            assert_eq!(ports, ["50000/tcp", "6443/tcp"]);
            for b in bindings.values() {
                let b = b.clone().unwrap();
                assert_eq!(b[0].host_ip.as_deref(), Some("127.0.0.1"));
            }
        } else {
            assert!(bindings.is_empty(), "{} publishes {bindings:?}", node.name);
        }
    }
    volumes
}

#[tokio::test]
async fn v1_11_cluster_has_the_talos_shape_and_destroy_removes_all_of_it() {
    let Some(engine) = engine_or_skip("v1_11_cluster").await else {
        return;
    };
    let env = TestEnv::new("td-v111");
    let mut spec = env.spec("v1.11.5", env.talosctl(&[]));
    spec.mtu = 1430;
    spec.kubernetes_version = Some("1.34.1".into());
    spec.patches = vec![talos_docker::ConfigPatch::parse(
        talos_docker::PatchTarget::Worker,
        "machine: {sysctls: {a: b}}",
    )];
    let readiness = RecordingReadiness::default();
    let cluster = Cluster::create(spec, &readiness).await.unwrap();

    // The network.
    let net = engine
        .client()
        .inspect_network(cluster.network_name(), None::<InspectNetworkOptions>)
        .await
        .unwrap();
    let subnet = cluster.subnet().unwrap();
    assert!(subnet.to_string().starts_with("10.5."), "{subnet}");
    assert_eq!(subnet.prefix(), 24);
    assert_eq!(
        net.ipam.unwrap().config.unwrap()[0].subnet.as_deref(),
        Some(subnet.to_string().as_str())
    );
    assert_eq!(net.options.unwrap()[MTU_OPTION], "1430");
    let labels = net.labels.unwrap();
    assert_eq!(labels["io.harness.run-id"], env.run_id);
    assert_eq!(labels["io.harness.cluster"], env.name);
    assert_eq!(labels["talos.owned"], "true");
    assert_eq!(labels["talos.cluster.name"], env.name);
    assert_eq!(net.id.as_deref(), cluster.network_id());

    // The nodes.
    let names: Vec<_> = cluster.nodes().iter().map(|n| n.name.clone()).collect();
    assert_eq!(
        names,
        [
            format!("{}-controlplane-1", env.name),
            format!("{}-worker-1", env.name),
            format!("{}-worker-2", env.name),
        ]
    );
    let volumes = assert_talos_shaped(&engine, &cluster, "v1.11.5", false).await;
    let first = inspect(&engine, &cluster.nodes()[0].container_id).await;
    let published = first.network_settings.unwrap().ports.unwrap();
    let host_port = |p: &str| -> u16 {
        published[p].clone().unwrap()[0]
            .host_port
            .clone()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(cluster.talos_api_port(), Some(host_port("50000/tcp")));
    assert_eq!(cluster.kube_api_port(), Some(host_port("6443/tcp")));

    // The talosctl steps: the calls of `Invocation::provisioning`, in its order, each accepted
    // by the fake and by the grammar of every supported talosctl minor.
    let calls = env.talosctl_calls();
    let commands: Vec<&str> = calls
        .iter()
        .map(|c| c.command.as_deref().unwrap_or("?"))
        .collect();
    assert_eq!(
        commands,
        [
            "version",
            "gen secrets",
            "gen config",
            "config endpoint",
            "config node",
            "bootstrap",
            "kubeconfig"
        ]
    );
    for call in &calls {
        assert!(call.refused.is_none(), "{call:?}");
        for (minor, _) in grammar::TABLES {
            let g = grammar::for_version(minor).unwrap();
            if let Err(r) = g.parse(&call.argv) {
                panic!("talosctl {minor} refuses `{}`: {r}", call.line());
            }
        }
    }
    let talosconfig = cluster.talosconfig().display().to_string();
    let run_dir = cluster.run_dir().display().to_string();
    for call in calls.iter().filter(|c| {
        ["config endpoint", "config node", "bootstrap", "kubeconfig"]
            .iter()
            .any(|cmd| c.is(cmd))
    }) {
        assert_eq!(call.value_of("--talosconfig"), Some(talosconfig.as_str()));
    }
    let gen_config = calls.iter().find(|c| c.is("gen config")).unwrap().line();
    let cp1 = cluster.nodes()[0].ip;
    for part in [
        format!("gen config {} https://{cp1}:6443", env.name),
        "--with-secrets".to_string(),
        "--additional-sans 127.0.0.1".to_string(),
        "--talos-version v1.11".to_string(),
        "--kubernetes-version 1.34.1".to_string(),
        "--config-patch @".to_string(),
        "--config-patch-worker @".to_string(),
        format!("--output {run_dir}"),
    ] {
        assert!(gen_config.contains(&part), "{part} in {gen_config}");
    }
    assert!(!gen_config.contains("--talosconfig"), "{gen_config}");
    let talos_port = cluster.talos_api_port().unwrap();
    let endpoint = calls.iter().find(|c| c.is("config endpoint")).unwrap();
    assert_eq!(endpoint.argv[2], format!("127.0.0.1:{talos_port}"));
    let node = calls.iter().find(|c| c.is("config node")).unwrap();
    assert_eq!(node.argv[2], cp1.to_string());
    let cp1 = cp1.to_string();
    let bootstrap = calls.iter().find(|c| c.is("bootstrap")).unwrap();
    assert_eq!(bootstrap.value_of("--nodes"), Some(cp1.as_str()));
    let kubeconfig = calls.iter().find(|c| c.is("kubeconfig")).unwrap();
    assert!(kubeconfig.argv.contains(&"--merge=false".to_string()));
    // The talosconfig the real commands would have left: endpoint and node set.
    let saved = std::fs::read_to_string(cluster.talosconfig()).unwrap();
    assert!(
        saved.contains(&format!("127.0.0.1:{talos_port}")) && saved.contains(&cp1),
        "{saved}"
    );

    // The kubeconfig points at the published API server port; the readiness wait was asked for
    // every node.
    let kube_port = cluster.kube_api_port().unwrap();
    let kubeconfig = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    assert!(
        kubeconfig.contains(&format!("server: https://127.0.0.1:{kube_port}")),
        "{kubeconfig}"
    );
    let targets = readiness.0.lock().unwrap().clone();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].nodes, names);
    assert_eq!(targets[0].kubeconfig, cluster.kubeconfig());

    // Secrets stay private.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(cluster.run_dir()), 0o700);
    for entry in std::fs::read_dir(cluster.run_dir()).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }

    let removed = cluster.destroy().await.unwrap();
    assert_eq!(removed.containers.len(), 3);
    assert_eq!(removed.networks.len(), 1);
    assert_gone(&engine, &env.run_id, &volumes).await;
    assert!(!cluster.run_dir().exists());
    // Idempotent.
    let again = cluster.destroy().await.unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn v1_14_nodes_get_the_shorter_volume_list() {
    let Some(engine) = engine_or_skip("v1_14_nodes").await else {
        return;
    };
    let env = TestEnv::new("td-v114");
    let mut spec = env.spec("v1.14.0", env.talosctl(&[("VERSION", "v1.14.0")]));
    spec.workers = 1;
    let cluster = Cluster::create(spec, &RecordingReadiness::default())
        .await
        .unwrap();
    let volumes = assert_talos_shaped(&engine, &cluster, "v1.14.0", false).await;
    assert_eq!(volumes.len(), 2 * 3);
    let gen_config = env
        .talosctl_calls()
        .into_iter()
        .find(|c| c.is("gen config"))
        .unwrap()
        .line();
    assert!(gen_config.contains("--talos-version v1.14"), "{gen_config}");
    // The container-mode eth0 patch is for Talos before v1.12 only.
    assert!(!gen_config.contains("--config-patch @"), "{gen_config}");
    cluster.destroy().await.unwrap();
    assert_gone(&engine, &env.run_id, &volumes).await;
}

/// Talos nodes are privileged. Where the daemon cannot start privileged containers (a dockerd
/// inside a container, like the development machines), provisioning fails at the start and
/// `keep_on_failure` leaves the created containers to inspect; elsewhere it succeeds.
#[tokio::test]
async fn nodes_are_privileged_as_talos_needs() {
    let Some(engine) = engine_or_skip("privileged_nodes").await else {
        return;
    };
    let env = TestEnv::new("td-priv");
    let mut spec = env.spec("v1.11.5", env.talosctl(&[]));
    spec.privileged = true;
    spec.keep_on_failure = true;
    let readiness = RecordingReadiness::default();
    let cluster = match Cluster::create(spec, &readiness).await {
        Ok(cluster) => cluster,
        Err(Error::Kept { cluster, source }) => {
            let msg = source.to_string();
            assert!(msg.contains("cannot start container"), "{msg}");
            assert!(
                msg.contains("privileged"),
                "the hint names the cause: {msg}"
            );
            *cluster
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(cluster.nodes().len(), 3, "every node was created");
    let volumes = assert_talos_shaped(&engine, &cluster, "v1.11.5", true).await;
    cluster.destroy().await.unwrap();
    assert_gone(&engine, &env.run_id, &volumes).await;
}

#[tokio::test]
async fn concurrent_clusters_get_disjoint_subnets_and_names() {
    let Some(engine) = engine_or_skip("concurrent_clusters").await else {
        return;
    };
    let a = TestEnv::new("td-cca");
    let b = TestEnv::new("td-ccb");
    let (mut sa, mut sb) = (
        a.spec("v1.11.5", a.talosctl(&[])),
        b.spec("v1.11.5", b.talosctl(&[])),
    );
    sa.workers = 1;
    sb.workers = 1;
    let (ra, rb) = (RecordingReadiness::default(), RecordingReadiness::default());
    let (ca, cb) = tokio::join!(Cluster::create(sa, &ra), Cluster::create(sb, &rb));
    let (ca, cb) = (ca.unwrap(), cb.unwrap());
    let (na, nb) = (ca.subnet().unwrap(), cb.subnet().unwrap());
    assert!(!na.overlaps(&nb), "{na} and {nb}");
    assert_ne!(ca.network_id(), cb.network_id());
    for n in ca.nodes() {
        assert!(cb.nodes().iter().all(|m| m.name != n.name));
        assert!(na.contains(n.ip));
    }
    for n in cb.nodes() {
        assert!(nb.contains(n.ip));
    }
    ca.destroy().await.unwrap();
    cb.destroy().await.unwrap();
    assert_gone(&engine, &a.run_id, &[]).await;
    assert_gone(&engine, &b.run_id, &[]).await;
}

#[tokio::test]
async fn a_failed_bootstrap_removes_everything() {
    let Some(engine) = engine_or_skip("failed_bootstrap").await else {
        return;
    };
    let env = TestEnv::new("td-fail");
    let spec = env.spec("v1.11.5", env.talosctl(&[("FAIL_AT", "bootstrap")]));
    let err = Cluster::create(spec, &RecordingReadiness::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            Error::Talosctl {
                step: "bootstrap",
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("PermissionDenied"), "{msg}");
    // It got as far as creating containers before failing.
    assert!(env.talosctl_calls().iter().any(|c| c.is("bootstrap")));
    assert_gone(&engine, &env.run_id, &[]).await;
    assert!(
        std::fs::read_dir(env.state_dir()).unwrap().next().is_none(),
        "the run directory is gone"
    );
}

#[tokio::test]
async fn a_booting_node_is_retried_until_bootstrap_is_accepted() {
    let Some(engine) = engine_or_skip("bootstrap_retries").await else {
        return;
    };
    let env = TestEnv::new("td-retry");
    let mut spec = env.spec("v1.11.5", env.talosctl(&[("TRANSIENT", "2")]));
    spec.workers = 0;
    let cluster = Cluster::create(spec, &RecordingReadiness::default())
        .await
        .unwrap();
    let bootstraps = env
        .talosctl_calls()
        .iter()
        .filter(|c| c.is("bootstrap"))
        .count();
    assert_eq!(bootstraps, 3);
    cluster.destroy().await.unwrap();
    assert_gone(&engine, &env.run_id, &[]).await;
}

#[tokio::test]
async fn a_bootstrap_that_never_succeeds_times_out_naming_what_it_saw() {
    let Some(engine) = engine_or_skip("bootstrap_timeout").await else {
        return;
    };
    let env = TestEnv::new("td-bto");
    let mut spec = env.spec("v1.11.5", env.talosctl(&[("TRANSIENT", "1000")]));
    spec.workers = 0;
    spec.timeouts.bootstrap = Duration::from_secs(3);
    let err = Cluster::create(spec, &RecordingReadiness::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out after 3s"), "{err}");
    assert!(err.contains("talosctl bootstrap"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert_gone(&engine, &env.run_id, &[]).await;
}

#[tokio::test]
async fn a_panic_mid_provisioning_removes_everything() {
    let Some(engine) = engine_or_skip("panic_cleanup").await else {
        return;
    };
    let env = TestEnv::new("td-panic");
    let spec = env.spec("v1.11.5", env.talosctl(&[]));
    let task = tokio::spawn(async move { Cluster::create(spec, &PanickingReadiness).await });
    let joined = task.await;
    assert!(joined.unwrap_err().is_panic());
    assert_gone(&engine, &env.run_id, &[]).await;
    assert!(std::fs::read_dir(env.state_dir()).unwrap().next().is_none());
}

#[tokio::test]
async fn dropping_provisioning_midway_removes_everything() {
    let Some(engine) = engine_or_skip("dropped_provisioning").await else {
        return;
    };
    let env = TestEnv::new("td-drop");
    let spec = env.spec("v1.11.5", env.talosctl(&[("SLEEP_AT", "bootstrap")]));
    let readiness = Arc::new(RecordingReadiness::default());
    // Boxed so that dropping it really drops the provisioning future.
    let mut create = Box::pin(Cluster::create(spec, readiness.as_ref()));
    let log = env.log();
    let at_bootstrap = async {
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(r#""command":"bootstrap""#)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        r = &mut create => panic!("provisioning finished: {:?}", r.map(|c| c.name().to_string())),
        () = at_bootstrap => {}
    }
    let before = leftovers(&engine, &env.run_id).await;
    assert_eq!(before.containers.len(), 3, "{}", describe(&before));
    drop(create);
    assert_gone(&engine, &env.run_id, &[]).await;
    assert!(std::fs::read_dir(env.state_dir()).unwrap().next().is_none());
}

/// Asserts `spec` is refused as bad input with nothing left behind.
async fn refused(
    engine: &Engine,
    env: &TestEnv,
    spec: talos_docker::ClusterSpec,
) -> PreflightError {
    let err = Cluster::create(spec, &RecordingReadiness::default())
        .await
        .unwrap_err();
    let left = leftovers(engine, &env.run_id).await;
    assert!(left.is_empty(), "left behind: {}", describe(&left));
    assert!(!env.state_dir().exists(), "no run directory");
    match err {
        Error::Preflight(p) => p,
        other => panic!("not a preflight error: {other}"),
    }
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_made() {
    let Some(engine) = engine_or_skip("preflight").await else {
        return;
    };
    let env = TestEnv::new("td-pre");
    let talosctl = env.talosctl(&[]);

    let mut spec = env.spec("v1.11.5", talosctl.clone());
    spec.image = Some("harness-test/absent:v1.11.5".into());
    let e = refused(&engine, &env, spec).await;
    assert!(matches!(e, PreflightError::ImageUnavailable { .. }));
    let msg = e.to_string();
    assert!(msg.contains("harness-test/absent:v1.11.5"), "{msg}");
    assert!(
        msg.contains("docker save") && msg.contains("docker load"),
        "{msg}"
    );

    let mut spec = env.spec("v1.11.5", talosctl.clone());
    spec.memory_mib = 64 * 1024 * 1024;
    let e = refused(&engine, &env, spec).await;
    assert!(matches!(e, PreflightError::NotEnoughMemory { .. }), "{e}");

    let mut spec = env.spec("v1.11.5", talosctl.clone());
    spec.cpus = 4096.0;
    let e = refused(&engine, &env, spec).await;
    assert!(matches!(e, PreflightError::TooManyCpus { .. }), "{e}");

    let spec = env.spec("v1.11.5", env.talosctl(&[("VERSION", "v1.10.3")]));
    let e = refused(&engine, &env, spec).await;
    assert!(
        matches!(e, PreflightError::TalosctlWrongVersion { .. }),
        "{e}"
    );

    // A network someone else made: its name and its subnet are both taken.
    let other = TestEnv::new("td-other");
    let mut squatter = other.spec("v1.11.5", other.talosctl(&[]));
    squatter.workers = 0;
    let squatter = Cluster::create(squatter, &RecordingReadiness::default())
        .await
        .unwrap();
    let mut spec = env.spec("v1.11.5", talosctl.clone());
    spec.subnet = squatter.subnet();
    let e = refused(&engine, &env, spec).await;
    let msg = e.to_string();
    assert!(matches!(e, PreflightError::SubnetTaken { .. }), "{msg}");
    assert!(
        msg.contains(&format!("network '{}'", squatter.name())),
        "{msg}"
    );

    let mut spec = env.spec("v1.11.5", talosctl.clone());
    spec.name = squatter.name().to_string();
    let e = refused(&engine, &env, spec).await;
    let msg = e.to_string();
    assert!(matches!(e, PreflightError::NameClash { .. }), "{msg}");
    assert!(
        msg.contains(&format!("{}-controlplane-1", squatter.name())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("harness down {}", squatter.name())),
        "{msg}"
    );
    squatter.destroy().await.unwrap();
}

#[tokio::test]
async fn the_engine_api_version_is_negotiated_down_to_the_daemons() {
    let Some(engine) = engine_or_skip("api_negotiation").await else {
        return;
    };
    let server = engine.client().version().await.unwrap();
    let server_api = server.api_version.unwrap();
    let parse = |v: &str| -> (u32, u32) {
        let (a, b) = v.split_once('.').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    assert!(
        parse(&engine.api_version()) <= parse(&server_api),
        "client {} > server {server_api}",
        engine.api_version()
    );
    // A versioned call works (an engine older than bollard's default would refuse it).
    engine
        .client()
        .list_volumes(None::<ListVolumesOptions>)
        .await
        .unwrap();
}

/// The kernel-module probe asks the engine's own machine: here the engine is local, so its
/// answer must be this machine's `/sys/module`, for modules that are there and one that is not;
/// and the probe container is gone afterwards.
#[tokio::test]
async fn loaded_modules_are_read_from_the_engine_host_and_the_probe_is_removed() {
    let Some(engine) = engine_or_skip("loaded_modules").await else {
        return;
    };
    if !talos_docker::docker::docker_host().starts_with("unix://") {
        eprintln!("skipping the comparison: the engine is not on this machine");
        return;
    }
    let env = TestEnv::new("probe");
    let mut here: Vec<String> = std::fs::read_dir("/sys/module")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    here.sort();
    let mut asked: Vec<&str> = here.iter().take(3).map(String::as_str).collect();
    asked.push("harness_no_such_module");
    let labels = talos_docker::labels::object(&env.run_id, "kernel-probe", 0);
    let found = engine
        .loaded_modules(&standin("v1.11.5"), &asked, labels, Duration::from_secs(30))
        .await
        .unwrap();
    let expected: Vec<String> = here.iter().take(3).cloned().collect();
    assert_eq!(found, expected);
    assert!(leftovers(&engine, &env.run_id).await.is_empty());
}
