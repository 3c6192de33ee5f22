//! The lint agrees with the real chart. For every profile (with the Talos-in-Docker overlay, as
//! a run installs it) and every Helm values snippet of the seeds, on every stored chart:
//! - what `helm template` refuses, the lint reports as an error;
//! - every error the lint reports is something the chart refuses, a key the chart's
//!   values.schema.json does not define (helm ignores those silently), or a contradiction with
//!   the cluster description.
//!
//! Needs `helm` (on PATH or `$HARNESS_HELM`) and the charts (`../shared/charts` or
//! `$HARNESS_CHARTS_DIR`). Without them the test says why it cannot run; under `CI` that fails.

mod support;

use harness::cluster::ClusterDescription;
use harness::profile::Catalog;
use harness::profile::features::derive;
use harness::profile::lint::keys::KeyTable;
use harness::profile::lint::{self, Basis, Finding, Severity};
use harness::profile::overlay::Overlay;
use harness::version::CiliumVersion;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::values_keys::{default_charts_dir, read_chart};

const CHARTS: &[&str] = &["1.18.4", "1.18.12", "1.19.6", "1.20.0"];
const HELM_TIMEOUT: Duration = Duration::from_secs(60);

fn cannot_run(why: String) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
}

/// `$HARNESS_HELM`, else the pinned Helm 3 `.ci/install-helm.sh` installs (where the render
/// tests find it, `$HARNESS_TEST_HELM_DIR` or `.tools/test-helm`), else `helm` on PATH.
fn find_helm() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HARNESS_HELM") {
        return Some(PathBuf::from(p));
    }
    let pins =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/helm-pins.tsv"))
            .unwrap_or_default();
    let pinned = pins
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').next())
        .find(|v| v.starts_with("v3."));
    if let Some(version) = pinned {
        let dir = std::env::var_os("HARNESS_TEST_HELM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/test-helm"));
        let path = dir.join(version).join("helm");
        if path.is_file() {
            return Some(path);
        }
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("helm"))
        .find(|p| p.is_file())
}

/// A bounded helm call: (succeeded, stdout, stderr).
fn helm(helm: &Path, home: &Path, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(helm)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", helm.display()));
    let start = Instant::now();
    // Drain the pipes on threads, so a large render cannot block the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > HELM_TIMEOUT {
            child.kill().ok();
            panic!("helm {args:?} did not finish within {HELM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.success(),
        out_t.join().unwrap(),
        err_t.join().unwrap(),
    )
}

/// One set of values to compare on.
struct Case {
    name: String,
    values: Value,
}

/// Whether values.schema.json defines `path`: every map on the way lists its keys, until one
/// that lists none (free-form) or a leaf.
fn schema_defines(schema: &Value, path: &str) -> bool {
    let mut node = schema;
    for key in path.split('.') {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return true;
        };
        match props.get(key) {
            Some(child) => node = child,
            None => return false,
        }
    }
    true
}

/// A chart whose only template prints the values helm parsed: turns `--set` flags into the
/// values tree exactly as helm reads them.
fn echo_chart(dir: &Path) -> PathBuf {
    let chart = dir.join("echo");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: echo\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/values.yaml"),
        "{{ toYaml .Values }}\n",
    )
    .unwrap();
    chart
}

/// Shell words of a command line, with quotes removed (enough for the seeds' commands).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// Talos machine-config patches look like values (no `kind`) but are not Helm values.
fn is_talos_patch(doc: &Value) -> bool {
    let Some(map) = doc.as_object() else {
        return false;
    };
    map.keys()
        .all(|k| ["machine", "cluster", "patches"].contains(&k.as_str()))
        && (map.contains_key("machine")
            || map.contains_key("patches")
            || doc["cluster"].get("proxy").is_some()
            || doc["cluster"].get("network").is_some())
}

