//! The engine with fake phases: ordering, tear-down always, collect on failure, keep, both
//! signals, labelled suite rounds, parallel cells and the verdict.

use super::*;
use std::sync::Mutex;
use tokio::sync::watch;

fn plan_of(profiles: &[&str], checks: &[&str]) -> Plan {
    crate::plan::for_tests(profiles, checks)
}

fn dns_plan(profiles: &[&str]) -> Plan {
    plan_of(profiles, &["dns::*"])
}

#[derive(Default)]
struct Fake {
    fail_provision: bool,
    fail_install: bool,
    fail_check: bool,
    fail_collect: bool,
    /// The suite that never finishes (e.g. "dns").
    hang_in_suite: Option<&'static str>,
    hang_in_tear_down: bool,
    /// How long provisioning, install and each suite take (on tokio's clock).
    delay: Duration,
    /// Sent from inside the install phase, which then fails.
    signal_in_install: Option<watch::Sender<Stop>>,
    calls: Mutex<Vec<String>>,
    /// Suites that finished, in order, with how many calls had been made by then.
    done: Mutex<Vec<(String, usize)>>,
}

impl Fake {
    fn log(&self, s: impl Into<String>) {
        self.calls.lock().unwrap().push(s.into());
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Deployer for Fake {
    type Cluster = String;
    type Target = String;

    async fn provision(&self, cell: &CellPlan) -> Result<String, String> {
        self.log(format!("provision {}", cell.profile.name));
        tokio::task::yield_now().await;
        tokio::time::sleep(self.delay).await;
        if self.fail_provision {
            Err("subnet taken".into())
        } else {
            Ok(format!("cluster-{}", cell.profile.name))
        }
    }
    async fn install(&self, _: &CellPlan, c: &String) -> Result<String, String> {
        self.log(format!("install {c}"));
        tokio::time::sleep(self.delay).await;
        if let Some(tx) = &self.signal_in_install {
            tx.send(Stop::Graceful(Signal::Term)).unwrap();
            return Err("helm killed".into());
        }
        if self.fail_install {
            Err("helm failed".into())
        } else {
            Ok(String::new())
        }
    }
    async fn target(&self, c: &String) -> Result<String, String> {
        Ok(c.clone())
    }
    async fn tear_down(&self, c: String) -> Result<String, String> {
        self.log(format!("destroy {c}"));
        if self.hang_in_tear_down {
            std::future::pending::<()>().await;
        }
        Ok(String::new())
    }
    fn keep(&self, c: &String) -> String {
        format!("harness down {c}")
    }
    fn leftovers(&self) -> String {
        "harness gc --run-id r1".into()
    }
}

impl Tester for Fake {
    type Target = String;

    async fn suite(&self, _: &CellPlan, c: &String, suite: &SuitePlan) -> SuiteReport {
        self.log(format!("suite {} {c}", suite.suite));
        if self.hang_in_suite == Some(suite.suite.as_str()) {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.delay).await;
        let started = self.calls().len();
        self.done
            .lock()
            .unwrap()
            .push((suite.suite.to_string(), started));
        SuiteReport {
            suite: suite.suite.to_string(),
            checks: suite
                .checks
                .iter()
                .map(|k| CheckReport {
                    name: k.name.clone(),
                    duration: Duration::from_millis(1),
                    outcome: if self.fail_check && k.name == "dns::pod-a-record" {
                        Outcome::Failed {
                            message: "NXDOMAIN".into(),
                            detail: String::new(),
                        }
                    } else {
                        Outcome::Passed
                    },
                    transcript: String::new(),
                })
                .collect(),
            setup_transcript: String::new(),
            duration: std::time::Duration::ZERO,
            observed: None,
        }
    }
    async fn collect(&self, _: &CellPlan, c: &String) -> Result<String, String> {
        self.log(format!("collect {c}"));
        if self.fail_collect {
            Err("listing pods: forbidden".into())
        } else {
            Ok("reports/artifacts".into())
        }
    }
}

const E2E: &[Step] = &[Step::Install, Step::Suites { label: None }];

fn engine<'a>(fake: &'a Fake, steps: &'a [Step], keep: bool) -> Engine<'a, Fake, Fake> {
    Engine {
        deployer: fake,
        tester: fake,
        steps,
        opts: EngineOptions {
            run_id: "r1".into(),
            keep_on_failure: keep,
            jobs: 1,
            suite_jobs: 1,
            provenance: Default::default(),
        },
        progress: &(),
    }
}

/// One run of `plan` with no interrupt.
async fn run_plain(fake: &Fake, steps: &[Step], keep: bool, plan: &Plan) -> RunOutcome {
    let (_tx, rx) = signals::never();
    engine(fake, steps, keep).run(plan, &rx, |_| {}).await
}

async fn run_basic(fake: &Fake, keep: bool) -> RunOutcome {
    run_plain(fake, E2E, keep, &dns_plan(&["talos-basic"])).await
}

fn phase_names(c: &CellReport) -> Vec<(&'static str, bool)> {
    c.phases
        .iter()
        .map(|p| (p.name.as_str(), matches!(p.outcome, Outcome::Passed)))
        .collect()
}

/// Waits until `fake` logged a call starting with `prefix`.
async fn until_called(fake: &Fake, prefix: &str) {
    while !fake.calls().iter().any(|c| c.starts_with(prefix)) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_passing_cell_runs_every_phase_and_destroys() {
    let fake = Fake::default();
    let (_tx, rx) = signals::never();
    let mut writes = 0;
    let out = engine(&fake, E2E, false)
        .run(&dns_plan(&["talos-basic"]), &rx, |_| writes += 1)
        .await;
    assert_eq!(
        fake.calls(),
        [
            "provision talos-basic",
            "install cluster-talos-basic",
            "suite dns cluster-talos-basic",
            "destroy cluster-talos-basic"
        ]
    );
    assert_eq!(
        phase_names(&out.report.cells[0]),
        [
            ("provision", true),
            ("install", true),
            ("suites", true),
            ("destroy", true)
        ]
    );
    assert_eq!(out.verdict, Verdict::Passed);
    assert!(writes >= 2, "after the cell and at the end");
}

#[tokio::test]
async fn a_failed_check_collects_then_destroys() {
    let fake = Fake {
        fail_check: true,
        ..Default::default()
    };
    let out = run_basic(&fake, false).await;
    assert_eq!(
        fake.calls()[3..],
        ["collect cluster-talos-basic", "destroy cluster-talos-basic"]
    );
    assert_eq!(out.verdict, Verdict::ChecksFailed);
    assert!(out.notes[0].contains("diagnostics in reports/artifacts"));
}

#[tokio::test]
async fn a_failed_collect_does_not_turn_a_failed_check_into_a_failed_run() {
    let fake = Fake {
        fail_check: true,
        fail_collect: true,
        ..Default::default()
    };
    let out = run_basic(&fake, false).await;
    let collect = &out.report.cells[0].phases[3];
    assert_eq!(collect.name, PhaseName::Collect);
    assert!(
        matches!(&collect.outcome, Outcome::Error { message, .. } if message.contains("forbidden"))
    );
    assert_eq!(out.verdict, Verdict::ChecksFailed);
}

#[tokio::test]
async fn install_failure_skips_checks_with_the_reason_and_keep_on_failure_keeps() {
    let fake = Fake {
        fail_install: true,
        ..Default::default()
    };
    let out = run_basic(&fake, true).await;
    assert!(!fake.calls().iter().any(|c| c.starts_with("destroy")));
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("kept for debugging: harness down cluster-talos-basic"))
    );
    let check = &out.report.cells[0].suites[0].checks[0];
    assert_eq!(
        check.outcome,
        Outcome::Skipped {
            reason: "not run: install failed: helm failed".into()
        }
    );
    assert_eq!(out.verdict, Verdict::PhaseFailed);
}

#[tokio::test]
async fn provisioning_failure_has_nothing_to_destroy() {
    let fake = Fake {
        fail_provision: true,
        ..Default::default()
    };
    let out = run_basic(&fake, false).await;
    assert_eq!(fake.calls(), ["provision talos-basic"]);
    assert_eq!(phase_names(&out.report.cells[0]), [("provision", false)]);
    assert_eq!(out.verdict, Verdict::PhaseFailed);
}

#[tokio::test]
async fn an_interrupt_destroys_marks_the_rest_and_is_reported() {
    let fake = Fake {
        hang_in_suite: Some("dns"),
        ..Default::default()
    };
    let (tx, rx) = signals::never();
    let plan = dns_plan(&["talos-basic", "k8s-local"]);
    let written = Mutex::new(Vec::new());
    let e = engine(&fake, E2E, false);
    let runner = e.run(&plan, &rx, |r| {
        written.lock().unwrap().push(r.interrupted.clone())
    });
    let interrupter = async {
        until_called(&fake, "suite").await;
        tx.send(Stop::Graceful(Signal::Int)).unwrap();
    };
    let (out, ()) = tokio::join!(runner, interrupter);
    assert_eq!(
        fake.calls(),
        [
            "provision talos-basic",
            "install cluster-talos-basic",
            "suite dns cluster-talos-basic",
            "destroy cluster-talos-basic"
        ]
    );
    assert_eq!(out.report.interrupted.as_deref(), Some("SIGINT"));
    assert_eq!(out.verdict, Verdict::Interrupted(Signal::Int));
    let second = &out.report.cells[1];
    assert!(second.phases.is_empty());
    assert_eq!(
        second.suites[0].checks[0].outcome,
        Outcome::Skipped {
            reason: "not run: interrupted by SIGINT".into()
        }
    );
    assert_eq!(
        written.lock().unwrap().last().unwrap().as_deref(),
        Some("SIGINT")
    );
}

#[tokio::test]
async fn an_interrupt_keeps_the_suites_that_finished() {
    let fake = Fake {
        hang_in_suite: Some("pod-security"),
        ..Default::default()
    };
    let (tx, rx) = signals::never();
    let plan = plan_of(&["talos-basic"], &["dns::pod-a-record", "pod-security::*"]);
    let e = engine(&fake, &[Step::Suites { label: None }], false);
    let interrupter = async {
        until_called(&fake, "suite pod-security").await;
        tx.send(Stop::Graceful(Signal::Term)).unwrap();
    };
    let (out, ()) = tokio::join!(e.run(&plan, &rx, |_| {}), interrupter);
    let suites = &out.report.cells[0].suites;
    let by_name = |n: &str| suites.iter().find(|s| s.suite == n).unwrap();
    assert_eq!(by_name("dns").checks[0].outcome, Outcome::Passed);
    assert!(by_name("pod-security").checks.iter().all(|c| c.outcome
        == Outcome::Skipped {
            reason: "not run: interrupted by SIGTERM".into()
        }));
    assert_eq!(out.verdict, Verdict::Interrupted(Signal::Term));
}

#[tokio::test]
async fn an_interrupt_overrides_keep_on_failure() {
    let (tx, rx) = signals::never();
    let fake = Fake {
        signal_in_install: Some(tx),
        ..Default::default()
    };
    let out = engine(&fake, E2E, true)
        .run(&dns_plan(&["talos-basic"]), &rx, |_| {})
        .await;
    assert_eq!(
        fake.calls().last().map(String::as_str),
        Some("destroy cluster-talos-basic")
    );
    assert!(
        !out.notes.iter().any(|n| n.contains("kept")),
        "{:?}",
        out.notes
    );
    assert_eq!(out.verdict, Verdict::Interrupted(Signal::Term));
}

#[tokio::test]
async fn a_second_signal_abandons_the_tear_down_and_still_reports() {
    let fake = Fake {
        hang_in_suite: Some("dns"),
        hang_in_tear_down: true,
        ..Default::default()
    };
    let (tx, rx) = signals::never();
    let plan = dns_plan(&["talos-basic"]);
    let last = Mutex::new(None);
    let e = engine(&fake, E2E, false);
    let runner = e.run(&plan, &rx, |r| *last.lock().unwrap() = Some(r.clone()));
    let interrupter = async {
        until_called(&fake, "suite").await;
        tx.send(Stop::Graceful(Signal::Int)).unwrap();
        until_called(&fake, "destroy").await;
        tx.send(Stop::Abandon(Signal::Int)).unwrap();
    };
    let (out, ()) = tokio::join!(runner, interrupter);
    let destroy = out.report.cells[0].phases.last().unwrap();
    assert_eq!(destroy.name, PhaseName::Destroy);
    assert_eq!(
        destroy.outcome,
        Outcome::Error {
            message:
                "skipped after a second SIGINT: remove what is left with `harness gc --run-id r1`"
                    .into(),
            detail: String::new()
        }
    );
    let written = last.lock().unwrap().clone().expect("a report was written");
    assert_eq!(written.interrupted.as_deref(), Some("SIGINT"));
    assert_eq!(out.verdict, Verdict::Interrupted(Signal::Int));
}

#[tokio::test]
async fn suites_can_run_in_labelled_rounds() {
    let fake = Fake::default();
    let steps = [
        Step::Install,
        Step::Suites {
            label: Some("before"),
        },
        Step::Suites {
            label: Some("after"),
        },
    ];
    let out = run_plain(&fake, &steps, false, &dns_plan(&["talos-basic"])).await;
    let cell = &out.report.cells[0];
    let names: Vec<&str> = cell.suites.iter().map(|s| s.suite.as_str()).collect();
    assert_eq!(names, ["dns@before", "dns@after"]);
    assert_eq!(
        phase_names(cell),
        [
            ("provision", true),
            ("install", true),
            ("suites", true),
            ("suites", true),
            ("destroy", true)
        ]
    );
}

#[tokio::test]
async fn an_install_failure_skips_every_later_round() {
    let fake = Fake {
        fail_install: true,
        ..Default::default()
    };
    let steps = [
        Step::Install,
        Step::Suites {
            label: Some("before"),
        },
        Step::Suites {
            label: Some("after"),
        },
    ];
    let out = run_plain(&fake, &steps, false, &dns_plan(&["talos-basic"])).await;
    let suites = &out.report.cells[0].suites;
    assert_eq!(suites.len(), 2);
    let install_failed = Outcome::Skipped {
        reason: "not run: install failed: helm failed".into(),
    };
    for s in suites {
        assert!(
            s.checks
                .iter()
                .all(|c| matches!(c.outcome, Outcome::Skipped { .. })),
            "{s:?}"
        );
        assert!(
            s.checks.iter().any(|c| c.outcome == install_failed),
            "{s:?}"
        );
    }
}

#[tokio::test]
async fn cells_can_run_at_once_and_are_reported_in_plan_order() {
    let fake = Fake::default();
    let (_tx, rx) = signals::never();
    let mut e = engine(&fake, E2E, false);
    e.opts.jobs = 2;
    let out = e
        .run(&dns_plan(&["talos-basic", "k8s-local"]), &rx, |_| {})
        .await;
    let calls = fake.calls();
    let pos = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(
        pos("provision k8s-local") < pos("destroy cluster-talos-basic"),
        "the second cell started before the first ended: {calls:?}"
    );
    let order: Vec<&str> = out
        .report
        .cells
        .iter()
        .map(|c| c.cell.profile.as_str())
        .collect();
    assert_eq!(order, ["talos-basic", "k8s-local"]);
}

/// Suites of a cell run up to `suite_jobs` at once: with dns hanging, connectivity still starts;
/// lb-ipam (which runs alone) waits for both; the reports stay in plan order.
#[tokio::test]
async fn suites_run_at_once_within_the_bound_and_lb_ipam_runs_alone() {
    let fake = Fake {
        hang_in_suite: Some("dns"),
        ..Default::default()
    };
    let (tx, rx) = signals::never();
    let plan = plan_of(
        &["talos-basic"],
        &["dns::*", "connectivity::*", "lb-ipam::*", "pod-security::*"],
    );
    let names: Vec<String> = plan.cells[0]
        .suites
        .iter()
        .map(|s| s.suite.to_string())
        .collect();
    let mut e = engine(&fake, &[Step::Suites { label: None }], false);
    e.opts.suite_jobs = 2;
    let interrupter = async {
        while !fake
            .done
            .lock()
            .unwrap()
            .iter()
            .any(|(s, _)| s == "pod-security")
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tx.send(Stop::Graceful(Signal::Int)).unwrap();
    };
    let (out, ()) = tokio::join!(e.run(&plan, &rx, |_| {}), interrupter);
    let calls = fake.calls();
    // dns holds one of the two slots; the others pass through the second one by one.
    assert!(
        calls.contains(&"suite connectivity cluster-talos-basic".to_string()),
        "{calls:?}"
    );
    let done: Vec<String> = fake
        .done
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.0.clone())
        .collect();
    assert_eq!(done, ["connectivity", "pod-security"]);
    assert!(
        !calls.iter().any(|c| c.starts_with("suite lb-ipam")),
        "lb-ipam must not start beside a running suite: {calls:?}"
    );
    let reported: Vec<&str> = out.report.cells[0]
        .suites
        .iter()
        .map(|s| s.suite.as_str())
        .collect();
    assert_eq!(reported, names);
    let by_name = |n: &str| {
        out.report.cells[0]
            .suites
            .iter()
            .find(|s| s.suite == n)
            .unwrap()
    };
    assert!(
        by_name("lb-ipam")
            .checks
            .iter()
            .all(|c| matches!(c.outcome, Outcome::Skipped { .. }))
    );
    assert!(
        by_name("connectivity")
            .checks
            .iter()
            .all(|c| c.outcome == Outcome::Passed)
    );
}

