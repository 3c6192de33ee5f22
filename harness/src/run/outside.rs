//! The run's client outside the cluster, as the suites probe from it: which kind it is (for
//! applicability and the L2 block) and how it runs a command. For Talos-in-Docker runs it is a
//! container on the cluster's docker network, started at provisioning only when a planned check
//! probes from outside, and removed with the cluster (it carries the cluster's labels).

use crate::plan::CellPlan;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use suites::kit::{ExecOutput, KitError, OutsideExec, Peer};
use suites::{Applicability, OutsideClient};

/// What the tester hands the suites besides the Kubernetes client.
#[derive(Clone)]
pub struct Outside {
    pub client: OutsideClient,
    pub exec: Arc<dyn OutsideExec>,
}

/// Whether any check the cell runs probes from the outside client, so the deployer starts one
/// only for suites that need it.
pub fn needed(cell: &CellPlan) -> bool {
    cell.suites.iter().any(|s| {
        let decl = suites::catalog::suite(s.suite);
        s.checks.iter().any(|c| {
            c.applicability == Applicability::Applies
                && c.name
                    .split_once("::")
                    .and_then(|(_, short)| decl.check(short))
                    .is_some_and(|d| d.outside)
        })
    })
}

/// A container on the cluster's docker network ([`talos_docker::OutsideClient`]).
pub struct DockerOutside(pub talos_docker::OutsideClient);

impl OutsideExec for DockerOutside {
    fn peer(&self) -> Peer {
        Peer::new(
            format!("outside {}", self.0.name()),
            Some(self.0.ip().to_string()),
        )
    }

    fn exec<'a>(
        &'a self,
        argv: &'a [String],
        bound: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        Box::pin(async move {
            match self.0.exec(argv, bound).await {
                Ok(o) => Ok(ExecOutput {
                    exit_code: i32::try_from(o.exit_code).unwrap_or(-1),
                    stdout: o.stdout,
                    stderr: o.stderr,
                }),
                Err(e) => Err(KitError::Exec {
                    pod: format!("outside client {}", self.0.name()),
                    argv0: argv.first().cloned().unwrap_or_default(),
                    reason: e.to_string(),
                }),
            }
        })
    }
}
