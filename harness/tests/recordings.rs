//! The recordings in `suites/tests/recordings/` are fixtures: each replays in `make test`, and
//! each failure a judge names replays as that failure.
//!
//! No cluster runs on the development machines, so the committed recordings are built here from
//! the verdict scenarios (`suites/tests/verdicts/`), whose observations come from the fixtures
//! of `suites/tests/fixtures/` (each traced in its SOURCES.md): a healthy run per suite, one
//! check per passing scenario, written by the same [`Recorder`] a live `--record` run uses.
//! `the_recordings_are_current` fails when they differ from what this builds; `UPDATE_FIXTURES=1`
//! rewrites them. A recording contributed from a real cluster sits beside them, listed in
//! `suites/tests/recordings/SOURCES.md`, and replays in the same test.

#[path = "../../suites/tests/common/mod.rs"]
mod common;
#[path = "../../suites/tests/verdicts/connectivity.rs"]
mod connectivity;
#[path = "../../suites/tests/verdicts/dns.rs"]
mod dns;
#[path = "../../suites/tests/verdicts/features.rs"]
mod features;
#[path = "../../suites/tests/verdicts/gateway_api.rs"]
mod gateway_api;
#[path = "../../suites/tests/verdicts/lb_ipam.rs"]
mod lb_ipam;
#[path = "../../suites/tests/verdicts/network_policy.rs"]
mod network_policy;
#[path = "../../suites/tests/verdicts/pod_security.rs"]
mod pod_security;
#[path = "../../suites/tests/verdicts/scenario.rs"]
mod scenario;
#[path = "../../suites/tests/verdicts/wireguard.rs"]
mod wireguard;

pub use scenario::{Scenario, case, series, thrice};

use harness::matrix::{AxisFlags, MatrixSpec, expand};
use harness::plan::{Plan, PlanOptions, plan};
use harness::profile::Catalog;
use harness::profile::overlay::Overlay;
use harness::recording::{CheckEntry, Recorder, SuiteEntry};
use harness::report::provenance::{CellProvenance, HarnessBuild, Provenance};
use harness::report::{CellReport, Outcome, PhaseName, PhaseReport, RunReport};
use harness::run::Verdict;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use suites::catalog::{self, SuiteName};
use suites::kit::{RunId, Transcript};
use suites::{CheckFilter, CheckOutcome, CheckRun, Cleanup, RunContext, SuiteRun};

const RUN_ID: &str = "r1";

fn recordings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/tests/recordings")
}

/// A recording built from scenarios: which suite, on which profile and node count, and the
/// scenario (by case name) each check's observation comes from.
struct Spec {
    name: &'static str,
    suite: SuiteName,
    profile: &'static str,
    nodes: u32,
    what: &'static str,
    cases: Vec<&'static str>,
}

/// The first passing scenario of each check, in catalog order: a healthy cluster, as far as
/// the fixtures show one. Checks with no passing scenario of their own are not in it.
fn healthy_cases(suite: SuiteName, scenarios: &[Scenario]) -> Vec<&'static str> {
    let decl = catalog::suite(suite);
    decl.checks
        .iter()
        .filter_map(|c| {
            scenarios.iter().find(|s| {
                s.check == c.name && c.judge_recorded(&s.observation).is_ok_and(|v| v.is_pass())
            })
        })
        .map(|s| s.case)
        .collect()
}

fn specs() -> Vec<Spec> {
    let profile = |suite: SuiteName| match suite.as_str() {
        "gateway-api" => ("talos-gateway-api", 2),
        "wireguard" => ("service-mesh-wireguard", 3),
        "features" => ("vxlan-wireguard-hostfw", 2),
        _ => ("talos-basic", 2),
    };
    let mut out: Vec<Spec> = scenario::all()
        .into_iter()
        .map(|(suite, scenarios)| {
            let (p, nodes) = profile(suite);
            Spec {
                name: leak(format!("{suite}-healthy")),
                suite,
                profile: p,
                nodes,
                what: "a healthy cluster: each check's first passing scenario",
                cases: healthy_cases(suite, &scenarios),
            }
        })
        .collect();
    out.push(Spec {
        name: "wireguard-issue12-native-routing",
        suite: suites::wireguard::NAME,
        profile: "service-mesh-wireguard",
        nodes: 2,
        what: "issue 12's two-node cluster in native routing: peers hold the node IP and one /32 per endpoint, no pod CIDR",
        cases: vec!["issue 12: native routing, node IP and endpoint /32s, no pod CIDR"],
    });
    out
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn one_cell_plan(profile: &str, checks: &[String]) -> Plan {
    let catalog = Catalog::embedded();
    let flags = AxisFlags {
        profiles: vec![profile.into()],
        cilium_versions: vec!["1.18.4".into()],
        talos_versions: vec!["v1.11.5".into()],
        kubernetes_versions: vec!["1.34.1".into()],
    };
    let (cells, excluded) = expand(&MatrixSpec::load(None, flags).unwrap(), &catalog).unwrap();
    let opts = PlanOptions {
        values_files: vec![],
        filter: CheckFilter::new(&[], checks).unwrap(),
        nodes: 2,
        external_target: None,
        outside: Some(harness::plan::talos_in_docker_outside()),
    };
    plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts).unwrap()
}

