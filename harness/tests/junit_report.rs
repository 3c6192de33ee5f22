//! The JUnit writer's output validates against the Jenkins JUnit XSD, reads back with an
//! independent parser with the same counts, is written atomically and can be merged.

use harness::matrix::Cell;
use harness::report::provenance::{self, CellProvenance, HarnessBuild, ImagePin, Provenance};
use harness::report::{
    CellReport, CheckReport, Outcome, PhaseName, PhaseReport, RunReport, SuiteReport, junit, merge,
};
use harness::version::{CiliumVersion, KubernetesVersion, TalosVersion};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn cell(profile: &str) -> Cell {
    Cell {
        profile: profile.into(),
        cilium: CiliumVersion::parse("1.18.4").unwrap(),
        talos: TalosVersion::parse("v1.11.5").unwrap(),
        kubernetes: KubernetesVersion::parse("1.34.1").unwrap(),
    }
}

fn check(name: &str, outcome: Outcome) -> CheckReport {
    CheckReport {
        name: name.into(),
        duration: Duration::from_millis(1500),
        outcome,
        transcript: format!(
            "connectivity/{name}:curl: cilium-test/client (10.244.1.3) -> echo (10.244.2.7:8080)\n$ curl --silent --fail --show-error --connect-timeout 2 --max-time 10 http://10.244.2.7:8080/\nexit 0 after 12ms\n"
        ),
    }
}

/// A run with one of each outcome, interrupted during the second cell.
fn sample_run() -> RunReport {
    let phases = |destroy_ok: bool| {
        vec![
            PhaseReport {
                name: PhaseName::Provision,
                duration: Duration::from_secs(95),
                outcome: Outcome::Passed,
            },
            PhaseReport {
                name: PhaseName::Install,
                duration: Duration::from_secs(140),
                outcome: Outcome::Passed,
            },
            PhaseReport {
                name: PhaseName::Suites,
                duration: Duration::from_secs(60),
                outcome: Outcome::Passed,
            },
            PhaseReport {
                name: PhaseName::Destroy,
                duration: Duration::from_secs(4),
                outcome: if destroy_ok {
                    Outcome::Passed
                } else {
                    Outcome::Skipped {
                        reason: "not run: interrupted by SIGINT".into(),
                    }
                },
            },
        ]
    };
    RunReport {
        run_id: "r-test".into(),
        interrupted: Some("SIGINT".into()),
        provenance: sample_provenance(),
        cells: vec![
            CellReport {
                cell: cell("talos-basic"),
                seed: "001_a7882a1959f1793d.txt".into(),
                phases: phases(true),
                suites: vec![
                    SuiteReport {
                        suite: "connectivity".into(),
                        setup_transcript: "namespace harness-connectivity-r-test created\n".into(),
                        duration: std::time::Duration::ZERO,
                        observed: None,
                        checks: vec![
                            check("connectivity::pod-to-pod-same-node", Outcome::Passed),
                            check(
                                "connectivity::pod-to-pod-other-node",
                                Outcome::Failed {
                                    message: "curl exit 28 (timeout: packets dropped) 3 times in a row".into(),
                                    detail: "last seen: connect timeout after 2s\nclient-key-data: LS0tSECRET".into(),
                                },
                            ),
                        ],
                    },
                    SuiteReport {
                        suite: "wireguard".into(),
                        setup_transcript: String::new(),
                        duration: std::time::Duration::ZERO,
                        observed: None,
                        checks: vec![check(
                            "wireguard::peer-count",
                            Outcome::Skipped { reason: "encryption is off or not WireGuard".into() },
                        )],
                    },
                ],
            },
            CellReport {
                cell: cell("k8s-local"),
                seed: "003_fcc94d3bcc4ac1c7.txt".into(),
                phases: phases(false),
                suites: vec![SuiteReport {
                    suite: "dns".into(),
                    setup_transcript: String::new(),
                    duration: std::time::Duration::ZERO,
                    observed: None,
                    checks: vec![
                        check(
                            "dns::external-name",
                            Outcome::Error { message: "exec into the client pod failed: 500".into(), detail: String::new() },
                        ),
                        check("dns::pod-a-record", Outcome::Skipped { reason: "not run: interrupted by SIGINT".into() }),
                    ],
                }],
            },
        ],
    }
}

