//! Every error message and note a person reads from the harness's run side, as snapshots, so a
//! change to one is reviewed as a diff. Each typed error is listed through an exhaustive match:
//! a new variant does not compile until it is added here.

use harness::errors::{Error, InputError, Refused, RunError, ValueFinding};
use harness::preflight;
use harness::run::exec_plugin::PluginError;
use harness::run::signals::{self, Signal};
use harness::run::talos_docker::explain;
use std::path::PathBuf;
use talos_docker::{PreflightError, RunId};

/// Every variant, each with values shaped like the real ones.
fn every_input_error() -> Vec<InputError> {
    let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
    let all = vec![
        InputError::UnknownProfile {
            given: "talos-basics".into(),
            known: "k8s-local, talos-basic".into(),
        },
        InputError::MalformedYaml {
            file: "m.yaml".into(),
            line: 2,
            column: 18,
            message: "unclosed bracket '['".into(),
        },
        InputError::InvalidFile {
            file: "pool.yaml".into(),
            message: "cannot lint kind Deployment; pass Helm values, CiliumLoadBalancerIPPool or Service manifests".into(),
        },
        InputError::MalformedVersion {
            what: "Cilium",
            given: "1.18".into(),
            why: "it needs major.minor.patch".into(),
            example: "1.18.4",
        },
        InputError::Unsupported("Talos v1.14.0 is not supported: the harness knows Talos v1.10 to v1.13; pick e.g. v1.11.5".into()),
        InputError::InvalidValues {
            context: "talos-basic_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1 (profile talos-basic + talos-in-docker overlay + v.yaml)".into(),
            findings: vec![ValueFinding {
                key: "tunnel".into(),
                problem: "removed in Cilium 1.15".into(),
                fix: "use `routingMode: native` for `tunnel: disabled`".into(),
            }],
        },
        InputError::Filter(suites::FilterError::NoMatch {
            given: "dns::nope".into(),
        }),
        InputError::EmptyMatrix(
            "every combination is excluded: Talos v1.11.5 supports Kubernetes 1.29 to 1.34, not 1.28.0".into(),
        ),
        InputError::Read {
            path: PathBuf::from("values.yaml"),
            source: io(),
        },
        InputError::Write {
            path: PathBuf::from("out/values.yaml"),
            source: io(),
        },
        InputError::NotADirectory {
            path: PathBuf::from("profiles.yaml"),
        },
        InputError::Report("a.xml: is not a JUnit report".into()),
        InputError::Cluster(PreflightError::TooManyCpus {
            requested: 1000.0,
            host: 2,
        }),
        InputError::problem(
            "helm not found (helm)",
            "install Helm 3 (https://helm.sh/docs/intro/install/) or pass --helm PATH",
        ),
        InputError::Lint {
            errors: 2,
            files: "pool.yaml, values.yaml".into(),
        },
        InputError::Recording {
            path: PathBuf::from("rec/recording.json"),
            problem: "is format 2, newer than this harness reads (format 1); it was recorded by harness 0.3.0 (commit 9f1c2ab)".into(),
            fix: "replay it with harness 0.3.0 (commit 9f1c2ab) or newer".into(),
        },
    ];
    for e in &all {
        // Exhaustive on purpose: a new variant must be added above.
        match e {
            InputError::UnknownProfile { .. }
            | InputError::MalformedYaml { .. }
            | InputError::InvalidFile { .. }
            | InputError::MalformedVersion { .. }
            | InputError::Unsupported(_)
            | InputError::InvalidValues { .. }
            | InputError::Filter(_)
            | InputError::EmptyMatrix(_)
            | InputError::Read { .. }
            | InputError::Write { .. }
            | InputError::NotADirectory { .. }
            | InputError::Report(_)
            | InputError::Cluster(_)
            | InputError::Problem { .. }
            | InputError::Lint { .. }
            | InputError::Recording { .. } => {}
        }
    }
    all
}