fn scenario<'a>(scenarios: &'a [Scenario], suite: SuiteName, case: &str) -> &'a Scenario {
    scenarios
        .iter()
        .find(|s| s.case == case)
        .unwrap_or_else(|| panic!("{suite} has no scenario '{case}'"))
}

fn source(spec: &Spec) -> String {
    format!(
        "built by harness/tests/recordings.rs from the {} verdict scenarios (suites/tests/verdicts/), observations from suites/tests/fixtures/ (see its SOURCES.md); {}; no probe ran, so the probes are empty",
        spec.suite, spec.what
    )
}

/// The run a spec stands for, as the engine would report it.
fn build(spec: &Spec) -> (Plan, RunReport) {
    let all = scenario::all();
    let scenarios = &all.iter().find(|(s, _)| *s == spec.suite).unwrap().1;
    let decl = catalog::suite(spec.suite);
    let picked: Vec<&Scenario> = spec
        .cases
        .iter()
        .map(|c| scenario(scenarios, spec.suite, c))
        .collect();
    let names: Vec<String> = picked
        .iter()
        .map(|s| format!("{}::{}", spec.suite, s.check))
        .collect();
    let plan = one_cell_plan(spec.profile, &names);
    let cell = &plan.cells[0];
    let namespace =
        suites::kit::namespace::namespace_name(&RunId::new(RUN_ID).unwrap(), spec.suite, None);
    let mut setup = Transcript::new();
    setup.note(format!(
        "namespace {namespace} created with pod-security.kubernetes.io/enforce=privileged"
    ));
    let checks = picked
        .iter()
        .map(|s| {
            let check = decl.check(s.check).unwrap();
            CheckRun {
                suite: spec.suite,
                check: check.name,
                outcome: CheckOutcome::from(check.judge_recorded(&s.observation).unwrap()),
                duration: Duration::from_millis(2_400),
                transcript: Transcript::new(),
                observation: Some(s.observation.clone()),
                api: Vec::new(),
            }
        })
        .collect();
    let run = SuiteRun {
        suite: spec.suite,
        namespace: Some(namespace.clone()),
        setup,
        setup_duration: Duration::from_secs(31),
        checks,
        cleanup: Cleanup::Deleted {
            namespaces: vec![namespace],
        },
        setup_api: Vec::new(),
    };
    let context = RunContext {
        features: cell.features.clone(),
        nodes: spec.nodes,
        external_target: None,
        // An e2e run's outside client, its L2 block as provisioning picks it on 10.5.0.0/24.
        outside: Some(suites::OutsideClient {
            origin: suites::OutsideOrigin::DockerNetwork,
            l2_block: Some(suites::L2Block::Cidr("10.5.0.232/29".into())),
        }),
    };
    let phase = |name, secs| PhaseReport {
        name,
        duration: Duration::from_secs(secs),
        outcome: Outcome::Passed,
    };
    let report = RunReport {
        run_id: RUN_ID.into(),
        interrupted: None,
        cells: vec![CellReport {
            cell: cell.cell.clone(),
            seed: cell.profile.seed.clone(),
            phases: vec![
                phase(PhaseName::Provision, 95),
                phase(PhaseName::Install, 140),
                phase(PhaseName::Suites, 62),
                phase(PhaseName::Destroy, 6),
            ],
            suites: vec![{
                let mut suite = harness::run::tester::suite_report(run, context);
                suite.duration = Duration::from_secs(41);
                suite
            }],
        }],
        provenance: Provenance {
            harness: HarnessBuild {
                version: env!("CARGO_PKG_VERSION").into(),
                commit: "none: built from fixtures".into(),
            },
            cells: BTreeMap::from([(
                cell.id.clone(),
                CellProvenance {
                    chart_version: Some(cell.cell.cilium.to_string()),
                    ..CellProvenance::default()
                },
            )]),
            artifacts: None,
        },
    };
    (plan, report)
}