/// The harness build, and for the first cell the chart digest of Cilium 1.18.4 as published in
/// the chart repository's index (shared/charts/cilium-index.tsv) and the suites' pinned probe
/// images; the second cell has no recorded provenance, so every key says "unknown".
fn sample_provenance() -> Provenance {
    let talos_basic = cell("talos-basic").id();
    Provenance {
        harness: HarnessBuild {
            version: "0.1.0".into(),
            commit: "1f74767c0ffee".into(),
        },
        cells: [(
            talos_basic,
            CellProvenance {
                chart_version: Some("1.18.4".into()),
                chart_digest: Some(
                    "sha256:c361ca567b319af64b82736ab4c5927a201b1f5dbae4e909c7aeaabce0571299"
                        .into(),
                ),
                talos_image: Some(ImagePin::from_reference(
                    "talos",
                    "ghcr.io/siderolabs/talos:v1.11.5",
                )),
                probe_images: provenance::probe_images(&suites::kit::images::Images::pinned()),
            },
        )]
        .into(),
        artifacts: Some("reports/artifacts".into()),
    }
}

fn shared_schema(rel: &str) -> PathBuf {
    upstream::testdata::path(&format!("schemas/{rel}"))
}

fn xmllint_validates(file: &Path, xsd: &Path) {
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint is needed to validate JUnit output ({e}); install libxml2-utils")
        });
    assert!(
        out.status.success(),
        "{} does not validate against {}:\n{}",
        file.display(),
        xsd.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn report_validates_against_the_jenkins_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    junit::write(&sample_run(), &path).unwrap();
    xmllint_validates(&path, &shared_schema("junit/jenkins-junit-10.xsd"));
}

#[test]
fn an_invalid_file_fails_the_xsd_check() {
    // Guards the check above against passing vacuously.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    std::fs::write(
        &path,
        "<testsuites><testsuite><testcase/></testsuite></testsuites>",
    )
    .unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(shared_schema("junit/jenkins-junit-10.xsd"))
        .arg(&path)
        .output()
        .expect("xmllint runs");
    assert!(!out.status.success());
}

#[test]
fn an_independent_reader_counts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    junit::write(&sample_run(), &path).unwrap();
    let parsed =
        junit_parser::from_reader(std::io::BufReader::new(std::fs::File::open(&path).unwrap()))
            .unwrap();
    // 2 cells x 4 phases + 5 checks.
    assert_eq!(parsed.tests, 13);
    assert_eq!(parsed.failures, 1);
    assert_eq!(parsed.errors, 1);
    // The Jenkins schema has no root `skipped`, so the count lives on each testsuite.
    assert_eq!(parsed.suites.iter().map(|s| s.skipped).sum::<u64>(), 3);
    assert_eq!(
        parsed.suites.len(),
        5,
        "one testsuite per (cell, suite) plus phases per cell"
    );
    let conn = parsed
        .suites
        .iter()
        .find(|s| s.name == "talos-basic_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1::connectivity")
        .expect("a testsuite per (cell, suite)");
    assert_eq!((conn.tests, conn.failures), (2, 1));
    let case = &conn.cases[1];
    assert_eq!(
        case.classname.as_deref(),
        Some("talos-basic_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1")
    );
    assert!(
        case.system_out
            .as_deref()
            .unwrap()
            .contains("curl --silent --fail")
    );
    let failure = case.status.failure_as_ref();
    assert!(failure.message.contains("exit 28"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("LS0tSECRET"), "secrets never reach a report");
    for prop in [
        "profile",
        "cilium.version",
        "talos.version",
        "kubernetes.version",
        "seed",
        "phase.install.seconds",
        "interrupted",
    ] {
        assert!(
            text.contains(&format!("<property name=\"{prop}\"")),
            "property {prop} missing"
        );
    }
    assert!(text.contains("value=\"SIGINT\""));
}

