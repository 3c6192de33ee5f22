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
    api_planting(hang, nodes_forbidden, false)
}

/// Planted credentials of every form a recording could meet: a PEM private key and a
/// `token:` line in the API server's refusal of a pod, which the PodSecurity checks keep.
const PLANTED_REFUSAL: &str = "pods \"probe\" is forbidden: violates PodSecurity \"baseline:latest\": see the webhook's log\n-----BEGIN PRIVATE KEY-----\nplanted-pem-body\n-----END PRIVATE KEY-----\ntoken: planted-bearer-token";

/// With `plant`, dry-run pods in the baseline namespace are refused with [`PLANTED_REFUSAL`].
fn api_planting(hang: bool, nodes_forbidden: bool, plant: bool) -> HttpApi {
    api_full(hang, nodes_forbidden, plant, None)
}

/// With `pod_cidrs`, the two nodes carry `spec.podCIDRs` (one each), as the node IPAM
/// controller sets them (core/v1 NodeSpec).
fn api_full(
    hang: bool,
    nodes_forbidden: bool,
    plant: bool,
    pod_cidrs: Option<[&'static str; 2]>,
) -> HttpApi {
    let state = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    http_api::serve(state, move |s: &Seen, c: &mut Cluster| {
        if let Some(cidrs) = pod_cidrs
            && s.is("GET", "/api/v1/nodes")
            && !s.is_watch()
        {
            let items: Vec<_> = c
                .nodes
                .iter()
                .zip(cidrs)
                .map(|((name, ip), cidr)| {
                    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                           "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
                           "status": {"addresses": [{"type": "InternalIP", "address": ip}]}})
                })
                .collect();
            return Some(Reply::Json(
                200,
                json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "7"}, "items": items}),
            ));
        }
        if plant && s.method == "POST" && s.dry_run() && s.path.contains("-baseline/pods") {
            return Some(Reply::Json(
                403,
                support::api::status(403, "Forbidden", PLANTED_REFUSAL),
            ));
        }
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
    check_profile(dir, api, run_id, "talos-basic")
}

fn check_profile(dir: &Path, api: &HttpApi, run_id: &str, profile: &str) -> Command {
    std::fs::write(dir.join("kubeconfig"), api.kubeconfig()).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
    c.current_dir(dir)
        .args([
            "check",
            "--profile",
            profile,
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

fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    out
}

fn replay(dir: &Path, recording: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(dir)
        .args(["replay", recording, "--junit", "reports/replay.xml"])
        .output()
        .unwrap()
}

/// Cases as a reader compares them: name, verdict, message.
fn cases(path: &Path) -> Vec<(String, String, String)> {
    let file = std::fs::File::open(path).unwrap();
    let r = junit_parser::from_reader(std::io::BufReader::new(file)).unwrap();
    r.suites
        .iter()
        .flat_map(|s| &s.cases)
        .map(|c| {
            let (verdict, message) = if c.status.is_failure() {
                ("failure", c.status.failure_as_ref().message.clone())
            } else if c.status.is_error() {
                ("error", c.status.error_as_ref().message.clone())
            } else if c.status.is_skipped() {
                ("skipped", c.status.skipped_as_ref().message.clone())
            } else {
                ("passed", String::new())
            };
            (c.original_name.clone(), verdict.to_string(), message)
        })
        .collect()
}

const RECORDED: [&str; 3] = [
    CHECK,
    "pod-security::namespace-levels",
    "pod-security::baseline-refuses-net-raw",
];

fn recorded_check(dir: &Path, api: &HttpApi, run_id: &str) -> std::process::Output {
    let mut c = check(dir, api, run_id);
    for extra in &RECORDED[1..] {
        c.args(["--check", extra]);
    }
    c.args(["--record", "rec"]);
    c.output().unwrap()
}

/// `check --record`, then `replay`: the same JUnit, byte for byte (cases, verdicts, messages,
/// times, transcripts, properties), and the same exit status; the recording is plain files
/// holding each check's observation and probes, and no credential.
#[test]
fn a_recorded_check_replays_to_the_junit_the_run_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(false);
    let out = recorded_check(dir.path(), &api, "chk-rec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("harness replay rec"), "{stderr}");

    let files = files_under(&dir.path().join("rec"));
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    for check in RECORDED {
        let folder = check.replace("::", "/");
        for file in ["check.json", "observation.json", "probes.json"] {
            assert!(
                names
                    .iter()
                    .any(|n| n.ends_with(&format!("{folder}/{file}"))),
                "{folder}/{file} in {names:?}"
            );
        }
    }
    for (path, text) in &files {
        assert!(!text.contains("planted-token"), "{path}");
    }
    // The API server's answers each check read, under that check.
    let (_, api) = files
        .iter()
        .find(|(p, _)| p.ends_with("cluster-default-is-baseline/api.json"))
        .expect("the check's API answers are recorded");
    let api: serde_json::Value = serde_json::from_str(api).unwrap();
    assert!(
        api.as_array().unwrap().iter().any(|r| r["method"] == "POST"
            && r["path"].as_str().unwrap().contains("dryRun=All")
            && r["status"] == 201
            && r["body"]["kind"] == "Pod"),
        "{api:#}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.ends_with("pod-security/setup-api.json")),
        "{names:?}"
    );

    let replayed = replay(dir.path(), "rec");
    let stderr = String::from_utf8_lossy(&replayed.stderr);
    assert_eq!(
        replayed.status.code(),
        Some(1),
        "the run's verdict: {stderr}"
    );
    assert!(stderr.contains("3 observation(s) judged again"), "{stderr}");
    let live = std::fs::read_to_string(dir.path().join("reports/junit.xml")).unwrap();
    let again = std::fs::read_to_string(dir.path().join("reports/replay.xml")).unwrap();
    assert_eq!(live, again);
    let verdicts: Vec<String> = cases(&dir.path().join("reports/replay.xml"))
        .into_iter()
        .filter(|(n, _, _)| !n.starts_with("phase::"))
        .map(|(n, v, _)| format!("{n} {v}"))
        .collect();
    assert_eq!(
        verdicts,
        [
            "pod-security::namespace-levels passed",
            "pod-security::baseline-refuses-net-raw failure",
            "pod-security::cluster-default-is-baseline failure",
        ]
    );
}

/// Credentials planted in what the cluster answers reach no file of the recording, and the
/// replay of the redacted recording still gives the run's cases, verdicts and messages.
#[test]
fn planted_credentials_stay_out_of_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let api = api_planting(false, false, true);
    let out = recorded_check(dir.path(), &api, "chk-secret");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let files = files_under(&dir.path().join("rec"));
    let observed = files
        .iter()
        .find(|(p, _)| p.ends_with("baseline-refuses-net-raw/observation.json"))
        .unwrap();
    assert!(
        observed.1.contains("see the webhook's log"),
        "the refusal was recorded: {}",
        observed.1
    );
    for (path, text) in &files {
        for secret in ["planted-pem-body", "planted-bearer-token", "planted-token"] {
            assert!(!text.contains(secret), "{secret} in {path}:\n{text}");
        }
    }
    let replayed = replay(dir.path(), "rec");
    assert_eq!(replayed.status.code(), Some(1));
    assert_eq!(
        cases(&dir.path().join("reports/replay.xml")),
        cases(&dir.path().join("reports/junit.xml"))
    );
}

/// `--record` into a directory holding anything is refused before any request or file.
#[test]
fn record_into_a_used_directory_is_refused_before_anything() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(false);
    std::fs::create_dir(dir.path().join("rec")).unwrap();
    std::fs::write(dir.path().join("rec/notes.txt"), "mine").unwrap();
    let out = recorded_check(dir.path(), &api, "chk-used");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--record rec: is not empty; fix: pass a new or empty directory"),
        "{stderr}"
    );
    assert!(!dir.path().join("reports").exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("rec")).unwrap().count(),
        1
    );
    assert!(!api.log.lock().unwrap().iter().any(|s| s.method != "GET"));
}

