//! upstream/testdata.sha256 is generated from shared/ (upstream/gen-testdata-manifest.sh): it
//! must list exactly shared/'s data files with shared/'s own sums.

use std::collections::BTreeMap;
use std::path::Path;
use upstream::testdata::{in_ci, manifest};

fn data_files(root: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(root.join(rel)).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = format!("{rel}/{name}");
        if e.path().is_dir() {
            data_files(root, &child, out);
        } else if !matches!(name.as_str(), "PROVENANCE.txt" | "README.md" | "SHA256SUMS") {
            let sum = upstream::Sha256::of_file(&e.path()).unwrap().to_string();
            out.insert(child, sum);
        }
    }
}

/// shared/'s own SHA256SUMS, which cover what it holds.
fn published_sums(root: &Path, dir: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root.join(dir).join("SHA256SUMS")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, path)| {
            (
                format!("{dir}/{}", path.trim_start_matches("./")),
                sum.to_string(),
            )
        })
        .collect()
}

#[test]
fn the_manifest_matches_shared() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if !shared.is_dir() {
        assert!(!in_ci(), "CI runs with shared/ beside the checkout");
        eprintln!("skipped: no shared/ beside the checkout to compare the manifest with");
        return;
    }
    let mut on_disk = BTreeMap::new();
    for dir in ["schemas", "charts", "seeds"] {
        data_files(&shared, dir, &mut on_disk);
    }
    let listed: BTreeMap<String, String> = manifest()
        .iter()
        .map(|e| (e.path.to_string(), e.sha256.to_string()))
        .collect();
    assert_eq!(
        listed, on_disk,
        "run upstream/gen-testdata-manifest.sh to bring testdata.sha256 in step with shared/"
    );
    // shared/ agrees with its own published sums, so the manifest carries upstream's digests.
    for dir in ["schemas", "charts"] {
        for (path, sum) in published_sums(&shared, dir) {
            if let Some(listed_sum) = listed.get(&path) {
                assert_eq!(listed_sum, &sum, "{path}");
            }
        }
    }
}
