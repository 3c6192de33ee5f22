//! `harness check`: the run engine over the existing-cluster deployer: the suites against a
//! cluster given by its kubeconfig and the profile it runs (a homelab, an Omni cluster, one from
//! `harness up`). The suites never know how a cluster was made; only the features derived from
//! the profile's values matter. Tear-down removes the run's test namespaces, nothing else.

use super::args::{OutsideArgs, ReportArgs, RunArgs, SelectArgs, SuiteJobsArg};
use crate::cluster::{ClusterDescription, Origin};
use crate::errors::{Error, InputError, Refused, RunError};
use crate::preflight;
use crate::run::existing::{Existing, OutsidePlan};
use crate::run::kube::{CONNECT_TIMEOUT, KubeAccess, default_kubeconfig};
use crate::run::outside::Outside;
use crate::run::signals;
use crate::run::tester::KubeTester;
use crate::run::{Engine, EngineOptions, Step, Verdict};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub suite_jobs: SuiteJobsArg,
    #[command(flatten)]
    pub outside: OutsideArgs,
    /// The cluster's kubeconfig, read only; a `:`-separated list is merged like kubectl does
    /// [default: $KUBECONFIG, else ~/.kube/config].
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
}

/// The cluster as its API shows it: the nodes' pod CIDRs and addresses, the API server the
/// kubeconfig names. Nodes that cannot be listed (RBAC) leave those facts assumed; the
/// deployer's own node count then fails the run with the reason.
async fn observe(client: &kube::Client, server: &str) -> ClusterDescription {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    // `connect` appends the server's version to the URL it shows.
    let url = server.split(" (").next().unwrap_or(server);
    match tokio::time::timeout(CONNECT_TIMEOUT, nodes.list(&Default::default())).await {
        Ok(Ok(list)) => ClusterDescription::observed(&list.items, url),
        Ok(Err(e)) => {
            eprintln!("cannot read the cluster's nodes ({e}); its pod CIDR is assumed");
            ClusterDescription::observed(&[], url)
        }
        Err(_) => {
            eprintln!(
                "the cluster's nodes were not listed within {}s; its pod CIDR is assumed",
                CONNECT_TIMEOUT.as_secs()
            );
            ClusterDescription::observed(&[], url)
        }
    }
}

/// What the lint went by: each fact read from the cluster, and each one assumed with why.
fn fact_lines(c: &ClusterDescription) -> Vec<String> {
    c.facts()
        .into_iter()
        .filter_map(|(fact, value, origin)| match origin {
            Origin::Observed(how) => Some(format!("cluster: {fact} {value} (read: {how})")),
            Origin::Assumed(why) => Some(format!("cluster: assumed {fact} {value} ({why})")),
            Origin::Flag(_) | Origin::Harness(_) => None,
        })
        .collect()
}

/// Cross-node checks are planned for two schedulable nodes; at run time the suites judge
/// applicability on the count the deployer found.
const PLANNED_NODES: u32 = 2;

fn note<T>(problems: &mut Vec<InputError>, r: Result<T, impl Into<InputError>>) -> Option<T> {
    r.map_err(|e| problems.push(e.into())).ok()
}

