//! The README documents every implemented check with what it proves and the anchor it mirrors;
//! this keeps that table true as the catalog changes.

#[test]
fn readme_lists_every_implemented_check() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut listed = 0;
    for suite in suites::CATALOG {
        let implemented = suites::implemented_checks(suite.name);
        for check in suite
            .checks
            .iter()
            .filter(|c| implemented.contains(&c.name))
        {
            let row = format!(
                "| `{}::{}` | {} | {} |",
                suite.name, check.name, check.proves, check.anchor
            );
            assert!(readme.contains(&row), "README.md lacks the row:\n{row}");
            listed += 1;
        }
    }
    assert_eq!(listed, 51, "every implemented check of the six suites");
}

const TABLE_START: &str = "<!-- support-table: generated from harness/data/releases.yaml -->\n";
const TABLE_END: &str = "<!-- support-table: end -->";

/// The README's support tables are generated from the release table. To refresh them after
/// editing harness/data/releases.yaml, run this test with HARNESS_UPDATE_README=1.
#[test]
fn readme_support_table_matches_the_release_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme
        .find(TABLE_START)
        .expect("README.md has the support-table marker")
        + TABLE_START.len();
    let end = start
        + readme[start..]
            .find(TABLE_END)
            .expect("README.md has the end marker");
    let generated = harness::releases::ReleaseTable::embedded().support_markdown();
    if std::env::var_os("HARNESS_UPDATE_README").is_some() {
        let updated = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        generated,
        "README.md's support table is stale; run HARNESS_UPDATE_README=1 cargo nextest run -p harness --test readme"
    );
}
