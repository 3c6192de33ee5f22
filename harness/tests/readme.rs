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