fn on_wireguard_profile(dir: &Path, api: &HttpApi, run_id: &str, values: Option<&str>) -> Command {
    let mut c = check_profile(dir, api, run_id, "service-mesh-wireguard");
    if let Some(v) = values {
        std::fs::write(dir.join("values.yaml"), v).unwrap();
        c.args(["--values", "values.yaml"]);
    }
    c
}

/// Issue 11: for a cluster the harness did not build, the lint's facts come from that
/// cluster. Its nodes' pod CIDRs (10.42.0.0/24, 10.42.1.0/24) make the profile's
/// `ipv4NativeRoutingCIDR: 10.244.0.0/16` an error, refused before anything is created; values
/// that match the cluster pass, though they would contradict the harness's own clusters.
#[test]
fn check_lints_the_values_against_the_clusters_own_pod_cidr() {
    let dir = tempfile::tempdir().unwrap();
    let api = api_full(false, false, false, Some(["10.42.0.0/24", "10.42.1.0/24"]));
    let out = on_wireguard_profile(dir.path(), &api, "chk-cidr", None)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cluster: pod CIDR 10.42.0.0/23 (read: the smallest range covering the nodes' spec.podCIDRs (10.42.0.0/24, 10.42.1.0/24))"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "cluster: API server {} (read: the kubeconfig's server)",
            api.addr
        )),
        "{stderr}"
    );
    assert!(stderr.contains("cluster: assumed Service CIDR"), "{stderr}");
    assert!(
        stderr.contains("ipv4NativeRoutingCIDR: 10.244.0.0/16 does not cover the cluster's pod CIDR 10.42.0.0/23"),
        "{stderr}"
    );
    assert!(!dir.path().join("reports").exists());
    assert!(!api.log.lock().unwrap().iter().any(|s| s.method != "GET"));

    let dir = tempfile::tempdir().unwrap();
    let api = api_full(false, false, false, Some(["10.42.0.0/24", "10.42.1.0/24"]));
    let out = on_wireguard_profile(
        dir.path(),
        &api,
        "chk-cidr-ok",
        Some("ipv4NativeRoutingCIDR: 10.42.0.0/16\n"),
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "ran, and the check failed: {stderr}"
    );
    assert!(!stderr.contains("does not cover"), "{stderr}");
}
