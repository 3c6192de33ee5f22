//! `harness plan`: the matrix expanded, per cell, with what would run and why.

use super::args::{JobsArgs, NodeSizeArgs, SelectArgs};
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
    /// `{"include":[...]}` for a GitHub Actions matrix, one entry per shard (see --shards).
    GithubMatrix,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub sizes: NodeSizeArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Write each cell's merged values, Talos patches and Gateway API CRD reference here.
    #[arg(long, value_name = "DIR")]
    pub render: Option<PathBuf>,
    /// Only this shard's cells: a stable hash of each cell id picks one of N shards.
    #[arg(long, value_name = "hash:K/N", value_parser = crate::partition::Partition::parse)]
    pub partition: Option<crate::partition::Partition>,
    /// With --output github-matrix: how many shards to split the cells into [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256), conflicts_with = "partition")]
    pub shards: Option<u32>,
}

pub fn run(args: &PlanArgs) -> Result<Verdict, Error> {
    let mut problems = Vec::new();
    if let Err(e) = args.select.check_external_target() {
        problems.push(e);
    }
    if args.shards.is_some() && !matches!(args.output, Output::GithubMatrix) {
        problems.push(crate::errors::InputError::Unsupported(
            "--shards only applies to --output github-matrix; add that or drop --shards".into(),
        ));
    }
    if let Some(dir) = &args.render
        && let Err(e) = crate::preflight::output_dir("--render", dir)
    {
        problems.push(e);
    }
    let mut selection = match args.select.select(args.sizes.workers.workers) {
        Ok(s) if problems.is_empty() => s,
        Ok(_) => return Err(Refused(problems).into()),
        Err(mut found) => {
            found.extend(problems);
            return Err(Refused(found).into());
        }
    };
    if let Some(p) = &args.partition {
        p.select(&mut selection.plan)
            .map_err(crate::errors::InputError::Unsupported)?;
    }
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
        Output::Text => {
            let jobs = args.jobs.jobs(args.sizes.cluster_size(), plan.cells.len());
            print!("{}", text::render(plan, &jobs))
        }
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(plan).expect("the plan is plain data")
        ),
        Output::GithubMatrix => println!(
            "{}",
            crate::github_matrix::to_json(&crate::github_matrix::matrix(
                plan,
                args.shards.unwrap_or(1)
            ))
        ),
    }
    Ok(Verdict::Passed)
}
