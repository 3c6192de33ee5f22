//! The gate's orchestration through the run engine with fake phases: the order of the phases,
//! each phase failing (the steps after it skipped with the reason, the cluster torn down, the
//! gate not carried out), an interrupt in each phase (torn down, the report marked
//! interrupted), and a verdict phase that fails (a regression; the suites after still run).

use crate::cli::upgrade::{judge_into, later_rounds, steps};
use crate::plan::{CellPlan, Plan, SuitePlan};
use crate::report::{CheckReport, Outcome, RunReport, SuiteReport};
use crate::run::signals::{self, Signal, Stop};
use crate::run::{Deployer, Engine, EngineOptions, GateStep, Tester, Verdict};
use crate::upgrade::UpgradePlan;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Default)]
struct Fake {
    /// The phase (by report name) that fails with an error.
    error_in: Option<&'static str>,
    /// The gate step whose verdict is a failure.
    fails_verdict: Option<GateStep>,
    /// The phase in which a SIGINT arrives; the phase then never finishes by itself.
    signal_in: Option<(&'static str, watch::Sender<Stop>)>,
    calls: Mutex<Vec<String>>,
}

impl Fake {
    fn log(&self, s: impl Into<String>) {
        self.calls.lock().unwrap().push(s.into());
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    /// Logs the phase; a signal here is sent and the phase hangs until the engine stops it.
    async fn enter(&self, phase: &str) {
        self.log(phase);
        if let Some((at, tx)) = &self.signal_in
            && *at == phase
        {
            tx.send(Stop::Graceful(Signal::Int)).unwrap();
            std::future::pending::<()>().await;
        }
    }
    fn result(&self, phase: &str) -> Result<String, String> {
        match self.error_in {
            Some(p) if p == phase => Err(format!("{phase} broke")),
            _ => Ok(String::new()),
        }
    }
}

impl Deployer for Fake {
    type Cluster = String;
    type Target = String;

    async fn provision(&self, _: &CellPlan) -> Result<String, String> {
        self.enter("provision").await;
        self.result("provision").map(|_| "c".into())
    }
    async fn install(&self, _: &CellPlan, _: &String) -> Result<String, String> {
        self.enter("install").await;
        self.result("install")
    }
    async fn gate(&self, step: GateStep, _: &CellPlan, _: &String) -> Outcome {
        self.enter(step.as_str()).await;
        if self.fails_verdict == Some(step) {
            return Outcome::Failed {
                message: "connection interrupted: test-conn-disrupt-client-x/test-conn-disrupt-client restarted 0 -> 1".into(),
                detail: String::new(),
            };
        }
        match self.result(step.as_str()) {
            Ok(_) => Outcome::Passed,
            Err(message) => Outcome::Error {
                message,
                detail: String::new(),
            },
        }
    }
    async fn target(&self, c: &String) -> Result<String, String> {
        Ok(c.clone())
    }
    async fn tear_down(&self, _: String) -> Result<String, String> {
        self.log("destroy");
        Ok(String::new())
    }
    fn keep(&self, _: &String) -> String {
        String::new()
    }
    fn leftovers(&self) -> String {
        "harness gc --run-id r1".into()
    }
}

impl Tester for Fake {
    type Target = String;

