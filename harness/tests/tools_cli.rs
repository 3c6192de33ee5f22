//! `harness tools install` against a loopback server laid out like the real release hosts:
//! the right files are installed with a lock naming what was verified; a corrupted, missing or
//! pin-contradicting download installs nothing at all.

use std::path::Path;
use std::process::{Command, Output};
use upstream::Sha256;
use upstream::test_server::Server;

const TALOS: &str = "v1.11.5";
// A helm release that pins.yaml records no sum for, so the checksum file alone decides.
const HELM: &str = "v3.99.0";

fn platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{os}-{arch}")
}

fn tarball(member: &str, body: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, member, body).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

struct Release {
    talosctl: Vec<u8>,
    talos_listing: String,
    helm_tgz: Vec<u8>,
    helm_listing: String,
}

fn release(helm_version: &str, helm_binary: &[u8]) -> Release {
    let p = platform();
    let talosctl = b"#!/bin/sh\necho talosctl v1.11.5\n".to_vec();
    let helm_tgz = tarball(&format!("{p}/helm"), helm_binary);
    Release {
        talos_listing: format!(
            "{}  talosctl-{p}\n{}  talosctl-windows-amd64.exe\n",
            Sha256::of_bytes(&talosctl),
            "0".repeat(64)
        ),
        helm_listing: format!(
            "{}  helm-{helm_version}-{p}.tar.gz\n",
            Sha256::of_bytes(&helm_tgz)
        ),
        talosctl,
        helm_tgz,
    }
}

fn serve(r: Release, helm_version: &str) -> Server {
    let p = platform();
    Server::start(vec![
        (
            format!("/talos/{TALOS}/sha256sum.txt"),
            r.talos_listing.into_bytes(),
        ),
        (format!("/talos/{TALOS}/talosctl-{p}"), r.talosctl),
        (format!("/helm/helm-{helm_version}-{p}.tar.gz"), r.helm_tgz),
        (
            format!("/helm/helm-{helm_version}-{p}.tar.gz.sha256sum"),
            r.helm_listing.into_bytes(),
        ),
    ])
}

fn install(server: &Server, project: &Path, helm_version: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "tools",
            "install",
            "--talos-version",
            TALOS,
            "--helm-version",
            helm_version,
        ])
        .arg("--talos-releases-url")
        .arg(format!("{}/talos", server.base))
        .arg("--helm-releases-url")
        .arg(format!("{}/helm", server.base))
        .current_dir(project)
        .output()
        .unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(files(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_right_files_are_installed_and_locked() {
    let server = serve(release(HELM, b"#!/bin/sh\necho helm\n"), HELM);
    let project = tempfile::tempdir().unwrap();
    let out = install(&server, project.path(), HELM);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let tools = project.path().join(".tools");
    let talosctl = tools.join("bin/talosctl");
    let helm = tools.join("bin/helm");
    assert_eq!(
        Command::new(&talosctl).output().unwrap().stdout,
        b"talosctl v1.11.5\n"
    );
    assert_eq!(Command::new(&helm).output().unwrap().stdout, b"helm\n");
    assert_eq!(
        std::fs::read_link(&helm).unwrap(),
        Path::new("..").join(format!("helm/{HELM}/helm"))
    );
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tools.join("tools.lock")).unwrap()).unwrap();
    let entries = lock["tools"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let t = &entries[0];
    assert_eq!(t["name"], "talosctl");
    assert_eq!(t["version"], TALOS);
    assert_eq!(
        t["checksum_file"],
        format!("{}/talos/{TALOS}/sha256sum.txt", server.base)
    );
    assert_eq!(
        t["sha256"],
        Sha256::of_file(&tools.join(format!("talosctl/{TALOS}/talosctl")))
            .unwrap()
            .to_string()
    );
    let h = &entries[1];
    assert_eq!(h["name"], "helm");
    assert_eq!(h["pinned"], false);
    assert_eq!(
        h["binary_sha256"],
        Sha256::of_bytes(b"#!/bin/sh\necho helm\n").to_string()
    );
    assert!(stderr.contains("verified against"), "{stderr}");
    // No staging leftovers.
    assert!(
        !files(&tools)
            .iter()
            .any(|f| f.contains(".staging-") || f.contains(".partial-"))
    );
}

#[test]
fn a_corrupted_talosctl_installs_nothing() {
    let mut r = release(HELM, b"helm");
    r.talosctl[0] ^= 1;
    let server = serve(r, HELM);
    let project = tempfile::tempdir().unwrap();
    let out = install(&server, project.path(), HELM);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a corrupted or replaced download"),
        "{stderr}"
    );
    assert!(stderr.contains("sha256sum.txt lists"), "{stderr}");
    assert_eq!(files(project.path()), Vec::<String>::new());
}

#[test]
fn a_corrupted_helm_tarball_leaves_an_earlier_install_untouched() {
    let project = tempfile::tempdir().unwrap();
    let good = serve(release(HELM, b"old helm"), HELM);
    assert_eq!(install(&good, project.path(), HELM).status.code(), Some(0));
    let before: Vec<(String, Vec<u8>)> = files(project.path())
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap_or_default();
            (f, bytes)
        })
        .collect();
    drop(good);
    let mut r = release(HELM, b"new helm");
    let n = r.helm_tgz.len();
    r.helm_tgz[n / 2] ^= 0xff;
    let bad = serve(r, HELM);
    let out = install(&bad, project.path(), HELM);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(".tar.gz.sha256sum lists"), "{stderr}");
    let after: Vec<(String, Vec<u8>)> = files(project.path())
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap_or_default();
            (f, bytes)
        })
        .collect();
    assert_eq!(after, before);
}

#[test]
fn a_missing_file_installs_nothing() {
    let server = Server::start(vec![]);
    let project = tempfile::tempdir().unwrap();
    let out = install(&server, project.path(), HELM);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("answered HTTP 404"), "{stderr}");
    assert_eq!(files(project.path()), Vec::<String>::new());
}

#[test]
fn a_binary_that_contradicts_the_pin_is_refused() {
    // The pinned helm release, served with a consistent checksum file but another binary:
    // the checksum file alone would accept it; pins.yaml does not.
    if platform() != "linux-amd64" {
        eprintln!("skipped: pins.yaml records the helm binary sum for linux-amd64 only");
        return;
    }
    let pinned = "v3.19.0";
    let server = serve(release(pinned, b"not the real helm"), pinned);
    let project = tempfile::tempdir().unwrap();
    let out = install(&server, project.path(), pinned);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("but pins.yaml records e4722a77"),
        "{stderr}"
    );
    assert_eq!(files(project.path()), Vec::<String>::new());
}

#[test]
fn a_malformed_talos_version_is_bad_input() {
    let server = Server::start(vec![]);
    let project = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["tools", "install", "--talos-version", "1.11"])
        .arg("--talos-releases-url")
        .arg(&server.base)
        .current_dir(project.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Talos version '1.11' is malformed"));
    assert!(server.requested().is_empty());
    assert_eq!(files(project.path()), Vec::<String>::new());
}
