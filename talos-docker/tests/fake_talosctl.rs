//! The fake talosctl itself: it refuses what the talosctl it plays refuses, in talosctl's words
//! and exit status, prints `version` in the real shape, and writes what the real commands write;
//! talos-docker's talosctl steps run through it for every supported minor.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use talos_docker::talosctl::{GenConfig, Invocation, Talosctl};
use talos_docker::{PatchTarget, RunDir, RunId, TalosVersion};

const FAKE: &str = env!("CARGO_BIN_EXE_fake-talosctl");

fn fake(version: &str, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(FAKE);
    c.args(args)
        .current_dir(cwd)
        .env("FAKE_TALOSCTL_VERSION", version)
        .env("HOME", cwd.join("home"))
        .env_remove("TALOSCONFIG")
        .env_remove("FAKE_TALOSCTL_NODES");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `talosctl` that plays `version`, as talos-docker finds it.
fn wrapper(dir: &Path, version: &str, extra: &str) -> PathBuf {
    let path = dir.join("talosctl");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nexport FAKE_TALOSCTL_VERSION={version}\n{extra}exec '{FAKE}' \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn talosconfig_in_front_of_gen_fails_as_talosctl_fails_from_v1_11() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--talosconfig",
        "tc",
        "gen",
        "secrets",
        "--output-file",
        "s.yaml",
    ];
    let out = fake("v1.11.5", dir.path(), &args, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("unknown flag: --talosconfig\n\nUsage:\n  talosctl gen secrets [flags]"),
        "{stderr}"
    );
    assert!(!dir.path().join("s.yaml").exists(), "nothing written");

    let out = fake("v1.10.9", dir.path(), &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&dir.path().join("s.yaml")), 0o600);
}

#[test]
fn every_refusal_is_logged_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.jsonl");
    let log_env = [("FAKE_TALOSCTL_LOG", log.to_str().unwrap())];
    for args in [&["gen", "config", "c"][..], &["dmesg"], &["versoin"]] {
        let out = fake("v1.13.9", dir.path(), args, &log_env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["refused"], "accepts 2 arg(s), received 1");
    assert_eq!(lines[0]["command"], "gen config");
    assert!(
        lines[1]["refused"]
            .as_str()
            .unwrap()
            .contains("does not model"),
        "a real command the table leaves out is not called unknown: {}",
        lines[1]
    );
    assert!(
        lines[2]["refused"]
            .as_str()
            .unwrap()
            .starts_with("unknown command \"versoin\" for \"talosctl\"")
    );
}

