//! The two seams of the engine (kubetest2's idea): a [`Deployer`] gives the engine a cluster and
//! takes it back; a [`Tester`] runs the suites against whatever the deployer handed over. Errors
//! cross these seams as the sentence the report shows, already naming the problem and the fix.

use crate::plan::{CellPlan, SuitePlan};
use crate::report::SuiteReport;
use std::future::Future;

/// Makes (or connects to) a cell's cluster and removes it (or what the run put on it).
pub trait Deployer {
    /// What provisioning hands to the later phases.
    type Cluster;
    /// What the tester needs to reach the cluster.
    type Target;

    fn provision(&self, cell: &CellPlan) -> impl Future<Output = Result<Self::Cluster, String>>;

    /// Installs the CNI. Deployers of clusters that already run it are never asked.
    fn install(
        &self,
        cell: &CellPlan,
        cluster: &Self::Cluster,
    ) -> impl Future<Output = Result<String, String>>;

    /// A step of the upgrade gate. `Error` means the step could not be carried out; `Failed` is
    /// a verdict on the cluster. Deployers that do not upgrade are never given gate steps.
    fn gate(
        &self,
        step: super::GateStep,
        _cell: &CellPlan,
        _cluster: &Self::Cluster,
    ) -> impl Future<Output = crate::report::Outcome> {
        async move {
            crate::report::Outcome::Error {
                message: format!("this deployer cannot run the gate step {}", step.as_str()),
                detail: String::new(),
            }
        }
    }

    /// The tester's way in, made once per cell after provisioning.
    fn target(&self, cluster: &Self::Cluster)
    -> impl Future<Output = Result<Self::Target, String>>;

    /// Removes what the run made. Must be safe to call on a half-made cluster.
    fn tear_down(&self, cluster: Self::Cluster) -> impl Future<Output = Result<String, String>>;

    /// How to reach and later remove a cluster kept for debugging.
    fn keep(&self, cluster: &Self::Cluster) -> String;

    /// The command that removes whatever this run left, when its clean-up was skipped.
    fn leftovers(&self) -> String;
}

/// Runs the checks against a cluster, and gathers what helps debug a failure.
pub trait Tester {
    type Target;

    fn suite(
        &self,
        cell: &CellPlan,
        target: &Self::Target,
        suite: &SuitePlan,
    ) -> impl Future<Output = SuiteReport>;

    /// Pod states, events and the like, written under the artifacts directory; returns where.
    fn collect(
        &self,
        cell: &CellPlan,
        target: &Self::Target,
    ) -> impl Future<Output = Result<String, String>>;
}