fn every_run_error() -> Vec<RunError> {
    let all = vec![
        RunError::Provision {
            message: "timed out after 2s waiting for the API server at https://127.0.0.1:40123 to list nodes h1-controlplane-1, h1-worker-1; last seen: GET /api/v1/nodes: connection refused".into(),
            aftermath: "the cluster harness-1a2b3c4d (run ci-7) was removed".into(),
        },
        RunError::Panicked("index out of bounds: the len is 0 but the index is 0".into()),
        RunError::Report {
            message: "cannot write reports/junit.xml: Permission denied (os error 13)".into(),
        },
        RunError::Record {
            message: "cannot write rec/recording.json: No space left on device (os error 28)"
                .into(),
        },
        RunError::Docker {
            message: "docker: cannot list containers: error trying to connect".into(),
        },
        RunError::Cleanup {
            message: "container h1-worker-1: removal already in progress".into(),
            retry: "harness gc --run-id ci-7".into(),
        },
        RunError::Tool(
            "talosctl-linux-amd64: sha256 0a1b... does not match e3b0... in sha256sum.txt".into(),
        ),
        RunError::Images(
            "quay.io/cilium/cilium:v1.18.4 is not in the Docker engine (no such image); `harness images pull` it first".into(),
        ),
        RunError::Os {
            what: "install the SIGINT/SIGTERM handlers",
            source: std::io::Error::from(std::io::ErrorKind::Unsupported),
        },
        RunError::Plugin(
            PluginError::Timeout {
                program: "aws".into(),
                timeout: std::time::Duration::from_secs(15),
            }
            .to_string(),
        ),
    ];
    for e in &all {
        match e {
            RunError::Provision { .. }
            | RunError::Panicked(_)
            | RunError::Report { .. }
            | RunError::Record { .. }
            | RunError::Docker { .. }
            | RunError::Cleanup { .. }
            | RunError::Tool(_)
            | RunError::Images(_)
            | RunError::Os { .. }
            | RunError::Plugin(_) => {}
        }
    }
    all
}

fn listing(items: impl IntoIterator<Item = String>) -> String {
    items
        .into_iter()
        .map(|m| format!("error: {m}\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn input_errors() {
    insta::assert_snapshot!(listing(every_input_error().iter().map(ToString::to_string)));
}

#[test]
fn run_errors_and_refusals() {
    let mut all: Vec<String> = every_run_error().iter().map(ToString::to_string).collect();
    let one: Error =
        InputError::problem("--junit reports: is a directory", "pass a file path").into();
    all.push(one.to_string());
    let many = Refused(vec![
        InputError::problem(
            "--junit reports: is a directory",
            "pass a file path, e.g. --junit reports/junit.xml",
        ),
        InputError::InvalidValues {
            context: "talos-basic_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1".into(),
            findings: vec![
                ValueFinding {
                    key: "gatewayAPI.enabled".into(),
                    problem: "Gateway API needs kube-proxy replacement".into(),
                    fix: "set kubeProxyReplacement: true".into(),
                },
                ValueFinding {
                    key: "tunnel".into(),
                    problem: "removed in Cilium 1.15".into(),
                    fix: "use routingMode".into(),
                },
            ],
        },
    ]);
    all.push(many.to_string());
    insta::assert_snapshot!(listing(all));
}

#[test]
fn preflight_messages() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let mut all = Vec::new();
    for target in [
        "https://one.one.one.one/",
        "1.1.1.1",
        "bad_label.example.com",
        "-x.example.com",
        "",
    ] {
        all.push(preflight::external_target(target).unwrap_err().to_string());
    }
    all.push(
        preflight::http_url("--chart-repo", "helm.cilium.io")
            .unwrap_err()
            .to_string(),
    );
    all.push(
        preflight::http_url("--chart-repo", "ftp://mirror.local/charts")
            .unwrap_err()
            .to_string(),
    );
    let shown = |e: InputError| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "<tmp>")
    };
    all.push(shown(
        preflight::output_file("--junit", dir.path()).unwrap_err(),
    ));
    all.push(shown(
        preflight::output_file("--junit", &file.join("junit.xml")).unwrap_err(),
    ));
    all.push(shown(
        preflight::output_dir("--state-dir", &file).unwrap_err(),
    ));
    all.push(shown(
        preflight::output_dir(
            "--artifacts",
            std::path::Path::new("/proc/harness/artifacts"),
        )
        .unwrap_err(),
    ));
    for ok in ["one.one.one.one", "cilium.io.", "a-b.example"] {
        assert!(preflight::external_target(ok).is_ok(), "{ok}");
    }
    preflight::http_url("--chart-repo", "https://helm.cilium.io").unwrap();
    preflight::output_file("--junit", &dir.path().join("new/dir/junit.xml")).unwrap();
    assert!(!dir.path().join("new").exists(), "a check creates nothing");
    insta::assert_snapshot!(listing(all));
}

