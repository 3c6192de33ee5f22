//! The real `harness up | down | ls | gc` binary against the real Docker engine, with the
//! stand-in image and talos-docker's fake talosctl (it refuses what the real talosctl refuses):
//! signals, crashes and failures leave nothing behind, and bad input is refused before anything
//! is made.

#[path = "../../talos-docker/tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn harness() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
    c.env_remove("HARNESS_STATE_DIR").env_remove("RUST_LOG");
    c
}

/// `harness up` for a small stand-in cluster of this test; `extra` flags replace the defaults
/// of the same name. HOME points into the test's directory so that any write to ~/.kube or
/// ~/.talos would show.
fn up(env: &TestEnv, talosctl: &Path, extra: &[&str]) -> Command {
    let image = standin("v1.11.5");
    let defaults = [
        ("--name", env.name.as_str()),
        ("--run-id", env.run_id.as_str()),
        ("--image", image.as_str()),
        ("--memory", "1GiB"),
        ("--cpus", "0.5"),
        ("--workers", "1"),
        ("--ready-timeout", "20s"),
    ];
    let mut c = harness();
    c.arg("up");
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            c.args([flag, value]);
        }
    }
    c.arg("--talosctl")
        .arg(talosctl)
        .arg("--state-dir")
        .arg(env.state_dir())
        .arg("--unprivileged")
        .args(extra)
        .env("HOME", home(env));
    c
}

fn home(env: &TestEnv) -> PathBuf {
    env.tmp.path().join("home")
}

fn run(mut c: Command) -> Output {
    c.output().expect("run harness")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn wait_for_call(env: &TestEnv, call: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env.talosctl_calls().iter().any(|c| c.is(call)) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("harness exited ({status}) before `{call}`: {err}");
        }
        assert!(Instant::now() < deadline, "no `{call}` within 60s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("harness did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(target: &str, sig: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("kill -s {sig} -- {target}")])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {sig} -- {target}");
}

fn assert_clean(env: &TestEnv) {
    let left = leftovers_blocking(&env.run_id);
    assert!(left.is_empty(), "left behind: {}", describe(&left));
    let run_dirs = talos_docker::RunDir::scan(&env.state_dir());
    assert!(run_dirs.is_empty(), "run directories left: {run_dirs:?}");
    assert!(!home(env).join(".kube").exists(), "~/.kube was touched");
    assert!(!home(env).join(".talos").exists(), "~/.talos was touched");
}

/// Starts `up` with talosctl hanging at bootstrap (containers exist by then) and sends `sig`.
fn interrupted_at_bootstrap(prefix: &str, sig: &str) -> (TestEnv, Option<i32>, String) {
    let env = TestEnv::new(prefix);
    let mut child = up(&env, &env.talosctl(&[("SLEEP_AT", "bootstrap")]), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_call(&env, "bootstrap", &mut child);
    let mid = leftovers_blocking(&env.run_id);
    assert_eq!(mid.containers.len(), 2, "{}", describe(&mid));
    assert_eq!(mid.networks.len(), 1);
    signal(&child.id().to_string(), sig);
    let (code, stderr) = wait_exit(&mut child, Duration::from_secs(60));
    (env, code, stderr)
}

#[test]
fn sigint_mid_provisioning_removes_everything_and_exits_130() {
    if !docker_or_skip("sigint") {
        return;
    }
    let (env, code, stderr) = interrupted_at_bootstrap("hc-int", "INT");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert_clean(&env);
}

#[test]
fn sigterm_mid_provisioning_removes_everything_and_exits_143() {
    if !docker_or_skip("sigterm") {
        return;
    }
    let (env, code, stderr) = interrupted_at_bootstrap("hc-term", "TERM");
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_clean(&env);
}

#[test]
fn gc_removes_what_a_killed_run_left() {
    if !docker_or_skip("gc_killed_run") {
        return;
    }
    let env = TestEnv::new("hc-kill");
    let mut c = up(&env, &env.talosctl(&[("SLEEP_AT", "bootstrap")]), &[]);
    // Its own process group, so SIGKILL takes the (fake) talosctl down with it.
    c.process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    wait_for_call(&env, "bootstrap", &mut child);
    signal(&format!("-{}", child.id()), "KILL");
    let (code, _) = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(code, None, "killed by a signal");

    let left = leftovers_blocking(&env.run_id);
    assert_eq!(left.containers.len(), 2, "{}", describe(&left));
    assert_eq!(left.networks.len(), 1);
    assert_eq!(left.volumes.len(), 2 * 6, "labelled anonymous volumes");
    assert_eq!(talos_docker::RunDir::scan(&env.state_dir()).len(), 1);

    let mut ls = harness();
    ls.arg("ls").arg("--state-dir").arg(env.state_dir());
    let out = run(ls);
    let listing = text(&out.stdout);
    let row = listing
        .lines()
        .find(|l| l.contains(&env.run_id))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(row.starts_with(&env.name), "{row}");
    assert!(row.contains("2/2 running"), "{row}");
    assert!(
        row.split_whitespace().any(|w| w.ends_with('s')),
        "an age: {row}"
    );

    let gc = |older: &str| {
        let mut c = harness();
        c.args(["gc", "--run-id", &env.run_id, "--older-than", older])
            .arg("--state-dir")
            .arg(env.state_dir());
        run(c)
    };
    let out = gc("1h");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("nothing to remove"),
        "a fresh run is younger than 1h: {}",
        text(&out.stdout)
    );
    assert!(!leftovers_blocking(&env.run_id).is_empty());

    let out = gc("0s");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("removed 2 container(s), 1 network(s), 12 volume(s), 1 run dir(s)"),
        "{said}"
    );
    assert_clean(&env);
}

