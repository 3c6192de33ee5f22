//! Golden tests for what people read: the plan in text and JSON, and the bad-input messages.
//! Review a change to these files as a change to the product's output.

use std::process::Command;

fn harness(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .env_remove("HARNESS_PROFILES_DIR")
        .output()
        .expect("the harness binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn default_matrix_plan_text() {
    // The default --jobs for a stated host (8 CPUs, 32 GiB free), not this one.
    let (code, stdout, stderr) = harness(&["plan", "--host-cpus", "8", "--host-memory", "32GiB"]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn plan_is_deterministic() {
    assert_eq!(
        harness(&["plan", "--output", "json"]).1,
        harness(&["plan", "--output", "json"]).1
    );
}

#[test]
fn two_cell_plan_json() {
    let (code, stdout, stderr) = harness(&[
        "plan",
        "--output",
        "json",
        "--profile",
        "vxlan-wireguard-hostfw",
        "--profile",
        "native-routing-gateway",
        "--cilium-version",
        "1.19.8",
        "--no-external-target",
        "--check",
        "!pod-security::*",
    ]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn opt_in_spire_profile_plans_on_request() {
    let (code, stdout, _) = harness(&[
        "plan",
        "--profile",
        "service-mesh-spire",
        "--cilium-version",
        "1.18.4",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("features    kube-proxy-replacement, wireguard, hubble, hubble-relay, hubble-ui, l2-announcements, l7-proxy, mutual-auth-spire, policy-enforcement, host-legacy-routing; routing native"), "{stdout}");
    assert!(stdout.contains("host needs  kernel module wireguard"));
}

#[test]
fn profiles_listing() {
    let (code, stdout, _) = harness(&["profiles"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(stdout);
}

#[test]
fn bad_input_messages() {
    let cases: &[&[&str]] = &[
        &["plan", "--profile", "nope"],
        &["plan", "--cilium-version", "1.18"],
        &["plan", "--cilium-version", "1.30.0"],
        &["plan", "--cilium-version", "1.20.9"],
        &["plan", "--talos-version", "v1.15.0"],
        &[
            "plan",
            "--cilium-version",
            "seed",
            "--profile",
            "talos-basic",
        ],
        &["plan", "--suite", "gateway"],
        &["plan", "--check", "connectivity::pod-to-mars"],
        &[
            "plan",
            "--talos-version",
            "v1.11.5",
            "--kubernetes-version",
            "1.28.0",
        ],
    ];
    let mut text = String::new();
    for args in cases {
        let (code, _, stderr) = harness(args);
        text.push_str(&format!(
            "$ harness {}\nexit {code}\n{stderr}\n",
            args.join(" ")
        ));
    }
    insta::assert_snapshot!(text);
}
