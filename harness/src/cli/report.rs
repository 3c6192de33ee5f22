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
}

pub fn run(command: ReportCommand) -> Result<Verdict, Error> {
    match command {
        ReportCommand::Merge { inputs, output } => {
            let merged = report::merge::merge_to(&inputs, &output)?;
            eprintln!(
                "merged {} file(s): {} testsuites, {} tests, {} failures, {} errors -> {}",
                inputs.len(),
                merged.test_suites.len(),
                merged.tests,
                merged.failures,
                merged.errors,
                output.display()
            );
            Ok(Verdict::Passed)
        }
    }
}
