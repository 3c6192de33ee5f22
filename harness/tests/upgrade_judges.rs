//! The upgrade gate's judges on real-shaped fixtures (fixtures/upgrade/SOURCES.md): restart
//! counts of the conn-disrupt workload and of the agents, `cilium_drop_count_total` by reason,
//! agent log lines; and the gate's verdict over before/after rounds, snapshot for what a person
//! reads.

use harness::report::{CellReport, CheckReport, Outcome, PhaseName, PhaseReport, SuiteReport};
use harness::run::GateStep;
use harness::upgrade::disruption::{self, parse_drops};
use harness::upgrade::gate::{self, GateVerdict};
use k8s_openapi::List;
use k8s_openapi::api::core::v1::Pod;
use std::path::Path;
use std::time::Duration;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pods(name: &str) -> Vec<Pod> {
    serde_json::from_str::<List<Pod>>(&read(name))
        .unwrap()
        .items
}

fn allowed() -> Vec<String> {
    harness::releases::ReleaseTable::embedded()
        .disruption
        .expected_drop_reasons
        .clone()
}

#[test]
fn every_fixture_is_listed_in_sources() {
    let sources = read("SOURCES.md");
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "SOURCES.md" {
            assert!(
                sources.contains(&format!("`{name}`")),
                "{name} is not in SOURCES.md"
            );
        }
    }
    for line in sources.lines().filter(|l| l.starts_with("| `")) {
        let name = line.split('`').nth(1).unwrap();
        assert!(
            fixtures().join(name).exists(),
            "SOURCES.md lists a missing {name}"
        );
    }
}

#[test]
fn an_interrupted_connection_names_the_pod_its_node_and_last_termination() {
    let before = disruption::restarts(&pods("podlist-conn-disrupt-before.json"));
    let after = disruption::restarts(&pods("podlist-conn-disrupt-after-interrupted.json"));
    assert_eq!(before.len(), 3);
    assert!(disruption::judge_connections(&before, &before).passed());
    let judged = disruption::judge_connections(&before, &after);
    insta::assert_snapshot!(judged.failures.join("\n"), @"connection interrupted: test-conn-disrupt-client-7d9c8b6f5-9hzrw/test-conn-disrupt-client on h1a2b3c4d-0-talos-basic-worker-2; last terminated: Error (exit code 1) restarted 0 -> 1");
}

#[test]
fn a_pod_gone_after_the_upgrade_is_an_interrupted_connection_and_nothing_watched_fails() {
    let before = disruption::restarts(&pods("podlist-conn-disrupt-before.json"));
    let judged = disruption::judge_connections(&before, &before[1..]);
    assert_eq!(judged.failures.len(), 1);
    assert!(judged.failures[0].contains("is gone"), "{judged:?}");
    assert!(!disruption::judge_connections(&[], &before).passed());
}

#[test]
fn an_agent_that_restarts_after_the_upgrade_is_a_regression() {
    let agents = disruption::restarts(&pods("podlist-cilium-agents-after-crash.json"));
    let judged = disruption::judge_agent_restarts(&[], &agents);
    insta::assert_snapshot!(judged.failures.join("\n"), @"agent restarted 2 time(s) after the upgrade: cilium-8kz2m/cilium-agent on h1a2b3c4d-0-talos-basic-worker-1; last terminated: Error (exit code 1)");
    // The same restarts already seen at A are said, not counted.
    let judged = disruption::judge_agent_restarts(&agents, &agents);
    assert!(judged.passed());
    assert_eq!(judged.notes.len(), 1);
}