/// Every Helm values snippet of the seeds: YAML blocks without a `kind`, the `--set` flags of
/// each `cilium install` / `helm install`, and inline `key: value` spans that are values (a key
/// of the chart, or one the chart refuses; prose like `nodeEncryption: false` quotes a nested
/// key without its parent).
fn seed_cases(helm_bin: &Path, home: &Path, chart: &Path) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/seeds");
    let echo = echo_chart(home);
    let fence = regex::Regex::new(r"(?s)```(\w*)\n(.*?)```").unwrap();
    let inline = regex::Regex::new(r"`([A-Za-z][\w.]*): ([^`\s]+)`").unwrap();
    let mut cases = Vec::new();
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    for seed in seeds {
        let text = std::fs::read_to_string(&seed).unwrap();
        let name = seed.file_name().unwrap().to_string_lossy().into_owned();
        let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
        for block in fence.captures_iter(&text) {
            let at = line_of(block.get(0).unwrap().start());
            let (lang, body) = (&block[1], &block[2]);
            if lang == "yaml" || lang == "yml" {
                let docs: Vec<Value> = serde_saphyr::from_multiple(body)
                    .unwrap_or_else(|e| panic!("{name}:{at}: {e}"));
                for doc in docs {
                    if doc.is_object() && doc.get("kind").is_none() && !is_talos_patch(&doc) {
                        cases.push(Case {
                            name: format!("{name}:{at} yaml"),
                            values: doc,
                        });
                    }
                }
                continue;
            }
            let joined = body.replace("\\\n", " ");
            for (i, line) in joined.lines().enumerate() {
                let words = shell_words(line);
                let installs = words.windows(2).any(|w| {
                    (w[0] == "cilium" || w[0] == "helm") && (w[1] == "install" || w[1] == "upgrade")
                });
                let sets: Vec<&String> = words
                    .windows(2)
                    .filter(|w| w[0] == "--set")
                    .map(|w| &w[1])
                    .collect();
                if !installs || sets.is_empty() {
                    continue;
                }
                let mut args = vec!["template", "x", echo.to_str().unwrap()];
                for s in &sets {
                    args.extend(["--set", s.as_str()]);
                }
                let (ok, out, err) = helm(helm_bin, home, &args);
                assert!(ok, "{name}:{at}: helm cannot read the --set flags: {err}");
                let body = out.split_once("\n").map_or("", |(_, rest)| rest);
                let values: Value = serde_saphyr::from_str(body).unwrap();
                cases.push(Case {
                    name: format!("{name}:{} --set", at + i),
                    values,
                });
            }
        }
        let table = KeyTable::for_minor((1, 18)).unwrap();
        for m in inline.captures_iter(&text) {
            let at = line_of(m.get(0).unwrap().start());
            let value: Value = serde_saphyr::from_str(&m[2]).unwrap();
            let mut values = json!({});
            harness::values::set(&mut values, &m[1], value);
            if !table.keys.contains_key(&m[1]) {
                let file = home.join("inline.yaml");
                std::fs::write(&file, serde_json::to_string(&values).unwrap()).unwrap();
                let args = [
                    "template",
                    "x",
                    chart.to_str().unwrap(),
                    "-f",
                    file.to_str().unwrap(),
                ];
                if helm(helm_bin, home, &args).0 {
                    continue;
                }
            }
            cases.push(Case {
                name: format!("{name}:{at} inline `{}: {}`", &m[1], &m[2]),
                values,
            });
        }
    }
    cases
}

fn profile_cases() -> Vec<Case> {
    let overlay = Overlay::embedded();
    Catalog::embedded()
        .profiles()
        .map(|p| {
            let mut values = p.values.clone();
            harness::values::merge(&mut values, &overlay.values(&derive(&p.values)));
            Case {
                name: format!("profile {} + overlay", p.name),
                values,
            }
        })
        .collect()
}

fn errors(f: &[Finding]) -> Vec<&Finding> {
    f.iter().filter(|f| f.severity == Severity::Error).collect()
}

/// A lint error seen: (case, chart version, key).
type Seen = (String, String, String);

/// Every case on one chart: the verdict table and the lint errors seen.
fn agree_on(
    version: &str,
    cases: &[Case],
    cluster: &ClusterDescription,
    helm_bin: &Path,
    charts_dir: &Path,
    home: &Path,
) -> (String, Vec<Seen>) {
    std::fs::create_dir_all(home).unwrap();
    let tgz = charts_dir.join(format!("cilium-{version}.tgz"));
    let schema: Value = serde_json::from_str(&read_chart(&tgz).unwrap().schema).unwrap();
    let cilium = CiliumVersion::parse(version).unwrap();
    let (mut table, mut seen) = (String::new(), Vec::new());
    for case in cases {
        let file = home.join("values.yaml");
        std::fs::write(&file, serde_json::to_string(&case.values).unwrap()).unwrap();
        let (renders, _, stderr) = helm(
            helm_bin,
            home,
            &[
                "template",
                "cilium",
                tgz.to_str().unwrap(),
                "--namespace",
                "kube-system",
                "-f",
                file.to_str().unwrap(),
            ],
        );
        let findings = lint::values(&case.values, &cilium, cluster);
        let errs = errors(&findings);
        let refusal = stderr.lines().next().unwrap_or_default().to_string();
        let context = format!(
            "{} on {version}\nhelm: {}\nlint: {findings:#?}",
            case.name,
            if renders { "renders" } else { &refusal }
        );
        if !renders {
            assert!(
                !errs.is_empty(),
                "helm refuses, the lint does not:\n{context}"
            );
        }
        for e in &errs {
            match e.basis {
                Basis::Chart => assert!(!renders, "a chart error helm does not raise:\n{context}"),
                Basis::Schema => assert!(
                    !renders || !schema_defines(&schema, &e.key),
                    "`{}` is defined by the schema and renders:\n{context}",
                    e.key
                ),
                Basis::Cluster => {}
                other => panic!("an error resting on {other:?}:\n{context}"),
            }
            seen.push((case.name.clone(), version.to_string(), e.key.clone()));
        }
        table += &format!(
            "{version:8} {:7} {:2} error(s) {}\n",
            if renders { "renders" } else { "refused" },
            errs.len(),
            case.name
        );
    }
    (table, seen)
}