#[test]
fn keep_on_failure_keeps_the_cluster_and_down_removes_it() {
    if !docker_or_skip("keep_on_failure") {
        return;
    }
    let env = TestEnv::new("hc-keep");
    let talosctl = env.talosctl(&[("FAIL_AT", "bootstrap")]);
    let out = run(up(&env, &talosctl, &["--keep-on-failure"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("fake talosctl refuses bootstrap"),
        "{stderr}"
    );
    let run_dir = env.state_dir().join(&env.run_id).join(&env.name);
    for expected in [
        format!("kubeconfig:  {}", run_dir.join("kubeconfig").display()),
        format!("talosconfig: {}", run_dir.join("talosconfig").display()),
        format!("harness down {}", env.name),
    ] {
        assert!(stderr.contains(&expected), "{expected} in {stderr}");
    }
    assert!(run_dir.join("talosconfig").exists());
    let kept = leftovers_blocking(&env.run_id);
    assert_eq!(kept.containers.len(), 2, "{}", describe(&kept));

    let down = || {
        let mut c = harness();
        c.args(["down", &env.name]);
        run(c)
    };
    let out = down();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("removed 2 container(s), 1 network(s)"));
    assert_clean(&env);
    let again = down();
    assert!(again.status.success(), "down is idempotent");
    assert!(text(&again.stdout).contains("nothing to remove"));
}

#[test]
fn a_failed_wait_names_what_it_awaited_removes_everything_and_exits_1() {
    if !docker_or_skip("ready_timeout") {
        return;
    }
    let env = TestEnv::new("hc-wait");
    let out = run(up(&env, &env.talosctl(&[]), &["--ready-timeout", "2s"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("timed out after 2s waiting for the API server at https://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("last seen: GET /api/v1/nodes"), "{stderr}");
    assert!(stderr.contains("was removed"), "{stderr}");
    assert_clean(&env);
}

/// With no Talos answering on the nodes, `up` gets through secrets and machine configs (every
/// call accepted by the talosctl the fake plays), fails where the first node-facing call meets
/// no node, names what it waited for and what it saw, and leaves nothing behind.
#[test]
fn up_fails_only_where_no_node_answers_and_leaves_nothing() {
    if !docker_or_skip("no_node_answers") {
        return;
    }
    let env = TestEnv::new("hc-nonode");
    let talosctl = env.talosctl(&[("NODES", "unreachable")]);
    let out = run(up(&env, &talosctl, &["--bootstrap-timeout", "5s"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "timed out after 5s waiting for talosctl bootstrap to be accepted by the first control plane"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("error executing bootstrap: rpc error: code = Unavailable"),
        "what the last attempt saw: {stderr}"
    );
    let calls = env.talosctl_calls();
    assert!(calls.iter().all(|c| c.refused.is_none()), "{calls:?}");
    let commands: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.command.as_deref())
        .filter(|c| *c != "bootstrap")
        .collect();
    assert_eq!(
        commands,
        [
            "version",
            "gen secrets",
            "gen config",
            "config endpoint",
            "config node"
        ]
    );
    assert!(
        calls.iter().filter(|c| c.is("bootstrap")).count() >= 2,
        "retried"
    );
    assert_clean(&env);
}

/// Runs `up` expecting exit status 2, the message parts, and nothing created.
fn assert_refused(env: &TestEnv, c: Command, expected: &[&str]) {
    let out = run(c);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "one message: {stderr}"
    );
    for part in expected {
        assert!(stderr.contains(part), "'{part}' in {stderr}");
    }
    assert!(!env.state_dir().exists(), "no state directory was made");
    assert_clean(env);
}

#[test]
fn an_unreachable_docker_daemon_is_refused() {
    let env = TestEnv::new("hc-nodock");
    let mut c = up(&env, &env.talosctl(&[]), &[]);
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let out = run(c);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for part in [
        "cannot reach the Docker daemon at unix:///nonexistent/docker.sock",
        "start the daemon",
        "DOCKER_HOST",
    ] {
        assert!(stderr.contains(part), "'{part}' in {stderr}");
    }
    assert!(!env.state_dir().exists());
}

#[test]
fn an_image_that_is_absent_and_cannot_be_pulled_is_refused() {
    if !docker_or_skip("absent_image") {
        return;
    }
    let env = TestEnv::new("hc-noimg");
    let c = up(
        &env,
        &env.talosctl(&[]),
        &["--image", "harness-test/absent:v1.11.5"],
    );
    let started = Instant::now();
    assert_refused(
        &env,
        c,
        &[
            "the image harness-test/absent:v1.11.5 is not present locally and cannot be pulled",
            "docker pull harness-test/absent:v1.11.5",
            "docker load",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(60), "no hang");
}

#[test]
fn a_missing_talosctl_is_refused_with_the_pinned_download() {
    if !docker_or_skip("missing_talosctl") {
        return;
    }
    let env = TestEnv::new("hc-notc");
    let c = up(&env, Path::new("/nonexistent/talosctl"), &[]);
    assert_refused(
        &env,
        c,
        &[
            "talosctl not found (/nonexistent/talosctl is not an executable file)",
            "https://github.com/siderolabs/talos/releases/download/v1.11.5/talosctl-",
        ],
    );

    // Nor on PATH.
    let mut c = harness();
    c.args(["up", "--name", &env.name, "--run-id", &env.run_id])
        .arg("--state-dir")
        .arg(env.state_dir())
        .env("PATH", env.tmp.path().join("empty-path"));
    assert_refused(&env, c, &["talosctl not found (not on PATH)", "v1.11.5"]);
}

#[test]
fn a_talosctl_of_another_minor_version_is_refused() {
    if !docker_or_skip("wrong_talosctl") {
        return;
    }
    let env = TestEnv::new("hc-oldtc");
    let c = up(&env, &env.talosctl(&[("VERSION", "v1.10.3")]), &[]);
    assert_refused(
        &env,
        c,
        &[
            "is talosctl v1.10.3, but the Talos image is v1.11.5",
            "releases/download/v1.11.5/talosctl-",
        ],
    );
}

#[test]
fn a_taken_subnet_and_a_taken_name_are_refused_naming_the_network() {
    if !docker_or_skip("taken") {
        return;
    }
    let env = TestEnv::new("hc-taken");
    let squatter = format!("{}-sq", env.name);
    let subnet = squat_network(&squatter, &format!("{}-sq", env.run_id));
    let _squat_guard = RunGuard(format!("{}-sq", env.run_id));

    let c = up(&env, &env.talosctl(&[]), &["--subnet", &subnet.to_string()]);
    let expected = format!("subnet {subnet} is already used by docker network '{squatter}'");
    assert_refused(&env, c, &[&expected, "--subnet"]);

    let c = up(&env, &env.talosctl(&[]), &["--name", &squatter]);
    let expected = format!("a cluster named '{squatter}' already exists (network '{squatter}')");
    assert_refused(&env, c, &[&expected, &format!("harness down {squatter}")]);
}

#[test]
fn more_memory_than_the_host_has_is_refused() {
    if !docker_or_skip("memory") {
        return;
    }
    let env = TestEnv::new("hc-mem");
    let c = up(&env, &env.talosctl(&[]), &["--memory", "4096GiB"]);
    assert_refused(
        &env,
        c,
        &[
            "not enough memory: 2 node(s) x 4194304 MiB",
            "lower --memory",
        ],
    );
}

#[test]
fn malformed_flags_are_refused() {
    let env = TestEnv::new("hc-flags");
    for (args, part) in [
        (&["--subnet", "10.5.0.1/24"][..], "did you mean 10.5.0.0/24"),
        (&["--name", "Not_A_Name"][..], "cluster name 'Not_A_Name'"),
        (&["--control-planes", "0"][..], "at least one control plane"),
        (&["--talos-version", "latest"][..], "Talos version 'latest'"),
    ] {
        let out = run(up(&env, &env.talosctl(&[]), args));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(part), "'{part}' in {stderr}");
        assert!(!env.state_dir().exists());
    }
}
