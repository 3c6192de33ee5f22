//! The probe kit's requests, as the API server sees them (kube's tower-test mock).

mod common;

use common::{Reply, fixture_json, serve, status};
use serde_json::json;
use std::time::Duration;
use suites::kit::namespace::{self, PsaLabels, RunId};
use suites::kit::workload::{self, Placement};
use suites::kit::{Executor, Images, KubeExecutor, PodRef, wait};

#[tokio::test]
async fn a_test_namespace_is_posted_privileged_with_run_labels() {
    let (client, log) = serve(|s| Reply::Json(201, s.body.clone()));
    let run = RunId::new("r1").unwrap();
    let name = namespace::namespace_name(&run, suites::connectivity::NAME, None);
    let ns = namespace::test_namespace(
        &name,
        &run,
        suites::connectivity::NAME,
        PsaLabels::PRIVILEGED,
    );
    namespace::create(&client, &ns).await.unwrap();

    let seen = log.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].is("POST", "/api/v1/namespaces"), "{:?}", seen[0]);
    assert_eq!(
        seen[0].body["metadata"],
        json!({
            "name": "harness-connectivity-r1",
            "labels": {
                "app.kubernetes.io/managed-by": "talos-cilium-harness",
                "io.harness.run-id": "r1",
                "io.harness.suite": "connectivity",
                "pod-security.kubernetes.io/audit": "privileged",
                "pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/warn": "privileged"
            }
        })
    );
}

#[tokio::test]
async fn a_leftover_namespace_is_reported_with_what_to_do() {
    let (client, _) = serve(|_| {
        // The API server's AlreadyExists Status (apimachinery errors.NewAlreadyExists).
        Reply::Json(
            409,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "namespaces \"harness-dns-r1\" already exists", "reason": "AlreadyExists", "code": 409}),
        )
    });
    let run = RunId::new("r1").unwrap();
    let ns = namespace::test_namespace(
        "harness-dns-r1",
        &run,
        suites::dns::NAME,
        PsaLabels::PRIVILEGED,
    );
    let e = namespace::create(&client, &ns)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("create namespace harness-dns-r1: it already exists, left over"),
        "{e}"
    );
}

#[tokio::test]
async fn deleting_a_gone_namespace_is_fine_and_uses_background_propagation() {
    let (client, log) =
        serve(|_| Reply::Json(404, status(404, "NotFound", "namespaces \"x\" not found")));
    namespace::delete(&client, "x").await.unwrap();
    let seen = log.lock().unwrap();
    assert!(seen[0].is("DELETE", "/api/v1/namespaces/x"));
    assert_eq!(seen[0].body["propagationPolicy"], "Background");
}

#[tokio::test]
async fn workload_pods_carry_placement_and_pinned_images() {
    let (client, log) = serve(|s| Reply::Json(201, s.body.clone()));
    let labels = namespace::run_labels(&RunId::new("r1").unwrap(), suites::connectivity::NAME);
    let images = Images::pinned();
    let near = Placement::SameNodeAs("client".into());
    let far = Placement::OtherNodeThan("client".into());
    for pod in [
        workload::client_pod("client", &labels, &images.client, &Placement::Anywhere),
        workload::echo_pod("echo-same-node", &labels, &images.echo, &near),
        workload::echo_pod("echo-other-node", &labels, &images.echo, &far),
        workload::host_netns_pod("host-netns", &labels, &images.client, &near),
    ] {
        workload::create_pod(&client, "harness-connectivity-r1", &pod)
            .await
            .unwrap();
    }
    let seen = log.lock().unwrap();
    assert!(
        seen.iter()
            .all(|s| s.is("POST", "/api/v1/namespaces/harness-connectivity-r1/pods"))
    );
    let body = |i: usize| &seen[i].body;

    let client = body(0);
    assert_eq!(
        client["spec"]["containers"][0]["image"],
        suites::kit::images::CLIENT
    );
    assert_eq!(
        client["spec"]["containers"][0]["securityContext"]["capabilities"]["add"],
        json!(["NET_RAW"])
    );
    assert!(client["spec"].get("affinity").is_none());
    assert_eq!(
        client["metadata"]["labels"]["app.kubernetes.io/name"],
        "client"
    );

    let same = &body(1)["spec"];
    assert_eq!(same["containers"][0]["image"], suites::kit::images::ECHO);
    assert_eq!(
        same["affinity"],
        json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "client"}}, "topologyKey": "kubernetes.io/hostname"}
        ]}})
    );
    assert_eq!(
        same["containers"][0]["ports"],
        json!([{"containerPort": 8080, "name": "http"}])
    );

    let other = &body(2)["spec"];
    assert_eq!(
        other["affinity"],
        json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "client"}}, "topologyKey": "kubernetes.io/hostname"}
        ]}})
    );

    let host = &body(3)["spec"];
    assert_eq!(host["hostNetwork"], true);
    assert_eq!(host["dnsPolicy"], "ClusterFirstWithHostNet");
}

