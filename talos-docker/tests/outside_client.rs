//! The outside client against the real Docker engine, with the stand-in image as the probe
//! client: created on the cluster's network (not a node, unprivileged, nothing published) with
//! the cluster's labels, probes by exec with exit codes and both streams, bounded; removed by
//! the cluster's destroy and by a removal by run id (what `gc` does after a SIGKILL).

mod common;

use std::time::Duration;

use common::*;
use talos_docker::bollard::query_parameters::InspectContainerOptions;
use talos_docker::labels::Selector;
use talos_docker::outside::{ROLE, ROLE_OUTSIDE, container_name};
use talos_docker::{Cluster, Error, cleanup};

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A stand-in cluster of this test's run.
async fn stand_in_cluster(env: &TestEnv) -> Cluster {
    let spec = env.spec("v1.11.5", env.talosctl(&[]));
    Cluster::create(spec, &RecordingReadiness::default())
        .await
        .unwrap()
}

/// Its outside client, from the stand-in image.
async fn start(cluster: &Cluster) -> talos_docker::OutsideClient {
    cluster
        .start_outside_client(&standin("v1.11.5"), Duration::from_secs(60))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_outside_client_joins_the_cluster_network_probes_by_exec_and_goes_with_the_cluster() {
    let Some(engine) = engine_or_skip("outside_client_lifecycle").await else {
        return;
    };
    let env = TestEnv::new("td-out");
    let cluster = stand_in_cluster(&env).await;
    let outside = start(&cluster).await;
    assert_eq!(outside.name(), container_name(&env.name));

    let c = engine
        .client()
        .inspect_container(outside.id(), None::<InspectContainerOptions>)
        .await
        .unwrap();
    assert!(c.state.unwrap().running.unwrap());
    let labels = c.config.clone().unwrap().labels.unwrap();
    assert_eq!(labels["io.harness.run-id"], env.run_id);
    assert_eq!(labels["io.harness.cluster"], env.name);
    assert_eq!(labels["talos.owned"], "true");
    assert_eq!(labels["talos.cluster.name"], env.name);
    assert_eq!(labels[ROLE], ROLE_OUTSIDE);
    assert!(labels.contains_key("io.harness.run-dir"));
    assert!(!labels.contains_key("talos.type"), "it is not a node");
    let hc = c.host_config.unwrap();
    assert_ne!(hc.privileged, Some(true));
    assert!(hc.port_bindings.unwrap_or_default().is_empty());
    // On the cluster network only, at an address of its subnet that no node has.
    let networks = c.network_settings.unwrap().networks.unwrap();
    assert_eq!(networks.keys().collect::<Vec<_>>(), [&env.name]);
    let subnet = cluster.subnet().unwrap();
    assert!(
        subnet.contains(outside.ip()),
        "{} in {subnet}",
        outside.ip()
    );
    assert!(cluster.nodes().iter().all(|n| n.ip != outside.ip()));

    // Probes: exit code and both streams, as a pod exec gives them.
    let out = outside
        .exec(
            &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    // A command past its bound is cut off, naming what was awaited.
    let e = outside
        .exec(&argv(&["sleep", "30"]), Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::WaitTimeout { what, .. } if what.contains("`sleep` in the outside client")),
        "{e}"
    );

    // The cluster's destroy takes it with the nodes.
    let removed = cluster.destroy().await.unwrap();
    assert!(
        removed.containers.contains(&outside.name().to_string()),
        "{removed:?}"
    );
    let left = leftovers(&engine, &env.run_id).await;
    assert!(left.is_empty(), "left behind: {}", describe(&left));
}

#[tokio::test]
async fn an_outside_client_that_cannot_start_leaves_nothing_and_says_why() {
    let Some(engine) = engine_or_skip("outside_client_failure").await else {
        return;
    };
    let env = TestEnv::new("td-outf");
    let cluster = stand_in_cluster(&env).await;
    let e = cluster
        .start_outside_client(
            "harness-test/no-such-probe-client:v0",
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("create container {}", container_name(&env.name))),
        "{e}"
    );
    let left = leftovers(&engine, &env.run_id).await;
    assert!(
        !left.containers.iter().any(|c| c.label(ROLE).is_some()),
        "{}",
        describe(&left)
    );
    cluster.destroy().await.unwrap();
    assert!(leftovers(&engine, &env.run_id).await.is_empty());
}

#[tokio::test]
async fn a_run_that_never_cleaned_up_loses_its_outside_client_to_a_removal_by_run_id() {
    let Some(engine) = engine_or_skip("outside_client_gc").await else {
        return;
    };
    let env = TestEnv::new("td-outg");
    let cluster = stand_in_cluster(&env).await;
    let outside = start(&cluster).await;
    // As if the process had been killed: no destroy, only what `harness gc --run-id` does.
    drop(cluster);
    let inv = cleanup::inventory(&engine, &Selector::run(&env.run_id))
        .await
        .unwrap();
    assert!(
        inv.containers.iter().any(|c| c.name == outside.name()),
        "gc sees it: {}",
        describe(&inv)
    );
    let removed = cleanup::remove_settled(&engine, &Selector::run(&env.run_id))
        .await
        .unwrap();
    assert!(removed.containers.contains(&outside.name().to_string()));
    assert!(leftovers(&engine, &env.run_id).await.is_empty());
}
