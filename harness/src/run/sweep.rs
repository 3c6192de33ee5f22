//! The final sweep of a command that creates Docker objects: whatever way it ends (done, failed,
//! interrupted, panicked), everything labelled with its run id and one of the cluster names it
//! could have made goes, except clusters the person asked to keep. Other clusters that happen to
//! share the run id (another `up --run-id` of the same CI job) are left alone. Each cluster's own clean-up runs first; the sweep catches what slipped past it,
//! such as a container the engine was still creating when the signal came.

use std::path::{Path, PathBuf};
use std::time::Duration;
use talos_docker::cleanup::{self, Removed};
use talos_docker::docker::Engine;
use talos_docker::labels::Selector;
use talos_docker::{RunDir, RunId};

/// Reaching the engine, and each pass.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(15);
/// A pass that finds nothing must be followed by another this much later that finds nothing.
const SETTLE: Duration = Duration::from_millis(500);
const MAX_PASSES: usize = 10;

/// Armed until [`Sweep::run`] or [`Sweep::disarm`]; dropped armed (a panic unwinding), it
/// removes everything of the run from a thread of its own.
pub struct Sweep {
    run_id: RunId,
    state_dir: PathBuf,
    clusters: Vec<String>,
    armed: bool,
}

impl Sweep {
    /// `clusters`: the names the command may create under `run_id`.
    pub fn arm(run_id: &RunId, state_dir: &Path, clusters: Vec<String>) -> Sweep {
        Sweep {
            run_id: run_id.clone(),
            state_dir: state_dir.to_path_buf(),
            clusters,
            armed: true,
        }
    }

    /// Nothing to sweep: the command keeps what it made (a successful `up`, a kept failure).
    pub fn disarm(mut self) {
        self.armed = false;
    }

    /// Removes every object and run directory of the run except those of the `keep` clusters,
    /// pass after pass until two in a row find nothing.
    pub fn run(
        mut self,
        keep: &[String],
    ) -> impl std::future::Future<Output = Result<Removed, String>> + use<> {
        // Disarmed now, not at the first poll: a second signal may drop the future unpolled,
        // and then the person asked for no clean-up.
        self.armed = false;
        let ours: Vec<String> = self
            .clusters
            .iter()
            .filter(|c| !keep.contains(c))
            .cloned()
            .collect();
        sweep(self.run_id.clone(), self.state_dir.clone(), ours)
    }
}

async fn sweep(run_id: RunId, state_dir: PathBuf, ours: Vec<String>) -> Result<Removed, String> {
    let engine = Engine::connect(DOCKER_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let selector = Selector::run(run_id.as_str());
    let select = |o: &cleanup::Object| o.cluster().is_some_and(|c| ours.iter().any(|k| k == c));
    let mut total = Removed::default();
    let mut quiet = 0;
    for _ in 0..MAX_PASSES {
        let pass = tokio::time::timeout(
            DOCKER_TIMEOUT * 4,
            cleanup::remove(&engine, &selector, select),
        )
        .await
        .map_err(|_| {
            format!(
                "a clean-up pass took over {}s",
                (DOCKER_TIMEOUT * 4).as_secs()
            )
        })?
        .map_err(|e| match e {
            talos_docker::Error::Cleanup(what) => what,
            other => other.to_string(),
        })?;
        if pass.is_empty() {
            quiet += 1;
            if quiet == 2 {
                break;
            }
        } else {
            quiet = 0;
            total.containers.extend(pass.containers);
            total.networks.extend(pass.networks);
            total.volumes.extend(pass.volumes);
            total.run_dirs.extend(pass.run_dirs);
        }
        tokio::time::sleep(SETTLE).await;
    }
    total
        .run_dirs
        .extend(remove_run_dirs(&state_dir, &run_id, &ours));
    Ok(total)
}

/// Run directories of these clusters made before any Docker object carried their path.
fn remove_run_dirs(state_dir: &Path, run_id: &RunId, ours: &[String]) -> Vec<PathBuf> {
    RunDir::scan(state_dir)
        .into_iter()
        .filter(|i| i.run_id == run_id.as_str() && ours.contains(&i.cluster))
        .filter(|i| RunDir::remove_checked(&i.path, &i.run_id, Some(&i.cluster)).unwrap_or(false))
        .map(|i| i.path)
        .collect()
}

impl Drop for Sweep {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for cluster in &self.clusters {
            let selector = Selector::run_cluster(self.run_id.as_str(), cluster);
            if let Err(e) = cleanup::remove_blocking(selector, DOCKER_TIMEOUT) {
                eprintln!("error: {e}");
            }
        }
        remove_run_dirs(&self.state_dir, &self.run_id, &self.clusters);
    }
}
