//! `harness upgrade` from the command line: the dry run (golden: phases, versions, the exact
//! commands), and bad input refused with exit 2 before anything exists.

use std::path::Path;
use std::process::{Command, Output};

fn harness(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("upgrade")
        .args(args)
        .args(["--state-dir", &state.display().to_string()])
        .env_remove("HARNESS_PROFILES_DIR")
        .env("HOME", state)
        .output()
        .expect("the harness binary runs")
}

const GATEWAY_API_13_TO_14: &[&str] = &[
    "--profile",
    "talos-gateway-api",
    "--cilium-version",
    "1.19.8",
    "--talos-version",
    "v1.13.9",
    "--kubernetes-version",
    "1.36.3",
    "--to-cilium-version",
    "1.20.2",
    "--to-talos-version",
    "v1.14.0",
    "--to-kubernetes-version",
    "1.37.0",
    "--run-id",
    "gate-1",
    "--no-external-target",
    "--dry-run",
];

#[test]
fn dry_run_of_every_move_prints_phases_versions_and_commands() {
    let state = tempfile::tempdir().unwrap();
    let out = harness(state.path(), GATEWAY_API_13_TO_14);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(&state.path().display().to_string(), "$STATE");
    insta::assert_snapshot!(text);
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "a dry run creates nothing"
    );
}

#[test]
fn dry_run_of_a_cilium_upgrade_and_downgrade() {
    let state = tempfile::tempdir().unwrap();
    let out = harness(
        state.path(),
        &[
            "--profile",
            "talos-basic",
            "--cilium-version",
            "1.19.8",
            "--talos-version",
            "v1.13.9",
            "--kubernetes-version",
            "1.35.4",
            "--to-cilium-version",
            "1.20.2",
            "--downgrade",
            "--run-id",
            "gate-2",
            "--no-external-target",
            "--suite",
            "dns",
            "--dry-run",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(&state.path().display().to_string(), "$STATE");
    insta::assert_snapshot!(text);
}

/// Everything wrong at once, exit 2, and no file, container or network made (the run and state
/// directories stay empty; no Docker call is made before validation passes).
#[test]
fn bad_paths_are_refused_all_at_once_before_anything_exists() {
    let state = tempfile::tempdir().unwrap();
    let out = harness(
        state.path(),
        &[
            "--profile",
            "talos-basic",
            "--cilium-version",
            "1.18.14",
            "--talos-version",
            "v1.12.11",
            "--kubernetes-version",
            "1.33.6",
            "--to-cilium-version",
            "1.20.2",
            "--to-talos-version",
            "v1.14.0",
            "--no-external-target",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&state.path().display().to_string(), "$STATE");
    insta::assert_snapshot!(stderr);
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}

#[test]
fn unknown_target_versions_and_a_downgrade_without_a_cilium_move_are_refused() {
    let state = tempfile::tempdir().unwrap();
    let out = harness(
        state.path(),
        &[
            "--profile",
            "talos-basic",
            "--to-talos-version",
            "v1.14",
            "--downgrade",
            "--no-external-target",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Talos version 'v1.14' is malformed"),
        "{stderr}"
    );

    let out = harness(
        state.path(),
        &[
            "--profile",
            "talos-basic",
            "--to-talos-version",
            "v1.14.0",
            "--downgrade",
            "--no-external-target",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--downgrade goes back to the starting Cilium"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
}

#[test]
fn the_gate_starts_from_one_cell() {
    let state = tempfile::tempdir().unwrap();
    let out = harness(
        state.path(),
        &[
            "--profile",
            "talos-basic",
            "--profile",
            "talos-hubble",
            "--to-cilium-version",
            "1.20.2",
            "--no-external-target",
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the upgrade gate starts from one cell, but this selection has 2"),
        "{stderr}"
    );
}

/// The workflow's defaults for a pull request are known releases one minor apart (a path the
/// gate accepts), the same as the manual run's, and it runs the Makefile's target.
#[test]
fn the_upgrade_gate_workflow_defaults_to_a_path_the_gate_accepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join(".github/workflows/upgrade-gate.yml")).unwrap();
    let w: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let inputs = &w["on"]["workflow_dispatch"]["inputs"];
    let (from, to) = (
        inputs["from"]["default"].as_str().unwrap(),
        inputs["to"]["default"].as_str().unwrap(),
    );
    assert_eq!(
        w["env"]["FROM"],
        format!("${{{{ inputs.from || '{from}' }}}}")
    );
    assert_eq!(w["env"]["TO"], format!("${{{{ inputs.to || '{to}' }}}}"));
    let state = tempfile::tempdir().unwrap();
    let out = harness(
        state.path(),
        &[
            "--profile",
            inputs["profile"]["default"].as_str().unwrap(),
            "--cilium-version",
            from,
            "--to-cilium-version",
            to,
            "--no-external-target",
            "--dry-run",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = harness::releases::ReleaseTable::embedded();
    assert_eq!(
        to,
        table.newest_cilium().latest.to_string(),
        "TO is the newest release"
    );
    let steps = w["jobs"]["gate"]["steps"].as_array().unwrap();
    assert!(
        steps.iter().any(|s| s["run"]
            .as_str()
            .is_some_and(|r| r.contains("make upgrade-gate"))),
        "the workflow runs make upgrade-gate"
    );
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    assert!(makefile.contains("\nupgrade-gate: build\n"));
}