fn write(spec: &Spec, dir: &Path) {
    let (plan, report) = build(spec);
    Recorder {
        dir: dir.to_path_buf(),
        source: source(spec),
    }
    .write(&plan, &report)
    .unwrap();
}

/// Every file under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(at).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, text) in tree(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

#[test]
fn the_recordings_are_current() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let mut stale = Vec::new();
    for spec in specs() {
        let at = recordings_dir().join(spec.name);
        let tmp = tempfile::tempdir().unwrap();
        write(&spec, tmp.path());
        let built = tree(tmp.path());
        if tree(&at) != built {
            if update {
                if at.is_dir() {
                    std::fs::remove_dir_all(&at).unwrap();
                }
                copy_tree(tmp.path(), &at);
            } else {
                stale.push(spec.name);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale recordings (rerun with UPDATE_FIXTURES=1): {stale:?}"
    );
}

/// Every recording folder, whatever made it.
fn recordings() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(recordings_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

#[test]
fn every_recording_is_listed_in_sources_with_where_it_comes_from() {
    let sources = std::fs::read_to_string(recordings_dir().join("SOURCES.md")).unwrap();
    let listed: Vec<&str> = sources
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("/` |").map(|(name, _)| name))
        .collect();
    let present: Vec<String> = recordings()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in &present {
        assert!(
            listed.contains(&name.as_str()),
            "{name} is not listed in suites/tests/recordings/SOURCES.md"
        );
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(recordings_dir().join(name).join("recording.json")).unwrap(),
        )
        .unwrap();
        assert!(
            !manifest["source"].as_str().unwrap_or_default().is_empty(),
            "{name} says nothing of its source"
        );
    }
    for name in &listed {
        assert!(
            present.iter().any(|p| p == name),
            "SOURCES.md lists {name}, which is gone"
        );
    }
    for spec in specs() {
        assert!(
            present.iter().any(|p| p == spec.name),
            "{} missing",
            spec.name
        );
    }
}

/// What each check of a replayed run ended as, by `suite::check`.
fn outcomes(report: &RunReport) -> BTreeMap<String, CheckOutcome> {
    report
        .cells
        .iter()
        .flat_map(|c| &c.suites)
        .filter_map(|s| s.observed.as_ref())
        .flat_map(|o| &o.run.checks)
        .map(|c| (c.name(), c.outcome.clone()))
        .collect()
}

/// A recording's checks as `check.json` says they ended when recorded.
fn recorded(dir: &Path) -> BTreeMap<String, CheckOutcome> {
    let mut out = BTreeMap::new();
    for (rel, text) in tree(dir) {
        if rel.ends_with("/check.json") {
            let entry: CheckEntry = serde_json::from_str(&text).unwrap();
            let suite_json = dir.join(Path::new(&rel).parent().unwrap().parent().unwrap());
            let suite: SuiteEntry = serde_json::from_str(
                &std::fs::read_to_string(suite_json.join("suite.json")).unwrap(),
            )
            .unwrap();
            let name = suite.observed.unwrap().suite;
            out.insert(format!("{name}::{}", entry.check), entry.outcome);
        }
    }
    out
}

#[test]
fn every_recording_replays_to_the_verdicts_it_recorded() {
    let all = recordings();
    assert!(all.len() >= catalog::CATALOG.len(), "{all:?}");
    let mut suites_seen = Vec::new();
    for dir in &all {
        let report =
            harness::recording::read(dir).unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
        let replayed = outcomes(&report);
        assert!(!replayed.is_empty(), "{}: no check", dir.display());
        assert_eq!(replayed, recorded(dir), "{}", dir.display());
        for name in replayed.keys() {
            suites_seen.push(name.split("::").next().unwrap().to_string());
        }
        // And the JUnit it writes is a report like the live one.
        let xml = harness::report::junit::to_xml(&harness::report::junit::to_junit(&report));
        assert!(xml.is_ok(), "{}", dir.display());
    }
    for s in catalog::CATALOG {
        assert!(
            suites_seen.iter().any(|n| n == s.name.as_str()),
            "no recording of {}",
            s.name
        );
    }
}

