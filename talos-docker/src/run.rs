//! Run ids and the per-run directory holding a cluster's secrets, configs and kubeconfig.
//!
//! The directory is 0700 and every file in it 0600: it holds the Talos secrets bundle and
//! admin credentials. Nothing is ever written to the user's ~/.kube or ~/.talos.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::errors::{Error, PreflightError};

/// Names one invocation; every Docker object it makes carries it (see [`crate::labels::RUN_ID`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    pub fn generate() -> RunId {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut h = RandomState::new().build_hasher();
        h.write_u128(now.as_nanos());
        h.write_u32(std::process::id());
        h.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
        RunId(format!("{}-{:06x}", now.as_secs(), h.finish() & 0xff_ffff))
    }

    /// Run ids become label values and a directory name, so keep them to a safe alphabet.
    pub fn parse(s: &str) -> Result<RunId, PreflightError> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if ok {
            Ok(RunId(s.to_string()))
        } else {
            Err(PreflightError::InvalidValue {
                what: "run id",
                given: s.to_string(),
                why: "use 1-63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit".into(),
                example: "ci-1234",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `$HARNESS_STATE_DIR`, else `$XDG_STATE_HOME/harness`, else `~/.local/state/harness`.
pub fn default_state_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = env("HARNESS_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = env("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("harness");
    }
    match env("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/harness"),
        None => std::env::temp_dir().join("harness-state"),
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

const MARKER: &str = ".harness-run";

/// `<state dir>/<run id>/<cluster>/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

/// What a run directory's marker says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDirInfo {
    pub path: PathBuf,
    pub run_id: String,
    pub cluster: String,
    pub created: u64,
}

impl RunDir {
    pub fn path_for(state_dir: &Path, run_id: &RunId, cluster: &str) -> PathBuf {
        state_dir.join(run_id.as_str()).join(cluster)
    }

    pub fn create(state_dir: &Path, run_id: &RunId, cluster: &str) -> Result<RunDir, Error> {
        let path = Self::path_for(state_dir, run_id, cluster);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|e| Error::io(&path, e))?;
        // `recursive` leaves existing parents alone and the umask may have widened new ones.
        for dir in [path.as_path(), path.parent().unwrap_or(&path)] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(dir, e))?;
        }
        let dir = RunDir { path };
        dir.write(
            MARKER,
            format!(
                "run-id={run_id}\ncluster={cluster}\ncreated={}\n",
                unix_now()
            )
            .as_bytes(),
        )?;
        Ok(dir)
    }

    /// A run directory that already exists (the cluster's own), for later talosctl calls.
    pub(crate) fn at(path: PathBuf) -> RunDir {
        RunDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes a 0600 file (created that way, never widened first).
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<PathBuf, Error> {
        let path = self.file(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.write_all(contents).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// Narrows whatever talosctl wrote to 0600.
    pub fn tighten(&self) -> Result<(), Error> {
        for entry in fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, e))? {
            let entry = entry.map_err(|e| Error::io(&self.path, e))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|e| Error::io(&path, e))?;
            if meta.is_file() && meta.permissions().mode() & 0o777 != 0o600 {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    pub fn info(path: &Path) -> Option<RunDirInfo> {
        let text = fs::read_to_string(path.join(MARKER)).ok()?;
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(RunDirInfo {
            path: path.to_path_buf(),
            run_id: field("run-id")?,
            cluster: field("cluster")?,
            created: field("created")?.parse().ok()?,
        })
    }

    /// Deletes `path` only when its marker names `run_id` (and `cluster`, if given): paths come
    /// from Docker labels, which anyone with access to the daemon can set.
    /// Returns whether something was removed; a missing directory is not an error.
    pub fn remove_checked(path: &Path, run_id: &str, cluster: Option<&str>) -> Result<bool, Error> {
        let Some(info) = Self::info(path) else {
            return Ok(false);
        };
        if info.run_id != run_id || cluster.is_some_and(|c| c != info.cluster) {
            return Ok(false);
        }
        match fs::remove_dir_all(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(path, e)),
        }
        // The run-id level goes too once its last cluster is gone.
        if let Some(parent) = path.parent() {
            let _ = fs::remove_dir(parent);
        }
        Ok(true)
    }

    /// Every run directory under `state_dir`.
    pub fn scan(state_dir: &Path) -> Vec<RunDirInfo> {
        let Ok(runs) = fs::read_dir(state_dir) else {
            return Vec::new();
        };
        runs.flatten()
            .filter_map(|run| fs::read_dir(run.path()).ok())
            .flat_map(|clusters| clusters.flatten())
            .filter_map(|c| Self::info(&c.path()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_valid() {
        let a = RunId::generate();
        let b = RunId::generate();
        assert_ne!(a, b);
        assert_eq!(RunId::parse(a.as_str()).unwrap(), a);
        assert!(RunId::parse("Bad/Id").is_err());
        assert!(RunId::parse("").is_err());
    }

    #[test]
    fn dir_and_files_are_private_and_removal_checks_the_marker() {
        let state = tempfile::tempdir().unwrap();
        let id = RunId::parse("t-1").unwrap();
        let dir = RunDir::create(state.path(), &id, "c1").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(dir.path().parent().unwrap()), 0o700);
        let f = dir.write("secrets.yaml", b"x").unwrap();
        assert_eq!(mode(&f), 0o600);
        fs::write(dir.file("wide"), b"y").unwrap();
        fs::set_permissions(dir.file("wide"), fs::Permissions::from_mode(0o644)).unwrap();
        dir.tighten().unwrap();
        assert_eq!(mode(&dir.file("wide")), 0o600);

        let scanned = RunDir::scan(state.path());
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].cluster, "c1");

        assert!(!RunDir::remove_checked(dir.path(), "other", None).unwrap());
        assert!(!RunDir::remove_checked(dir.path(), "t-1", Some("c2")).unwrap());
        assert!(dir.path().exists());
        assert!(RunDir::remove_checked(dir.path(), "t-1", Some("c1")).unwrap());
        assert!(!dir.path().exists());
        assert!(!state.path().join("t-1").exists());
        assert!(!RunDir::remove_checked(dir.path(), "t-1", None).unwrap());
    }
}
