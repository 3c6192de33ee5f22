//! Every bad input exits 2 with one message naming the problem and the fix, and leaves no files.

use std::path::Path;
use std::process::{Command, Output};

fn harness(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(dir)
        .env_remove("HARNESS_PROFILES_DIR")
        .output()
        .expect("the harness binary runs")
}

/// Run in an empty directory, expect exit 2 with `needle` in stderr, and nothing left behind.
fn refuses(args: &[&str], files: &[(&str, &str)], needle: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let before = listing(dir.path());
    let out = harness(dir.path(), args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "args {args:?}\nstderr: {stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for a refused input"
    );
    assert_eq!(listing(dir.path()), before, "no files may be left behind");
    stderr
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    let err = refuses(
        &["plan", "--profile", "talos-basics", "--render", "out"],
        &[],
        "unknown profile 'talos-basics'",
    );
    assert!(
        err.contains("known profiles: k8s-local, native-routing-gateway, service-mesh-spire"),
        "{err}"
    );
}

#[test]
fn malformed_profile_yaml_gives_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("profiles");
    std::fs::create_dir(&pdir).unwrap();
    std::fs::write(
        pdir.join("broken.yaml"),
        "name: broken\ndescription: x\nsource:\n  seed: s\n  section: [oops\n",
    )
    .unwrap();
    let out = harness(
        dir.path(),
        &["plan", "--profiles-dir", "profiles", "--profile", "broken"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.starts_with("error: profiles/broken.yaml:"),
        "{stderr}"
    );
    let pos: Vec<&str> = stderr["error: profiles/broken.yaml:".len()..]
        .splitn(3, ':')
        .collect();
    assert!(
        pos[0].parse::<u32>().is_ok() && pos[1].parse::<u32>().is_ok(),
        "file:line:column in {stderr}"
    );
}

#[test]
fn malformed_matrix_yaml_gives_file_line_column() {
    refuses(
        &["plan", "--matrix", "m.yaml"],
        &[(
            "m.yaml",
            "profiles: [talos-basic]\ncilium_versions: [1.18.4\n",
        )],
        "m.yaml:",
    );
}

#[test]
fn contradictory_values_name_the_key_and_the_fix() {
    // The report: values migrated from k3s point Cilium at the API server's own port.
    // `plan --render` refuses them, and writes no Talos patch moving KubePrism onto 6443.
    let err = refuses(
        &[
            "plan",
            "--profile",
            "talos-basic",
            "--values",
            "v.yaml",
            "--render",
            "out",
        ],
        &[(
            "v.yaml",
            "k8sServiceHost: 127.0.0.1\nk8sServicePort: 6443\n",
        )],
        "k8sServicePort:",
    );
    assert!(err.contains("through KubePrism"), "{err}");
    assert!(
        err.contains("fix: set k8sServiceHost: localhost and k8sServicePort: 7445"),
        "{err}"
    );
    assert!(
        err.contains("talos-basic + talos-in-docker overlay"),
        "{err}"
    );
}

#[test]
fn removed_tunnel_key_is_refused_with_its_fix() {
    let err = refuses(
        &[
            "plan",
            "--profile",
            "native-routing-gateway",
            "--values",
            "v.yaml",
        ],
        &[("v.yaml", "tunnel: disabled\n")],
        "tunnel: the chart refuses to render it: \"tunnel was deprecated in v1.14 and has been removed in v1.15\"",
    );
    assert!(err.contains("routingMode: native"), "{err}");
}

#[test]
fn unknown_suite_and_check_filters() {
    refuses(
        &["plan", "--suite", "dnss"],
        &[],
        "unknown suite 'dnss'; known suites: connectivity, dns",
    );
    refuses(
        &["plan", "--check", "dns::nope"],
        &[],
        "check filter 'dns::nope' matches no check",
    );
}

#[test]
fn malformed_versions() {
    refuses(
        &["plan", "--cilium-version", "1.18"],
        &[],
        "Cilium version '1.18' is malformed: it needs major.minor.patch; write it like 1.20.2",
    );
    refuses(
        &["plan", "--talos-version", "v1.eleven.5"],
        &[],
        "Talos version 'v1.eleven.5' is malformed",
    );
    refuses(
        &["plan", "--kubernetes-version", "latest"],
        &[],
        "Kubernetes version 'latest' is malformed",
    );
    refuses(
        &["plan", "--talos-version", "v1.15.0"],
        &[],
        "Talos v1.15.0 is not in the release table (it knows Talos v1.11 to v1.14); the nearest known releases are v1.14.0 and v1.13.9",
    );
    refuses(
        &["plan", "--cilium-version", "1.17.10"],
        &[],
        "the nearest known releases are 1.18.14 and 1.19.8",
    );
}

#[test]
fn incompatible_talos_and_kubernetes() {
    refuses(
        &[
            "plan",
            "--talos-version",
            "v1.11.5",
            "--kubernetes-version",
            "1.36.0",
        ],
        &[],
        "Talos v1.11.5 supports Kubernetes 1.29 to 1.34, not 1.36.0",
    );
}

