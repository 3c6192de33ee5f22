//! `harness gc`: what crashed or killed runs left, by run id and age.

use super::args::StateArgs;
use super::{connect, remove_run_dirs, said_removed};
use crate::errors::Error;
use crate::run::Verdict;
use clap::Args;
use std::time::Duration;
use talos_docker::RunId;
use talos_docker::cleanup;
use talos_docker::labels::Selector;

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Only this run's objects.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Only objects at least this old, e.g. 2h.
    #[arg(long, value_parser = crate::cli::args::parse_duration)]
    pub older_than: Option<Duration>,
    /// Also remove matching run directories left here.
    #[command(flatten)]
    pub state: StateArgs,
}

pub async fn run(args: GcArgs) -> Result<Verdict, Error> {
    if let Some(id) = &args.run_id {
        RunId::parse(id)?;
    }
    let engine = connect().await?;
    let selector = match &args.run_id {
        Some(id) => Selector::run(id),
        None => Selector::all(),
    };
    let old_enough = |age: Option<Duration>| match (args.older_than, age) {
        (None, _) | (Some(_), None) => true,
        (Some(min), Some(age)) => age >= min,
    };
    let result = cleanup::remove(&engine, &selector, |o| old_enough(o.age()))
        .await
        .map(|mut removed| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            removed.run_dirs.extend(remove_run_dirs(&args.state, |i| {
                args.run_id.as_ref().is_none_or(|id| *id == i.run_id)
                    && old_enough(Some(Duration::from_secs(now.saturating_sub(i.created))))
            }));
            removed
        });
    let what = match &args.run_id {
        Some(id) => format!("run {id}"),
        None => "every harness run".to_string(),
    };
    let again = match &args.run_id {
        Some(id) => format!("harness gc --run-id {id}"),
        None => "harness gc".to_string(),
    };
    said_removed(&what, result, &again)
}