    async fn suite(&self, _: &CellPlan, _: &String, suite: &SuitePlan) -> SuiteReport {
        self.enter(&format!("suite {}", suite.suite)).await;
        SuiteReport {
            suite: suite.suite.to_string(),
            checks: suite
                .checks
                .iter()
                .map(|k| CheckReport {
                    name: k.name.clone(),
                    duration: Duration::ZERO,
                    outcome: Outcome::Passed,
                    transcript: String::new(),
                })
                .collect(),
            setup_transcript: String::new(),
            duration: Duration::ZERO,
            observed: None,
        }
    }
    async fn collect(&self, _: &CellPlan, _: &String) -> Result<String, String> {
        self.log("collect");
        Ok("reports/artifacts".into())
    }
}

/// A dns-only gate, Cilium 1.19.8 -> 1.20.2 and back.
fn gate_plan() -> UpgradePlan {
    let p = crate::plan::for_tests(&["talos-basic"], &["dns::*"]);
    let mut before = p.cells.into_iter().next().unwrap();
    before.cell.cilium = crate::version::CiliumVersion::parse("1.19.8").unwrap();
    let after = before.clone();
    let m = super::Move::Cilium {
        from: before.cell.cilium.clone(),
        to: crate::version::CiliumVersion::parse("1.20.2").unwrap(),
        compatibility: crate::releases::Minor(1, 19),
        crds: super::CrdMove::None,
    };
    UpgradePlan {
        before: before.clone(),
        after,
        moves: vec![m.clone()],
        downgrade: Some((before, m)),
        warnings: vec![],
    }
}

async fn run(fake: &Fake, rx: &signals::Interrupt) -> (RunReport, Verdict, Verdict) {
    let plan = gate_plan();
    let steps = steps(&plan);
    let engine = Engine {
        deployer: fake,
        tester: fake,
        steps: &steps,
        opts: EngineOptions {
            run_id: "r1".into(),
            keep_on_failure: false,
            jobs: 1,
            suite_jobs: 1,
            provenance: Default::default(),
        },
        progress: &(),
    };
    let cells = Plan {
        cells: vec![plan.before.clone()],
        excluded: vec![],
        not_in_matrix: vec![],
    };
    let mut out = engine.run(&cells, rx, |_| {}).await;
    let gate = judge_into(&mut out.report, &later_rounds(&plan));
    (out.report, out.verdict, gate)
}

fn phases(r: &RunReport) -> Vec<String> {
    r.cells[0]
        .phases
        .iter()
        .map(|p| {
            let o = match &p.outcome {
                Outcome::Passed => "ok".to_string(),
                Outcome::Failed { .. } => "failed".into(),
                Outcome::Error { message, .. } => format!("error: {message}"),
                Outcome::Skipped { reason } => format!("skipped: {reason}"),
            };
            format!("{} {o}", p.name.as_str())
        })
        .collect()
}

const ALL: [&str; 13] = [
    "provision",
    "install",
    "suite dns",
    "disruption-start",
    "upgrade",
    "readiness",
    "disruption",
    "suite dns",
    "downgrade",
    "downgrade-readiness",
    "downgrade-disruption",
    "suite dns",
    "destroy",
];

#[tokio::test]
async fn every_phase_runs_in_order_and_the_gate_passes() {
    let fake = Fake::default();
    let (_tx, rx) = signals::never();
    let (report, _, gate) = run(&fake, &rx).await;
    assert_eq!(fake.calls(), ALL);
    assert_eq!(gate, Verdict::Passed);
    let suites: Vec<&str> = report.cells[0]
        .suites
        .iter()
        .map(|s| s.suite.as_str())
        .collect();
    assert_eq!(
        suites,
        ["dns@before", "dns@after", "dns@after-downgrade", "gate"]
    );
}

/// Each phase failing: what follows is skipped with the reason, the cluster is torn down, and
/// the gate says it could not be carried out (exit 3).
#[tokio::test]
async fn each_phase_failing_tears_down_and_the_gate_is_not_carried_out() {
    for phase in [
        "provision",
        "install",
        "disruption-start",
        "upgrade",
        "readiness",
        "disruption",
        "downgrade",
        "downgrade-readiness",
        "downgrade-disruption",
    ] {
        let fake = Fake {
            error_in: Some(phase),
            ..Default::default()
        };
        let (_tx, rx) = signals::never();
        let (report, _, gate) = run(&fake, &rx).await;
        let calls = fake.calls();
        assert_eq!(gate, Verdict::PhaseFailed, "{phase}: {calls:?}");
        let at = calls.iter().position(|c| c == phase).unwrap();
        let after: Vec<&String> = calls[at + 1..].iter().filter(|c| *c != "collect").collect();
        if phase == "provision" {
            assert!(after.is_empty(), "{phase}: nothing to tear down: {calls:?}");
        } else {
            assert_eq!(
                after,
                ["destroy"],
                "{phase}: nothing runs after it: {calls:?}"
            );
        }
        let gate_suite = report.cells[0].suites.last().unwrap();
        assert_eq!(gate_suite.checks[0].name, "gate::carried-out", "{phase}");
        let shown = phases(&report);
        assert!(
            shown
                .iter()
                .any(|p| p == &format!("{phase} error: {phase} broke")),
            "{phase}: {shown:?}"
        );
        if phase != "provision" && phase != "install" {
            assert!(
                shown
                    .iter()
                    .skip_while(|p| !p.starts_with(&format!("{phase} error")))
                    .skip(1)
                    .filter(|p| !p.starts_with("destroy") && !p.starts_with("collect"))
                    .all(|p| p.contains(&format!("skipped: not run: {phase} failed"))),
                "{phase}: {shown:?}"
            );
        }
    }
}

/// A signal in each phase: that phase stops, the cluster is torn down, nothing else runs, and
/// the report is marked interrupted.
#[tokio::test]
async fn an_interrupt_in_each_phase_tears_down_and_marks_the_report() {
    for phase in [
        "provision",
        "install",
        "suite dns",
        "disruption-start",
        "upgrade",
        "readiness",
        "disruption",
        "downgrade",
        "downgrade-readiness",
        "downgrade-disruption",
    ] {
        let (tx, rx) = signals::never();
        let fake = Fake {
            signal_in: Some((phase, tx)),
            ..Default::default()
        };
        let (report, verdict, _) = tokio::time::timeout(Duration::from_secs(10), run(&fake, &rx))
            .await
            .unwrap_or_else(|_| panic!("{phase}: the engine did not stop"));
        assert_eq!(verdict, Verdict::Interrupted(Signal::Int), "{phase}");
        assert_eq!(report.interrupted.as_deref(), Some("SIGINT"), "{phase}");
        let calls = fake.calls();
        let at = calls.iter().position(|c| c == phase).unwrap();
        let after = &calls[at + 1..];
        if phase == "provision" {
            assert!(after.is_empty(), "{phase}: {calls:?}");
        } else {
            assert_eq!(after, ["destroy"], "{phase}: {calls:?}");
        }
        let gate_suite = report.cells[0].suites.last().unwrap();
        assert_eq!(gate_suite.suite, "gate");
        assert!(
            matches!(&gate_suite.checks[0].outcome, Outcome::Error { message, .. } if message.contains("interrupted by SIGINT")),
            "{phase}: {:?}",
            gate_suite.checks[0]
        );
    }
}

#[tokio::test]
async fn an_interrupted_connection_is_a_regression_and_the_suites_after_still_run() {
    let fake = Fake {
        fails_verdict: Some(GateStep::JudgeDisruption),
        ..Default::default()
    };
    let (_tx, rx) = signals::never();
    let (report, _, gate) = run(&fake, &rx).await;
    assert_eq!(gate, Verdict::ChecksFailed);
    assert_eq!(
        fake.calls().iter().filter(|c| *c == "suite dns").count(),
        3,
        "before, after and after the downgrade"
    );
    let case = report.cells[0]
        .suites
        .last()
        .unwrap()
        .checks
        .iter()
        .find(|c| c.name == "gate::disruption@upgrade")
        .unwrap();
    assert!(
        matches!(&case.outcome, Outcome::Failed { message, .. } if message.starts_with("regression: connection interrupted")),
        "{case:?}"
    );
}