#[tokio::test]
async fn client_version_prints_the_real_short_shape_and_is_found_by_locate() {
    let dir = tempfile::tempdir().unwrap();
    let out = fake(
        "v1.12.11",
        dir.path(),
        &Invocation::client_version()
            .to_strings()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(text(&out.stdout), "Client:\nTalos v1.12.11\n");
    let talosctl = wrapper(dir.path(), "v1.12.11", "");
    let found = Talosctl::locate(
        Some(&talosctl),
        &TalosVersion::parse("v1.12.0").unwrap(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(found.version().to_string(), "v1.12.11");
}

#[test]
fn a_version_without_a_table_is_refused_naming_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = fake("v1.9.6", dir.path(), &["version", "--client"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no grammar table for talosctl v1.9.6 (tables: v1.10, v1.11"),
        "{}",
        text(&out.stderr)
    );
}

/// talos-docker's own talosctl steps, in provisioning order, against the fake playing each
/// supported minor: every call is accepted and leaves the files the real commands leave.
#[tokio::test]
async fn the_talosctl_steps_of_provisioning_run_through_every_supported_minor() {
    for version in ["v1.10.9", "v1.11.6", "v1.12.11", "v1.13.9", "v1.14.0-rc.1"] {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("calls.jsonl");
        let talosctl = wrapper(
            tmp.path(),
            version,
            &format!(
                "export FAKE_TALOSCTL_LOG='{}'\nexport HOME='{}'\nunset TALOSCONFIG\n",
                log.display(),
                tmp.path().join("home").display()
            ),
        );
        let wanted = TalosVersion::parse(version).unwrap();
        let t = Duration::from_secs(20);
        let talosctl = Talosctl::locate(Some(&talosctl), &wanted, t).await.unwrap();
        let dir = RunDir::create(
            &tmp.path().join("state"),
            &RunId::parse("fake-1").unwrap(),
            "c",
        )
        .unwrap();
        let patch = dir
            .write("patch-0.yaml", b"machine: {sysctls: {a: b}}\n")
            .unwrap();
        let patches = [(PatchTarget::Worker.flag(), patch)];
        talosctl.gen_secrets(&dir, t).await.unwrap();
        let config = GenConfig {
            cluster: "c",
            endpoint: "https://10.5.0.2:6443",
            talos_version: &wanted,
            kubernetes_version: Some("1.34.1"),
            patches: &patches,
            timeout: t,
        };
        talosctl.gen_config(&dir, &config).await.unwrap();
        talosctl
            .set_endpoint(&dir, "127.0.0.1:50001", t)
            .await
            .unwrap();
        talosctl.set_node(&dir, "10.5.0.2", t).await.unwrap();
        talosctl.bootstrap(&dir, "10.5.0.2", t).await.unwrap();
        talosctl.kubeconfig(&dir, "10.5.0.2", t).await.unwrap();

        let calls = std::fs::read_to_string(&log).unwrap();
        assert!(!calls.contains(r#""refused":""#), "{version}: {calls}");
        assert_eq!(calls.lines().count(), 7, "{version}: {calls}");
        assert_eq!(mode(&dir.file("secrets.yaml")), 0o600);
        assert_eq!(mode(&dir.file("kubeconfig")), 0o600);
        let worker = std::fs::read_to_string(dir.file("worker.yaml")).unwrap();
        assert!(
            worker.contains("type: worker") && worker.contains("patch-0.yaml"),
            "{worker}"
        );
        let talosconfig = std::fs::read_to_string(dir.file("talosconfig")).unwrap();
        assert!(
            talosconfig.contains("127.0.0.1:50001") && talosconfig.contains("10.5.0.2"),
            "{version}: {talosconfig}"
        );
        let kubeconfig = std::fs::read_to_string(dir.file("kubeconfig")).unwrap();
        assert!(
            kubeconfig.contains("server: https://10.5.0.2:6443"),
            "{kubeconfig}"
        );
        assert!(
            !tmp.path().join("home").exists(),
            "nothing in ~/.talos or ~/.kube"
        );

        // Files the real commands refuse to overwrite without --force.
        let err = talosctl.gen_secrets(&dir, t).await.unwrap_err().to_string();
        assert!(
            err.contains("already exists, use --force to overwrite"),
            "{err}"
        );
    }
}

/// `FAKE_TALOSCTL_NODES=unreachable`: the endpoint is dialled, and what meets the dial is
/// reported in the words grpc-go gives talosctl.
#[test]
fn an_unreachable_node_fails_as_talosctl_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let tc = dir.path().join("talosconfig");
    std::fs::write(
        &tc,
        "context: c\ncontexts:\n  c:\n    endpoints: []\n    ca: RkFLRQ==\n",
    )
    .unwrap();
    let tc = tc.to_str().unwrap();
    let unreachable = [("FAKE_TALOSCTL_NODES", "unreachable")];
    let bootstrap = |endpoint: &str| {
        fake(
            "v1.11.5",
            dir.path(),
            &[
                "bootstrap",
                "--talosconfig",
                tc,
                "-n",
                "10.5.0.2",
                "-e",
                endpoint,
            ],
            &unreachable,
        )
    };

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = bootstrap(&format!("127.0.0.1:{port}"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim_end(),
        format!(
            "error executing bootstrap: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:{port}: connect: connection refused\""
        )
    );

    // Something accepts and hangs up, as a published port with no apid behind it does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        drop(conn);
    });
    let out = bootstrap(&addr.to_string());
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Unavailable") && stderr.contains("authentication handshake failed"),
        "{stderr}"
    );

    // Without an endpoint there is nothing to dial.
    let out = fake(
        "v1.11.5",
        dir.path(),
        &["bootstrap", "--talosconfig", tc, "-n", "10.5.0.2"],
        &unreachable,
    );
    assert_eq!(
        text(&out.stderr).trim_end(),
        "error constructing client: failed to determine endpoints"
    );
}