#[test]
fn writing_is_atomic_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, "old").unwrap();
    junit::write(&sample_run(), &path).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["junit.xml"]);
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("<?xml"));
    // A directory in the way makes the write fail; the old report survives and no temp is left.
    let blocked = dir.path().join("blocked");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), "x").unwrap();
    assert!(junit::write(&sample_run(), &blocked).is_err());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn shards_merge_and_overlaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = sample_run();
    let second = run.cells.split_off(1);
    let a = dir.path().join("a.xml");
    let b = dir.path().join("b.xml");
    junit::write(&run, &a).unwrap();
    junit::write(
        &RunReport {
            cells: second,
            ..sample_run()
        },
        &b,
    )
    .unwrap();
    let out = dir.path().join("all.xml");
    let merged = merge::merge_to(&[a.clone(), b.clone()], &out).unwrap();
    assert_eq!(merged.tests, 13);
    xmllint_validates(&out, &shared_schema("junit/jenkins-junit-10.xsd"));
    let parsed =
        junit_parser::from_reader(std::io::BufReader::new(std::fs::File::open(&out).unwrap()))
            .unwrap();
    let skipped: u64 = parsed.suites.iter().map(|s| s.skipped).sum();
    assert_eq!(
        (parsed.tests, parsed.failures, parsed.errors, skipped),
        (13, 1, 1, 3)
    );
    let err = merge::merge(&[a.clone(), a]).unwrap_err().to_string();
    assert!(err.contains("the shards overlap"), "{err}");
}

fn suite_properties(report: &junit_parser::TestSuites, suite: &str) -> Vec<(String, String)> {
    report
        .suites
        .iter()
        .find(|s| s.name == suite)
        .unwrap_or_else(|| panic!("testsuite {suite}"))
        .properties
        .hashmap
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn every_testsuite_carries_the_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    junit::write(&sample_run(), &path).unwrap();
    xmllint_validates(&path, &shared_schema("junit/jenkins-junit-10.xsd"));
    let parsed =
        junit_parser::from_reader(std::io::BufReader::new(std::fs::File::open(&path).unwrap()))
            .unwrap();
    for suite in &parsed.suites {
        let props = &suite.properties.hashmap;
        assert_eq!(props["harness.version"], "0.1.0", "{}", suite.name);
        assert_eq!(props["harness.commit"], "1f74767c0ffee", "{}", suite.name);
    }
    let basic = suite_properties(
        &parsed,
        "talos-basic_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1::connectivity",
    );
    let get = |k: &str| {
        basic
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("property {k}"))
    };
    assert_eq!(get("chart.version"), "1.18.4");
    assert_eq!(
        get("chart.digest"),
        "sha256:c361ca567b319af64b82736ab4c5927a201b1f5dbae4e909c7aeaabce0571299"
    );
    assert_eq!(get("talos.image"), "ghcr.io/siderolabs/talos:v1.11.5");
    assert_eq!(get("talos.image.digest"), "unknown");
    assert_eq!(get("image.client"), "quay.io/cilium/alpine-curl:v1.10.0");
    assert_eq!(
        get("image.client.digest"),
        "sha256:913e8c9f3d960dde03882defa0edd3a919d529c2eb167caa7f54194528bde364"
    );
    // Pinned by tag only (see suites/src/kit/images.rs): said, not invented.
    assert_eq!(get("image.gateway-echo.digest"), "unknown");
    // No collect phase ran in this cell, so no artifacts path is claimed.
    assert!(basic.iter().all(|(n, _)| n != "artifacts"));

    // A cell without recorded provenance still says what it knows and marks the rest.
    let local = suite_properties(
        &parsed,
        "k8s-local_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1::dns",
    );
    let lget = |k: &str| local.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(lget("chart.version").as_deref(), Some("1.18.4"));
    assert_eq!(lget("chart.digest").as_deref(), Some("unknown"));
    assert_eq!(lget("talos.image").as_deref(), Some("unknown"));
}

#[test]
fn a_cell_whose_diagnostics_were_collected_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    let mut run = sample_run();
    run.cells[0].phases.push(PhaseReport {
        name: PhaseName::Collect,
        duration: Duration::from_secs(3),
        outcome: Outcome::Passed,
    });
    junit::write(&run, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(
        r#"<property name="artifacts" value="reports/artifacts/talos-basic_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1"/>"#
    ));
    assert!(!text.contains("reports/artifacts/k8s-local"));
}

#[cfg(unix)]
#[test]
fn reports_are_written_0644() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    junit::write(&sample_run(), &path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "{mode:o}");
}