pub async fn run(args: CheckArgs) -> Result<Verdict, Error> {
    let mut problems = Vec::new();
    let mut config = None;
    let outside = match args.outside.client() {
        Ok(o) => o,
        Err(p) => {
            problems.extend(p);
            None
        }
    };
    let client = match args.kubeconfig.clone().or_else(default_kubeconfig) {
        None => {
            problems.push(InputError::problem(
                "no kubeconfig",
                "pass --kubeconfig or set KUBECONFIG",
            ));
            None
        }
        Some(path) => {
            let access = KubeAccess {
                kubeconfig: path,
                context: args.context.clone(),
            };
            match access.connect(CONNECT_TIMEOUT).await {
                Ok(connected) => {
                    config = access.config().await.ok();
                    Some(connected)
                }
                Err(e) => {
                    problems.push(InputError::problem(
                        e.to_string(),
                        "pass a working one with --kubeconfig (and --context)",
                    ));
                    None
                }
            }
        }
    };
    // The values are linted against this cluster's own facts (its nodes' pod CIDRs, its API
    // server), not the Talos-in-Docker cluster the harness would build.
    let cluster = match &client {
        Some((client, server)) => Some(observe(client, server).await),
        None => None,
    };
    if let Some(c) = &cluster {
        for line in fact_lines(c) {
            eprintln!("{line}");
        }
    }
    let selection = args
        .select
        .select_on(
            PLANNED_NODES,
            Some(
                cluster
                    .as_ref()
                    .unwrap_or(&ClusterDescription::given(&Default::default())),
            ),
            outside.clone(),
        )
        .map_err(|e| problems.extend(e))
        .ok();
    if let Some(s) = &selection
        && s.plan.cells.len() != 1
    {
        problems.push(InputError::problem(
            format!(
                "check runs one cell, the one the cluster is, but this selection has {} cells",
                s.plan.cells.len()
            ),
            "name its profile with --profile (and --cilium-version, --talos-version)",
        ));
    }
    note(&mut problems, args.select.check_external_target());
    let (run_id, suite_options) = args.run.run_id_and_suite_options(&mut problems);
    problems.extend(args.report.check());
    let outside_plan = match (&outside, &suite_options) {
        (Some(o), Some(opts)) => outside_plan(&args.outside, o, opts, &mut problems).await,
        _ => None,
    };
    let (Some(selection), Some(run_id), Some(mut suite_options), Some((client, server)), true) = (
        selection,
        run_id,
        suite_options,
        client,
        problems.is_empty(),
    ) else {
        return Err(Refused(problems).into());
    };

    if args.run.keep_on_failure {
        suite_options.keep = suites::kit::namespace::KeepNamespaces::OnFailure;
    }
    let mut deployer = Existing::new(client, run_id.as_str());
    if let Some(config) = config {
        deployer = deployer.with_config(config);
    }
    deployer.outside = outside_plan;
    let tester = KubeTester {
        filter: selection.options.filter,
        options: suite_options,
        external_target: selection.options.external_target,
        artifacts: args.report.artifacts.clone(),
        record_api: args.report.record.is_some(),
    };
    let cleanup = crate::run::Deployer::leftovers(&deployer);
    let interrupt =
        signals::install(run_id.as_str(), cleanup.clone()).map_err(|source| RunError::Os {
            what: "install the SIGINT/SIGTERM handlers",
            source,
        })?;
    let plan = &selection.plan;
    eprintln!("run {run_id}: checking {server} as {}", plan.cells[0].id);
    let progress = crate::run::progress::for_stderr();
    let engine = Engine {
        deployer: &deployer,
        tester: &tester,
        steps: &[Step::Suites { label: None }],
        opts: EngineOptions {
            run_id: run_id.to_string(),
            keep_on_failure: args.run.keep_on_failure,
            jobs: 1,
            suite_jobs: args.suite_jobs.suite_jobs as usize,
            provenance: crate::report::provenance::Provenance {
                cells: plan
                    .cells
                    .iter()
                    .map(|c| {
                        let cell = crate::report::provenance::CellProvenance {
                            probe_images: crate::report::provenance::probe_images(
                                &tester.options.images,
                            ),
                            ..Default::default()
                        };
                        (c.id.clone(), cell)
                    })
                    .collect(),
                ..Default::default()
            },
        },
        progress: progress.as_ref(),
    };
    let (outcome, report_error) = engine
        .run_to_junit(
            plan,
            &interrupt,
            &args.report.junit,
            args.report.recorder("check").as_ref(),
        )
        .await;
    eprintln!("report: {}", args.report.junit.display());
    if let Some(dir) = &args.report.record {
        eprintln!(
            "recording: {} (judge it again with `harness replay {}`)",
            dir.display(),
            dir.display()
        );
    }
    // Tear-down was the sweep: nothing of this run lives outside its namespaces.
    super::finish(outcome.verdict, report_error, Ok(()), &cleanup)
}

/// How the outside client will run, with its problems found before anything is created: the
/// host needs curl and ip; a docker network must exist and the probe client image be present.
async fn outside_plan(
    args: &OutsideArgs,
    client: &suites::OutsideClient,
    opts: &suites::RunOptions,
    problems: &mut Vec<InputError>,
) -> Option<OutsidePlan> {
    match client.origin {
        suites::OutsideOrigin::Host => {
            let host = preflight::Host::current();
            for tool in ["curl", "ip"] {
                if host.find(std::path::Path::new(tool)).is_none() {
                    problems.push(InputError::problem(
                        format!("--outside-client host probes with {tool}, which is not on PATH"),
                        format!("install {tool} (Debian: curl, iproute2), or use --outside-client docker-network"),
                    ));
                }
            }
            Some(OutsidePlan::Host(Outside {
                client: client.clone(),
                exec: std::sync::Arc::new(suites::kit::HostExec::new()),
            }))
        }
        suites::OutsideOrigin::DockerNetwork => {
            let network = args.docker_network.clone()?;
            let timeouts = talos_docker::Timeouts::default();
            let engine = match talos_docker::docker::Engine::connect(timeouts.docker).await {
                Ok(e) => e,
                Err(e) => {
                    problems.push(e.into());
                    return None;
                }
            };
            match engine.networks().await {
                Ok(nets) if nets.iter().any(|n| n.name == network || n.id == network) => {}
                Ok(nets) => problems.push(InputError::problem(
                    format!("--docker-network {network}: the Docker engine has no such network (it has {})", nets.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")),
                    "name the network the cluster's nodes are on (`docker network ls`)",
                )),
                Err(e) => problems.push(InputError::problem(
                    format!("cannot list the Docker networks: {e}"),
                    "check the engine with `docker network ls`",
                )),
            }
            let image = opts.images.client.to_string();
            if let Err(e) = engine.ensure_image(&image, &timeouts).await {
                problems.push(e.into());
            }
            Some(OutsidePlan::Docker {
                engine,
                network,
                image,
                client: client.clone(),
            })
        }
    }
}