#[test]
fn drops_are_judged_by_reason_against_cilium_clis_list() {
    let expected = parse_drops(&read("agent-metrics-stale-ip.txt")).unwrap();
    assert_eq!(expected.get("Stale or unroutable IP"), Some(&651.0));
    // cilium_drop_bytes_total is another metric.
    assert_eq!(expected.len(), 1);
    let unexpected = parse_drops(&read("agent-metrics-reason-14.txt")).unwrap();
    assert!(disruption::judge_drops(&expected, &expected, &allowed()).passed());
    let judged = disruption::judge_drops(&expected, &unexpected, &allowed());
    insta::assert_snapshot!(judged.failures.join("\n"), @r#"unexpected drops after the upgrade: 183 packet(s) "14" (cilium_drop_count_total)"#);
    // Already dropping for that reason before: reported, not counted.
    let judged = disruption::judge_drops(&unexpected, &unexpected, &allowed());
    assert!(judged.passed());
    assert_eq!(
        judged.notes,
        [r#"already dropping before the upgrade: 183 packet(s) "14""#]
    );
}

#[test]
fn new_error_lines_in_agent_logs_are_named_once_each() {
    let healthy = read("agent-log-1.11.4-start.txt");
    let failing = read("agent-log-1.19.0-after-upgrade.txt");
    assert!(disruption::judge_logs(&healthy, &healthy).passed());
    let judged = disruption::judge_logs(&healthy, &failing);
    assert_eq!(judged.failures.len(), 3, "{judged:?}");
    assert!(judged.failures[1].contains("msg=\"Failed to start hive\""));
    // The same messages at another time are not new.
    assert!(disruption::judge_logs(&failing, &failing).passed());
}

fn check(name: &str, outcome: Outcome) -> CheckReport {
    CheckReport {
        name: name.into(),
        duration: Duration::from_millis(5),
        outcome,
        transcript: String::new(),
    }
}

fn fail(message: &str) -> Outcome {
    Outcome::Failed {
        message: message.into(),
        detail: String::new(),
    }
}

fn round(label: &str, outcomes: &[(&str, Outcome)]) -> SuiteReport {
    SuiteReport {
        suite: format!("dns@{label}"),
        checks: outcomes.iter().map(|(n, o)| check(n, o.clone())).collect(),
        setup_transcript: String::new(),
        duration: Duration::from_secs(3),
        observed: None,
    }
}

fn phase(name: PhaseName, outcome: Outcome) -> PhaseReport {
    PhaseReport {
        name,
        duration: Duration::from_secs(1),
        outcome,
    }
}

fn cell(suites: Vec<SuiteReport>, gate_phases: Vec<PhaseReport>) -> CellReport {
    let cells = harness::matrix::expand(
        &harness::matrix::MatrixSpec::load(
            None,
            harness::matrix::AxisFlags {
                profiles: vec!["talos-basic".into()],
                cilium_versions: vec!["1.19.8".into()],
                ..Default::default()
            },
        )
        .unwrap(),
        &harness::profile::Catalog::embedded(),
    )
    .unwrap()
    .0;
    let mut phases = vec![
        phase(PhaseName::Provision, Outcome::Passed),
        phase(PhaseName::Install, Outcome::Passed),
    ];
    phases.extend(gate_phases);
    phases.push(phase(PhaseName::Destroy, Outcome::Passed));
    CellReport {
        cell: cells[0].clone(),
        seed: "001".into(),
        phases,
        suites,
    }
}

fn passing_gate_phases() -> Vec<PhaseReport> {
    [
        GateStep::StartDisruption,
        GateStep::Upgrade,
        GateStep::Readiness,
        GateStep::JudgeDisruption,
    ]
    .into_iter()
    .map(|s| phase(PhaseName::Gate(s), Outcome::Passed))
    .collect()
}

fn verdict_text(suite: &SuiteReport, verdict: &GateVerdict) -> String {
    let mut out = format!("verdict: {verdict:?}\n");
    for c in &suite.checks {
        let o = match &c.outcome {
            Outcome::Passed => "passed".to_string(),
            Outcome::Failed { message, .. } => format!("FAILED: {message}"),
            Outcome::Error { message, .. } => format!("ERROR: {message}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        };
        out.push_str(&format!("{}: {o}\n", c.name));
    }
    out
}

#[test]
fn a_check_that_passed_before_and_fails_after_is_a_regression_and_old_failures_are_not_counted() {
    let c = cell(
        vec![
            round(
                "before",
                &[
                    ("dns::pod-a-record", Outcome::Passed),
                    ("dns::external-a-record", fail("SERVFAIL from 10.96.0.10")),
                    ("dns::srv-record", Outcome::Passed),
                ],
            ),
            round(
                "after",
                &[
                    (
                        "dns::pod-a-record",
                        fail("NXDOMAIN for client.harness-dns-r1.svc.cluster.local"),
                    ),
                    ("dns::external-a-record", fail("SERVFAIL from 10.96.0.10")),
                    ("dns::srv-record", Outcome::Passed),
                ],
            ),
        ],
        passing_gate_phases(),
    );
    let (suite, verdict) = gate::judge(&c, &[gate::AFTER]);
    assert_eq!(verdict, GateVerdict::Regressed);
    assert_eq!(suite.suite, "gate");
    insta::assert_snapshot!(verdict_text(&suite, &verdict));
}

#[test]
fn an_interrupted_connection_or_a_readiness_bound_is_a_regression() {
    let mut phases = passing_gate_phases();
    phases[2].outcome = fail("readiness bound exceeded: not ready after 600.2s");
    phases[3].outcome = fail(
        "connection interrupted: test-conn-disrupt-client-7d9c8b6f5-9hzrw/test-conn-disrupt-client restarted 0 -> 1",
    );
    let both = [("dns::pod-a-record", Outcome::Passed)];
    let c = cell(vec![round("before", &both), round("after", &both)], phases);
    let (suite, verdict) = gate::judge(&c, &[gate::AFTER]);
    assert_eq!(verdict, GateVerdict::Regressed);
    insta::assert_snapshot!(verdict_text(&suite, &verdict));
}

#[test]
fn a_broken_baseline_is_said_in_those_words_and_is_not_a_regression() {
    let broken = [
        ("dns::pod-a-record", fail("timed out")),
        ("dns::srv-record", fail("timed out")),
    ];
    let c = cell(
        vec![round("before", &broken), round("after", &broken)],
        passing_gate_phases(),
    );
    let (suite, verdict) = gate::judge(&c, &[gate::AFTER]);
    let GateVerdict::NotCarriedOut(why) = &verdict else {
        panic!("{verdict:?}");
    };
    assert!(why.starts_with("the baseline is broken"), "{why}");
    assert_eq!(verdict.exit_verdict(), harness::run::Verdict::PhaseFailed);
    insta::assert_snapshot!(verdict_text(&suite, &verdict));
}

#[test]
fn a_failed_upgrade_step_means_the_gate_was_not_carried_out() {
    let mut phases = passing_gate_phases();
    phases[1].outcome = Outcome::Error {
        message: "install step 'helm upgrade --install' failed: helm upgrade exited with exit status: 1: Error: UPGRADE FAILED: timed out".into(),
        detail: String::new(),
    };
    for p in &mut phases[2..] {
        p.outcome = Outcome::Skipped {
            reason: "not run: upgrade failed".into(),
        };
    }
    let c = cell(
        vec![round("before", &[("dns::pod-a-record", Outcome::Passed)])],
        phases,
    );
    let (suite, verdict) = gate::judge(&c, &[gate::AFTER]);
    assert!(
        matches!(&verdict, GateVerdict::NotCarriedOut(w) if w.starts_with("the upgrade phase failed: install step")),
        "{verdict:?}"
    );
    assert_eq!(suite.checks[0].name, "gate::carried-out");
}

#[test]
fn the_downgrade_round_is_judged_against_the_same_baseline() {
    let passed = [("dns::pod-a-record", Outcome::Passed)];
    let c = cell(
        vec![
            round("before", &passed),
            round("after", &passed),
            round(
                "after-downgrade",
                &[("dns::pod-a-record", fail("NXDOMAIN"))],
            ),
        ],
        passing_gate_phases(),
    );
    let (suite, verdict) = gate::judge(&c, &[gate::AFTER, gate::AFTER_DOWNGRADE]);
    assert_eq!(verdict, GateVerdict::Regressed);
    let names: Vec<&str> = suite.checks.iter().map(|c| c.name.as_str()).collect();
    assert!(names.contains(&"dns::pod-a-record@after"));
    assert!(names.contains(&"dns::pod-a-record@after-downgrade"));
}

/// The JUnit of a gate run: every phase's suites under their own testsuite name, and `gate`.
#[test]
fn junit_names_each_round_and_the_gate_once() {
    let passed = [("dns::pod-a-record", Outcome::Passed)];
    let mut c = cell(
        vec![round("before", &passed), round("after", &passed)],
        passing_gate_phases(),
    );
    let (suite, _) = gate::judge(&c, &[gate::AFTER]);
    c.suites.push(suite);
    let run = harness::report::RunReport {
        run_id: "r1".into(),
        interrupted: None,
        cells: vec![c],
        provenance: Default::default(),
    };
    let report = harness::report::junit::to_junit(&run);
    let names: Vec<String> = report
        .test_suites
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    for want in ["::dns@before", "::dns@after", "::gate", "::phases"] {
        assert!(
            names.iter().any(|n| n.ends_with(want)),
            "{want} missing from {names:?}"
        );
    }
}
