//! Every talosctl invocation talos-docker makes, checked against what each supported talosctl
//! minor accepts (the grammar tables in `talos-docker/grammar/`), and the tables themselves
//! checked against talosctl's source.

#[path = "support/talosctl_grammar.rs"]
mod grammar;
#[path = "support/grammar_from_source.rs"]
mod grammar_from_source;

use std::path::PathBuf;

/// Regenerates (with `UPDATE_GRAMMAR=1`) or checks the committed tables against a
/// siderolabs/talos clone: `TALOS_GIT_DIR=/path/to/talos/.git`.
#[test]
#[ignore = "reads talosctl's Go sources: needs a siderolabs/talos clone in TALOS_GIT_DIR"]
fn grammar_tables_match_the_talos_sources() {
    let git_dir = PathBuf::from(
        std::env::var_os("TALOS_GIT_DIR").expect("TALOS_GIT_DIR names a siderolabs/talos clone"),
    );
    let update = std::env::var_os("UPDATE_GRAMMAR").is_some();
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/grammar"));
    let mut stale = Vec::new();
    for tag in grammar_from_source::TAGS {
        let g = grammar_from_source::grammar_at(&git_dir, tag).unwrap_or_else(|e| panic!("{e}"));
        let text = grammar_from_source::render(&g);
        assert_eq!(
            grammar::load(&text).unwrap(),
            g,
            "{tag}: the rendered table reads back"
        );
        let minor = grammar::minor_of(tag).unwrap();
        let path = dir.join(format!("talosctl-{minor}.yaml"));
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (regenerate with UPDATE_GRAMMAR=1): {stale:?}"
    );
}

use std::time::Duration;

use grammar::{Grammar, Refusal};
use talos_docker::talosctl::{GenConfig, Invocation};
use talos_docker::{PatchTarget, RunDir, RunId, TalosVersion};

fn every_table() -> Vec<Grammar> {
    grammar::TABLES
        .iter()
        .map(|(minor, text)| grammar::load(text).unwrap_or_else(|e| panic!("{minor}: {e}")))
        .collect()
}

fn strings(call: &Invocation) -> Vec<String> {
    call.to_strings()
}

/// The upgrade gate's `upgrade-k8s` call is one every supported talosctl accepts, read as meant:
/// the target version, the run's talosconfig, and no node list (the talosconfig's one node).
#[test]
fn upgrade_k8s_is_accepted_by_every_supported_talosctl() {
    let state = tempfile::tempdir().unwrap();
    let dir = RunDir::create(state.path(), &RunId::parse("grammar-2").unwrap(), "e2e").unwrap();
    let call = Invocation::upgrade_k8s(&dir, "v1.37.0");
    for g in every_table() {
        let p = g
            .parse(&strings(&call))
            .unwrap_or_else(|r| panic!("talosctl {} refuses upgrade-k8s: {r}", g.talosctl));
        assert_eq!(p.command, "upgrade-k8s");
        assert_eq!(
            p.value("to"),
            Some("1.37.0"),
            "bare, as talosctl's --to takes it"
        );
        assert_eq!(
            p.value("talosconfig"),
            Some(dir.file("talosconfig").to_str().unwrap())
        );
        assert_eq!(p.value("nodes"), None);
    }
}

