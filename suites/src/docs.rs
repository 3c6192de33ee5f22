//! The documents generated from the declarations: `suites/CHECKS.md` and the checks tables of
//! the README. Tests compare the files with these, so the text a person reads cannot drift from
//! the declarations.

use crate::catalog::{CATALOG, CheckDecl, CheckStatus, NOT_IMPLEMENTED, SuiteDecl};
use std::fmt::Write as _;

/// Where the README's generated checks tables begin and end.
pub const README_BEGIN: &str =
    "<!-- checks: generated from the declarations (suites::docs::readme_checks); do not edit -->";
pub const README_END: &str = "<!-- checks: end -->";

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn proves(c: &CheckDecl) -> String {
    match c.status() {
        CheckStatus::Implemented => cell(c.proves),
        CheckStatus::NotImplemented => format!("{} ({NOT_IMPLEMENTED})", cell(c.proves)),
    }
}

fn all_pending(s: &SuiteDecl) -> bool {
    s.checks
        .iter()
        .all(|c| c.status() == CheckStatus::NotImplemented)
}

/// CHECKS.md: one table per suite with what each check proves, mirrors and assumes.
pub fn checks_markdown() -> String {
    let mut out = String::from(
        "# Checks\n\n\
         Generated from the declarations in `suites/src/<suite>/mod.rs` \
         (`cargo test -p suites --test registry` fails when this file is stale; rerun it with \
         `UPDATE_CHECKS_MD=1` to rewrite it).\n\n\
         Every check observes the cluster (exec probes in pods, API requests) and hands plain data \
         to a pure judge. A probe passes after 3 consecutive successes within 60s. A check ends \
         passed, failed (the cluster misbehaved; the message says what and where to look), error \
         (the harness could not observe) or skipped (not applicable to the cell, or not \
         implemented in this version; never reported as passed). \"Assumes\" is the upstream \
         behaviour a judge relies on, with the releases and modes it holds for.\n",
    );
    for suite in CATALOG.iter().filter(|s| !all_pending(s)) {
        let _ = write!(
            out,
            "\n## {}\n\n| Check | What it proves | Anchor | Assumes |\n|---|---|---|---|\n",
            suite.name
        );
        for c in suite.checks {
            let _ = writeln!(
                out,
                "| `{}::{}` | {} | {} | {} |",
                suite.name,
                c.name,
                proves(c),
                cell(c.anchor),
                cell(c.assumes)
            );
        }
    }
    let later: Vec<String> = CATALOG
        .iter()
        .filter(|s| all_pending(s))
        .map(|s| format!("`{}` ({} checks)", s.name, s.checks.len()))
        .collect();
    if !later.is_empty() {
        let _ = write!(
            out,
            "\n## Declared, not implemented in this version\n\n{}: their checks are listed by \
             `harness plan` and reported as skipped \"{NOT_IMPLEMENTED}\".\n",
            later.join(", ")
        );
    }
    out
}

/// The README's checks tables, between [`README_BEGIN`] and [`README_END`].
pub fn readme_checks() -> String {
    let mut out = format!("{README_BEGIN}\n");
    for suite in CATALOG {
        let _ = write!(
            out,
            "\n### {}\n\n| Check | What it proves | Anchor |\n|---|---|---|\n",
            suite.name
        );
        for c in suite.checks {
            let _ = writeln!(
                out,
                "| `{}::{}` | {} | {} |",
                suite.name,
                c.name,
                proves(c),
                cell(c.anchor)
            );
        }
    }
    out.push('\n');
    out.push_str(README_END);
    out
}

/// `readme` with its generated section replaced by [`readme_checks`]; `None` when the markers
/// are missing.
pub fn with_readme_checks(readme: &str) -> Option<String> {
    let begin = readme.find(README_BEGIN)?;
    let end = readme[begin..].find(README_END)? + begin + README_END.len();
    Some(format!(
        "{}{}{}",
        &readme[..begin],
        readme_checks(),
        &readme[end..]
    ))
}
