//! The committed values-key tables (`harness/data/values-keys/`) are what the published charts
//! give: regenerated from `../shared/charts` (or `$HARNESS_CHARTS_DIR`) and compared line by
//! line. Without the charts the test says why it cannot run; under `CI` that is a failure.

mod support;

use support::values_keys::{build_tables, default_charts_dir, table_path};

/// The charts, or why the test cannot run (a failure under `CI`).
fn charts_dir() -> Option<std::path::PathBuf> {
    let dir = default_charts_dir();
    if dir.join("cilium-1.18.4.tgz").is_file() {
        return Some(dir);
    }
    let why = format!(
        "the Cilium charts are not at {} (set HARNESS_CHARTS_DIR)",
        dir.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

#[test]
fn committed_values_key_tables_match_the_charts() {
    let Some(dir) = charts_dir() else {
        return;
    };
    let tables = build_tables(&dir).unwrap_or_else(|e| panic!("{e}"));
    let minors: Vec<&str> = tables.iter().map(|t| t.minor.as_str()).collect();
    assert_eq!(
        minors,
        ["1.18", "1.19", "1.20"],
        "one table per minor of {}",
        dir.display()
    );
    for table in &tables {
        let path = table_path(table);
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let fresh = table.to_text();
        if committed != fresh {
            let first = committed
                .lines()
                .zip(fresh.lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("committed: {a}\ncharts give: {b}"))
                .unwrap_or_else(|| "the files differ in length".into());
            panic!(
                "{} is out of date with the charts in {}:\n{first}\nrun `cargo run -p harness --example gen-values-keys` and commit the result",
                path.display(),
                dir.display()
            );
        }
        // The embedded copy is the committed file.
        let minor = table.minor.split_once('.').unwrap();
        let embedded = harness::profile::lint::keys::KeyTable::for_minor((
            minor.0.parse().unwrap(),
            minor.1.parse().unwrap(),
        ))
        .expect("embedded");
        assert_eq!(embedded, table);
    }
}

#[test]
fn a_changed_chart_makes_the_tables_stale() {
    // The comparison has teeth: a table built from one chart less differs from the committed one.
    let Some(dir) = charts_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("cilium-1.18.4.tgz"),
        tmp.path().join("cilium-1.18.4.tgz"),
    )
    .unwrap();
    let tables = build_tables(tmp.path()).unwrap();
    let committed = std::fs::read_to_string(table_path(&tables[0])).unwrap();
    assert_ne!(committed, tables[0].to_text());
}