/// Each supported Talos release, with and without a Kubernetes version, with a patch for every
/// node type: the calls `Invocation::provisioning` makes (the ones `Cluster::create` runs) are
/// accepted by every talosctl minor and read by each the way they are meant.
#[test]
fn every_provisioning_call_is_accepted_and_read_alike_by_every_supported_talosctl() {
    let state = tempfile::tempdir().unwrap();
    let dir = RunDir::create(state.path(), &RunId::parse("grammar-1").unwrap(), "e2e").unwrap();
    let patches: Vec<(&'static str, PathBuf)> = [
        PatchTarget::All,
        PatchTarget::ControlPlane,
        PatchTarget::Worker,
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| (t.flag(), dir.file(&format!("patch-{i}.yaml"))))
    .collect();
    let tables = every_table();
    assert_eq!(tables.len(), 5, "v1.10 to v1.14");
    for talos in ["v1.10.9", "v1.11.5", "v1.12.11", "v1.13.9", "v1.14.0"] {
        for kubernetes in [None, Some("v1.34.1")] {
            let version = TalosVersion::parse(talos).unwrap();
            let config = GenConfig {
                cluster: "e2e",
                endpoint: "https://10.5.0.2:6443",
                talos_version: &version,
                kubernetes_version: kubernetes,
                patches: &patches,
                timeout: Duration::from_secs(1),
            };
            let calls = Invocation::provisioning(&dir, &config, "127.0.0.1:50001", "10.5.0.2");
            for g in &tables {
                let read = |call: &Invocation| {
                    g.parse(&strings(call)).unwrap_or_else(|r| {
                        panic!(
                            "talosctl {} refuses `{}` ({}): {r}",
                            g.talosctl,
                            strings(call).join(" "),
                            call.step
                        )
                    })
                };
                let path = |name: &str| dir.file(name).display().to_string();
                let [
                    version_call,
                    secrets,
                    gen_config,
                    endpoint,
                    node,
                    bootstrap,
                    kubeconfig,
                ] = calls.as_slice()
                else {
                    panic!("{calls:?}")
                };

                let p = read(version_call);
                assert_eq!(p.command, "version");
                assert!(p.bool("client", false) && p.bool("short", false));

                let p = read(secrets);
                assert_eq!(p.command, "gen secrets");
                assert_eq!(p.value("output-file"), Some(path("secrets.yaml").as_str()));

                let p = read(gen_config);
                assert_eq!(p.command, "gen config");
                assert_eq!(p.args, ["e2e", "https://10.5.0.2:6443"]);
                assert_eq!(p.value("output"), Some(dir.path().to_str().unwrap()));
                assert_eq!(p.value("output-dir"), None, "the hidden legacy flag");
                assert_eq!(p.value("with-secrets"), Some(path("secrets.yaml").as_str()));
                assert_eq!(p.value("talos-version"), Some(version.minor_tag().as_str()));
                assert_eq!(
                    p.value("kubernetes-version"),
                    kubernetes.map(|k| k.trim_start_matches('v'))
                );
                for (i, flag) in [
                    "config-patch",
                    "config-patch-control-plane",
                    "config-patch-worker",
                ]
                .iter()
                .enumerate()
                {
                    assert_eq!(
                        p.values(flag, grammar::FlagType::StringArray),
                        [format!("@{}", path(&format!("patch-{i}.yaml")))]
                    );
                }

                for (call, command, value) in [
                    (endpoint, "config endpoint", "127.0.0.1:50001"),
                    (node, "config node", "10.5.0.2"),
                ] {
                    let p = read(call);
                    assert_eq!(p.command, command);
                    assert_eq!(p.args, [value]);
                    assert_eq!(p.value("talosconfig"), Some(path("talosconfig").as_str()));
                }

                let p = read(bootstrap);
                assert_eq!(p.command, "bootstrap");
                assert!(p.args.is_empty());
                assert_eq!(
                    p.values("nodes", grammar::FlagType::StringSlice),
                    ["10.5.0.2"]
                );

                let p = read(kubeconfig);
                assert_eq!(p.command, "kubeconfig");
                assert_eq!(p.args, [path("kubeconfig")]);
                assert!(
                    !p.bool("merge", true),
                    "never merged into another kubeconfig"
                );
                assert!(p.bool("force", false));
                assert_eq!(p.value("talosconfig"), Some(path("talosconfig").as_str()));
                assert_eq!(
                    p.values("nodes", grammar::FlagType::StringSlice),
                    ["10.5.0.2"]
                );
            }
        }
    }
}

fn usage_error(g: &Grammar, argv: &[&str]) -> String {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    match g.parse(&argv) {
        Err(Refusal::Usage { message, .. }) => message,
        other => panic!("talosctl {} reads {argv:?} as {other:?}", g.talosctl),
    }
}

