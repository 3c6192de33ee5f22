//! `harness e2e` refuses a host that cannot run it before anything exists: no container, no
//! network, no report file. Docker is real here; helm is a stand-in and talosctl is
//! talos-docker's fake, which refuses what the real talosctl refuses.

#[path = "../../talos-docker/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output};

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
    let env = common::TestEnv::new("he2e-tc");
    let out = e2e(
        cwd.path(),
        bin.path(),
        &[
            "--profile",
            "talos-basic",
            "--no-external-target",
            "--run-id",
            &env.run_id,
        ],
        &[],
    );
    refused(&out, "talosctl", cwd.path());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("v1.11.5"),
        "names the pinned version"
    );
    assert!(
        common::leftovers_blocking(&env.run_id).is_empty(),
        "nothing created"
    );
}

#[test]
fn an_absent_talos_image_is_refused_naming_it() {
    if !common::docker_or_skip("an_absent_talos_image_is_refused_naming_it") {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    std::fs::copy(common::fake_talosctl(), bin.path().join("talosctl")).unwrap();
    let env = common::TestEnv::new("he2e-img");
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
            "--run-id",
            &env.run_id,
        ],
        &[("FAKE_TALOSCTL_VERSION", "v1.12.11")],
    );
    refused(&out, "ghcr.io/siderolabs/talos:v1.12.11", cwd.path());
    assert!(
        common::leftovers_blocking(&env.run_id).is_empty(),
        "nothing created"
    );
}

/// The whole run path with a stand-in cluster that never answers: provisioning creates real
/// containers, fails on the bounded API-server wait, removes everything, and the report says
/// so, with every check skipped for that reason and exit status 1.
#[test]
fn a_cluster_that_never_answers_fails_the_run_with_a_report_and_leaves_nothing() {
    if !common::docker_or_skip(
        "a_cluster_that_never_answers_fails_the_run_with_a_report_and_leaves_nothing",
    ) {
        return;
    }
    let env = common::TestEnv::new("he2e");
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let talosctl = env.talosctl(&[]);
    let junit = cwd.path().join("reports/junit.xml");
    let state = env.state_dir();
    let out = e2e(
        cwd.path(),
        bin.path(),
        &[
            "--profile",
            "talos-basic",
            "--cilium-version",
            "1.18.4",
            "--no-external-target",
            "--workers",
            "1",
            "--cpus",
            "0.5",
            "--memory",
            "2GiB",
            "--ready-timeout",
            "2s",
            "--talos-image-repo",
            common::STANDIN_REPO,
            "--unprivileged",
            "--run-id",
            &env.run_id,
            "--state-dir",
            state.to_str().unwrap(),
            "--talosctl",
            talosctl.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--partition",
            "hash:1/1",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // What ran, as the report records it: the stand-in Talos image has no registry digest (it
    // was imported), the chart came from the repository (no archive to hash).
    let props = &junit_parser::from_reader(std::io::BufReader::new(
        std::fs::File::open(&junit).unwrap(),
    ))
    .unwrap()
    .suites[0]
        .properties
        .hashmap;
    assert_eq!(
        props["talos.image"],
        format!("{}:v1.11.5", common::STANDIN_REPO)
    );
    assert_eq!(props["talos.image.digest"], "unknown");
    assert_eq!(props["chart.version"], "1.18.4");
    assert_eq!(props["chart.digest"], "unknown");
    assert_eq!(props["image.client"], "quay.io/cilium/alpine-curl:v1.10.0");
    assert!(props["image.client.digest"].starts_with("sha256:"));
    assert!(!props["harness.commit"].is_empty());
    assert!(!props.contains_key("artifacts"), "nothing was collected");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&junit).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
    let report = junit_parser::from_reader(std::io::BufReader::new(
        std::fs::File::open(&junit).unwrap(),
    ))
    .unwrap();
    let phases = report
        .suites
        .iter()
        .find(|s| s.name.ends_with("::phases"))
        .expect("a phases testsuite");
    assert_eq!(phases.cases.len(), 1, "only provisioning ran");
    let provision = &phases.cases[0];
    assert!(provision.status.is_error());
    assert!(
        provision
            .status
            .error_as_ref()
            .message
            .contains("timed out after 2s"),
        "{:?}",
        provision.status
    );
    let checks: Vec<_> = report
        .suites
        .iter()
        .filter(|s| !s.name.ends_with("::phases"))
        .flat_map(|s| &s.cases)
        .collect();
    assert!(checks.len() >= 40, "every planned check is in the report");
    assert!(checks.iter().all(|c| c.status.is_skipped()));
    assert!(checks.iter().any(|c| {
        c.status
            .skipped_as_ref()
            .message
            .starts_with("not run: provisioning failed")
    }));
    let left = common::leftovers_blocking(&env.run_id);
    assert!(left.is_empty(), "left behind after the run");
    assert!(
        talos_docker::RunDir::scan(&state).is_empty(),
        "run directory left"
    );
    // Every talosctl call of the run, accepted by the talosctl the fake plays: version checks
    // (the preflight's and provisioning's), then provisioning's calls in order.
    let calls = env.talosctl_calls();
    assert!(calls.iter().all(|c| c.refused.is_none()), "{calls:?}");
    let commands: Vec<&str> = calls.iter().filter_map(|c| c.command.as_deref()).collect();
    assert!(commands.contains(&"version"), "{commands:?}");
    let provisioning: Vec<&str> = commands.into_iter().filter(|c| *c != "version").collect();
    assert_eq!(
        provisioning,
        [
            "gen secrets",
            "gen config",
            "config endpoint",
            "config node",
            "bootstrap",
            "kubeconfig"
        ]
    );
}

#[test]
fn a_node_size_talos_cannot_boot_is_refused_before_anything_exists() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let out = e2e(
        cwd.path(),
        bin.path(),
        &["--profile", "talos-basic", "--memory", "512MiB"],
        &[],
    );
    refused(
        &out,
        "memory per node '512 MiB' is invalid: Talos needs at least 1024 MiB",
        cwd.path(),
    );
}
