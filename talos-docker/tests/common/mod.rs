//! Shared by the Docker tests of talos-docker and of the harness CLI (included there by path).
//!
//! Each test gets its own cluster name, run id and temporary directory, and a guard that removes
//! every object carrying its run id however the test ends, so tests can run in parallel. talosctl
//! is `fake-talosctl`, which accepts and refuses what the real talosctl of its version does.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use talos_docker::cleanup::{self, Inventory};
use talos_docker::docker::Engine;
use talos_docker::labels::Selector;
use talos_docker::{ClusterSpec, Error, Readiness, ReadinessTarget, RunId, TalosVersion};

pub const STANDIN_REPO: &str = "harness-test/talos-standin";
pub const VERSIONS: [&str; 2] = ["v1.11.5", "v1.14.0"];

pub fn fixtures() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../talos-docker/tests/fixtures"
    ))
    .to_path_buf()
}

pub fn standin(version: &str) -> String {
    format!("{STANDIN_REPO}:{version}")
}

/// The engine, or `None` with the reason printed. Under CI a missing engine fails the test:
/// the Docker tests must run there.
pub async fn engine_or_skip(test: &str) -> Option<Engine> {
    match Engine::connect(Duration::from_secs(10)).await {
        Ok(engine) => {
            ensure_standin();
            Some(engine)
        }
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so {test} needs the Docker engine, but: {e}")
        }
        Err(e) => {
            eprintln!("skipping {test}: {e}");
            None
        }
    }
}

/// [`engine_or_skip`] for tests that are not async.
pub fn docker_or_skip(test: &str) -> bool {
    let test = test.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(engine_or_skip(&test))
            .is_some()
    })
    .join()
    .unwrap()
}

/// Builds the stand-in image once per machine; the lock keeps parallel test processes from
/// importing it twice (which would leave a dangling image).
pub fn ensure_standin() {
    let lock_path = std::env::temp_dir().join("harness-talos-standin.lock");
    let lock = fs::File::create(&lock_path).expect("create the stand-in lock file");
    lock.lock().expect("lock the stand-in lock file");
    let tags: Vec<String> = VERSIONS.iter().map(|v| standin(v)).collect();
    let present = Command::new("docker")
        .args(["image", "inspect"])
        .args(&tags)
        .output()
        .expect("run docker image inspect")
        .status
        .success();
    if !present {
        let out = Command::new(fixtures().join("build-standin.sh"))
            .args(&tags)
            .output()
            .expect("run build-standin.sh");
        assert!(
            out.status.success(),
            "building the stand-in image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Short, unique, valid as a cluster name (and a run id).
pub fn unique(prefix: &str) -> String {
    let id = RunId::generate();
    let tail = id.as_str().rsplit('-').next().unwrap_or_default();
    format!("{prefix}-{:x}-{tail}", std::process::id())
}

/// Removes every object of a run id when dropped.
pub struct RunGuard(pub String);

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Err(e) = cleanup::remove_blocking(Selector::run(&self.0), Duration::from_secs(10)) {
            eprintln!("test cleanup of run {}: {e}", self.0);
        }
    }
}

pub struct TestEnv {
    pub name: String,
    pub run_id: String,
    pub tmp: tempfile::TempDir,
    _guard: RunGuard,
}

impl TestEnv {
    pub fn new(prefix: &str) -> TestEnv {
        let name = unique(prefix);
        let run_id = format!("test-{name}");
        TestEnv {
            _guard: RunGuard(run_id.clone()),
            name,
            run_id,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn log(&self) -> PathBuf {
        self.tmp.path().join("talosctl.log")
    }

    /// A talosctl on a private path: the fake (see [`fake_talosctl`]) with these settings
    /// (`FAKE_TALOSCTL_*` without the prefix, e.g. `("FAIL_AT", "bootstrap")`), logging its
    /// calls to this test's log.
    pub fn talosctl(&self, settings: &[(&str, &str)]) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let bin = self
            .tmp
            .path()
            .join(format!("bin{}", N.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir_all(&bin).unwrap();
        let mut script = format!(
            "#!/bin/sh\nexport FAKE_TALOSCTL_LOG='{}'\n",
            self.log().display()
        );
        for (k, v) in settings {
            script.push_str(&format!("export FAKE_TALOSCTL_{k}='{v}'\n"));
        }
        script.push_str(&format!("exec '{}' \"$@\"\n", fake_talosctl().display()));
        let path = bin.join("talosctl");
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Every talosctl call so far, in order.
    pub fn talosctl_calls(&self) -> Vec<TalosctlCall> {
        fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l}: {e}")))
            .collect()
    }

    /// A stand-in cluster: unprivileged, because test hosts whose dockerd runs in a container
    /// cannot start privileged containers (the privileged shape has its own test).
    pub fn spec(&self, version: &str, talosctl: PathBuf) -> ClusterSpec {
        let mut spec = ClusterSpec::new(&self.name);
        spec.talos_version = TalosVersion::parse(version).unwrap();
        spec.image = Some(standin(version));
        spec.talosctl = Some(talosctl);
        spec.state_dir = self.state_dir();
        spec.run_id = RunId::parse(&self.run_id).unwrap();
        spec.privileged = false;
        spec.cpus = 0.5;
        spec.memory_mib = 1024;
        spec.timeouts.bootstrap = Duration::from_secs(30);
        spec.timeouts.kubeconfig = Duration::from_secs(30);
        spec.timeouts.ready = Duration::from_secs(30);
        spec
    }
}

/// One call the fake talosctl received, as it logs it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct TalosctlCall {
    pub argv: Vec<String>,
    /// The command it resolved to (`gen config`), when it got that far.
    pub command: Option<String>,
    /// Why it refused the call, as talosctl would.
    pub refused: Option<String>,
}

impl TalosctlCall {
    /// Accepted and resolved to `command`.
    pub fn is(&self, command: &str) -> bool {
        self.refused.is_none() && self.command.as_deref() == Some(command)
    }

    pub fn line(&self) -> String {
        self.argv.join(" ")
    }

    /// The value after `flag`, as given.
    pub fn value_of(&self, flag: &str) -> Option<&str> {
        let i = self.argv.iter().position(|a| a == flag)?;
        self.argv.get(i + 1).map(String::as_str)
    }
}

/// The fake talosctl binary, talos-docker's `fake-talosctl` target. Cargo hands its path to
/// talos-docker's own tests; the harness's tests find it in the target directory, building it
/// when it is missing or older than its sources (a workspace build has it already).
pub fn fake_talosctl() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_fake-talosctl") {
        return PathBuf::from(path);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // <target>/<profile>/deps/<test binary>
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
            let bin = profile_dir.join("fake-talosctl");
            let lock_path = std::env::temp_dir().join("harness-fake-talosctl.lock");
            let lock = fs::File::create(&lock_path).expect("create the fake-talosctl lock file");
            lock.lock().expect("lock the fake-talosctl lock file");
            if !is_fresh(&bin) {
                let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                    Some("debug") | None => "dev".to_string(),
                    Some(other) => other.to_string(),
                };
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let out = Command::new(cargo)
                    .args([
                        "build",
                        "-q",
                        "-p",
                        "talos-docker",
                        "--bin",
                        "fake-talosctl",
                    ])
                    .args(["--profile", &profile])
                    .current_dir(talos_docker_dir())
                    .output()
                    .expect("run cargo build for fake-talosctl");
                assert!(
                    out.status.success(),
                    "building fake-talosctl failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(bin.exists(), "{} was not built", bin.display());
            bin
        })
        .clone()
}

fn talos_docker_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../talos-docker")).to_path_buf()
}