#[test]
fn a_healthy_recording_of_each_suite_passes_every_check_it_holds() {
    for spec in specs() {
        let report = harness::recording::read(&recordings_dir().join(spec.name)).unwrap();
        assert_eq!(
            harness::run::verdict(&report),
            Verdict::Passed,
            "{}",
            spec.name
        );
        let outcomes = outcomes(&report);
        assert_eq!(outcomes.len(), spec.cases.len(), "{}", spec.name);
        assert!(
            outcomes
                .values()
                .all(|o| matches!(o, CheckOutcome::Passed { .. })),
            "{}: {outcomes:?}",
            spec.name
        );
    }
}

/// Issue 12: native routing, two nodes, peers holding the node IP and one /32 per endpoint.
/// The check once failed this healthy cluster; its recording must pass.
#[test]
fn issue_12s_wireguard_cluster_replays_as_passing() {
    let report =
        harness::recording::read(&recordings_dir().join("wireguard-issue12-native-routing"))
            .unwrap();
    let o = outcomes(&report);
    match &o["wireguard::allowed-ips-cover-pod-cidrs"] {
        CheckOutcome::Passed { evidence } => {
            assert!(evidence.contains("node-b"), "{evidence}")
        }
        other => panic!("{other:?}"),
    }
}

/// Each failing scenario of a suite, put into that suite's healthy recording in place of the
/// check's observation, replays as that check failing with its judge's message while every
/// other check still passes: each failure the judges name is a replay test.
#[test]
fn each_failure_a_judge_names_replays_as_that_failure() {
    let mut replayed = 0;
    for (suite, scenarios) in scenario::all() {
        let healthy = recordings_dir().join(format!("{suite}-healthy"));
        let decl = catalog::suite(suite);
        for s in &scenarios {
            let check = decl.check(s.check).unwrap();
            let verdict = check.judge_recorded(&s.observation).unwrap();
            if verdict.is_pass() {
                continue;
            }
            let tmp = tempfile::tempdir().unwrap();
            copy_tree(&healthy, tmp.path());
            let cell = std::fs::read_dir(tmp.path())
                .unwrap()
                .flatten()
                .find(|e| e.path().is_dir())
                .unwrap()
                .path();
            let suite_dir = cell.join(suite.as_str());
            let suite_json = suite_dir.join("suite.json");
            let mut entry: SuiteEntry =
                serde_json::from_str(&std::fs::read_to_string(&suite_json).unwrap()).unwrap();
            let observed = entry.observed.as_mut().unwrap();
            if !observed.checks.iter().any(|c| c == s.check) {
                observed.checks.push(s.check.to_string());
                std::fs::create_dir_all(suite_dir.join(s.check)).unwrap();
                std::fs::write(suite_dir.join(s.check).join("probes.json"), "[]").unwrap();
            }
            std::fs::write(&suite_json, serde_json::to_string(&entry).unwrap()).unwrap();
            let at = suite_dir.join(s.check);
            std::fs::write(
                at.join("check.json"),
                serde_json::to_string(&CheckEntry {
                    check: s.check.into(),
                    judge: check.judge_name().map(String::from),
                    duration: Duration::from_secs(1),
                    outcome: CheckOutcome::Passed {
                        evidence: "overwritten by the replay".into(),
                    },
                })
                .unwrap(),
            )
            .unwrap();
            std::fs::write(
                at.join("observation.json"),
                serde_json::to_string(&s.observation).unwrap(),
            )
            .unwrap();

            let report = harness::recording::read(tmp.path())
                .unwrap_or_else(|e| panic!("{suite}::{} ({}): {e:?}", s.check, s.case));
            let name = format!("{suite}::{}", s.check);
            for (check, outcome) in outcomes(&report) {
                if check == name {
                    assert_eq!(
                        outcome,
                        CheckOutcome::Failed {
                            message: verdict.message().to_string()
                        },
                        "{name}: {}",
                        s.case
                    );
                } else {
                    assert!(
                        matches!(outcome, CheckOutcome::Passed { .. }),
                        "{check} in the replay of {name} ({}): {outcome:?}",
                        s.case
                    );
                }
            }
            assert_eq!(
                harness::run::verdict(&report),
                Verdict::ChecksFailed,
                "{name}: {}",
                s.case
            );
            replayed += 1;
        }
    }
    assert!(replayed >= 70, "only {replayed} failures replayed");
}