#[test]
fn lint_reports_the_seed_pool_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pool.yaml"),
        "apiVersion: cilium.io/v2alpha1\nkind: CiliumLoadBalancerIPPool\nmetadata:\n  name: pool-1\nspec:\n  cidrs:\n  - cidr: 192.168.1.200/29\n",
    )
    .unwrap();
    let out = harness(dir.path(), &["lint", "pool.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout.contains("pool.yaml:6:3: error: spec.cidrs:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rename spec.cidrs to spec.blocks"),
        "{stdout}"
    );
}

#[test]
fn report_merge_of_a_non_junit_file() {
    refuses(
        &["report", "merge", "a.xml", "-o", "out.xml"],
        &[("a.xml", "not xml at all")],
        "a.xml: is not a JUnit report",
    );
}

const KUBECONFIG_TO_NOWHERE: &str = "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
users:
- name: u
  user:
    token: not-a-real-token
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
";

#[test]
fn check_refuses_a_bad_kubeconfig() {
    let args = [
        "check",
        "--profile",
        "talos-basic",
        "--cilium-version",
        "1.18.4",
        "--kubeconfig",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        args.iter().chain(extra).copied().collect()
    };
    refuses(&with(&["missing.yaml"]), &[], "kubeconfig missing.yaml:");
    refuses(
        &with(&["kc.yaml"]),
        &[("kc.yaml", "clusters: [not, a, kubeconfig\n")],
        "kubeconfig kc.yaml:",
    );
    let err = refuses(
        &with(&["kc.yaml", "--context", "nope"]),
        &[("kc.yaml", KUBECONFIG_TO_NOWHERE)],
        "kubeconfig kc.yaml:",
    );
    assert!(err.contains("nope"), "{err}");
    let err = refuses(
        &with(&["kc.yaml"]),
        &[("kc.yaml", KUBECONFIG_TO_NOWHERE)],
        "the API server at https://127.0.0.1:1/",
    );
    assert!(
        err.contains("pass a working one with --kubeconfig"),
        "{err}"
    );
    assert!(
        !err.contains("not-a-real-token"),
        "credentials never reach a message"
    );
}

#[test]
fn check_runs_one_cell_only() {
    refuses(
        &[
            "check",
            "--profile",
            "talos-basic",
            "--cilium-version",
            "1.19.8",
            "--cilium-version",
            "1.20.2",
        ],
        &[],
        "check runs one cell",
    );
}

#[test]
fn operator_replicas_that_cannot_be_scheduled_are_refused_with_the_fix() {
    // The chart's operator wants 2 replicas on distinct nodes; one control plane and no worker
    // give it one node.
    let err = refuses(
        &[
            "plan",
            "--profile",
            "talos-basic",
            "--workers",
            "0",
            "--render",
            "out",
        ],
        &[],
        "operator.replicas: cilium-operator wants 2 replicas, one per node",
    );
    assert!(
        err.contains("fix: set operator.replicas=1, or add workers"),
        "{err}"
    );
}

/// `e2e`, `up` and `check` with many bad inputs at once: one refusal listing every problem with
/// its fix, exit 2, and nothing written. Docker is pointed at a socket that does not exist and
/// PATH holds no tools, so the message is the same on every machine.
#[test]
fn every_problem_is_reported_at_once() {
    let cases: &[&[&str]] = &[
        &[
            "e2e",
            "--profile",
            "talos-basic",
            "--junit",
            "reports",
            "--state-dir",
            "state",
            "--helm",
            "/bin/false",
            "--external-target",
            "one.one.one.one/",
            "--chart-repo",
            "helm.cilium.io",
            "--memory",
            "512MiB",
        ],
        &[
            "up",
            "--config-patch",
            "machine: [",
            "--config-patch-worker",
            "just words",
            "--state-dir",
            "state",
            "--talosctl",
            "/nonexistent/talosctl",
            "--cpus",
            "0",
            "--run-id",
            "Not Valid",
        ],
        &[
            "check",
            "--profile",
            "talos-basic",
            "--kubeconfig",
            "missing.yaml",
            "--junit",
            "reports",
            "--external-target",
            "1.1.1.1",
            "--check",
            "dns::nope",
        ],
    ];
    let mut text = String::new();
    for args in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("reports")).unwrap();
        std::fs::write(dir.path().join("state"), "a file").unwrap();
        let before = listing(dir.path());
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(*args)
            .current_dir(dir.path())
            .env("PATH", "/nonexistent")
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env_remove("HARNESS_PROFILES_DIR")
            .env_remove("HARNESS_STATE_DIR")
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(listing(dir.path()), before, "{args:?} left files");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("state")).unwrap(),
            "a file"
        );
        let arch = format!(
            "linux-{}",
            std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64")
        );
        text.push_str(&format!(
            "$ harness {}\nexit {}\n{}\n",
            args.iter()
                .map(|a| if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.to_string()
                })
                .collect::<Vec<_>>()
                .join(" "),
            out.status.code().unwrap(),
            stderr.replace(&arch, "linux-<arch>")
        ));
    }
    insta::assert_snapshot!(text);
}