#[tokio::test]
async fn a_helm_that_does_not_run_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    all.push(
        preflight::helm_runs(std::path::Path::new("/bin/false"))
            .await
            .unwrap_err()
            .to_string(),
    );
    let broken = dir.path().join("helm");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'Error: unknown command \"version\"' >&2\nexit 64\n",
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    all.push(
        preflight::helm_runs(&broken)
            .await
            .unwrap_err()
            .to_string()
            .replace(&dir.path().display().to_string(), "<tmp>"),
    );
    insta::assert_snapshot!(listing(all));
}

#[test]
fn notes_on_signals_and_on_runs_that_collide() {
    let run_id = RunId::parse("amd64-shard-1").unwrap();
    let gc = "harness gc --run-id amd64-shard-1";
    let text = [
        signals::first_note(Signal::Int, run_id.as_str()),
        signals::first_note(Signal::Term, run_id.as_str()),
        signals::second_note(run_id.as_str(), gc),
        explain(
            talos_docker::Error::Preflight(PreflightError::NameClash {
                name: "h5f3a2c1d-0-talos-basic".into(),
                objects: "network 'h5f3a2c1d-0-talos-basic'".into(),
            }),
            &run_id,
            gc,
        ),
        explain(
            talos_docker::Error::Preflight(PreflightError::NoFreeSubnet),
            &run_id,
            gc,
        ),
    ]
    .join("\n\n");
    insta::assert_snapshot!(text);
}

/// What a person reads when a kubeconfig's exec plugin gives no credential: the program's name,
/// what went wrong and what to do, never its output.
#[test]
fn exec_plugin_messages() {
    let program = || "aws".to_string();
    let all = vec![
        PluginError::Start {
            program: program(),
            why: "entity not found".into(),
        },
        PluginError::Timeout {
            program: program(),
            timeout: std::time::Duration::from_secs(15),
        },
        PluginError::Failed {
            program: program(),
            status: "exit status: 1".into(),
        },
        PluginError::NotACredential {
            program: program(),
            why: "no status",
        },
    ];
    for e in &all {
        match e {
            PluginError::Start { .. }
            | PluginError::Timeout { .. }
            | PluginError::Failed { .. }
            | PluginError::NotACredential { .. } => {}
        }
    }
    insta::assert_snapshot!(listing(all.iter().map(|e| e.to_string())));
}

/// A YAML file past one of the reading limits: which limit, and how to fix the file.
#[test]
fn yaml_limit_messages() {
    let shown = |text: &str| {
        let e = harness::yaml::from_str::<serde_json::Value>(text).unwrap_err();
        InputError::yaml("values.yaml", &e).to_string()
    };
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{p}"); 10].join(", ")
        ));
    }
    let all = vec![
        shown(&bomb),
        shown(&format!("{}1{}", "[".repeat(100), "]".repeat(100))),
        shown("a: 1\n---\nb: 2\n"),
        {
            let e = harness::yaml::from_multiple::<serde_json::Value>(&"---\na: 1\n".repeat(600))
                .unwrap_err();
            InputError::yaml("manifests.yaml", &e).to_string()
        },
        shown("a: 1\nb: 2\na: 3\n"),
    ];
    insta::assert_snapshot!(listing(all));
}
