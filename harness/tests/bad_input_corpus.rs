//! The bad-input corpus: one folder per case under `harness/tests/bad-input/`, each holding
//! `case.yaml` (the arguments, environment, tools on PATH and expected exit status), an optional
//! `files/` tree copied into the empty working directory, and `stderr.snap`, the message a
//! person reads (an insta snapshot: `cargo insta review` after a deliberate change).
//!
//! Each case runs the real binary in an empty working directory with its own state directory,
//! home and PATH, bounded in time (a hang fails the case), and then asserts that nothing was left
//! behind: the working directory exactly as it was, no state or home files, and no Docker object
//! carrying the case's run id. Grow it with every bad input found later: add a folder.

#[path = "../../talos-docker/tests/common/mod.rs"]
mod common;

use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any bad input may take to be refused (the slowest checks ask Docker and run helm).
const BOUND: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What is wrong with the input, in a line.
    about: String,
    args: Vec<String>,
    #[serde(default = "refused")]
    exit: i32,
    /// Extra environment; `{work}` is the working directory.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// What is on PATH besides nothing: `helm` (a stand-in answering `helm version`),
    /// `talosctl` (talos-docker's fake, v1.11.5).
    #[serde(default)]
    tools: Vec<Tool>,
    /// Whether the real Docker engine is reachable (default) or DOCKER_HOST points nowhere.
    #[serde(default)]
    docker: DockerMode,
    /// The command reports on stdout (lint's findings); otherwise a refusal prints nothing there.
    #[serde(default)]
    stdout: bool,
}

