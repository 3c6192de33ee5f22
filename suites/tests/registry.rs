//! The registry and its declarations: each check declared once, with both halves where it is
//! implemented; the documents generated from the declarations are current; and every suite
//! folder keeps its rooms (objects, observe, judge, declaration) with the judges pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use suites::docs::checks_markdown;
use suites::{
    Applicability, CATALOG, CheckStatus, Features, Routing, RunContext, SuiteName,
    implemented_checks,
};

/// Checks that stay declared, not implemented, in this version.
/// Checks declared before they are implemented; none in this version.
const STILL_PENDING: [(&str, &str); 0] = [];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources() -> BTreeMap<String, String> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn every_check_is_implemented_unless_declared_pending() {
    for suite in CATALOG {
        let impls = implemented_checks(suite.name);
        for c in suite.checks {
            let pending = STILL_PENDING.contains(&(suite.name.as_str(), c.name));
            let want = if pending {
                CheckStatus::NotImplemented
            } else {
                CheckStatus::Implemented
            };
            assert_eq!(c.status(), want, "{}::{}", suite.name, c.name);
            assert_eq!(
                impls.contains(&c.name),
                !pending,
                "{}::{}",
                suite.name,
                c.name
            );
        }
    }
    assert!(!checks_markdown().contains("(not implemented in this version)"));
}

#[test]
fn every_check_name_is_a_string_literal_in_exactly_one_source_file() {
    let files = sources();
    for suite in CATALOG {
        for c in suite.checks {
            let literal = format!("\"{}\"", c.name);
            let holders: Vec<&String> = files
                .iter()
                .filter(|(_, text)| text.contains(&literal))
                .map(|(f, _)| f)
                .collect();
            assert_eq!(
                holders.len(),
                1,
                "{}::{} appears as {literal} in {holders:?}; declare it once, in its suite's mod.rs, and refer to it from there",
                suite.name,
                c.name
            );
            let folder = suite.name.as_str().replace('-', "_");
            assert_eq!(
                holders[0],
                &format!("{folder}/mod.rs"),
                "{}::{} is declared outside its suite's declaration",
                suite.name,
                c.name
            );
        }
    }
}

#[test]
fn every_suite_folder_has_its_rooms_and_no_file_is_too_long() {
    let files = sources();
    for suite in CATALOG {
        let folder = suite.name.as_str().replace('-', "_");
        for room in ["mod.rs", "objects.rs", "observe.rs", "judge.rs"] {
            assert!(
                files.contains_key(&format!("{folder}/{room}")),
                "{} has no {room}",
                suite.name
            );
        }
    }
    for (f, text) in &files {
        let lines = text.lines().count();
        assert!(lines <= 650, "{f} has {lines} lines; split it by concern");
    }
}

#[test]
fn judges_are_pure() {
    // A judge takes plain data: no client, no API object types, no clock, no I/O.
    let forbidden = [
        "kube::",
        "k8s_openapi::api",
        "tokio",
        "std::fs",
        "std::process",
        "std::net::TcpStream",
        "Timestamp::now",
        "SystemTime",
        "CheckCtx",
        "&Env",
        "async fn",
        ".await",
    ];
    for (f, text) in sources().iter().filter(|(f, _)| f.ends_with("/judge.rs")) {
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{f} mentions {word}; a judge must be pure"
            );
        }
    }
}

#[test]
fn checks_md_is_generated_from_the_declarations() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/CHECKS.md");
    let want = checks_markdown();
    let have = std::fs::read_to_string(path).unwrap_or_default();
    if have != want && std::env::var_os("UPDATE_CHECKS_MD").is_some() {
        std::fs::write(path, &want).unwrap();
        panic!(
            "suites/CHECKS.md regenerated from the declarations; review it and rerun without UPDATE_CHECKS_MD"
        );
    }
    assert!(
        have == want,
        "suites/CHECKS.md is stale; rerun with UPDATE_CHECKS_MD=1"
    );
    for suite in CATALOG {
        assert!(
            want.contains(&format!("\n## {}\n", suite.name)),
            "{}",
            suite.name
        );
    }
    assert!(want.contains("| `dns::external-name` | an external name resolves from a pod"));
}

fn ctx(nodes: u32, external_target: Option<&str>) -> RunContext {
    RunContext {
        features: Features {
            kube_proxy_replacement: true,
            gateway_api: false,
            wireguard: false,
            node_encryption: false,
            hubble: false,
            hubble_relay: false,
            hubble_ui: false,
            l2_announcements: false,
            l7_proxy: true,
            host_firewall: false,
            bandwidth_manager: false,
            bbr: false,
            mutual_auth_spire: false,
            policy_enforcement: true,
            host_legacy_routing: false,
            routing: Routing::Vxlan,
        },
        nodes,
        external_target: external_target.map(String::from),
        outside: None,
    }
}

#[test]
fn cross_node_checks_need_two_nodes() {
    let suite = suites::catalog::suite(SuiteName::parse("connectivity").unwrap());
    let other = suite.check("pod-to-pod-other-node").unwrap();
    assert!(!suite.check_applicability(other, &ctx(1, None)).applies());
    assert!(suite.check_applicability(other, &ctx(2, None)).applies());
}

#[test]
fn egress_checks_follow_the_external_target() {
    let dns = suites::catalog::suite(SuiteName::parse("dns").unwrap());
    let ext = dns.check("external-name").unwrap();
    assert_eq!(
        dns.check_applicability(ext, &ctx(3, None)),
        Applicability::Skipped(
            "egress disabled (--no-external-target): the run has no route to the internet".into()
        )
    );
    assert!(
        dns.check_applicability(ext, &ctx(3, Some("cilium.io")))
            .applies()
    );
}

/// Every fixture is listed in `tests/fixtures/SOURCES.md` with its source and the versions it
/// stands for, and every listed file exists.
#[test]
fn every_fixture_names_its_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).unwrap();
    let mut listed = std::collections::BTreeMap::new();
    let mut previous: Option<&str> = None;
    for row in sources.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(
            cells.len(),
            3,
            "a row is | file | source | stands for |: {row}"
        );
        let file = cells[0].trim_matches('`');
        // "as above" refers to the row before, which must itself name a source.
        let named = |c: &str| c.len() > 10 || (c.starts_with("as above") && previous.is_some());
        assert!(
            named(cells[1]) && !cells[2].is_empty(),
            "{file}: the row must say its source and what it stands for"
        );
        previous = Some(file);
        assert!(
            listed.insert(file.to_string(), ()).is_none(),
            "{file} is listed twice"
        );
    }
    let present: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SOURCES.md")
        .collect();
    let unlisted: Vec<&String> = present
        .iter()
        .filter(|f| !listed.contains_key(*f))
        .collect();
    let missing: Vec<&String> = listed.keys().filter(|f| !present.contains(*f)).collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "fixtures without a source in SOURCES.md: {unlisted:?}; rows whose file is gone: {missing:?}"
    );
}
