//! `harness e2e` refuses a host that cannot run it before anything exists: no container, no
//! network, no report file. Docker is real here; helm and talosctl are stand-ins.

#[path = "../../talos-docker/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture_talosctl() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../talos-docker/tests/fixtures/talosctl")
}

/// A PATH with only what the test puts there, plus the basics the stand-ins need.
fn bin_dir(with_helm: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if with_helm {
        let helm = dir.path().join("helm");
        std::fs::write(
            &helm,
            "#!/bin/sh\necho 'helm must not run before the preflight passes' >&2\nexit 99\n",
        )
        .unwrap();
        std::fs::set_permissions(&helm, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    dir
}

fn e2e(cwd: &Path, bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
    c.arg("e2e")
        .args(args)
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("HARNESS_IMAGE_REGISTRY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn harness_objects() -> String {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=talos.owned=true",
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output, needle: &str, cwd: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert_eq!(
        std::fs::read_dir(cwd).unwrap().count(),
        0,
        "no report or artifacts may be written"
    );
}

#[test]
fn a_missing_helm_is_refused_with_every_other_problem() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(false);
    let out = e2e(cwd.path(), bin.path(), &["--profile", "talos-basic"], &[]);
    refused(
        &out,
        "the run cannot start: 1 problem(s) on this host:\n  - helm not found (helm); fix: install Helm 3",
        cwd.path(),
    );
}

#[test]
fn a_bad_image_override_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let out = e2e(
        cwd.path(),
        bin.path(),
        &["--profile", "talos-basic"],
        &[("HARNESS_IMAGE_CLIENT", "mirror.local/alpine-curl")],
    );
    refused(&out, "HARNESS_IMAGE_", cwd.path());
}

#[test]
fn a_missing_talosctl_is_refused_before_any_container() {
    if !common::docker_or_skip("a_missing_talosctl_is_refused_before_any_container") {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let before = harness_objects();
    let out = e2e(
        cwd.path(),
        bin.path(),
        &["--profile", "talos-basic", "--no-external-target"],
        &[],
    );
    refused(&out, "talosctl", cwd.path());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("v1.11.5"),
        "names the pinned version"
    );
    assert_eq!(harness_objects(), before);
}

#[test]
fn an_absent_talos_image_is_refused_naming_it() {
    if !common::docker_or_skip("an_absent_talos_image_is_refused_naming_it") {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    std::fs::copy(fixture_talosctl(), bin.path().join("talosctl")).unwrap();
    let before = harness_objects();
    // v1.12 has no stand-in image anywhere, and there is no registry to pull it from.
    let out = e2e(
        cwd.path(),
        bin.path(),
        &[
            "--profile",
            "talos-basic",
            "--talos-version",
            "v1.12.11",
            "--no-external-target",
        ],
        &[("FAKE_TALOSCTL_VERSION", "v1.12.11")],
    );
    refused(&out, "ghcr.io/siderolabs/talos:v1.12.11", cwd.path());
    assert_eq!(harness_objects(), before);
}
