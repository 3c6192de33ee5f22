//! Upstream test data (schemas, charts, the seeds) from one source chain, so the tests run on a
//! fresh clone and in CI as well as beside the project's shared/ folder. A file is looked for:
//!
//! 1. in `$HARNESS_TEST_DATA`, a directory laid out like shared/ (when set, the only place);
//! 2. in `../shared/` beside the checkout (or `$HARNESS_TEST_DATA_SHARED`), when it is there;
//! 3. in the download cache (`$HARNESS_TEST_DATA_CACHE`, else `$XDG_CACHE_HOME` or `~/.cache`
//!    under `talos-cilium-harness/testdata`);
//! 4. at its upstream URL, or under `$HARNESS_TEST_DATA_MIRROR` (a base URL laid out like
//!    shared/), downloaded into the cache.
//!
//! Wherever it comes from, the file must have the sha256 committed in `testdata.sha256`.

use crate::{Client, Sha256};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const MANIFEST: &str = include_str!("../testdata.sha256");

/// One file of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub sha256: Sha256,
    /// Relative to the data root, e.g. `schemas/talos/config.schema.v1.11.6.json`.
    pub path: &'static str,
    /// Where upstream publishes these exact bytes; `None` for project documents (the seeds).
    pub url: Option<&'static str>,
}

fn parse_manifest(text: &'static str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&'static str> = line.split_whitespace().collect();
        let [sha, path, url] = fields[..] else {
            return Err(format!("line {}: expected 'sha256 path url'", n + 1));
        };
        out.push(Entry {
            sha256: sha.parse().map_err(|e| format!("line {}: {e}", n + 1))?,
            path,
            url: (url != "-").then_some(url),
        });
    }
    Ok(out)
}

/// Every file the tests may ask for.
pub fn manifest() -> &'static [Entry] {
    static PARSED: OnceLock<Vec<Entry>> = OnceLock::new();
    PARSED.get_or_init(|| parse_manifest(MANIFEST).expect("testdata.sha256 is well-formed"))
}

pub fn entry(path: &str) -> Option<&'static Entry> {
    manifest().iter().find(|e| e.path == path)
}

/// The entries directly or indirectly under `dir` (no trailing slash), in manifest order.
pub fn entries_under(dir: &str) -> Vec<&'static Entry> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    manifest()
        .iter()
        .filter(|e| e.path.starts_with(&prefix))
        .collect()
}

/// Where a resolved file was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Dir,
    Shared,
    Cache,
    Downloaded,
}

/// The places a file is looked for, in order. `from_env` is what tests use; tests of the chain
/// itself build one by hand.
#[derive(Clone, Debug)]
pub struct Chain {
    pub dir: Option<PathBuf>,
    pub shared: Option<PathBuf>,
    pub cache: Option<PathBuf>,
    /// Replaces every upstream URL by `<mirror>/<path>`.
    pub mirror: Option<String>,
    pub timeout: Duration,
}

/// Why a file could not be had: every place tried, in order, and what each said.
#[derive(Debug)]
pub struct Unavailable {
    pub path: String,
    pub tried: Vec<String>,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "test data {} is unavailable: ", self.path)?;
        write!(f, "{}", self.tried.join("; "))?;
        write!(
            f,
            "; fix: point HARNESS_TEST_DATA at a directory laid out like shared/ (schemas/, \
             charts/, seeds/), or HARNESS_TEST_DATA_MIRROR at a URL laid out like it, or let the \
             tests reach the upstream URL once (files are cached)"
        )
    }
}

