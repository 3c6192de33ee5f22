//! `harness e2e` refuses a host that cannot run it before anything exists (exit 2: no container,
//! no network, no report file, no state directory), exits 3 when a phase fails and 130/143 when
//! interrupted, with the report marked so and nothing left behind. Docker is real here; helm is a stand-in and
//! talosctl is talos-docker's fake, which refuses what the real talosctl refuses.

#[path = "../../talos-docker/tests/common/mod.rs"]
mod common;
#[path = "support/registry.rs"]
mod registry;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A stand-in helm: `helm version --short` answers as Helm 3 does (`<version>+g<7 hex of the
/// commit>`, cmd/helm/version.go); nothing else may run in these tests, which end before any
/// install.
const FAKE_HELM: &str = "#!/bin/sh
if [ \"$*\" = 'version --short' ]; then echo 'v3.19.0+g3d8990f'; exit 0; fi
echo \"helm must not run here: $*\" >&2
exit 99
";

/// A PATH with only what the test puts there, plus the basics the stand-ins need.
fn bin_dir(with_helm: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if with_helm {
        let helm = dir.path().join("helm");
        std::fs::write(&helm, FAKE_HELM).unwrap();
        std::fs::set_permissions(&helm, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    dir
}

fn e2e_command(cwd: &Path, bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
    c.arg("e2e")
        .args(args)
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("HARNESS_IMAGE_REGISTRY")
        .env_remove("HARNESS_STATE_DIR")
        // The outside client starts from the probe client image, which cannot be pulled here;
        // the stand-in (busybox: sh, sleep) takes its place.
        .env("HARNESS_IMAGE_CLIENT", common::standin("v1.11.5"));
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// A run in the background, its stderr kept for when it ends early.
fn spawn_e2e(cwd: &Path, bin: &Path, args: &[&str]) -> Child {
    e2e_command(cwd, bin, args, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn e2e(cwd: &Path, bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    e2e_command(cwd, bin, args, env).output().unwrap()
}

/// A one-cell run on stand-in nodes with this test's talosctl, state directory and report.
fn standin_args(env: &common::TestEnv, talosctl: &Path, junit: &Path) -> Vec<String> {
    [
        "--profile",
        "talos-basic",
        "--cilium-version",
        "1.18.4",
        // The stand-in image and the fake talosctl are v1.11.5.
        "--talos-version",
        "v1.11.5",
        "--no-external-target",
        "--workers",
        "1",
        "--cpus",
        "0.5",
        "--memory",
        "2GiB",
        "--talos-image-repo",
        common::STANDIN_REPO,
        "--unprivileged",
        "--run-id",
        &env.run_id,
        "--state-dir",
        env.state_dir().to_str().unwrap(),
        "--talosctl",
        talosctl.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn refused(out: &Output, needle: &str, cwd: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert_eq!(
        std::fs::read_dir(cwd).unwrap().count(),
        0,
        "no report or artifacts may be written"
    );
}

#[test]
fn a_missing_helm_is_refused_with_every_other_problem() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(false);
    let out = e2e(cwd.path(), bin.path(), &["--profile", "talos-basic"], &[]);
    refused(
        &out,
        "helm not found (helm); fix: install Helm 3",
        cwd.path(),
    );
    // Reported with the other missing parts, not one per run.
    refused(&out, "talosctl not found (not on PATH)", cwd.path());
}

#[test]
fn a_bad_image_override_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let out = e2e(
        cwd.path(),
        bin.path(),
        &["--profile", "talos-basic"],
        &[("HARNESS_IMAGE_CLIENT", "mirror.local/alpine-curl")],
    );
    refused(&out, "HARNESS_IMAGE_", cwd.path());
}

#[test]
fn a_missing_talosctl_is_refused_before_any_container() {
    if !common::docker_or_skip("a_missing_talosctl_is_refused_before_any_container") {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let env = common::TestEnv::new("he2e-tc");
    let out = e2e(
        cwd.path(),
        bin.path(),
        &[
            "--profile",
            "talos-basic",
            "--no-external-target",
            "--run-id",
            &env.run_id,
        ],
        &[],
    );
    refused(&out, "talosctl", cwd.path());
    let pinned = harness::releases::ReleaseTable::embedded()
        .newest_talos()
        .talosctl
        .to_string();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&pinned),
        "names the pinned version {pinned}"
    );
    assert!(
        common::leftovers_blocking(&env.run_id).is_empty(),
        "nothing created"
    );
}

#[test]
fn an_absent_talos_image_is_refused_naming_it() {
    if !common::docker_or_skip("an_absent_talos_image_is_refused_naming_it") {
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    std::fs::copy(common::fake_talosctl(), bin.path().join("talosctl")).unwrap();
    let env = common::TestEnv::new("he2e-img");
    // v1.12 has no stand-in image anywhere, and there is no registry to pull it from.
    let out = e2e(
        cwd.path(),
        bin.path(),
        &[
            "--profile",
            "talos-basic",
            "--talos-version",
            "v1.12.11",
            "--no-external-target",
            "--run-id",
            &env.run_id,
        ],
        &[("FAKE_TALOSCTL_VERSION", "v1.12.11")],
    );
    refused(&out, "ghcr.io/siderolabs/talos:v1.12.11", cwd.path());
    assert!(
        common::leftovers_blocking(&env.run_id).is_empty(),
        "nothing created"
    );
}

/// The whole run path with a stand-in cluster that never answers: provisioning creates real
/// containers, fails on the bounded API-server wait, removes everything, and the report says
/// so, with every check skipped for that reason and exit status 3 (a phase failed).
#[test]
fn a_cluster_that_never_answers_fails_the_run_with_a_report_and_leaves_nothing() {
    if !common::docker_or_skip(
        "a_cluster_that_never_answers_fails_the_run_with_a_report_and_leaves_nothing",
    ) {
        return;
    }
    let env = common::TestEnv::new("he2e");
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let talosctl = env.talosctl(&[]);
    let junit = cwd.path().join("reports/junit.xml");
    let state = env.state_dir();
    let mut args = standin_args(&env, &talosctl, &junit);
    args.extend(["--ready-timeout", "2s", "--partition", "hash:1/1"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = e2e(cwd.path(), bin.path(), &args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "a failed phase: {stderr}");
    // What ran, as the report records it: the stand-in Talos image has no registry digest (it
    // was imported), the chart came from the repository (no archive to hash).
    let props = &junit_parser::from_reader(std::io::BufReader::new(
        std::fs::File::open(&junit).unwrap(),
    ))
    .unwrap()
    .suites[0]
        .properties
        .hashmap;
    assert_eq!(
        props["talos.image"],
        format!("{}:v1.11.5", common::STANDIN_REPO)
    );
    assert_eq!(props["talos.image.digest"], "unknown");
    assert_eq!(props["chart.version"], "1.18.4");
    assert_eq!(props["chart.digest"], "unknown");
    // The probe client image as overridden (the pinned one is checked in junit_report.rs).
    assert_eq!(
        props["image.client"],
        format!("docker.io/{}", common::standin("v1.11.5"))
    );
    assert_eq!(props["image.client.digest"], "unknown");
    assert!(!props["harness.commit"].is_empty());
    assert!(!props.contains_key("artifacts"), "nothing was collected");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&junit).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
    let report = junit_parser::from_reader(std::io::BufReader::new(
        std::fs::File::open(&junit).unwrap(),
    ))
    .unwrap();
    let phases = report
        .suites
        .iter()
        .find(|s| s.name.ends_with("::phases"))
        .expect("a phases testsuite");
    assert_eq!(phases.cases.len(), 1, "only provisioning ran");
    let provision = &phases.cases[0];
    assert!(provision.status.is_error());
    assert!(
        provision
            .status
            .error_as_ref()
            .message
            .contains("timed out after 2s"),
        "{:?}",
        provision.status
    );
    let checks: Vec<_> = report
        .suites
        .iter()
        .filter(|s| !s.name.ends_with("::phases"))
        .flat_map(|s| &s.cases)
        .collect();
    assert!(checks.len() >= 40, "every planned check is in the report");
    assert!(checks.iter().all(|c| c.status.is_skipped()));
    assert!(checks.iter().any(|c| {
        c.status
            .skipped_as_ref()
            .message
            .starts_with("not run: provisioning failed")
    }));
    let left = common::leftovers_blocking(&env.run_id);
    assert!(left.is_empty(), "left behind after the run");
    assert!(
        talos_docker::RunDir::scan(&state).is_empty(),
        "run directory left"
    );
    // Every talosctl call of the run, accepted by the talosctl the fake plays: version checks
    // (the preflight's and provisioning's), then provisioning's calls in order.
    let calls = env.talosctl_calls();
    assert!(calls.iter().all(|c| c.refused.is_none()), "{calls:?}");
    let commands: Vec<&str> = calls.iter().filter_map(|c| c.command.as_deref()).collect();
    assert!(commands.contains(&"version"), "{commands:?}");
    let provisioning: Vec<&str> = commands.into_iter().filter(|c| *c != "version").collect();
    assert_eq!(
        provisioning,
        [
            "gen secrets",
            "gen config",
            "config endpoint",
            "config node",
            "bootstrap",
            "kubeconfig"
        ]
    );
}

#[test]
fn a_node_size_talos_cannot_boot_is_refused_before_anything_exists() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let out = e2e(
        cwd.path(),
        bin.path(),
        &["--profile", "talos-basic", "--memory", "512MiB"],
        &[],
    );
    refused(
        &out,
        "memory per node '512 MiB' is invalid: Talos needs at least 1024 MiB",
        cwd.path(),
    );
}

#[test]
fn every_bad_input_is_refused_at_once_and_nothing_is_created() {
    let docker = common::docker_or_skip("every_bad_input_is_refused_at_once");
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    std::fs::copy(common::fake_talosctl(), bin.path().join("talosctl")).unwrap();
    std::fs::create_dir(cwd.path().join("reports")).unwrap();
    std::fs::write(cwd.path().join("state"), "a file").unwrap();
    let env = common::TestEnv::new("he2e-all");
    let out = e2e(
        cwd.path(),
        bin.path(),
        &[
            "--profile",
            "talos-basic",
            "--run-id",
            &env.run_id,
            "--junit",
            "reports",
            "--state-dir",
            "state",
            "--helm",
            "/bin/false",
            "--cpus",
            "1000",
            "--external-target",
            "one.one.one.one/path",
            "--chart-repo",
            "helm.cilium.io",
            "--talos-image-repo",
            common::STANDIN_REPO,
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let mut expected = vec![
        "--junit reports: is a directory; fix: pass a file path, e.g. --junit reports/junit.xml",
        "--state-dir state: is a file, not a directory",
        "/bin/false does not work as helm: `helm version --short` exited with status 1",
        "--external-target 'one.one.one.one/path' is not a host name",
        "--chart-repo 'helm.cilium.io' is not an http(s) URL",
    ];
    if docker {
        expected.push("1000 CPUs per node is more than the");
    }
    for part in &expected {
        assert!(stderr.contains(part), "'{part}' in {stderr}");
    }
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one message: {stderr}"
    );
    let mut left: Vec<String> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["reports", "state"]);
    assert_eq!(
        std::fs::read_dir(cwd.path().join("reports"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("state")).unwrap(),
        "a file"
    );
    if docker {
        assert!(common::leftovers_blocking(&env.run_id).is_empty());
    }
}

fn wait_for_call(env: &common::TestEnv, call: &str, child: &mut Child) {
    wait_for(child, &format!("`{call}`"), Duration::from_secs(90), || {
        env.talosctl_calls().iter().any(|c| c.is(call.trim()))
    });
}

/// Polls `done` until it holds; fails if the run exits first (with its stderr) or `within` passes.
fn wait_for(child: &mut Child, what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("e2e exited ({status}) before {what}: {err}");
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {}s",
            within.as_secs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {sig} {pid}");
}

fn wait_exit(child: Child, within: Duration) -> Output {
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(within);
        if !flag.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &pid.to_string()])
                .status();
        }
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    out
}

fn interrupted_report(junit: &Path) -> junit_parser::TestSuites {
    let report = junit_parser::from_reader(std::io::BufReader::new(
        std::fs::File::open(junit).expect("a report after an interrupt"),
    ))
    .unwrap();
    assert!(!report.suites.is_empty());
    report
}

/// e2e interrupted while talosctl hangs at `step`, with the cluster network (and at bootstrap,
/// the node containers and their volumes) in place: the run removes all of it, writes the
/// report marked interrupted and exits 130/143.
fn interrupted_at(step: &str, sig: &str, status: i32, name: &str) {
    if !common::docker_or_skip("e2e_interrupted") {
        return;
    }
    let env = common::TestEnv::new("he2e-sig");
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let talosctl = env.talosctl(&[("SLEEP_AT", step)]);
    let junit = cwd.path().join("reports/junit.xml");
    let args = standin_args(&env, &talosctl, &junit);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn_e2e(cwd.path(), bin.path(), &args);
    wait_for_call(&env, &format!(" {}", step.replace('-', " ")), &mut child);
    let mid = common::leftovers_blocking(&env.run_id);
    assert_eq!(
        mid.networks.len(),
        1,
        "the network exists: {}",
        common::describe(&mid)
    );
    kill(child.id(), sig);
    let out = wait_exit(child, Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "{stderr}");
    let report = interrupted_report(&junit);
    assert_eq!(
        report.suites[0]
            .properties
            .hashmap
            .get("interrupted")
            .map(String::as_str),
        Some(name)
    );
    let left = common::leftovers_blocking(&env.run_id);
    assert!(left.is_empty(), "left behind: {}", common::describe(&left));
    assert!(
        talos_docker::RunDir::scan(&env.state_dir()).is_empty(),
        "run directory left"
    );
}

#[test]
fn sigint_right_after_the_network_exists_leaves_nothing_and_exits_130() {
    interrupted_at("gen-secrets", "INT", 130, "SIGINT");
}

#[test]
fn sigterm_right_after_the_network_exists_leaves_nothing_and_exits_143() {
    interrupted_at("gen-secrets", "TERM", 143, "SIGTERM");
}

#[test]
fn sigint_with_node_containers_up_leaves_nothing_and_exits_130() {
    interrupted_at("bootstrap", "INT", 130, "SIGINT");
}

#[test]
fn sigterm_with_node_containers_up_leaves_nothing_and_exits_143() {
    interrupted_at("bootstrap", "TERM", 143, "SIGTERM");
}

/// An e2e run whose talosctl hangs at bootstrap, with what must live as long as it.
struct Hanging {
    env: common::TestEnv,
    _cwd: tempfile::TempDir,
    _bin: tempfile::TempDir,
    junit: std::path::PathBuf,
    child: Child,
}

fn hanging_at_bootstrap(
    prefix: &str,
    args: fn(&common::TestEnv, &Path, &Path) -> Vec<String>,
) -> Hanging {
    let env = common::TestEnv::new(prefix);
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let talosctl = env.talosctl(&[("SLEEP_AT", "bootstrap")]);
    let junit = cwd.path().join("reports/junit.xml");
    let args = args(&env, &talosctl, &junit);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = e2e_command(cwd.path(), bin.path(), &args, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Hanging {
        env,
        _cwd: cwd,
        _bin: bin,
        junit,
        child,
    }
}

/// A second SIGINT skips the clean-up, but the report is still written and the advice is a
/// `gc` of this run only; that `gc` then removes everything.
#[test]
fn a_second_sigint_still_reports_and_advises_a_gc_of_this_run() {
    if !common::docker_or_skip("a_second_sigint") {
        return;
    }
    let Hanging {
        env,
        junit,
        mut child,
        // Bound, not `..`: the directories must outlive the child.
        _cwd,
        _bin,
    } = hanging_at_bootstrap("he2e-2nd", standin_args);
    wait_for_call(&env, " bootstrap", &mut child);
    kill(child.id(), "INT");
    std::thread::sleep(Duration::from_millis(30));
    kill(child.id(), "INT");
    let out = wait_exit(child, Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let gc = format!(
        "harness gc --run-id {} --state-dir {}",
        env.run_id,
        env.state_dir().display()
    );
    assert!(stderr.contains(&format!("`{gc}`")), "{stderr}");
    interrupted_report(&junit);
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["gc", "--run-id", &env.run_id, "--state-dir"])
        .arg(env.state_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = common::leftovers_blocking(&env.run_id);
    assert!(left.is_empty(), "left behind: {}", common::describe(&left));
}

/// [`standin_args`] for two cells (two Cilium versions on the stand-in's Talos) at once.
fn two_cell_args(env: &common::TestEnv, talosctl: &Path, junit: &Path) -> Vec<String> {
    let mut args = standin_args(env, talosctl, junit);
    args.extend(["--cilium-version", "1.19.8", "--jobs", "2"].map(String::from));
    args
}

/// The cluster-name prefix of the run's cell `index` (see `run::talos_docker`).
fn cluster_prefix(env: &common::TestEnv, index: usize) -> String {
    let id = talos_docker::RunId::parse(&env.run_id).unwrap();
    format!("h{}-{index}-", harness::run::talos_docker::run_tag(&id))
}

/// A talosctl that fails `gen config` for the cluster whose name starts with `prefix` only,
/// and otherwise is `inner`.
fn failing_for(env_dir: &Path, inner: &Path, prefix: &str) -> std::path::PathBuf {
    let path = env_dir.join("talosctl-failing-one");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncase \"$*\" in *'gen config'*) case \"$*\" in *' {prefix}'*) export FAKE_TALOSCTL_FAIL_AT=gen-config;; esac;; esac\nexec '{}' \"$@\"\n",
            inner.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Two cells at once, each on its own network: interrupted while both hang at bootstrap, the
/// run removes both clusters and exits 130.
#[test]
fn two_cells_run_at_once_on_disjoint_subnets_and_an_interrupt_cleans_both() {
    if !common::docker_or_skip("two_cells_at_once_interrupted") {
        return;
    }
    let Hanging {
        env,
        junit,
        mut child,
        // Bound, not `..`: the directories must outlive the child.
        _cwd,
        _bin,
    } = hanging_at_bootstrap("he2e-par", two_cell_args);
    let deadline = Instant::now() + Duration::from_secs(120);
    while env
        .talosctl_calls()
        .iter()
        .filter(|c| c.is("bootstrap"))
        .count()
        < 2
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "e2e exited before both cells reached bootstrap"
        );
        assert!(
            Instant::now() < deadline,
            "both cells were not at bootstrap at once within 120s: {:?}",
            env.talosctl_calls()
                .iter()
                .map(|c| c.line())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mid = common::leftovers_blocking(&env.run_id);
    let mut networks: Vec<(&str, &str)> = mid
        .networks
        .iter()
        .map(|n| (n.name.as_str(), n.detail.as_str()))
        .collect();
    networks.sort();
    assert_eq!(networks.len(), 2, "{}", common::describe(&mid));
    assert!(
        networks[0].0.starts_with(&cluster_prefix(&env, 0)),
        "{networks:?}"
    );
    assert!(
        networks[1].0.starts_with(&cluster_prefix(&env, 1)),
        "{networks:?}"
    );
    assert_ne!(networks[0].1, networks[1].1, "subnets: {networks:?}");
    let nets: Vec<talos_docker::Ipv4Net> = networks.iter().map(|n| n.1.parse().unwrap()).collect();
    assert!(!nets[0].overlaps(&nets[1]), "{networks:?}");
    for (name, _) in &networks {
        assert!(
            mid.containers.iter().any(|c| c.cluster() == Some(name)),
            "{name} has its nodes: {}",
            common::describe(&mid)
        );
    }
    kill(child.id(), "INT");
    let out = wait_exit(child, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("2 cell(s) at once (--jobs)"), "{stderr}");
    let report = interrupted_report(&junit);
    let phases: Vec<_> = report
        .suites
        .iter()
        .filter(|s| s.name.ends_with("::phases"))
        .collect();
    assert_eq!(phases.len(), 2, "both cells are in the report");
    let left = common::leftovers_blocking(&env.run_id);
    assert!(left.is_empty(), "left behind: {}", common::describe(&left));
    assert!(talos_docker::RunDir::scan(&env.state_dir()).is_empty());
}

/// One of two parallel cells fails early; the other still runs its provisioning to the end
/// (its bounded API-server wait) and reports its own reason, and both are removed.
#[test]
fn a_failing_cell_leaves_the_other_cells_result_intact() {
    if !common::docker_or_skip("a_failing_cell_leaves_the_other") {
        return;
    }
    let env = common::TestEnv::new("he2e-one");
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    let inner = env.talosctl(&[]);
    let second = cluster_prefix(&env, 1);
    let talosctl = failing_for(bin.path(), &inner, &second);
    let junit = cwd.path().join("reports/junit.xml");
    let mut args = two_cell_args(&env, &talosctl, &junit);
    args.extend(["--ready-timeout", "3s"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = e2e(cwd.path(), bin.path(), &args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let report = junit_parser::from_reader(std::io::BufReader::new(
        std::fs::File::open(&junit).unwrap(),
    ))
    .unwrap();
    let provision = |cilium: &str| {
        let suite = report
            .suites
            .iter()
            .find(|s| s.name.ends_with("::phases") && s.name.contains(cilium))
            .unwrap_or_else(|| panic!("cell of cilium {cilium} reported"));
        assert_eq!(suite.cases.len(), 1, "only provisioning ran");
        suite.cases[0].status.error_as_ref().message.clone()
    };
    let first = provision("1.18.4");
    assert!(first.contains("timed out after 3s"), "{first}");
    let failed = provision("1.19.8");
    assert!(failed.contains("refuses gen-config"), "{failed}");
    // The first cell ran every provisioning step for its own cluster.
    let first_name = cluster_prefix(&env, 0);
    let firsts: Vec<String> = env
        .talosctl_calls()
        .iter()
        .filter(|c| c.line().contains(&first_name) || c.is("bootstrap") || c.is("kubeconfig"))
        .filter_map(|c| c.command.clone())
        .collect();
    assert!(firsts.contains(&"bootstrap".to_string()), "{firsts:?}");
    assert!(firsts.contains(&"kubeconfig".to_string()), "{firsts:?}");
    let left = common::leftovers_blocking(&env.run_id);
    assert!(left.is_empty(), "left behind: {}", common::describe(&left));
    assert!(talos_docker::RunDir::scan(&env.state_dir()).is_empty());
}

/// `--registry-mirror` against a real registry on loopback: a mirror that answers lets the run
/// go on, and every node's config gets it in the form of the cell's Talos release (v1.11: the
/// v1alpha1 `.machine.registries.mirrors`), as a patch `talosctl gen config` accepts; one that
/// does not answer is refused before anything exists.
#[test]
fn a_registry_mirror_reaches_the_node_config_and_a_dead_one_is_refused() {
    if !common::docker_or_skip("a_registry_mirror") {
        return;
    }
    let Some(reg) = registry::LocalRegistry::start_or_skip("a_registry_mirror") else {
        return;
    };
    let env = common::TestEnv::new("he2e-mir");
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(true);
    // Held at bootstrap, while the patch files talosctl read still exist.
    let talosctl = env.talosctl(&[("SLEEP_AT", "bootstrap")]);
    let junit = cwd.path().join("reports/junit.xml");
    let mut args = standin_args(&env, &talosctl, &junit);
    args.extend(["--registry-mirror", &format!("quay.io={}", reg.url)].map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = e2e_command(cwd.path(), bin.path(), &argv, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_call(&env, " bootstrap", &mut child);
    let gen_config = env
        .talosctl_calls()
        .into_iter()
        .find(|c| c.is("gen config"))
        .expect("gen config ran");
    let patches: Vec<String> = gen_config
        .argv
        .windows(2)
        .filter(|w| w[0] == "--config-patch")
        .map(|w| std::fs::read_to_string(w[1].trim_start_matches('@')).unwrap())
        .collect();
    let mirror = patches
        .iter()
        .find(|p| p.contains("registries"))
        .unwrap_or_else(|| panic!("a mirror patch in {patches:?}"));
    let doc: serde_json::Value = serde_saphyr::from_str(mirror).unwrap();
    assert_eq!(
        doc["machine"]["registries"]["mirrors"]["quay.io"]["endpoints"][0],
        reg.url.as_str()
    );
    kill(child.id(), "INT");
    let out = wait_exit(child, Duration::from_secs(90));
    assert_eq!(out.status.code(), Some(130));
    assert!(common::leftovers_blocking(&env.run_id).is_empty());

    // The same run with the mirror gone: refused, nothing made.
    drop(reg);
    let cwd = tempfile::tempdir().unwrap();
    let junit = cwd.path().join("reports/junit.xml");
    let mut args = standin_args(&env, &talosctl, &junit);
    args.extend(["--registry-mirror", "http://127.0.0.1:9"].map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = e2e(cwd.path(), bin.path(), &argv, &[]);
    refused(
        &out,
        "the registry mirror for * does not answer http://127.0.0.1:9/v2/",
        cwd.path(),
    );
    assert!(common::leftovers_blocking(&env.run_id).is_empty());
}

/// A helm for the install phase: it marks that the install reached it (the outside client must
/// exist by then) and holds until the test releases it, then fails as a broken install does.
fn holding_helm(bin: &Path, mark: &Path, release: &Path) {
    let helm = bin.join("helm");
    std::fs::write(
        &helm,
        format!(
            "#!/bin/sh\nif [ \"$*\" = 'version --short' ]; then echo 'v3.19.0+g3d8990f'; exit 0; fi\n\
             echo \"$*\" > '{mark}'\nwhile [ ! -e '{release}' ]; do sleep 0.1; done\n\
             echo 'Error: INSTALLATION FAILED: the test said so' >&2\nexit 1\n",
            mark = mark.display(),
            release = release.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// e2e on stand-in nodes that skips the API-server wait, so it reaches the install (held by
/// [`holding_helm`]) with the outside client started; returns once helm runs, with the outside
/// client as Docker shows it then.
struct AtInstall {
    env: common::TestEnv,
    /// Holds the report and helm's files until the test ends.
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    release: std::path::PathBuf,
    junit: std::path::PathBuf,
}

fn run_to_install(prefix: &str) -> Option<(AtInstall, Child)> {
    if !common::docker_or_skip("e2e_outside_client") {
        return None;
    }
    let env = common::TestEnv::new(prefix);
    let cwd = tempfile::tempdir().unwrap();
    let bin = bin_dir(false);
    let mark = cwd.path().join("helm-ran");
    let release = cwd.path().join("helm-release");
    holding_helm(bin.path(), &mark, &release);
    let talosctl = env.talosctl(&[]);
    let junit = cwd.path().join("reports/junit.xml");
    let mut args = standin_args(&env, &talosctl, &junit);
    args.push("--no-api-wait".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = spawn_e2e(cwd.path(), bin.path(), &args);
    wait_for(&mut child, "the install", Duration::from_secs(120), || {
        mark.exists()
    });
    Some((
        AtInstall {
            env,
            _dirs: (cwd, bin),
            release,
            junit,
        },
        child,
    ))
}

/// The run's outside client as Docker shows it: (name, its labels, the networks it is on).
fn outside_client(run_id: &str) -> Vec<(String, String, String)> {
    let out = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label=io.harness.run-id={run_id}"),
            "--filter",
            "label=io.harness.role=outside-client",
            "--format",
            "{{.Names}}\t{{.Labels}}\t{{.Networks}}",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut f = l.split('\t').map(String::from);
            (
                f.next().unwrap_or_default(),
                f.next().unwrap_or_default(),
                f.next().unwrap_or_default(),
            )
        })
        .collect()
}

/// The outside client exists while the install runs: one container, on the cluster network,
/// labelled with the run and the cluster; returns the cluster (network) name.
fn assert_outside_client_up(run: &AtInstall) -> String {
    let found = outside_client(&run.env.run_id);
    assert_eq!(found.len(), 1, "{found:?}");
    let (name, labels, network) = &found[0];
    assert!(name.ends_with("-outside"), "{name}");
    let cluster = name.trim_end_matches("-outside").to_string();
    assert_eq!(network, &cluster, "on the cluster's network only");
    for l in [
        format!("io.harness.cluster={cluster}"),
        "talos.owned=true".to_string(),
        format!("talos.cluster.name={cluster}"),
    ] {
        assert!(labels.contains(&l), "{l} in {labels}");
    }
    assert!(!labels.contains("talos.type="), "not a node: {labels}");
    cluster
}

#[test]
fn a_failed_install_removes_the_outside_client_with_the_cluster() {
    let Some((run, child)) = run_to_install("he2e-outf") else {
        return;
    };
    assert_outside_client_up(&run);
    std::fs::write(&run.release, "").unwrap();
    let out = wait_exit(child, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "a failed phase: {stderr}");
    let report = std::fs::read_to_string(&run.junit).unwrap();
    assert!(
        report.contains("the test said so"),
        "the report says the install failed as helm said: {report}"
    );
    let left = common::leftovers_blocking(&run.env.run_id);
    assert!(left.is_empty(), "left behind: {}", common::describe(&left));
}

fn interrupted_with_the_outside_client_up(sig: &str, status: i32) {
    let Some((run, child)) = run_to_install("he2e-outs") else {
        return;
    };
    assert_outside_client_up(&run);
    kill(child.id(), sig);
    let out = wait_exit(child, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "{stderr}");
    let left = common::leftovers_blocking(&run.env.run_id);
    assert!(left.is_empty(), "left behind: {}", common::describe(&left));
    interrupted_report(&run.junit);
}

#[test]
fn sigint_with_the_outside_client_up_removes_it_and_exits_130() {
    interrupted_with_the_outside_client_up("INT", 130);
}

#[test]
fn sigterm_with_the_outside_client_up_removes_it_and_exits_143() {
    interrupted_with_the_outside_client_up("TERM", 143);
}

#[test]
fn after_a_sigkill_gc_finds_and_removes_the_outside_client() {
    let Some((run, child)) = run_to_install("he2e-outk") else {
        return;
    };
    assert_outside_client_up(&run);
    kill(child.id(), "KILL");
    let _ = wait_exit(child, Duration::from_secs(30));
    // Killed: nothing was cleaned up, and the outside client is still there for gc to find.
    assert_eq!(outside_client(&run.env.run_id).len(), 1);
    let gc = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "gc",
            "--run-id",
            &run.env.run_id,
            "--state-dir",
            run.env.state_dir().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&gc.stdout);
    assert!(
        gc.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    // One control plane, one worker and the outside client.
    assert!(
        stdout.contains("removed 3 container(s)"),
        "gc removed the outside client with the nodes: {stdout}"
    );
    let left = common::leftovers_blocking(&run.env.run_id);
    assert!(left.is_empty(), "left behind: {}", common::describe(&left));
}
