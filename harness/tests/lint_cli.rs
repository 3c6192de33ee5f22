//! `harness lint` as a user runs it: exit statuses, one line per finding, JSON for machines,
//! cluster facts as flags.

use std::path::Path;
use std::process::{Command, Output};

fn harness(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the harness binary runs")
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

// Cilium's LB IPAM and L2 announcement guides put a pool and a policy in one file.
const POOL_AND_POLICY: &str = "apiVersion: cilium.io/v2\nkind: CiliumLoadBalancerIPPool\nmetadata:\n  name: lan\nspec:\n  blocks:\n    - cidr: 192.168.1.240/28\n---\napiVersion: cilium.io/v2alpha1\nkind: CiliumL2AnnouncementPolicy\nmetadata:\n  name: lan\nspec:\n  loadBalancerIPs: true\n  interfaces:\n    - ^eth[0-9]+\n";

#[test]
fn a_valid_pool_and_l2_policy_file_exits_0() {
    let dir = dir_with(&[("lb.yaml", POOL_AND_POLICY)]);
    for version in ["1.18.4", "1.19.6", "1.20.0"] {
        let out = harness(
            dir.path(),
            &[
                "lint",
                "--cilium-version",
                version,
                "--node-cidr",
                "192.168.1.0/24",
                "lb.yaml",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{version}: {stdout}");
        assert!(!stdout.contains("error:"), "{stdout}");
    }
}

#[test]
fn json_output_carries_position_key_problem_fix_and_the_facts() {
    let dir = dir_with(&[(
        "v.yaml",
        "ipam:\n  mode: kubernetes\nkubeProxyReplacment: true\n",
    )]);
    let out = harness(
        dir.path(),
        &[
            "lint",
            "--output",
            "json",
            "--pod-cidr",
            "10.42.0.0/16",
            "v.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let f = &r["findings"][0];
    assert_eq!(f["file"], "v.yaml");
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(f["severity"], "error");
    assert_eq!(f["basis"], "schema");
    assert_eq!(f["key"], "kubeProxyReplacment");
    assert_eq!(f["fix"], "did you mean `kubeProxyReplacement`?");
    assert_eq!(r["errors"], 1);
    let facts = r["facts"].as_array().unwrap();
    let pod = facts.iter().find(|f| f["fact"] == "pod CIDR").unwrap();
    assert_eq!(pod["value"], "10.42.0.0/16");
    assert_eq!(pod["origin"]["from"], "flag");
    let svc = facts.iter().find(|f| f["fact"] == "Service CIDR").unwrap();
    assert_eq!(svc["origin"]["from"], "assumed");
}

#[test]
fn bad_input_exits_2_with_the_fix() {
    let dir = dir_with(&[
        ("v.yaml", "a: [1\n"),
        ("ok.yaml", "ipam:\n  mode: kubernetes\n"),
    ]);
    let out = harness(dir.path(), &["lint", "v.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.starts_with("error: v.yaml:"), "{stderr}");
    assert!(out.stdout.is_empty());
    let out = harness(
        dir.path(),
        &["lint", "--cilium-version", "1.30.0", "ok.yaml"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("Cilium 1.30.0 is not in the release table")
            && stderr.contains("nearest known releases"),
        "{stderr}"
    );
    let out = harness(
        dir.path(),
        &["lint", "--pod-cidr", "10.244.1.0/16", "ok.yaml"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("did you mean 10.244.0.0/16?"), "{stderr}");
}