fn refused() -> i32 {
    2
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Tool {
    Helm,
    Talosctl,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum DockerMode {
    #[default]
    Real,
    Absent,
}

/// A stand-in helm: `helm version --short` answers as Helm 3.19 does; nothing else may run,
/// since no bad input gets as far as an install.
const FAKE_HELM: &str = "#!/bin/sh
if [ \"$*\" = 'version --short' ]; then echo 'v3.19.0+g3d8990f'; exit 0; fi
echo \"helm must not run for a bad input: $*\" >&2
exit 99
";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input")
}

fn main() {
    let args = Arguments::from_args();
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory exists")
        .flatten()
        .filter(|e| e.path().join("case.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let trials = names
        .into_iter()
        .map(|name| Trial::test(name.clone(), move || run_case(&name)))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// The case's run id: stable (it appears in messages) and its own (for the Docker check).
fn run_id(name: &str) -> String {
    let id = format!("bad-{name}");
    id.chars().take(63).collect()
}

fn run_case(name: &str) -> Result<(), Failed> {
    let dir = corpus_dir().join(name);
    let text = std::fs::read_to_string(dir.join("case.yaml"))?;
    let case: Case = serde_saphyr::from_str(&text).map_err(|e| format!("case.yaml: {e}"))?;
    let docker = case.docker == DockerMode::Real && needs_docker(&case);
    if docker && !common::docker_or_skip(name) {
        return Ok(());
    }

    let work = tempfile::tempdir()?;
    let state = tempfile::tempdir()?;
    let home = tempfile::tempdir()?;
    let bin = tempfile::tempdir()?;
    if dir.join("files").is_dir() {
        copy_tree(&dir.join("files"), work.path())?;
    }
    for tool in &case.tools {
        match tool {
            Tool::Helm => {
                let helm = bin.path().join("helm");
                std::fs::write(&helm, FAKE_HELM)?;
                std::fs::set_permissions(
                    &helm,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )?;
            }
            Tool::Talosctl => {
                std::fs::copy(common::fake_talosctl(), bin.path().join("talosctl"))?;
            }
        }
    }
    let before = listing(work.path());
    let run_id = run_id(name);
    // Whatever the case does, the engine is left as it was found (the assertion below says
    // whether the harness did that itself).
    let _guard = docker.then(|| common::RunGuard(run_id.clone()));

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(&case.args)
        .current_dir(work.path())
        .env_clear()
        .env("PATH", bin.path())
        .env("HOME", home.path())
        .env("HARNESS_STATE_DIR", state.path())
        .env("HARNESS_RUN_ID", &run_id)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match case.docker {
        DockerMode::Absent => {
            cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
        }
        DockerMode::Real => {
            if let Some(host) = std::env::var_os("DOCKER_HOST") {
                cmd.env("DOCKER_HOST", host);
            }
            // The outside client's image cannot be pulled here: the stand-in (present, as the
            // Talos image is) keeps each case about its own problem. A case's env may override it.
            cmd.env("HARNESS_IMAGE_CLIENT", common::standin("v1.11.5"));
        }
    }
    let work_text = work.path().display().to_string();
    for (k, v) in &case.env {
        cmd.env(k, v.replace("{work}", &work_text));
    }
    let (code, stdout, stderr) = bounded(cmd, name)?;

    let mut problems = Vec::new();
    if code != Some(case.exit) {
        problems.push(format!(
            "exit status {code:?}, expected {} ({})",
            case.exit, case.about
        ));
    }
    if !case.stdout && !stdout.is_empty() {
        problems.push(format!("a refusal writes nothing on stdout, but: {stdout}"));
    }
    // Cases plant credentials as `planted-...` (a kubeconfig token, a server URL's user info,
    // an exec plugin's output and stderr): none may reach what a person reads.
    for (stream, text) in [("stderr", &stderr), ("stdout", &stdout)] {
        if text.contains("planted-") {
            problems.push(format!("a planted credential reached {stream}: {text}"));
        }
    }
    let after = listing(work.path());
    if after != before {
        problems.push(format!(
            "the working directory changed:\n  before {before:?}\n  after  {after:?}"
        ));
    }
    for (what, d) in [("state", state.path()), ("home", home.path())] {
        let left = listing(d);
        if !left.is_empty() {
            problems.push(format!("files left in the {what} directory: {left:?}"));
        }
    }
    if docker {
        let left = common::leftovers_blocking(&run_id);
        if !left.is_empty() {
            problems.push(format!("docker objects left: {}", common::describe(&left)));
        }
    }
    let shown = normalise(
        &stderr,
        &[
            (work.path(), "<work>"),
            (state.path(), "<state>"),
            (home.path(), "<home>"),
            (bin.path(), "<bin>"),
        ],
    );
    let mut snapshot = format!(
        "$ harness {}\nexit {}\n{}",
        shown_args(&case.args),
        code.map_or("killed".to_string(), |c| c.to_string()),
        shown
    );
    if case.stdout {
        snapshot.push_str("--- stdout\n");
        snapshot.push_str(&normalise(&stdout, &[(work.path(), "<work>")]));
    }
    let snapshot_check = std::panic::catch_unwind(|| {
        insta::with_settings!({
            snapshot_path => dir.clone(),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            info => &case.about,
        }, {
            insta::assert_snapshot!("stderr", snapshot);
        });
    });
    if snapshot_check.is_err() {
        problems.push("the message differs from stderr.snap (see the diff above)".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// Whether the command may reach Docker at all before refusing (the others never connect).
fn needs_docker(case: &Case) -> bool {
    matches!(
        case.args.first().map(String::as_str),
        Some("e2e" | "up" | "down" | "gc" | "ls")
    )
}

/// Runs `cmd`, killing it at [`BOUND`]: a bad input that hangs is a failure.
fn bounded(mut cmd: Command, name: &str) -> Result<(Option<i32>, String, String), Failed> {
    let mut child = cmd.spawn()?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            return Err(
                format!("{name}: still running after {}s (a hang)", BOUND.as_secs()).into(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((
        status.code(),
        reader.join().unwrap_or_default(),
        err_reader.join().unwrap_or_default(),
    ))
}

fn shown_args(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\'', '"', '*', '!', '[', '{', '\n']) {
                format!("'{}'", a.replace('\'', "'\\''").replace('\n', "\\n"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Temporary paths as placeholders, and the host's architecture and core count as words, so
/// the snapshot is the same on every machine.
fn normalise(text: &str, paths: &[(&Path, &str)]) -> String {
    let mut out = text.to_string();
    for (p, name) in paths {
        out = out.replace(&p.display().to_string(), name);
    }
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    out = out.replace(&format!("linux-{arch}"), "linux-<arch>");
    // The Docker host's size is the machine's, not the case's.
    let cpus = regex::Regex::new(r"the \d+ CPUs of the Docker host; lower --cpus to at most \d+")
        .expect("a valid pattern");
    cpus.replace_all(
        &out,
        "the <n> CPUs of the Docker host; lower --cpus to at most <n>",
    )
    .into_owned()
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
            let mode = e.metadata()?.permissions();
            std::fs::set_permissions(&target, mode)?;
        }
    }
    Ok(())
}

/// Every path under `dir` with its size, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        match e.metadata() {
            Ok(m) if m.is_dir() => {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            }
            Ok(m) => out.push(format!("{rel} ({} bytes)", m.len())),
            Err(_) => out.push(rel),
        }
    }
}