/// Built after every source of the fake (its code, the grammar tables, the manifest) last changed.
fn is_fresh(bin: &Path) -> bool {
    let Ok(built) = fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let root = talos_docker_dir();
    let mut sources = vec![root.join("Cargo.toml")];
    for dir in ["tests/support", "grammar"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            sources.push(entry.unwrap().path());
        }
    }
    sources.iter().all(|s| {
        fs::metadata(s)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t <= built)
    })
}

/// Every object still labelled with `run_id`.
pub async fn leftovers(engine: &Engine, run_id: &str) -> Inventory {
    cleanup::inventory(engine, &Selector::run(run_id))
        .await
        .unwrap()
}

pub fn describe(inv: &Inventory) -> String {
    inv.objects()
        .map(|o| format!("{:?} {}", o.kind, o.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stands in for the API-server wait (stand-in nodes run no API server) and records its target.
#[derive(Default)]
pub struct RecordingReadiness(pub Mutex<Vec<ReadinessTarget>>);

impl Readiness for RecordingReadiness {
    fn wait<'a>(&'a self, target: &'a ReadinessTarget) -> BoxFuture<'a, Result<(), Error>> {
        self.0.lock().unwrap().push(target.clone());
        Box::pin(async { Ok(()) })
    }
}

/// A readiness step that panics, to check that a panic mid-provisioning still cleans up.
pub struct PanickingReadiness;

impl Readiness for PanickingReadiness {
    fn wait<'a>(&'a self, _: &'a ReadinessTarget) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { panic!("readiness panicked on purpose") })
    }
}

/// [`leftovers`] for tests that are not async.
pub fn leftovers_blocking(run_id: &str) -> Inventory {
    let run_id = run_id.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let engine = Engine::connect(Duration::from_secs(10)).await.unwrap();
                leftovers(&engine, &run_id).await
            })
    })
    .join()
    .unwrap()
}

/// Someone else's network on a free subnet of 10.5.0.0/16, labelled with `run_id` so the test's
/// guard removes it. Returns its subnet.
pub fn squat_network(name: &str, run_id: &str) -> talos_docker::Ipv4Net {
    let (name, run_id) = (name.to_string(), run_id.to_string());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let engine = Engine::connect(Duration::from_secs(10)).await.unwrap();
                let labels = talos_docker::labels::object(&run_id, &name, 0);
                let mut lost = Vec::new();
                loop {
                    let mut taken: Vec<_> = engine
                        .networks()
                        .await
                        .unwrap()
                        .into_iter()
                        .flat_map(|n| n.subnets)
                        .collect();
                    taken.extend(&lost);
                    let subnet = talos_docker::subnet::first_free(&taken).expect("a free /24");
                    match engine
                        .create_network(&name, subnet, 1500, labels.clone())
                        .await
                    {
                        Ok(_) => return subnet,
                        Err(e) if lost.len() < 16 => {
                            eprintln!("retrying after {e}");
                            lost.push(subnet)
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            })
    })
    .join()
    .unwrap()
}
