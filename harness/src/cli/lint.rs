//! `harness lint`: Helm values and Cilium manifests (LB pools, L2 announcement policies,
//! Services) checked for a Cilium version and a cluster: the Talos-in-Docker one the harness
//! builds, or one described by flags. Findings go to stdout, one a line or as JSON; any
//! error-level finding refuses the files (exit 2).

use crate::errors::{Error, InputError};
use crate::profile::lint::Severity;
use crate::profile::lint::files::{self, LintOutput};
use crate::run::Verdict;

pub use crate::profile::lint::files::LintArgs;

pub fn run(args: &LintArgs) -> Result<Verdict, Error> {
    // Bad input (unreadable files, YAML, an unknown version) fails before anything is printed.
    let r = files::report(args)?;
    match args.output {
        LintOutput::Text => {
            print!("{}", files::render_text(&r));
            eprintln!(
                "{} error(s), {} warning(s) in {} file(s)",
                r.errors,
                r.warnings,
                args.files.len()
            );
        }
        LintOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("the report is plain data")
        ),
    }
    if r.errors == 0 {
        return Ok(Verdict::Passed);
    }
    let mut with_errors: Vec<&str> = Vec::new();
    for l in r
        .findings
        .iter()
        .filter(|l| l.finding.severity == Severity::Error)
    {
        if !with_errors.contains(&l.file.as_str()) {
            with_errors.push(&l.file);
        }
    }
    Err(InputError::Lint {
        errors: r.errors,
        files: with_errors.join(", "),
    }
    .into())
}
