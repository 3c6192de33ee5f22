//! `check` and `e2e` are one engine with different deployers: both go through the same interrupt
//! path and produce reports of the same shape. `check` runs the real existing-cluster deployer
//! and the real suites against suites' fake API server; `e2e` runs a fake Talos-in-Docker
//! deployer (fake phases) in front of the same tester.

#[path = "../../suites/tests/common/mod.rs"]
mod api;

use api::{Cluster, Log, Reply, Seen};
use harness::matrix::{AxisFlags, MatrixSpec, expand};
use harness::plan::{CellPlan, Plan, PlanOptions, plan};
use harness::profile::Catalog;
use harness::profile::overlay::Overlay;
use harness::report::{Outcome, RunReport};
use harness::run::existing::Existing;
use harness::run::signals::{self, Signal, Stop};
use harness::run::tester::{KubeTarget, KubeTester};
use harness::run::{Deployer, Engine, EngineOptions, Step, Verdict};
use serde_json::{Value, json};
use std::sync::Mutex;
use suites::CheckFilter;
use tokio::sync::watch;

const RUN_ID: &str = "r1";
const CHECK: &str = "pod-security::cluster-default-is-baseline";

fn one_cell_plan(checks: &[&str]) -> Plan {
    let catalog = Catalog::embedded();
    let flags = AxisFlags {
        profiles: vec!["talos-basic".into()],
        cilium_versions: vec!["1.18.4".into()],
        ..Default::default()
    };
    let (cells, excluded) = expand(&MatrixSpec::load(None, flags).unwrap(), &catalog).unwrap();
    let checks: Vec<String> = checks.iter().map(|s| s.to_string()).collect();
    let opts = PlanOptions {
        values_files: vec![],
        filter: CheckFilter::new(&[], &checks).unwrap(),
        nodes: 2,
        external_target: None,
        outside: Some(harness::plan::talos_in_docker_outside()),
    };
    let p = plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts).unwrap();
    assert_eq!(p.cells.len(), 1);
    p
}

fn tester() -> KubeTester {
    KubeTester {
        filter: CheckFilter::new(&[], &[CHECK.into()]).unwrap(),
        options: api::fast_options(RUN_ID),
        external_target: None,
        artifacts: std::env::temp_dir().join("harness-engine-paths-never-written"),
        record_api: false,
    }
}

/// How the fake cluster answers a dry-run pod in the namespace without PodSecurity labels.
#[derive(Clone, Copy)]
enum DryRun {
    /// As a cluster with no PodSecurity default does: admitted, so the check fails.
    Admit,
    /// Never answered; the test's interrupt comes then.
    HangAndSignal,
}

/// A fake cluster that lists namespaces by label (tear-down) and answers dry-run pods as told.
fn fake_cluster(dry_run: DryRun, tx: Option<watch::Sender<Stop>>) -> (kube::Client, Log) {
    let state = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    api::cluster(state, move |s: &Seen, c: &mut Cluster| {
        if s.method == "GET" && s.path == "/api/v1/namespaces" && !s.is_watch() {
            let selector = s.param("labelSelector").unwrap_or_default();
            let (key, value) = selector.split_once('=').unwrap();
            let items: Vec<Value> = c
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
            return Some(match dry_run {
                DryRun::Admit => {
                    let ns = s.path.split('/').nth(4).unwrap_or_default();
                    let mut pod = s.body.clone();
                    pod["metadata"]["namespace"] = json!(ns);
                    Reply::Json(201, pod)
                }
                DryRun::HangAndSignal => {
                    if let Some(tx) = &tx {
                        tx.send(Stop::Graceful(Signal::Int)).unwrap();
                    }
                    Reply::Hang
                }
            });
        }
        None
    })
}

/// The e2e side with fake phases: provisioning "makes" the fake cluster, install does nothing.
struct FakeDocker {
    client: kube::Client,
    calls: Mutex<Vec<&'static str>>,
}

impl FakeDocker {
    fn new(client: kube::Client) -> FakeDocker {
        FakeDocker {
            client,
            calls: Mutex::new(Vec::new()),
        }
    }
}

/// `e2e`'s steps over the fake Talos-in-Docker deployer and the real tester.
fn e2e_engine<'a>(
    deployer: &'a FakeDocker,
    tester: &'a KubeTester,
) -> Engine<'a, FakeDocker, KubeTester> {
    Engine {
        deployer,
        tester,
        steps: &[Step::Install, Step::Suites { label: None }],
        opts: options(),
        progress: &(),
    }
}

impl Deployer for FakeDocker {
    type Cluster = ();
    type Target = KubeTarget;

