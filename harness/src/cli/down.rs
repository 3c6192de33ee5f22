//! `harness down`: one cluster removed by name, with its run directory.

use super::args::StateArgs;
use super::{connect, remove_run_dirs, said_removed};
use crate::errors::Error;
use crate::run::Verdict;
use clap::Args;
use talos_docker::cleanup;
use talos_docker::labels::Selector;

#[derive(Args, Debug)]
pub struct DownArgs {
    /// The cluster to remove (as `harness ls` shows it).
    pub cluster: String,
    #[command(flatten)]
    pub state: StateArgs,
}

pub async fn run(args: DownArgs) -> Result<Verdict, Error> {
    // A name no cluster can have is a typo (or a flag in the wrong place), not "nothing to do".
    if let Err(talos_docker::PreflightError::InvalidName { why, .. }) =
        talos_docker::spec::validate_name(&args.cluster)
    {
        return Err(crate::errors::InputError::problem(
            format!("no cluster can be named '{}': {why}", args.cluster),
            "pass a cluster name as `harness ls` shows it",
        )
        .into());
    }
    let engine = connect().await?;
    let result = cleanup::remove(&engine, &Selector::cluster(&args.cluster), |_| true)
        .await
        .map(|mut removed| {
            removed
                .run_dirs
                .extend(remove_run_dirs(&args.state, |i| i.cluster == args.cluster));
            removed
        });
    said_removed(
        &format!("cluster {}", args.cluster),
        result,
        &format!("harness down {}", args.cluster),
    )
}
