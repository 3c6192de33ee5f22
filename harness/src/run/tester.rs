//! The tester every deployer shares: the suites crate's checks over a Kubernetes client, and pod
//! and event listings written next to the report when a cell fails.

use super::Tester;
use crate::plan::{CellPlan, SuitePlan};
use crate::report::redact::redact;
use crate::report::{CheckReport, Outcome, SuiteReport};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::{Api, Client};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use suites::kit::KubeExecutor;
use suites::{CheckFilter, CheckOutcome, RunContext, SuiteRun};

/// A cluster as the tester sees it.
#[derive(Clone)]
pub struct KubeTarget {
    pub client: Client,
    /// Nodes that take ordinary pods (cross-node checks need two).
    pub nodes: u32,
    /// What `client` was made from; a recorded run makes each suite its own client from it,
    /// so the API answers are kept per suite and check.
    pub config: Option<kube::Config>,
    /// The client outside the cluster that north-south checks probe from, if the run has one.
    pub outside: Option<super::outside::Outside>,
}

pub struct KubeTester {
    pub filter: CheckFilter,
    pub options: suites::RunOptions,
    pub external_target: Option<String>,
    /// Diagnostics of failed cells go to `<artifacts>/<cell id>/`.
    pub artifacts: PathBuf,
    /// Keep the API server's answers each check read, for `--record`.
    pub record_api: bool,
}

/// The client a suite runs on, and the log of its API answers when they are recorded: its own
/// client with [`suites::kit::ApiLog`]'s layer, since a suite's checks run one after another
/// while suites run side by side.
fn suite_client(tester: &KubeTester, target: &KubeTarget) -> (Client, Option<suites::kit::ApiLog>) {
    if let (true, Some(config)) = (tester.record_api, &target.config)
        && let Ok(builder) = kube::client::ClientBuilder::try_from(config.clone())
    {
        let log = suites::kit::ApiLog::new();
        return (builder.with_layer(&log.layer()).build(), Some(log));
    }
    (target.client.clone(), None)
}

fn check_report(run: &suites::CheckRun) -> CheckReport {
    let mut transcript = run.transcript.render();
    let outcome = match &run.outcome {
        CheckOutcome::Passed { evidence } => {
            if !evidence.is_empty() {
                transcript = format!("evidence: {evidence}\n{transcript}");
            }
            Outcome::Passed
        }
        CheckOutcome::Failed { message } => Outcome::Failed {
            message: message.clone(),
            detail: String::new(),
        },
        CheckOutcome::Error { message } => Outcome::Error {
            message: message.clone(),
            detail: String::new(),
        },
        CheckOutcome::Skipped { reason } => Outcome::Skipped {
            reason: reason.clone(),
        },
    };
    CheckReport {
        name: run.name(),
        duration: run.duration,
        outcome,
        transcript,
    }
}

/// A suite run as the report holds it, keeping what its checks observed. A live run and
/// `harness replay` both come through here, so their reports cannot differ in form.
pub fn suite_report(run: SuiteRun, context: RunContext) -> SuiteReport {
    let mut setup = run.setup.render();
    match &run.cleanup {
        suites::Cleanup::Kept { namespaces, why } => {
            let _ = writeln!(setup, "kept namespaces {} ({why})", namespaces.join(", "));
        }
        suites::Cleanup::Failed { message } => {
            let _ = writeln!(setup, "cleanup failed: {message}");
        }
        _ => {}
    }
    SuiteReport {
        suite: run.suite.to_string(),
        checks: run.checks.iter().map(check_report).collect(),
        setup_transcript: setup,
        duration: std::time::Duration::ZERO,
        observed: Some(crate::report::Observed { run, context }),
    }
}

impl Tester for KubeTester {
    type Target = KubeTarget;

    async fn suite(&self, cell: &CellPlan, target: &KubeTarget, suite: &SuitePlan) -> SuiteReport {
        let ctx = RunContext {
            features: cell.features.clone(),
            nodes: target.nodes,
            external_target: self.external_target.clone(),
            outside: target.outside.as_ref().map(|o| o.client.clone()),
        };
        let (client, api_log) = suite_client(self, target);
        let options = suites::RunOptions {
            api_log,
            ..self.options.clone()
        };
        let pods = Arc::new(KubeExecutor::new(client.clone(), options.timeouts.exec));
        let run = suites::run_suite_from(
            &client,
            pods,
            target.outside.as_ref().map(|o| o.exec.clone()),
            suite.suite,
            &ctx,
            &self.filter,
            &options,
        )
        .await;
        suite_report(run, ctx)
    }

    async fn collect(&self, cell: &CellPlan, target: &KubeTarget) -> Result<String, String> {
        let dir = self.artifacts.join(&cell.id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let pods: Api<Pod> = Api::all(target.client.clone());
        let mut text = String::new();
        for p in pods
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing pods: {e}"))?
        {
            let st = p.status.unwrap_or_default();
            let _ = writeln!(
                text,
                "{}/{} {} node={} ip={}",
                p.metadata.namespace.unwrap_or_default(),
                p.metadata.name.unwrap_or_default(),
                st.phase.unwrap_or_default(),
                p.spec.and_then(|s| s.node_name).unwrap_or_default(),
                st.pod_ip.unwrap_or_default()
            );
        }
        std::fs::write(dir.join("pods.txt"), redact(&text)).map_err(|e| e.to_string())?;
        let events: Api<Event> = Api::all(target.client.clone());
        let mut text = String::new();
        for e in events
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing events: {e}"))?
        {
            let _ = writeln!(
                text,
                "{} {}/{} {}: {}",
                e.type_.unwrap_or_default(),
                e.involved_object.namespace.unwrap_or_default(),
                e.involved_object.name.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            );
        }
        std::fs::write(dir.join("events.txt"), redact(&text)).map_err(|e| e.to_string())?;
        Ok(dir.display().to_string())
    }
}