    async fn provision(&self, _: &CellPlan) -> Result<(), String> {
        self.calls.lock().unwrap().push("provision");
        Ok(())
    }
    async fn install(&self, _: &CellPlan, _: &()) -> Result<String, String> {
        self.calls.lock().unwrap().push("install");
        Ok(String::new())
    }
    async fn target(&self, _: &()) -> Result<KubeTarget, String> {
        Ok(KubeTarget {
            client: self.client.clone(),
            nodes: 2,
            config: None,
            outside: None,
        })
    }
    async fn tear_down(&self, _: ()) -> Result<String, String> {
        self.calls.lock().unwrap().push("destroy");
        Ok(String::new())
    }
    fn keep(&self, _: &()) -> String {
        "kept".into()
    }
    fn leftovers(&self) -> String {
        format!("harness gc --run-id {RUN_ID}")
    }
}

fn options() -> EngineOptions {
    EngineOptions {
        run_id: RUN_ID.into(),
        keep_on_failure: false,
        jobs: 1,
        suite_jobs: 1,
        provenance: Default::default(),
    }
}

/// What a person reads off a report, without timings: phases with outcome kinds, every check
/// with its outcome kind and skip reason.
fn shape(r: &RunReport) -> Vec<String> {
    let kind = |o: &Outcome| match o {
        Outcome::Passed => "passed".to_string(),
        Outcome::Failed { .. } => "failed".to_string(),
        Outcome::Error { .. } => "error".to_string(),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
    };
    let mut out = vec![format!("interrupted: {:?}", r.interrupted)];
    for c in &r.cells {
        for p in &c.phases {
            out.push(format!("phase {}: {}", p.name.as_str(), kind(&p.outcome)));
        }
        for s in &c.suites {
            for k in &s.checks {
                out.push(format!("{}: {}", k.name, kind(&k.outcome)));
            }
        }
    }
    out
}

async fn check_run(dry_run: DryRun) -> (harness::run::RunOutcome, Log, Vec<RunReport>) {
    let (tx, rx) = signals::never();
    let (client, log) = fake_cluster(dry_run, Some(tx));
    let deployer = Existing::new(client, RUN_ID);
    let tester = tester();
    let engine = Engine {
        deployer: &deployer,
        tester: &tester,
        steps: &[Step::Suites { label: None }],
        opts: options(),
        progress: &(),
    };
    let mut written = Vec::new();
    let out = engine
        .run(&one_cell_plan(&[CHECK]), &rx, |r| written.push(r.clone()))
        .await;
    (out, log, written)
}

fn deleted_namespaces(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "DELETE" && s.path.starts_with("/api/v1/namespaces/"))
        .map(|s| s.path.rsplit('/').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn check_and_e2e_share_the_interrupt_path_and_the_report_shape() {
    let (check, log, written) = check_run(DryRun::HangAndSignal).await;
    assert_eq!(check.verdict, Verdict::Interrupted(Signal::Int));
    assert_eq!(
        written.last().unwrap().interrupted.as_deref(),
        Some("SIGINT"),
        "the last report written says it was interrupted"
    );
    // The interrupted suite did not clean up; tear-down removed the run's namespaces.
    let deleted = deleted_namespaces(&log);
    assert!(
        deleted.len() >= 2 && deleted.iter().all(|n| n.contains("pod-security")),
        "{deleted:?}"
    );

    let (tx, rx) = signals::never();
    let (client, _log) = fake_cluster(DryRun::HangAndSignal, Some(tx));
    let deployer = FakeDocker::new(client);
    let tester = tester();
    let engine = e2e_engine(&deployer, &tester);
    let e2e = engine.run(&one_cell_plan(&[CHECK]), &rx, |_| {}).await;
    assert_eq!(e2e.verdict, Verdict::Interrupted(Signal::Int));
    assert_eq!(
        *deployer.calls.lock().unwrap(),
        ["provision", "install", "destroy"]
    );

    let without_install: Vec<String> = shape(&e2e.report)
        .into_iter()
        .filter(|l| l != "phase install: passed")
        .collect();
    assert_eq!(shape(&check.report), without_install);
    assert_eq!(
        shape(&check.report),
        [
            "interrupted: Some(\"SIGINT\")",
            "phase provision: passed",
            "phase suites: skipped: interrupted by SIGINT",
            "phase destroy: passed",
            "pod-security::cluster-default-is-baseline: skipped: not run: interrupted by SIGINT",
        ]
    );
}

#[tokio::test]
async fn a_failed_check_on_an_existing_cluster_fails_the_run_and_removes_only_its_namespaces() {
    let (out, log, _) = check_run(DryRun::Admit).await;
    assert_eq!(out.verdict, Verdict::ChecksFailed);
    let shape = shape(&out.report);
    assert!(shape.contains(&format!("{CHECK}: failed")), "{shape:?}");
    let seen = log.lock().unwrap();
    let listed = seen
        .iter()
        .find(|s| s.method == "GET" && s.path == "/api/v1/namespaces")
        .expect("tear-down lists the run's namespaces");
    assert_eq!(
        listed.param("labelSelector").as_deref(),
        Some("io.harness.run-id=r1")
    );
    assert!(
        !seen
            .iter()
            .any(|s| s.method == "DELETE" && !s.path.contains(RUN_ID)),
        "only this run's namespaces are deleted"
    );
    let provision = seen.iter().find(|s| s.is("GET", "/api/v1/nodes"));
    assert!(provision.is_some(), "provisioning counted the nodes");
}

#[tokio::test]
async fn existing_tear_down_reports_what_it_deleted() {
    let (client, _log) = fake_cluster(DryRun::Admit, None);
    let deployer = Existing::new(client.clone(), RUN_ID);
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({
        "metadata": {"name": "harness-dns-r1", "labels": {"io.harness.run-id": "r1"}}
    }))
    .unwrap();
    api.create(&Default::default(), &ns).await.unwrap();
    let other: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({
        "metadata": {"name": "someone-elses", "labels": {"io.harness.run-id": "r2"}}
    }))
    .unwrap();
    api.create(&Default::default(), &other).await.unwrap();
    let cell = one_cell_plan(&[CHECK]).cells.remove(0);
    let cluster = deployer.provision(&cell).await.unwrap();
    assert_eq!(cluster.nodes, 2, "both fake nodes take pods");
    let said = deployer.tear_down(cluster).await.unwrap();
    assert_eq!(said, "removed: namespace harness-dns-r1");
    assert!(api.get("someone-elses").await.is_ok());
}

