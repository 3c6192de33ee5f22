//! Every talosctl invocation talos-docker makes, checked against what each supported talosctl
//! minor accepts (the grammar tables in `talos-docker/grammar/`), and the tables themselves
//! checked against talosctl's source.

#[path = "support/talosctl_grammar.rs"]
mod grammar;
#[path = "support/grammar_from_source.rs"]
mod grammar_from_source;

use std::path::PathBuf;

/// Regenerates (with `UPDATE_GRAMMAR=1`) or checks the committed tables against a
/// siderolabs/talos clone: `TALOS_GIT_DIR=/path/to/talos/.git`.
#[test]
#[ignore = "reads talosctl's Go sources: needs a siderolabs/talos clone in TALOS_GIT_DIR"]
fn grammar_tables_match_the_talos_sources() {
    let git_dir = PathBuf::from(
        std::env::var_os("TALOS_GIT_DIR").expect("TALOS_GIT_DIR names a siderolabs/talos clone"),
    );
    let update = std::env::var_os("UPDATE_GRAMMAR").is_some();
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/grammar"));
    let mut stale = Vec::new();
    for tag in grammar_from_source::TAGS {
        let g = grammar_from_source::grammar_at(&git_dir, tag).unwrap_or_else(|e| panic!("{e}"));
        let text = grammar_from_source::render(&g);
        assert_eq!(grammar::load(&text).unwrap(), g, "{tag}: the rendered table reads back");
        let minor = grammar::minor_of(tag).unwrap();
        let path = dir.join(format!("talosctl-{minor}.yaml"));
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (regenerate with UPDATE_GRAMMAR=1): {stale:?}"
    );
}
