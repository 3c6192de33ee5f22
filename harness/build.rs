//! Records the git commit the harness is built from, for the provenance every report carries.
//! `HARNESS_GIT_COMMIT` wins (CI sets it; a source tarball has no .git); otherwise the local
//! `git rev-parse HEAD`; otherwise "unknown". Never touches the network.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Re-run when HEAD moves: the HEAD file, the branch ref it names and packed-refs. Only files
/// that exist are named, since cargo re-runs the script every build for a missing one.
fn watch_head() {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        files.push(head.into());
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(r) = git(&["rev-parse", "--git-path", &branch])
    {
        files.push(r.into());
    }
    if let Some(packed) = git(&["rev-parse", "--git-path", "packed-refs"]) {
        files.push(packed.into());
    }
    for f in files {
        let f = if f.is_absolute() {
            f
        } else {
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(f)
        };
        if f.exists() {
            println!("cargo:rerun-if-changed={}", f.display());
        }
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=HARNESS_GIT_COMMIT");
    let commit = match std::env::var("HARNESS_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            watch_head();
            git(&["rev-parse", "HEAD"])
                .filter(|c| c.len() >= 7 && c.chars().all(|ch| ch.is_ascii_hexdigit()))
                .unwrap_or_else(|| "unknown".to_string())
        }
    };
    println!("cargo:rustc-env=HARNESS_GIT_COMMIT={commit}");
}