/// The e2e side with `--record`: the fake Talos-in-Docker deployer (provision, install,
/// destroy) in front of the real tester, written as JUnit and recorded after every cell like
/// `harness e2e --record` does; the recording replays to the same JUnit, install phase included.
#[tokio::test]
async fn an_e2e_run_recorded_replays_to_the_junit_it_wrote() {
    let (client, _log) = fake_cluster(DryRun::Admit, None);
    let deployer = FakeDocker::new(client);
    let tester = tester();
    let engine = e2e_engine(&deployer, &tester);
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let recorder = harness::recording::Recorder::of_run(dir.path().join("rec"), "e2e");
    let (_rx_tx, rx) = signals::never();
    let plan = one_cell_plan(&[CHECK]);
    let (out, report_error) = engine
        .run_to_junit(&plan, &rx, &junit, Some(&recorder))
        .await;
    assert!(report_error.is_none(), "{report_error:?}");
    assert_eq!(out.verdict, Verdict::ChecksFailed);

    let replayed = harness::recording::read(&dir.path().join("rec")).unwrap();
    assert_eq!(harness::run::verdict(&replayed), Verdict::ChecksFailed);
    let again =
        harness::report::junit::to_xml(&harness::report::junit::to_junit(&replayed)).unwrap();
    assert_eq!(
        String::from_utf8(again).unwrap(),
        std::fs::read_to_string(&junit).unwrap()
    );
    let manifest = std::fs::read_to_string(dir.path().join("rec/recording.json")).unwrap();
    assert!(manifest.contains("from `harness e2e`"), "{manifest}");
    assert!(manifest.contains("\"phase\": \"install\""), "{manifest}");
    assert!(
        manifest.contains("\"kube_proxy_replacement\""),
        "features: {manifest}"
    );
}

/// A run an interrupt cut short records what it reported without running (the suite skipped,
/// the report marked interrupted) and replays to the same JUnit and verdict.
#[tokio::test]
async fn an_interrupted_run_recorded_replays_as_interrupted() {
    let (out, _log, written) = check_run(DryRun::HangAndSignal).await;
    assert_eq!(out.verdict, Verdict::Interrupted(Signal::Int));
    let dir = tempfile::tempdir().unwrap();
    let recorder = harness::recording::Recorder::of_run(dir.path().join("rec"), "check");
    recorder
        .write(&one_cell_plan(&[CHECK]), written.last().unwrap())
        .unwrap();
    let replayed = harness::recording::read(&dir.path().join("rec")).unwrap();
    assert_eq!(
        harness::run::verdict(&replayed),
        Verdict::Interrupted(Signal::Int)
    );
    let xml = |r: &RunReport| {
        harness::report::junit::to_xml(&harness::report::junit::to_junit(r)).unwrap()
    };
    assert_eq!(xml(&replayed), xml(written.last().unwrap()));
    assert!(
        replayed.cells[0].suites[0].observed.is_none(),
        "nothing ran"
    );
}

/// A recording that cannot be written does not cost the run its report: the JUnit is written,
/// and the error names the recording, not the report.
#[tokio::test]
async fn a_recording_that_cannot_be_written_leaves_the_report_and_says_so() {
    let (client, _log) = fake_cluster(DryRun::Admit, None);
    let deployer = FakeDocker::new(client);
    let tester = tester();
    let engine = e2e_engine(&deployer, &tester);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let junit = dir.path().join("junit.xml");
    let recorder = harness::recording::Recorder::of_run(dir.path().join("file/rec"), "e2e");
    let (_tx, rx) = signals::never();
    let (_, error) = engine
        .run_to_junit(&one_cell_plan(&[CHECK]), &rx, &junit, Some(&recorder))
        .await;
    assert!(junit.is_file());
    let error = error.expect("the recording failed").to_string();
    assert!(
        error.contains("the recording is incomplete (the JUnit report has the results)"),
        "{error}"
    );
}
