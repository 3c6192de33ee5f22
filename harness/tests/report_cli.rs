//! `report merge`, `report summary` and `report diff` through the real binary, on JUnit from the
//! writers people use (fixtures/junit/SOURCES.md) and on reports the harness's own writer makes.

use harness::matrix::Cell;
use harness::report::provenance::{HarnessBuild, Provenance};
use harness::report::{
    CellReport, CheckReport, Outcome, PhaseName, PhaseReport, RunReport, SuiteReport, junit,
};
use harness::version::{CiliumVersion, KubernetesVersion, TalosVersion};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/junit")
        .join(name)
}

fn harness(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the harness binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temp dir holding copies of the named fixtures, so commands run on short relative names.
fn with_fixtures(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for n in names {
        std::fs::copy(fixture(n), dir.path().join(n)).unwrap();
    }
    dir
}

/// Validate with xmllint against a JUnit schema from the test-data chain.
fn xmllint_validates(file: &Path, schema: &str) {
    let xsd = upstream::testdata::path(&format!("schemas/junit/{schema}"));
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(file)
        .output()
        .expect("xmllint is needed to validate JUnit output; install libxml2-utils");
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---- merge ---------------------------------------------------------------------------------

#[test]
fn merge_joins_nextest_shards_into_one_testsuite() {
    let a = "nextest-harness-shard-1-of-2.xml";
    let b = "nextest-harness-shard-2-of-2.xml";
    let dir = with_fixtures(&[a, b]);
    let out = harness(dir.path(), &["report", "merge", a, b, "-o", "merged.xml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let merged = harness::report::read::read(&dir.path().join("merged.xml")).unwrap();
    assert_eq!(merged.test_suites.len(), 1, "one suite per nextest binary");
    let suite = &merged.test_suites[0];
    assert_eq!(suite.name.as_str(), "harness");
    assert_eq!((suite.tests, merged.tests), (4, 4));
    let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
    assert!(names.contains(&"partition::tests::the_hash_is_stable"));
    assert!(names.contains(&"partition::tests::parses_the_hash_form"));
    #[cfg(unix)]
    assert_eq!(mode(&dir.path().join("merged.xml")), 0o644);
}

#[test]
fn merge_reads_surefire_ant_jenkins_and_the_harness_own_reports() {
    let dir = with_fixtures(&[
        "surefire-TEST-com.shape.PointTest.xml",
        "surefire-TEST-org.acme.FlakyTest.xml",
        "ant-TEST-com.sample.test.TestMessage2.xml",
    ]);
    junit::write(&current_run(), &dir.path().join("harness.xml")).unwrap();
    let out = harness(
        dir.path(),
        &[
            "report",
            "merge",
            "surefire-TEST-com.shape.PointTest.xml",
            "surefire-TEST-org.acme.FlakyTest.xml",
            "ant-TEST-com.sample.test.TestMessage2.xml",
            "harness.xml",
            "-o",
            "all.xml",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let all = dir.path().join("all.xml");
    // The Ant file is the schema's own form: a timestamp without a timezone, as the windyroad
    // XSD requires. Every input validates against the Jenkins XSD, so the merge must too.
    xmllint_validates(
        &dir.path().join("ant-TEST-com.sample.test.TestMessage2.xml"),
        "windyroad-JUnit.xsd",
    );
    xmllint_validates(&all, "jenkins-junit-10.xsd");
    let text = std::fs::read_to_string(&all).unwrap();
    // The Ant timestamp has no timezone; it is kept as written, not given one.
    assert!(
        text.contains(r#"timestamp="2015-01-13T07:23:08""#),
        "{text}"
    );
    let merged = harness::report::read::read(&all).unwrap();
    let surefire = merged
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == "com.shape.PointTest")
        .unwrap();
    assert_eq!((surefire.tests, surefire.failures), (3, 1));
    let flaky = merged
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == "org.acme.FlakyTest")
        .unwrap();
    let flaky_runs: usize = flaky
        .test_cases
        .iter()
        .map(|c| match &c.status {
            quick_junit::TestCaseStatus::Success { flaky_runs } => flaky_runs.len(),
            _ => 0,
        })
        .sum();
    assert!(flaky_runs >= 2, "surefire's flakyFailure elements survive");
    // 3 + 2 + 2 + the harness run's 6 checks and 5 phases.
    assert_eq!(merged.tests, 3 + 2 + 2 + 11);
}

#[test]
fn merge_reads_nextest_retries_and_jenkins_nested_suites() {
    let dir = with_fixtures(&[
        "nextest-checks-night2.xml",
        "jenkins-various-timestamps.xml",
    ]);
    let out = harness(
        dir.path(),
        &[
            "report",
            "merge",
            "nextest-checks-night2.xml",
            "jenkins-various-timestamps.xml",
            "-o",
            "out.xml",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let merged = harness::report::read::read(&dir.path().join("out.xml")).unwrap();
    // nextest: 5 testcases; Jenkins: 12 testcases, 3 of them in a nested suite (the file's own
    // root says tests="8": counts come from the testcases).
    assert_eq!(merged.tests, 5 + 12);
    assert!(
        merged
            .test_suites
            .iter()
            .any(|s| s.name.as_str() == "test.RestMethods" && s.tests == 3)
    );
    let text = std::fs::read_to_string(dir.path().join("out.xml")).unwrap();
    for kept in [
        "<rerunFailure",
        "<flakyFailure",
        r#"timestamp="2024-01-03T12:27:11""#,
        r#"timestamp="2024-01-03T 12:40:13""#,
    ] {
        assert!(text.contains(kept), "{kept} missing");
    }
}

#[test]
fn merge_reads_properties_written_as_text() {
    let dir = with_fixtures(&["jenkins-properties.xml"]);
    let out = harness(
        dir.path(),
        &["report", "merge", "jenkins-properties.xml", "-o", "out.xml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let merged = harness::report::read::read(&dir.path().join("out.xml")).unwrap();
    let suite = &merged.test_suites[0];
    let prop = |name: &str| {
        suite
            .properties
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.value.as_str().to_string())
    };
    assert_eq!(prop("prop1").as_deref(), Some("value1"));
    let multiline = prop("multiline").expect("a text-valued property keeps its text");
    assert!(
        multiline.starts_with("Config line 1") && multiline.ends_with("Config line 3"),
        "{multiline:?}"
    );
    assert_eq!(
        suite.test_cases[0].properties[0].value.as_str(),
        "description of test testCaseA"
    );
    assert_eq!((merged.tests, merged.failures), (2, 1));
}

#[test]
fn merge_refuses_an_output_that_is_an_input() {
    let a = "nextest-harness-shard-1-of-2.xml";
    let b = "nextest-harness-shard-2-of-2.xml";
    let dir = with_fixtures(&[a, b]);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join(a), dir.path().join("link.xml")).unwrap();
    let before = std::fs::read(dir.path().join(a)).unwrap();
    let mut outputs = vec![a.to_string(), format!("./sub/../{a}")];
    #[cfg(unix)]
    outputs.push("link.xml".into());
    for output in outputs {
        let out = harness(dir.path(), &["report", "merge", a, b, "-o", &output]);
        assert_eq!(out.status.code(), Some(2), "-o {output}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is also an input") && stderr(&out).contains("-o"),
            "{}",
            stderr(&out)
        );
        assert_eq!(std::fs::read(dir.path().join(a)).unwrap(), before);
    }
}

#[test]
fn merge_refuses_overlapping_shards() {
    let n = "nextest-checks-night1.xml";
    let dir = with_fixtures(&[n, "nextest-checks-night2.xml"]);
    let out = harness(
        dir.path(),
        &[
            "report",
            "merge",
            n,
            "nextest-checks-night2.xml",
            "-o",
            "out.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the shards overlap"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("out.xml").exists());
}

// ---- summary and diff on nextest's JUnit ---------------------------------------------------

#[test]
fn nextest_summary_against_last_night() {
    let dir = with_fixtures(&["nextest-checks-night1.xml", "nextest-checks-night2.xml"]);
    let out = harness(
        dir.path(),
        &[
            "report",
            "summary",
            "nextest-checks-night2.xml",
            "--baseline",
            "nextest-checks-night1.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn nextest_diff_exits_1_on_a_new_failure() {
    let dir = with_fixtures(&["nextest-checks-night1.xml", "nextest-checks-night2.xml"]);
    let out = harness(
        dir.path(),
        &[
            "report",
            "diff",
            "nextest-checks-night1.xml",
            "nextest-checks-night2.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
    // Backwards, night 1 has no failure that night 2 lacked... except the one night 2 fixed.
    let back = harness(
        dir.path(),
        &[
            "report",
            "diff",
            "nextest-checks-night2.xml",
            "nextest-checks-night1.xml",
        ],
    );
    assert_eq!(back.status.code(), Some(1));
    assert!(stdout(&back).contains("### New failures (1)\n\n- `checks-demo::cluster_checks` `talos-basic::connectivity::pod-to-pod-other-node`"));
    let same = harness(
        dir.path(),
        &[
            "report",
            "diff",
            "nextest-checks-night1.xml",
            "nextest-checks-night1.xml",
        ],
    );
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
}

#[test]
fn summary_of_surefire_and_ant_reports() {
    let names = [
        "surefire-TEST-com.shape.PointTest.xml",
        "surefire-TEST-org.acme.FlakyTest.xml",
        "ant-TEST-com.sample.test.TestMessage2.xml",
    ];
    let dir = with_fixtures(&names);
    let mut args = vec!["report", "summary"];
    args.extend(names);
    let out = harness(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
}

// ---- summary and diff on the harness's own reports ------------------------------------------

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
        duration: Duration::from_millis(4200),
        outcome,
        transcript: String::new(),
    }
}

fn failed(message: &str) -> Outcome {
    Outcome::Failed {
        message: message.into(),
        detail: "last seen: see the transcript".into(),
    }
}

fn phases(collect: bool) -> Vec<PhaseReport> {
    let mut p = vec![
        (PhaseName::Provision, 95),
        (PhaseName::Install, 140),
        (PhaseName::Suites, 61),
    ];
    if collect {
        p.push((PhaseName::Collect, 7));
    }
    p.push((PhaseName::Destroy, 4));
    p.into_iter()
        .map(|(name, secs)| PhaseReport {
            name,
            duration: Duration::from_secs(secs),
            outcome: Outcome::Passed,
        })
        .collect()
}

fn run(cells: Vec<CellReport>) -> RunReport {
    RunReport {
        run_id: "nightly".into(),
        interrupted: None,
        cells,
        provenance: Provenance {
            harness: HarnessBuild {
                version: "0.1.0".into(),
                commit: "1f74767c0ffee".into(),
            },
            cells: Default::default(),
            artifacts: Some("reports/artifacts".into()),
        },
    }
}

/// Last night: talos-basic fails pod-to-pod-other-node and baseline-refuses-net-raw; k8s-local
/// fails kubernetes-default-fqdn.
fn baseline_run() -> RunReport {
    run(vec![
        CellReport {
            cell: cell("talos-basic"),
            seed: "001_a7882a1959f1793d.txt".into(),
            phases: phases(true),
            suites: vec![
                SuiteReport {
                    suite: "connectivity".into(),
                    setup_transcript: String::new(),
                    duration: std::time::Duration::ZERO,
                    observed: None,
                    checks: vec![
                        check("connectivity::pod-to-pod-same-node", Outcome::Passed),
                        check(
                            "connectivity::pod-to-pod-other-node",
                            failed("curl exit 28 (timeout: packets dropped) 3 times in a row"),
                        ),
                        check("connectivity::pod-to-service-same-node", Outcome::Passed),
                    ],
                },
                SuiteReport {
                    suite: "dns".into(),
                    setup_transcript: String::new(),
                    duration: std::time::Duration::ZERO,
                    observed: None,
                    checks: vec![
                        check("dns::external-name", Outcome::Passed),
                        check("dns::pod-a-record", Outcome::Passed),
                    ],
                },
                SuiteReport {
                    suite: "pod-security".into(),
                    setup_transcript: String::new(),
                    duration: std::time::Duration::ZERO,
                    observed: None,
                    checks: vec![check(
                        "pod-security::baseline-refuses-net-raw",
                        failed("a pod adding NET_RAW was admitted in a baseline namespace"),
                    )],
                },
            ],
        },
        CellReport {
            cell: cell("k8s-local"),
            seed: "003_fcc94d3bcc4ac1c7.txt".into(),
            phases: phases(true),
            suites: vec![SuiteReport {
                suite: "dns".into(),
                setup_transcript: String::new(),
                duration: std::time::Duration::ZERO,
                observed: None,
                checks: vec![check(
                    "dns::kubernetes-default-fqdn",
                    failed("kubernetes.default.svc.cluster.local: NXDOMAIN"),
                )],
            }],
        },
    ])
}

/// Tonight, first attempt of talos-basic's shard: pod-to-pod-other-node is fixed,
/// external-name newly fails, pod-a-record fails, pod-to-service-same-node is skipped; the
/// k8s-local shard left no report.
fn current_run() -> RunReport {
    let mut r = baseline_run();
    r.cells.truncate(1);
    let c = &mut r.cells[0];
    c.suites[0].checks[1].outcome = Outcome::Passed;
    c.suites[0].checks[2].outcome = Outcome::Skipped {
        reason: "only one schedulable node: cross-node checks need two".into(),
    };
    c.suites[1].checks[0].outcome =
        failed("one.one.one.one from the client pod: SERVFAIL (3 of 3 attempts)");
    c.suites[1].checks[1].outcome =
        failed("10-244-1-3.harness-dns.pod.cluster.local: NXDOMAIN | see <transcript>");
    r
}

/// Tonight, the shard run again: the same results except that pod-a-record passes.
fn current_rerun() -> RunReport {
    let mut r = current_run();
    r.cells[0].suites[1].checks[1].outcome = Outcome::Passed;
    r
}

fn harness_reports() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    junit::write(&baseline_run(), &dir.path().join("baseline.xml")).unwrap();
    junit::write(&current_run(), &dir.path().join("shard-1.xml")).unwrap();
    junit::write(&current_rerun(), &dir.path().join("shard-1-rerun.xml")).unwrap();
    dir
}

#[test]
fn harness_summary_with_baseline_and_a_rerun() {
    let dir = harness_reports();
    let out = harness(
        dir.path(),
        &[
            "report",
            "summary",
            "shard-1.xml",
            "shard-1-rerun.xml",
            "--baseline",
            "baseline.xml",
            "-o",
            "summary.md",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "-o writes the file, not stdout");
    let md = dir.path().join("summary.md");
    #[cfg(unix)]
    assert_eq!(mode(&md), 0o644);
    insta::assert_snapshot!(std::fs::read_to_string(md).unwrap());
}

#[test]
fn harness_diff_exits_1_on_new_failures_and_0_without() {
    let dir = harness_reports();
    let out = harness(
        dir.path(),
        &["report", "diff", "baseline.xml", "shard-1.xml"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
    // Against itself nothing is new, whatever fails.
    let out = harness(
        dir.path(),
        &["report", "diff", "shard-1.xml", "shard-1.xml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("| 0 | 0 | 3 | 0 | 0 | 0 |"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_long_summary_is_cut_with_a_note_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = baseline_run();
    big.cells[0].suites[0].checks = (0..400)
        .map(|i| {
            check(
                &format!("connectivity::check-{i:03}"),
                failed(&format!("failure number {i}: {}", "x".repeat(200))),
            )
        })
        .collect();
    junit::write(&big, &dir.path().join("big.xml")).unwrap();
    let full = harness(
        dir.path(),
        &["report", "summary", "big.xml", "--max-bytes", "0"],
    );
    let full = stdout(&full);
    assert!(full.len() > 50_000, "{}", full.len());
    let out = harness(
        dir.path(),
        &["report", "summary", "big.xml", "--max-bytes", "20000"],
    );
    assert!(out.status.success());
    let cut = stdout(&out);
    assert!(cut.len() <= 20_000, "{}", cut.len());
    assert!(cut.contains("> **Truncated**"), "{cut}");
    assert!(cut.contains(&format!("this summary is {} bytes", full.len())));
    let kept = cut.split("\n> **Truncated**").next().unwrap();
    assert!(
        full.starts_with(kept),
        "the cut keeps whole lines of the full text"
    );
    // The default is GitHub's limit less a margin: this one fits whole.
    let default = harness(dir.path(), &["report", "summary", "big.xml"]);
    assert_eq!(stdout(&default), full);
}

// ---- bad input ------------------------------------------------------------------------------

fn refused(dir: &Path, args: &[&str], needle: &str) {
    let before: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let out = harness(dir, args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    assert!(out.stdout.is_empty());
    let after: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "nothing left behind");
}

#[test]
fn bad_report_inputs_exit_2_with_the_fix() {
    let dir = harness_reports();
    std::fs::write(dir.path().join("notes.txt"), "not xml at all <").unwrap();
    std::fs::write(dir.path().join("html.xml"), "<html><body/></html>").unwrap();
    let d = dir.path();
    refused(
        d,
        &["report", "diff", "baseline.xml", "missing.xml"],
        "cannot read missing.xml",
    );
    refused(
        d,
        &["report", "summary", "html.xml"],
        "html.xml: is not a JUnit report (the root element is <html>)",
    );
    refused(
        d,
        &["report", "summary", "notes.txt", "-o", "s.md"],
        "notes.txt: is not a JUnit report",
    );
    refused(
        d,
        &["report", "summary", "shard-1.xml", "-o", "shard-1.xml"],
        "is also an input",
    );
    refused(
        d,
        &[
            "report",
            "summary",
            "shard-1.xml",
            "--baseline",
            "baseline.xml",
            "-o",
            "baseline.xml",
        ],
        "is also an input",
    );
}
