//! `harness replay` on recordings it cannot judge: another format version, a check or suite this
//! build lacks, an observation its judge does not take, a file missing. Each exits 2 with the
//! file, the problem and the fix (which harness reads it), and writes no report. The base is a
//! committed recording (`suites/tests/recordings/pod-security-healthy`), copied and altered.

use std::path::{Path, PathBuf};
use std::process::Command;

fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/tests/recordings/pod-security-healthy")
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of the base recording in `dir/rec`, then `alter` run on it.
fn altered(dir: &Path, alter: impl FnOnce(&Path)) {
    copy(&base(), &dir.join("rec"));
    alter(&dir.join("rec"));
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// The one cell's folder.
fn cell(rec: &Path) -> PathBuf {
    std::fs::read_dir(rec)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap()
}

/// Replays `rec` in `dir`; the exit status and stderr, with the cell id generalised.
fn replay(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(dir)
        .args(["replay", "rec"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !dir.join("reports").exists(),
        "a refused replay writes nothing: {stderr}"
    );
    (out.status.code(), stderr)
}

#[test]
fn the_committed_recording_replays_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    altered(dir.path(), |_| {});
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(dir.path())
        .args(["replay", "rec"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dir.path().join("reports/replay.xml").is_file());
}

/// A change made to a copy of the recording.
type Alteration = Box<dyn FnOnce(&Path)>;

#[test]
fn recordings_this_build_cannot_judge_are_refused_with_the_fix() {
    let mut seen = Vec::new();
    let cases: Vec<(&str, Alteration)> = vec![
        (
            "a newer format",
            Box::new(|rec: &Path| {
                edit_json(&rec.join("recording.json"), |v| {
                    v["format"] = 2.into();
                    v["harness"]["version"] = "0.3.0".into();
                    v["harness"]["commit"] = "9f1c2ab".into();
                })
            }),
        ),
        (
            "an older format",
            Box::new(|rec: &Path| {
                edit_json(&rec.join("recording.json"), |v| v["format"] = 0.into())
            }),
        ),
        (
            "no format",
            Box::new(|rec: &Path| {
                edit_json(&rec.join("recording.json"), |v| {
                    v.as_object_mut().unwrap().remove("format");
                })
            }),
        ),
        (
            "not a recording",
            Box::new(|rec: &Path| std::fs::remove_file(rec.join("recording.json")).unwrap()),
        ),
        (
            "a check this build lacks, and an observation its judge does not take",
            Box::new(|rec: &Path| {
                let suite = cell(rec).join("pod-security");
                edit_json(&suite.join("namespace-levels/check.json"), |v| {
                    v["check"] = "namespace-levels-v0".into()
                });
                edit_json(
                    &suite.join("cluster-default-is-baseline/observation.json"),
                    |v| *v = serde_json::json!({"nodes": "one"}),
                );
            }),
        ),
        (
            "a judged check without its observation",
            Box::new(|rec: &Path| {
                let check = cell(rec).join("pod-security/namespace-levels");
                std::fs::remove_file(check.join("observation.json")).unwrap();
            }),
        ),
    ];
    for (name, alter) in cases {
        let dir = tempfile::tempdir().unwrap();
        altered(dir.path(), alter);
        let (code, stderr) = replay(dir.path());
        assert_eq!(code, Some(2), "{name}: {stderr}");
        let cell = cell(&dir.path().join("rec"));
        let cell = cell.file_name().unwrap().to_string_lossy();
        seen.push(format!(
            "## {name}\n{}",
            stderr.replace(cell.as_ref(), "<cell>")
        ));
    }
    insta::assert_snapshot!(seen.join("\n"));
}