/// What issue 7 found: `--talosconfig` in front of `gen` worked up to v1.10, where it was a
/// root flag, and is refused from v1.11, where only node-facing commands and `config` have it.
#[test]
fn talosconfig_before_gen_is_refused_from_v1_11() {
    let argv: Vec<String> = ["--talosconfig", "/run/talosconfig", "gen", "secrets"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for g in every_table() {
        let read = g.parse(&argv);
        if g.talosctl.starts_with("v1.10.") {
            assert_eq!(read.unwrap().command, "gen secrets");
        } else {
            assert_eq!(
                read.unwrap_err(),
                Refusal::Usage {
                    message: "unknown flag: --talosconfig".into(),
                    command: "talosctl gen secrets".into()
                },
                "{}",
                g.talosctl
            );
        }
    }
}

#[test]
fn cobra_and_pflag_refusals_read_as_talosctl_prints_them() {
    let g = grammar::for_version("v1.12.11").unwrap();
    assert_eq!(
        usage_error(&g, &["gen", "config", "c"]),
        "accepts 2 arg(s), received 1"
    );
    assert_eq!(
        usage_error(&g, &["bootstrap", "10.5.0.2"]),
        r#"unknown command "10.5.0.2" for "talosctl bootstrap""#
    );
    assert_eq!(
        usage_error(&g, &["versoin"]),
        "unknown command \"versoin\" for \"talosctl\"\n\nDid you mean this?\n\tversion\n"
    );
    assert_eq!(
        usage_error(&g, &["config", "endpoint"]),
        "requires at least 1 arg(s), only received 0"
    );
    // A bool takes its value only with `=`: `--merge false` leaves "false" as a second path.
    assert_eq!(
        usage_error(&g, &["kubeconfig", "/k", "--merge", "false"]),
        "accepts at most 1 arg(s), received 2"
    );
    assert_eq!(
        usage_error(&g, &["kubeconfig", "--merge=maybe"]),
        r#"invalid argument "maybe" for "-m, --merge" flag: strconv.ParseBool: parsing "maybe": invalid syntax"#
    );
    assert_eq!(
        usage_error(&g, &["gen", "secrets", "--output-file"]),
        "flag needs an argument: --output-file"
    );
    assert_eq!(
        usage_error(&g, &["gen", "secrets", "-o"]),
        "flag needs an argument: 'o' in -o"
    );
    assert_eq!(
        usage_error(&g, &["gen", "secrets", "-x"]),
        "unknown shorthand flag: 'x' in -x"
    );
    // An unknown flag before the command swallows the word after it, as cobra's lookup does.
    assert_eq!(
        usage_error(&g, &["--force", "gen", "secrets"]),
        r#"unknown command "secrets" for "talosctl""#
    );
    // Shorthands, `=` forms, bundles and `--` read as pflag reads them.
    let argv: Vec<String> = [
        "gen",
        "config",
        "-fp=false",
        "-ocfg",
        "--additional-sans=a,b",
        "--",
        "c",
        "https://h:6443",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let p = g.parse(&argv).unwrap();
    assert!(p.bool("force", false) && !p.bool("persist", true));
    assert_eq!(p.value("output"), Some("cfg"));
    assert_eq!(
        p.values("additional-sans", grammar::FlagType::StringSlice),
        ["a", "b"]
    );
    assert_eq!(p.args, ["c", "https://h:6443"]);
    // v1.13 removed `--persist`.
    let v113 = grammar::for_version("v1.13.9").unwrap();
    assert_eq!(
        usage_error(&v113, &["gen", "config", "c", "https://h:6443", "-p"]),
        "unknown shorthand flag: 'p' in -p"
    );
}

#[test]
fn hidden_help_and_unmodelled_commands_are_told_apart() {
    let g = grammar::for_version("v1.14.0-rc.1").unwrap();
    let argv = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let p = g
        .parse(&argv(&[
            "gen",
            "config",
            "c",
            "https://h:6443",
            "--output-dir",
            "d",
        ]))
        .unwrap();
    assert_eq!(p.value("output-dir"), Some("d"), "hidden, still accepted");
    assert_eq!(
        g.parse(&argv(&["gen", "secrets", "-h"])),
        Err(Refusal::Help {
            command: "talosctl gen secrets".into()
        })
    );
    assert_eq!(
        g.parse(&argv(&["gen"])),
        Err(Refusal::Help {
            command: "talosctl gen".into()
        }),
        "a command without Run prints its help"
    );
    assert_eq!(
        g.parse(&argv(&["dmesg", "-n", "10.5.0.2"])),
        Err(Refusal::NotModelled {
            command: "talosctl dmesg".into()
        })
    );
    assert_eq!(
        g.parse(&argv(&["config", "proxy-url"])),
        Err(Refusal::NotModelled {
            command: "talosctl config proxy-url".into()
        })
    );
    // Aliases are commands too.
    assert_eq!(
        g.parse(&argv(&["config", "endpoints", "a", "b"]))
            .unwrap()
            .command,
        "config endpoint"
    );
}