#[test]
fn the_lint_agrees_with_helm_template_on_profiles_and_seed_snippets() {
    let Some(helm_bin) = find_helm() else {
        return cannot_run("helm is not on PATH and HARNESS_HELM is not set".into());
    };
    let charts_dir = default_charts_dir();
    if !charts_dir.is_dir() {
        return cannot_run(format!("no charts at {}", charts_dir.display()));
    }
    let home = tempfile::tempdir().unwrap();
    let cluster = ClusterDescription::talos_in_docker(&Overlay::embedded());
    let mut cases = profile_cases();
    let seeds = seed_cases(
        &helm_bin,
        home.path(),
        &charts_dir.join("cilium-1.18.4.tgz"),
    );
    assert!(seeds.len() >= 18, "seed snippets found: {}", seeds.len());
    cases.extend(seeds);

    // One thread per chart: helm renders take most of the time.
    let results: Vec<(String, Vec<Seen>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = CHARTS
            .iter()
            .map(|version| {
                let (cases, cluster, helm_bin) = (&cases, &cluster, &helm_bin);
                let charts_dir = &charts_dir;
                let home = home.path().join(version);
                scope.spawn(move || agree_on(version, cases, cluster, helm_bin, charts_dir, &home))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut table = String::new();
    let mut seen = Vec::new();
    for (t, s) in results {
        table += &t;
        seen.extend(s);
    }
    eprintln!("{table}");
    // The seeds' known problems still surface, on every chart.
    for (needle, key) in [
        ("000_0b0a51f430e0de1c.txt", "tunnel"),
        ("001_a7882a1959f1793d.txt", "kubeProxyReplacement"),
    ] {
        for version in CHARTS {
            assert!(
                seen.iter()
                    .any(|(c, v, k)| c.starts_with(needle) && v == version && k == key),
                "{needle}: `{key}` is not reported on {version}"
            );
        }
    }
    // Every profile is clean on the charts of the minors it is run with.
    for case in profile_cases() {
        for version in ["1.18.4", "1.18.12", "1.19.6"] {
            assert!(
                !seen.iter().any(|(c, v, _)| *c == case.name && v == version),
                "{} has lint errors on {version}",
                case.name
            );
        }
    }
}

/// Manifests of the seeds (YAML blocks and `kubectl apply -f - <<EOF` bodies) of the kinds the
/// lint knows.
fn seed_manifests() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/seeds");
    let fence = regex::Regex::new(r"(?s)```(\w*)\n(.*?)```").unwrap();
    let heredoc = regex::Regex::new(r"(?s)<<\s*'?EOF'?\n(.*?)\nEOF").unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let seed = entry.unwrap().path();
        let text = std::fs::read_to_string(&seed).unwrap();
        let name = seed.file_name().unwrap().to_string_lossy().into_owned();
        for block in fence.captures_iter(&text) {
            let bodies: Vec<String> = if &block[1] == "yaml" {
                vec![block[2].to_string()]
            } else {
                heredoc
                    .captures_iter(&block[2])
                    .map(|h| h[1].to_string())
                    .collect()
            };
            let at = text[..block.get(0).unwrap().start()].matches('\n').count() + 1;
            for body in bodies {
                let docs: Vec<Value> = serde_saphyr::from_multiple(&body).unwrap();
                out.extend(
                    docs.into_iter()
                        .filter(|d| d.get("kind").is_some())
                        .map(|d| (format!("{name}:{at}"), d)),
                );
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn the_seed_pool_with_cidrs_is_reported_on_every_minor() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/seeds");
    if !dir.is_dir() {
        return cannot_run(format!("no seeds at {}", dir.display()));
    }
    let cluster = ClusterDescription::talos_in_docker(&Overlay::embedded());
    let manifests = seed_manifests();
    let pools: Vec<&(String, Value)> = manifests
        .iter()
        .filter(|(_, d)| d["kind"] == "CiliumLoadBalancerIPPool")
        .collect();
    assert_eq!(pools.len(), 1, "seed 001 holds one pool");
    assert!(pools[0].0.starts_with("001_a7882a1959f1793d.txt"));
    for version in CHARTS {
        let cilium = CiliumVersion::parse(version).unwrap();
        let f = lint::manifests::lb_pool(&pools[0].1, &cilium, &cluster);
        assert!(
            f.iter()
                .any(|f| f.key == "spec.cidrs" && f.severity == Severity::Error),
            "{version}: {f:?}"
        );
    }
    // The Service with the old annotation alias is reported too.
    let services: Vec<_> = manifests
        .iter()
        .filter(|(_, d)| d["kind"] == "Service")
        .flat_map(|(_, d)| lint::manifests::service_annotations(d))
        .collect();
    assert_eq!(services.len(), 1, "{services:?}");
}
