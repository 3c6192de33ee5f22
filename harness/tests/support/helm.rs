//! The pinned helm builds `.ci/install-helm.sh` installs (`.ci/helm-pins.tsv`), sha256-checked,
//! for the tests that run the real helm; and the skip-or-fail rule for what a test needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use upstream::Sha256;
use upstream::testdata::in_ci;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A pinned helm build, present and with its pinned sha256.
pub struct Helm {
    pub version: String,
    pub path: PathBuf,
}

pub fn pinned_helm(major: u32) -> Result<Helm, String> {
    let pins = std::fs::read_to_string(workspace().join(".ci/helm-pins.tsv")).unwrap();
    let row = pins
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f[0].starts_with(&format!("v{major}.")))
        .unwrap_or_else(|| panic!(".ci/helm-pins.tsv pins no helm {major}"));
    let dir = std::env::var_os("HARNESS_TEST_HELM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".tools/test-helm"));
    let path = dir.join(row[0]).join("helm");
    let pinned: Sha256 = row[3].parse().unwrap();
    match Sha256::of_file(&path) {
        Ok(sum) if sum == pinned => Ok(Helm {
            version: row[0].to_string(),
            path,
        }),
        Ok(sum) => Err(format!(
            "{} has sha256 {sum}, .ci/helm-pins.tsv pins {pinned}: run .ci/install-helm.sh",
            path.display()
        )),
        Err(e) => Err(format!(
            "helm {} is not installed ({}: {e}): run .ci/install-helm.sh",
            row[0],
            path.display()
        )),
    }
}

/// What a test needs, or the reason it cannot run: a skip outside CI, a failure under CI.
pub fn need<T>(what: Result<T, String>) -> Option<T> {
    match what {
        Ok(t) => Some(t),
        Err(reason) if in_ci() => panic!("{reason} (CI is set, so this fails rather than skips)"),
        Err(reason) => {
            eprintln!("skipped: {reason}");
            None
        }
    }
}
