//! The README's checks tables are generated from the checks' declarations
//! (`suites::docs::readme_checks`); this keeps them true as the declarations change. Rerun with
//! `UPDATE_README=1` to rewrite the section.

#[test]
fn readme_checks_tables_come_from_the_declarations() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let want = suites::docs::with_readme_checks(&readme).expect(
        "README.md lacks the generated checks section markers (suites::docs::README_BEGIN/README_END)",
    );
    if want != readme && std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(path, &want).unwrap();
        panic!("README.md checks tables regenerated; review them and rerun without UPDATE_README");
    }
    assert!(
        want == readme,
        "README.md's checks tables are stale; rerun with UPDATE_README=1"
    );
    let mut listed = 0;
    for suite in suites::CATALOG {
        for check in suite.checks {
            let row = format!("| `{}::{}` | ", suite.name, check.name);
            assert!(
                readme.contains(&row),
                "README.md lacks the row for {}::{}",
                suite.name,
                check.name
            );
            listed += 1;
        }
    }
    assert_eq!(listed, suites::all_check_names().count());
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
