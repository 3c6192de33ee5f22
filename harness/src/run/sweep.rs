//! The final sweep of a command that creates Docker objects: whatever way it ends (done, failed,
//! interrupted, panicked), everything labelled with its run id goes, except clusters the person
//! asked to keep. Each cluster's own clean-up runs first; the sweep catches what slipped past it,
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
    armed: bool,
}

impl Sweep {
    pub fn arm(run_id: &RunId, state_dir: &Path) -> Sweep {
        Sweep {
            run_id: run_id.clone(),
            state_dir: state_dir.to_path_buf(),
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
        let (run_id, state_dir, keep) =
            (self.run_id.clone(), self.state_dir.clone(), keep.to_vec());
        sweep(run_id, state_dir, keep)
    }
}

async fn sweep(run_id: RunId, state_dir: PathBuf, keep: Vec<String>) -> Result<Removed, String> {
    let engine = Engine::connect(DOCKER_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let selector = Selector::run(run_id.as_str());
    let select = |o: &cleanup::Object| !o.cluster().is_some_and(|c| keep.iter().any(|k| k == c));
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
        .extend(remove_run_dirs(&state_dir, &run_id, &keep));
    Ok(total)
}

/// Run directories of this run made before any Docker object carried their path.
fn remove_run_dirs(state_dir: &Path, run_id: &RunId, keep: &[String]) -> Vec<PathBuf> {
    RunDir::scan(state_dir)
        .into_iter()
        .filter(|i| i.run_id == run_id.as_str() && !keep.contains(&i.cluster))
        .filter(|i| RunDir::remove_checked(&i.path, &i.run_id, Some(&i.cluster)).unwrap_or(false))
        .map(|i| i.path)
        .collect()
}

impl Drop for Sweep {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(e) =
            cleanup::remove_blocking(Selector::run(self.run_id.as_str()), DOCKER_TIMEOUT)
        {
            eprintln!("error: {e}");
        }
        remove_run_dirs(&self.state_dir, &self.run_id, &[]);
    }
}