impl std::error::Error for Unavailable {}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The download cache when none is configured.
pub fn default_cache() -> Option<PathBuf> {
    let base = env_path("XDG_CACHE_HOME").or_else(|| env_path("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("talos-cilium-harness/testdata"))
}

impl Chain {
    pub fn from_env() -> Chain {
        // HARNESS_TEST_DATA_SHARED moves (or, pointed at nothing, hides) the sibling shared/.
        let shared = env_path("HARNESS_TEST_DATA_SHARED")
            .unwrap_or_else(|| workspace_root().join("../shared"));
        Chain {
            dir: env_path("HARNESS_TEST_DATA"),
            shared: shared.is_dir().then_some(shared),
            cache: env_path("HARNESS_TEST_DATA_CACHE")
                .or_else(default_cache)
                .or_else(|| Some(workspace_root().join("target/testdata-cache"))),
            mirror: std::env::var("HARNESS_TEST_DATA_MIRROR")
                .ok()
                .filter(|m| !m.is_empty()),
            timeout: Duration::from_secs(120),
        }
    }

    /// The local path of `path`, with its sha256 checked.
    pub fn resolve(&self, path: &str) -> Result<(PathBuf, Origin), Unavailable> {
        match entry(path) {
            Some(e) => self.resolve_entry(e),
            None => Err(Unavailable {
                path: path.to_string(),
                tried: vec!["it is not listed in upstream/testdata.sha256 (add it with upstream/gen-testdata-manifest.sh)".into()],
            }),
        }
    }

    /// The local path of one manifest entry, with its sha256 checked.
    pub fn resolve_entry(&self, entry: &Entry) -> Result<(PathBuf, Origin), Unavailable> {
        let path = entry.path;
        let mut tried = Vec::new();
        let fail = |tried: Vec<String>| Unavailable {
            path: path.to_string(),
            tried,
        };
        if let Some(dir) = &self.dir {
            let file = dir.join(path);
            return match check(&file, &entry.sha256) {
                Ok(()) => Ok((file, Origin::Dir)),
                Err(why) => {
                    tried.push(format!("HARNESS_TEST_DATA={}: {why}", dir.display()));
                    Err(fail(tried))
                }
            };
        }
        match &self.shared {
            Some(shared) => {
                let file = shared.join(path);
                if file.exists() {
                    return match check(&file, &entry.sha256) {
                        Ok(()) => Ok((file, Origin::Shared)),
                        Err(why) => {
                            tried.push(format!(
                                "{}: {why} (if shared/ changed on purpose, run upstream/gen-testdata-manifest.sh)",
                                shared.display()
                            ));
                            Err(fail(tried))
                        }
                    };
                }
                tried.push(format!("{} has no {path}", shared.display()));
            }
            None => tried.push("no shared/ beside the checkout".into()),
        }
        let Some(cache) = &self.cache else {
            tried.push("no cache directory (set HARNESS_TEST_DATA_CACHE)".into());
            return Err(fail(tried));
        };
        let name = path.rsplit('/').next().unwrap_or(path);
        let cached = cache.join(entry.sha256.to_string()).join(name);
        if cached.exists() {
            match check(&cached, &entry.sha256) {
                Ok(()) => return Ok((cached, Origin::Cache)),
                Err(why) => {
                    // A damaged cache entry is replaced, never used.
                    tried.push(format!("cache: {why}, removed"));
                    let _ = std::fs::remove_file(&cached);
                }
            }
        }
        let url = match (&self.mirror, entry.url) {
            (Some(m), _) => format!("{}/{path}", m.trim_end_matches('/')),
            (None, Some(u)) => u.to_string(),
            (None, None) => {
                tried.push("it has no public upstream URL to download from".into());
                return Err(fail(tried));
            }
        };
        let fetched =
            Client::new(self.timeout).and_then(|c| c.fetch_verified(&url, &entry.sha256, &cached));
        match fetched {
            Ok(()) => Ok((cached, Origin::Downloaded)),
            Err(e) => {
                tried.push(format!("download: {e}"));
                Err(fail(tried))
            }
        }
    }
}

/// `file` exists and has the expected sum. Files checked once in this process are not hashed
/// again.
fn check(file: &Path, expected: &Sha256) -> Result<(), String> {
    static VERIFIED: OnceLock<Mutex<HashSet<(PathBuf, Sha256)>>> = OnceLock::new();
    let verified = VERIFIED.get_or_init(Default::default);
    let key = (file.to_path_buf(), *expected);
    if verified.lock().unwrap().contains(&key) {
        return Ok(());
    }
    let actual = Sha256::of_file(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if &actual != expected {
        return Err(format!(
            "{} has sha256 {actual}, testdata.sha256 says {expected}",
            file.display()
        ));
    }
    verified.lock().unwrap().insert(key);
    Ok(())
}

/// The local path of a test data file through the environment's chain.
pub fn try_path(path: &str) -> Result<PathBuf, Unavailable> {
    Chain::from_env().resolve(path).map(|(p, _)| p)
}

/// The local path of a test data file; panics with every place tried and the fix.
pub fn path(path: &str) -> PathBuf {
    try_path(path).unwrap_or_else(|e| panic!("{e}"))
}

pub fn read_to_string(rel: &str) -> String {
    let file = path(rel);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `CI` is set (to anything but empty or "false"): data and tools that are missing fail the
/// tests that need them instead of letting them skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_lists_schemas_charts_and_seeds_with_sources() {
        let m = manifest();
        assert!(m.len() > 100, "{} entries", m.len());
        let chart = entry("charts/cilium-1.18.4.tgz").unwrap();
        assert_eq!(chart.url, Some("https://helm.cilium.io/cilium-1.18.4.tgz"));
        assert_eq!(
            chart.sha256.to_string(),
            // The digest of 1.18.4 in the cilium/charts index.yaml (shared/charts/PROVENANCE.txt).
            "c361ca567b319af64b82736ab4c5927a201b1f5dbae4e909c7aeaabce0571299"
        );
        assert!(
            entry("seeds/000_0b0a51f430e0de1c.txt")
                .unwrap()
                .url
                .is_none()
        );
        let talos = entries_under("schemas/talos");
        assert!(talos.len() >= 6);
        assert!(talos.iter().all(|e| e.url.is_some_and(|u| {
            u.starts_with("https://raw.githubusercontent.com/siderolabs/talos/")
        })));
    }

    #[test]
    fn malformed_manifest_lines_are_refused() {
        assert!(parse_manifest("abc  x\n").unwrap_err().contains("line 1"));
        assert!(parse_manifest("# only a comment\n\n").unwrap().is_empty());
    }
}
