//! `harness replay DIR`: the judges of this build over a recording (`--record DIR`), written as
//! the JUnit report the run wrote. No cluster is touched; a recording this build cannot judge
//! (another format, a check it lacks, an observation its judge does not take) is refused, with
//! the harness that reads it.

use crate::errors::{Error, Refused};
use crate::preflight;
use crate::run::Verdict;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A recording: the directory `harness e2e --record DIR` or `harness check --record DIR` wrote.
    pub dir: PathBuf,
    /// Where the JUnit report goes.
    #[arg(long, default_value = "reports/replay.xml")]
    pub junit: PathBuf,
}

pub fn run(args: &ReplayArgs) -> Result<Verdict, Error> {
    let mut problems = Vec::new();
    if let Err(e) = preflight::output_file("--junit", &args.junit) {
        problems.push(e);
    }
    let report = crate::recording::read(&args.dir).map_err(|mut e| problems.append(&mut e));
    let report = match report {
        Ok(r) if problems.is_empty() => r,
        _ => return Err(Refused(problems).into()),
    };
    crate::report::junit::write(&report, &args.junit).map_err(|e| {
        crate::errors::RunError::Report {
            message: e.to_string(),
        }
    })?;
    let checks = report
        .cells
        .iter()
        .flat_map(|c| &c.suites)
        .filter_map(|s| s.observed.as_ref())
        .flat_map(|o| &o.run.checks)
        .filter(|c| c.observation.is_some())
        .count();
    eprintln!(
        "replayed {}: {checks} observation(s) judged again; report: {}",
        args.dir.display(),
        args.junit.display()
    );
    Ok(crate::run::verdict(&report))
}
