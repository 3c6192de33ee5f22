//! The `report` subcommands: `merge`, `summary` and `diff`. Each returns its exit status's
//! reason; the CLI maps bad input to 2 and `diff`'s new failures to 1.

use super::merge::{merge_to, refuse_output_among_inputs};
use super::results::{Diff, Results};
use super::{junit, read, summary};
use crate::errors::InputError;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// JUnit reports of one run (shards, or attempts of the same checks: a check that passed in
    /// one and failed in another is reported flaky).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// A previous run's report: adds new failures, fixed, still failing, newly skipped, flaky.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the Markdown here (mode 0644) instead of to standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Cut the Markdown at a line to stay within this many bytes, saying so (0: no limit).
    /// The default keeps it under GitHub's 1 MiB job summary limit.
    #[arg(long, value_name = "N", default_value_t = summary::DEFAULT_MAX_BYTES)]
    pub max_bytes: usize,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The earlier report (last night's, or the run before an upgrade).
    pub baseline: PathBuf,
    /// The later report.
    pub current: PathBuf,
    /// Cut the Markdown at a line to stay within this many bytes (0: no limit).
    #[arg(long, value_name = "N", default_value_t = summary::DEFAULT_MAX_BYTES)]
    pub max_bytes: usize,
}

fn results_of(paths: &[PathBuf]) -> Result<Results, InputError> {
    let reports = paths
        .iter()
        .map(|p| read::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Results::from_reports(&reports))
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn print(text: &str) -> Result<(), InputError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| InputError::Write {
            path: "standard output".into(),
            source,
        })
}

/// `report merge INPUT... -o OUT`.
pub fn merge(inputs: &[PathBuf], output: &Path) -> Result<(), InputError> {
    let merged = merge_to(inputs, output)?;
    eprintln!(
        "merged {} file(s): {} testsuites, {} tests, {} failures, {} errors -> {}",
        inputs.len(),
        merged.test_suites.len(),
        merged.tests,
        merged.failures,
        merged.errors,
        output.display()
    );
    Ok(())
}

/// `report summary REPORT... [--baseline FILE] [-o FILE]`.
pub fn summary(args: &SummaryArgs) -> Result<(), InputError> {
    if let Some(out) = &args.output {
        let mut inputs = args.reports.clone();
        inputs.extend(args.baseline.clone());
        refuse_output_among_inputs(&inputs, out)?;
    }
    let current = results_of(&args.reports)?;
    let baseline = match &args.baseline {
        Some(b) => Some((display_name(b), results_of(std::slice::from_ref(b))?)),
        None => None,
    };
    let md = summary::truncate(
        summary::markdown(&current, baseline.as_ref().map(|(n, r)| (n.as_str(), r))),
        args.max_bytes,
    );
    match &args.output {
        Some(out) => junit::write_file_atomically(md.as_bytes(), out),
        None => print(&md),
    }
}

/// `report diff BASELINE CURRENT`: the comparison as Markdown; `Ok(1)` when a check fails now
/// that did not fail in the baseline.
pub fn diff(args: &DiffArgs) -> Result<u8, InputError> {
    let baseline = results_of(std::slice::from_ref(&args.baseline))?;
    let current = results_of(std::slice::from_ref(&args.current))?;
    let md = summary::truncate(
        summary::diff_markdown(&display_name(&args.baseline), &baseline, &current),
        args.max_bytes,
    );
    print(&md)?;
    Ok(u8::from(
        !Diff::between(&baseline, &current).new_failures.is_empty(),
    ))
}
