//! The real `harness check` binary against a fake API server over HTTP: a failed check exits 1,
//! SIGINT and SIGTERM exit 130/143 with the report marked interrupted, and in every case the
//! run's test namespaces are removed and nothing else is touched. The fake plays a cluster
//! without PodSecurity defaults (it admits every pod), which fails
//! `pod-security::cluster-default-is-baseline`, as it would on a non-Talos cluster.

mod support;

use serde_json::json;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::api::{Cluster, Log, Reply, Seen};
use support::http_api::{self, HttpApi};

const CHECK: &str = "pod-security::cluster-default-is-baseline";

/// The fake cluster: namespaces listed by label (tear-down), dry-run pods admitted or, with
/// `hang`, never answered.
fn api(hang: bool) -> HttpApi {
    api_with(hang, false)
}

/// With `nodes_forbidden`, listing nodes is refused as RBAC refuses a user without that right
/// (the API server's Forbidden Status, reason and message as the authorizer words them).
fn api_with(hang: bool, nodes_forbidden: bool) -> HttpApi {
    let state = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    http_api::serve(state, move |s: &Seen, c: &mut Cluster| {
        if nodes_forbidden && s.is("GET", "/api/v1/nodes") {
            return Some(Reply::Json(
                403,
                support::api::status(
                    403,
                    "Forbidden",
                    "nodes is forbidden: User \"ci-runner\" cannot list resource \"nodes\" in API group \"\" at the cluster scope",
                ),
            ));
        }
        if s.is("GET", "/api/v1/namespaces") && !s.is_watch() {
            let selector = s.param("labelSelector").unwrap_or_default();
            let (key, value) = selector.split_once('=').unwrap_or_default();
            let items: Vec<_> = c
                .namespaces
                .values()
                .filter(|ns| ns["metadata"]["labels"][key] == value)
                .cloned()
                .collect();
            return Some(Reply::Json(
                200,
                json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "12"}, "items": items}),
            ));
        }
        if s.method == "POST" && s.path.ends_with("/pods") && s.dry_run() {
            if hang {
                return Some(Reply::Hang);
            }
            let mut pod = s.body.clone();
            pod["metadata"]["namespace"] = json!(s.path.split('/').nth(4).unwrap_or_default());
            return Some(Reply::Json(201, pod));
        }
        None
    })
}

fn check(dir: &Path, api: &HttpApi, run_id: &str) -> Command {
    std::fs::write(dir.join("kubeconfig"), api.kubeconfig()).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
    c.current_dir(dir)
        .args([
            "check",
            "--profile",
            "talos-basic",
            "--cilium-version",
            "1.18.4",
            "--check",
            CHECK,
            "--kubeconfig",
            "kubeconfig",
            "--run-id",
            run_id,
        ])
        .env_remove("KUBECONFIG")
        .env_remove("HARNESS_IMAGE_REGISTRY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn report(dir: &Path) -> junit_parser::TestSuites {
    let file = std::fs::File::open(dir.join("reports/junit.xml")).expect("a report");
    junit_parser::from_reader(std::io::BufReader::new(file)).unwrap()
}

fn deleted(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.path.clone())
        .collect()
}

#[test]
fn a_failed_check_exits_1_and_removes_only_the_runs_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(false);
    let out = check(dir.path(), &api, "chk-fail").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("planted-token"), "{stderr}");
    let r = report(dir.path());
    let case = r
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .find(|c| c.original_name == CHECK)
        .unwrap();
    assert!(case.status.is_failure(), "{:?}", case.status);
    let phases: Vec<&str> = r
        .suites
        .iter()
        .find(|s| s.name.ends_with("::phases"))
        .unwrap()
        .cases
        .iter()
        .map(|c| c.original_name.as_str())
        .collect();
    assert_eq!(
        phases,
        [
            "phase::provision",
            "phase::suites",
            "phase::collect",
            "phase::destroy"
        ]
    );
    let deleted = deleted(&api.log);
    assert!(!deleted.is_empty());
    assert!(
        deleted.iter().all(|p| p.contains("chk-fail")),
        "only this run's namespaces: {deleted:?}"
    );
}

fn wait_for(log: &Log, what: impl Fn(&Seen) -> bool, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log.lock().unwrap().iter().any(&what) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("check exited ({status}) early: {err}");
        }
        assert!(Instant::now() < deadline, "the request never came");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn interrupted(sig: &str, status: i32, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let api = api(true);
    let run_id = format!("chk-{}", sig.to_lowercase());
    let mut child = check(dir.path(), &api, &run_id).spawn().unwrap();
    wait_for(&api.log, |s| s.method == "POST" && s.dry_run(), &mut child);
    let ok = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "{stderr}");
    let r = report(dir.path());
    let props = &r.suites[0].properties.hashmap;
    assert_eq!(
        props.get("interrupted").map(String::as_str),
        Some(name),
        "{props:?}"
    );
    let case = r
        .suites
        .iter()
        .flat_map(|s| &s.cases)
        .find(|c| c.original_name == CHECK)
        .unwrap();
    assert!(case.status.is_skipped());
    let deleted = deleted(&api.log);
    assert!(
        !deleted.is_empty() && deleted.iter().all(|p| p.contains(&run_id)),
        "the run's namespaces were removed: {deleted:?}"
    );
}

#[test]
fn sigint_mid_check_removes_the_namespaces_reports_and_exits_130() {
    interrupted("INT", 130, "SIGINT");
}

#[test]
fn sigterm_mid_check_removes_the_namespaces_reports_and_exits_143() {
    interrupted("TERM", 143, "SIGTERM");
}

#[test]
fn bad_input_is_refused_before_any_request_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(false);
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let mut c = check(dir.path(), &api, "chk-bad");
    c.args([
        "--junit",
        "out",
        "--external-target",
        "https://example.com/",
    ]);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--junit out: is a directory"), "{stderr}");
    assert!(
        stderr.contains("--external-target 'https://example.com/'"),
        "{stderr}"
    );
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["kubeconfig", "out"], "no report, no artifacts");
    assert_eq!(
        std::fs::read_dir(dir.path().join("out")).unwrap().count(),
        0
    );
    assert!(
        !api.log.lock().unwrap().iter().any(|s| s.method != "GET"),
        "nothing created on the cluster"
    );
}

#[test]
fn a_cluster_that_cannot_be_provisioned_exits_3_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let api = api_with(false, true);
    let out = check(dir.path(), &api, "chk-phase").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "a failed phase: {stderr}");
    let r = report(dir.path());
    let provision = r
        .suites
        .iter()
        .find(|s| s.name.ends_with("::phases"))
        .unwrap()
        .cases
        .iter()
        .find(|c| c.original_name == "phase::provision")
        .unwrap();
    assert!(provision.status.is_error());
    assert!(
        provision
            .status
            .error_as_ref()
            .message
            .contains("cannot list the cluster's nodes"),
        "{:?}",
        provision.status
    );
    assert!(
        !api.log.lock().unwrap().iter().any(|s| s.method == "POST"),
        "nothing created after provisioning failed"
    );
}
