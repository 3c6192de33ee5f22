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
