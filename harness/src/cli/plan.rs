//! `harness plan`: the matrix expanded, per cell, with what would run and why.

use super::args::{SelectArgs, WorkersArg};
use crate::errors::{Error, Refused};
use crate::plan::text;
use crate::render;
use crate::run::Verdict;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub workers: WorkersArg,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Write each cell's merged values, Talos patches and Gateway API CRD reference here.
    #[arg(long, value_name = "DIR")]
    pub render: Option<PathBuf>,
}

pub fn run(args: &PlanArgs) -> Result<Verdict, Error> {
    let mut problems = Vec::new();
    if let Err(e) = args.select.check_external_target() {
        problems.push(e);
    }
    let selection = match args.select.select(args.workers.workers) {
        Ok(s) if problems.is_empty() => s,
        Ok(_) => return Err(Refused(problems).into()),
        Err(e) => {
            problems.insert(0, e);
            return Err(Refused(problems).into());
        }
    };
    let plan = &selection.plan;
    if let Some(dir) = &args.render {
        let n = render::write(plan, &selection.overlay, dir)?;
        eprintln!(
            "rendered {n} files for {} cell(s) under {}",
            plan.cells.len(),
            dir.display()
        );
    }
    match args.output {
        Output::Text => print!("{}", text::render(plan)),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(plan).expect("the plan is plain data")
        ),
    }
    Ok(Verdict::Passed)
}
