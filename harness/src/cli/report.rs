//! `harness report`: working with JUnit reports after a run.

use crate::errors::Error;
use crate::report;
use crate::run::Verdict;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Join the JUnit files of several shards into one.
    Merge {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Markdown of one run: a row per cell, the failures, and with --baseline what changed.
    Summary(report::cmd::SummaryArgs),
    /// What changed between two reports, as Markdown; exits 1 when a check newly fails.
    Diff(report::cmd::DiffArgs),
}

pub fn run(command: ReportCommand) -> Result<Verdict, Error> {
    match command {
        ReportCommand::Merge { inputs, output } => {
            report::cmd::merge(&inputs, &output)?;
            Ok(Verdict::Passed)
        }
        ReportCommand::Summary(args) => {
            report::cmd::summary(&args)?;
            Ok(Verdict::Passed)
        }
        // New failures are what `diff` exists to find: they exit 1 like a failed check.
        ReportCommand::Diff(args) => Ok(match report::cmd::diff(&args)? {
            0 => Verdict::Passed,
            _ => Verdict::ChecksFailed,
        }),
    }
}