#[tokio::test]
async fn exec_is_a_websocket_get_naming_container_and_argv() {
    let (client, log) = serve(|_| {
        Reply::Json(
            403,
            status(
                403,
                "Forbidden",
                "pods \"client\" is forbidden: User \"ci\" cannot create resource \"pods/exec\"",
            ),
        )
    });
    let exec = KubeExecutor::new(client, Duration::from_secs(5));
    let pod = PodRef {
        namespace: "harness-connectivity-r1".into(),
        name: "client".into(),
        container: "client".into(),
    };
    let argv = suites::kit::probe::curl::argv("http://10.244.1.7:8080/");
    let err = exec.exec(&pod, &argv).await.unwrap_err().to_string();
    assert!(
        err.starts_with("exec \"curl\" in harness-connectivity-r1/client:"),
        "{err}"
    );

    let seen = log.lock().unwrap();
    let s = &seen[0];
    assert!(
        s.is(
            "GET",
            "/api/v1/namespaces/harness-connectivity-r1/pods/client/exec"
        ),
        "{s:?}"
    );
    assert_eq!(s.params("command"), argv);
    assert_eq!(s.param("container").as_deref(), Some("client"));
    assert_eq!(s.param("stdout").as_deref(), Some("true"));
    assert_eq!(s.param("stderr").as_deref(), Some("true"));
    assert_eq!(s.param("stdin"), None);
    assert_eq!(s.headers["upgrade"], "websocket");
    assert_eq!(s.headers["connection"], "Upgrade");
}

#[tokio::test]
async fn a_pod_ready_wait_is_a_watch_on_that_name_and_returns_the_ready_pod() {
    let (client, log) = serve(|s| {
        if s.is_watch() {
            return Reply::Hang;
        }
        Reply::Json(
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "10"},
                                "items": [fixture_json("pod-client-ready.json")]}),
        )
    });
    let api = kube::Api::namespaced(client, "harness-connectivity-r1");
    let pod = wait::pod_ready(api, "client", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(pod.status.unwrap().pod_ip.as_deref(), Some("10.244.1.3"));
    let seen = log.lock().unwrap();
    assert!(seen[0].is("GET", "/api/v1/namespaces/harness-connectivity-r1/pods"));
    assert_eq!(
        seen[0].param("fieldSelector").as_deref(),
        Some("metadata.name=client")
    );
}

#[tokio::test]
async fn a_pod_ready_wait_times_out_naming_what_it_awaited_and_last_saw() {
    let (client, _) = serve(|s| {
        if s.is_watch() {
            return Reply::Hang;
        }
        Reply::Json(
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "10"},
                                "items": [fixture_json("pod-pending-imagepullbackoff.json")]}),
        )
    });
    let api = kube::Api::namespaced(client, "harness-connectivity-r1");
    let e = wait::pod_ready(api, "client", Duration::from_millis(250))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("timed out after 0.25s waiting for pod harness-connectivity-r1/client to be Ready; last seen: Pending; on node w1"),
        "{e}"
    );
    assert!(e.contains("ImagePullBackOff"), "{e}");
    assert!(e.contains("HARNESS_IMAGE_REGISTRY"), "{e}");
}
