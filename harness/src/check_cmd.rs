//! `harness check`: run the suites against a cluster that already exists (a homelab, an Omni
//! cluster, one from `harness up`), given its kubeconfig and the profile it runs. The suites never
//! know how a cluster was made; only the features derived from the profile's values matter.

use crate::cli::SelectArgs;
use crate::errors::InputError;
use crate::report::{CellReport, Outcome, PhaseName, PhaseReport, RunReport, junit};
use crate::run::live::suite_report;
use clap::Args;
use k8s_openapi::api::core::v1::Node;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use suites::RunContext;

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The cluster's kubeconfig (read only; default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    #[arg(long, default_value = "reports/junit.xml")]
    pub junit: PathBuf,
    /// Keep the suites' namespaces when a check fails.
    #[arg(long)]
    pub keep_on_failure: bool,
}

const API_TIMEOUT: Duration = Duration::from_secs(15);

fn bad_kubeconfig(path: &Path, why: impl std::fmt::Display) -> InputError {
    InputError::Unsupported(format!(
        "kubeconfig {}: {why}; pass a working one with --kubeconfig (and --context)",
        path.display()
    ))
}

/// A client for the kubeconfig, proven by asking the API server its version.
async fn connect(path: &Path, context: Option<&str>) -> Result<(Client, String), InputError> {
    let kc = Kubeconfig::read_from(path).map_err(|e| bad_kubeconfig(path, e))?;
    let opts = KubeConfigOptions {
        context: context.map(String::from),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| bad_kubeconfig(path, e))?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| bad_kubeconfig(path, e))?;
    match tokio::time::timeout(API_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(v)) => Ok((client, format!("{server} (Kubernetes {})", v.git_version))),
        Ok(Err(e)) => Err(bad_kubeconfig(
            path,
            format!("the API server at {server} refused: {e}"),
        )),
        Err(_) => Err(bad_kubeconfig(
            path,
            format!("the API server at {server} did not answer within {API_TIMEOUT:?}"),
        )),
    }
}

/// Nodes that take ordinary pods: not cordoned and without a NoSchedule taint.
pub fn schedulable(nodes: &[Node]) -> u32 {
    let n = nodes
        .iter()
        .filter(|n| {
            let spec = n.spec.as_ref();
            !spec.and_then(|s| s.unschedulable).unwrap_or(false)
                && !spec
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.effect == "NoSchedule"))
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

async fn remove_run_namespaces(client: &Client, run_id: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let selector = format!("{}={run_id}", suites::kit::namespace::LABEL_RUN);
    let lp = kube::api::ListParams::default().labels(&selector);
    match api.list(&lp).await {
        Ok(list) => {
            for ns in list.items {
                let name = ns.metadata.name.unwrap_or_default();
                if let Err(e) = suites::kit::namespace::delete(client, &name).await {
                    eprintln!("error: {e}; remove it with `kubectl delete namespace {name}`");
                }
            }
        }
        Err(e) => eprintln!("error: cannot list this run's namespaces ({selector}): {e}"),
    }
}

fn default_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config"))
}

pub fn check(args: CheckArgs) -> Result<u8, InputError> {
    let (plan, _) = args.select.plan()?;
    let [cell] = plan.cells.as_slice() else {
        return Err(InputError::Unsupported(format!(
            "check runs one cell, the one the cluster is: name its profile with --profile (and --cilium-version); this selection has {} cells",
            plan.cells.len()
        )));
    };
    let options = args.select.options()?;
    let path = args
        .kubeconfig
        .clone()
        .or_else(default_kubeconfig)
        .ok_or_else(|| {
            InputError::Unsupported("no kubeconfig: pass --kubeconfig or set KUBECONFIG".into())
        })?;
    let run_id = format!("check-{}", std::process::id());
    let mut suite_opts = suites::RunOptions::from_env(&run_id)
        .map_err(|e| InputError::Unsupported(format!("{e}; fix the HARNESS_IMAGE_* variables")))?;
    if args.keep_on_failure {
        suite_opts.keep = suites::kit::namespace::KeepNamespaces::OnFailure;
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| InputError::Unsupported(format!("no async runtime: {e}")))?;
    runtime.block_on(async {
        let (client, server) = connect(&path, args.context.as_deref()).await?;
        let nodes: Vec<Node> = Api::all(client.clone())
            .list(&Default::default())
            .await
            .map_err(|e| bad_kubeconfig(&path, format!("cannot list nodes: {e}")))?
            .items;
        let ctx = RunContext {
            features: cell.features.clone(),
            nodes: schedulable(&nodes),
            external_target: options.external_target.clone(),
        };
        eprintln!(
            "checking {server} as {} ({} schedulable nodes)",
            cell.id, ctx.nodes
        );
        let start = Instant::now();
        let mut interrupt = crate::run::signals::install()
            .map_err(|e| InputError::Unsupported(format!("cannot install signal handlers: {e}")))?;
        let mut suites_run = Vec::new();
        let mut interrupted = None;
        for s in &cell.suites {
            let run = suites::run_suite(&client, s.suite, &ctx, &options.filter, &suite_opts);
            tokio::select! {
                run = run => suites_run.push(suite_report(&run)),
                _ = interrupt.changed() => {
                    interrupted = *interrupt.borrow();
                    break;
                }
            }
        }
        if let Some(sig) = interrupted {
            // The suite stopped mid-way and did not clean up: remove this run's namespaces
            // (and with them what they own, such as the lb-ipam pool).
            remove_run_namespaces(&client, &run_id).await;
            let done: Vec<String> = suites_run.iter().map(|s| s.suite.clone()).collect();
            for s in cell
                .suites
                .iter()
                .filter(|s| !done.contains(&s.suite.to_string()))
            {
                suites_run.push(crate::run::skipped_checks_of(
                    s,
                    &format!("not run: interrupted by {sig}"),
                ));
            }
        }
        let failed = suites_run
            .iter()
            .flat_map(|s| &s.checks)
            .any(|c| matches!(c.outcome, Outcome::Failed { .. } | Outcome::Error { .. }));
        let report = RunReport {
            run_id,
            interrupted: interrupted.map(String::from),
            cells: vec![CellReport {
                cell: cell.cell.clone(),
                seed: cell.profile.seed.clone(),
                phases: vec![PhaseReport {
                    name: PhaseName::Suites,
                    duration: start.elapsed(),
                    outcome: if failed {
                        Outcome::Failed {
                            message: "some checks failed".into(),
                            detail: String::new(),
                        }
                    } else {
                        Outcome::Passed
                    },
                }],
                suites: suites_run,
            }],
            provenance: crate::report::provenance::Provenance {
                cells: [(
                    cell.id.clone(),
                    crate::report::provenance::CellProvenance {
                        probe_images: crate::report::provenance::probe_images(&suite_opts.images),
                        ..Default::default()
                    },
                )]
                .into(),
                ..Default::default()
            },
        };
        junit::write(&report, &args.junit)?;
        eprintln!("report: {}", args.junit.display());
        Ok(crate::run::exit_status(&report).max(u8::from(failed)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_planes_and_cordoned_nodes_do_not_count() {
        let nodes: Vec<Node> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "cp"}, "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}},
            {"metadata": {"name": "w1"}, "spec": {}},
            {"metadata": {"name": "w2"}, "spec": {"unschedulable": true}},
            {"metadata": {"name": "w3"}, "spec": {"taints": [{"key": "x", "effect": "PreferNoSchedule"}]}}
        ]))
        .unwrap();
        assert_eq!(schedulable(&nodes), 2);
    }
}