#[tokio::test]
async fn with_one_suite_job_suites_run_one_after_another() {
    let fake = Fake::default();
    let plan = plan_of(&["talos-basic"], &["dns::*", "connectivity::*"]);
    run_plain(&fake, &[Step::Suites { label: None }], false, &plan).await;
    // Each suite ends before the next starts: when the first ended, only provisioning and that
    // suite had been called.
    let done = fake.done.lock().unwrap().clone();
    assert_eq!(done.len(), 2);
    assert_eq!(done[0].1, 2, "{done:?} {:?}", fake.calls());
    assert_eq!(done[1].1, 3);
}

/// What a person sees in CI: a line per phase and suite per cell as it happens, then the summary
/// table with each failure's first line. Phases take 90 s each on tokio's paused clock.
#[tokio::test(start_paused = true)]
async fn progress_lines_and_the_summary_in_plain_mode() {
    let fake = Fake {
        fail_check: true,
        delay: Duration::from_secs(90),
        ..Default::default()
    };
    let (_tx, rx) = signals::never();
    let plan = plan_of(&["talos-basic", "k8s-local"], &["dns::*"]);
    let lines = progress::Lines::new(Vec::new());
    let mut e = engine(&fake, E2E, false);
    e.progress = &lines;
    let out = e.run(&plan, &rx, |_| {}).await;
    let text = String::from_utf8(lines.into_inner()).unwrap();
    insta::assert_snapshot!(format!(
        "{text}\n{}",
        crate::report::terminal::summary(&out.report)
    ));
}
