//! Installing Cilium into a cluster: Gateway API CRDs first (server-side, Established), then
//! `helm upgrade --install` with the cell's merged values, then watch-based readiness of every
//! component the values turn on, then the LoadBalancer pool. Each step is timed for the report.

pub mod conditions;
pub mod gateway_crds;
pub mod helm;
pub mod wait;
pub mod waits;

use crate::lb_ipam;
use crate::plan::CellPlan;
use crate::profile::overlay::Overlay;
use conditions::{daemonset_rolled_out, deployment_available, nodes_ready, statefulset_ready};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct InstallOptions {
    pub helm: PathBuf,
    pub chart: helm::ChartSource,
    /// A local mirror of Gateway API release bundles, for runners without internet.
    pub gateway_api_dir: Option<PathBuf>,
    /// Bound on each wait (CRDs, rollouts, nodes).
    pub timeout: Duration,
}

/// One timed step of an install, for the report's transcript.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("install step '{step}' failed: {message}")]
pub struct InstallError {
    pub step: String,
    pub message: String,
    pub steps: Vec<Step>,
}

/// The workloads that must be ready: what the chart creates for the merged values.
pub fn expected_workloads(cell: &CellPlan) -> Vec<waits::Workload> {
    waits::workloads(&cell.values)
}

struct Steps {
    done: Vec<Step>,
}

impl Steps {
    async fn run<F, T>(&mut self, name: &str, f: F) -> Result<T, InstallError>
    where
        F: std::future::Future<Output = Result<T, String>>,
    {
        let start = Instant::now();
        let result = f.await;
        self.done.push(Step {
            name: name.to_string(),
            duration: start.elapsed(),
        });
        result.map_err(|message| InstallError {
            step: name.to_string(),
            message,
            steps: self.done.clone(),
        })
    }
}

/// Install the cell's Cilium into the cluster behind `client` / `kubeconfig`.
#[allow(clippy::too_many_arguments)]
pub async fn install(
    client: &Client,
    kubeconfig: &Path,
    workdir: &Path,
    cell: &CellPlan,
    overlay: &Overlay,
    subnet: talos_docker::Ipv4Net,
    nodes: usize,
    opts: &InstallOptions,
) -> Result<Vec<Step>, InstallError> {
    let mut steps = Steps { done: Vec::new() };
    if let Some(crds) = &cell.gateway_api {
        let text = steps
            .run(
                "fetch Gateway API CRDs",
                gateway_crds::fetch(crds, opts.gateway_api_dir.as_deref()),
            )
            .await?;
        let objects = steps
            .run("parse Gateway API CRDs", async {
                gateway_crds::parse_bundle(&text)
            })
            .await?;
        steps
            .run(
                "apply Gateway API CRDs",
                gateway_crds::apply(client, objects, opts.timeout),
            )
            .await?;
    }

    let values_path = workdir.join("values.yaml");
    let text = serde_saphyr::to_string(&cell.values).map_err(|e| e.to_string());
    steps
        .run("write values", async {
            std::fs::write(&values_path, text?)
                .map_err(|e| format!("{}: {e}", values_path.display()))
        })
        .await?;
    let helm = helm::HelmInstall {
        helm: opts.helm.clone(),
        kubeconfig: kubeconfig.to_path_buf(),
        chart: opts.chart.clone(),
        version: cell.cell.cilium.to_string(),
        values: values_path.clone(),
        timeout: opts.timeout,
    };
    steps.run("helm upgrade --install", helm.run()).await?;

    for w in expected_workloads(cell) {
        let what = format!("{:?} {}/{} to be ready", w.kind, w.namespace, w.name);
        let name = w.name.as_str();
        let result = match w.kind {
            waits::Kind::DaemonSet => {
                let api: Api<DaemonSet> = Api::namespaced(client.clone(), &w.namespace);
                steps
                    .run(&what, async {
                        wait::object(api, name, &what, daemonset_rolled_out, opts.timeout)
                            .await
                            .map_err(|e| e.to_string())
                    })
                    .await
            }
            waits::Kind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(client.clone(), &w.namespace);
                steps
                    .run(&what, async {
                        wait::object(api, name, &what, deployment_available, opts.timeout)
                            .await
                            .map_err(|e| e.to_string())
                    })
                    .await
            }
            waits::Kind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(client.clone(), &w.namespace);
                steps
                    .run(&what, async {
                        wait::object(api, name, &what, statefulset_ready, opts.timeout)
                            .await
                            .map_err(|e| e.to_string())
                    })
                    .await
            }
        };
        result?;
    }
    let node_api: Api<Node> = Api::all(client.clone());
    steps
        .run("nodes Ready", async {
            wait::all(
                node_api,
                &format!("{nodes} nodes to be Ready"),
                |n| nodes_ready(n, nodes),
                opts.timeout,
            )
            .await
            .map_err(|e| e.to_string())
        })
        .await?;

    if cell.features.l2_announcements {
        steps
            .run(
                "LB IPAM pool and L2 policy",
                apply_lb_objects(client, cell, overlay, subnet, opts.timeout),
            )
            .await?;
    }
    Ok(steps.done)
}

async fn apply_lb_objects(
    client: &Client,
    cell: &CellPlan,
    overlay: &Overlay,
    subnet: talos_docker::Ipv4Net,
    timeout: Duration,
) -> Result<(), String> {
    let (pool, policy) =
        lb_ipam::objects(overlay, subnet, &cell.cell.cilium).map_err(|e| e.to_string())?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        "ciliumloadbalancerippools.cilium.io",
        "ciliuml2announcementpolicies.cilium.io",
    ] {
        wait::object(
            crds.clone(),
            crd,
            &format!("CRD {crd} (registered by the operator)"),
            conditions::crd_established,
            timeout,
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    let pp = PatchParams::apply("talos-cilium-harness").force();
    let (pool_group, pool_version) = pool
        .api_version
        .split_once('/')
        .unwrap_or(("cilium.io", "v2"));
    let docs = [
        (
            GroupVersionKind::gvk(pool_group, pool_version, pool.kind),
            "ciliumloadbalancerippools",
            serde_json::to_value(&pool),
        ),
        (
            GroupVersionKind::gvk("cilium.io", "v2alpha1", policy.kind),
            "ciliuml2announcementpolicies",
            serde_json::to_value(&policy),
        ),
    ];
    for (gvk, plural, value) in docs {
        let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let obj: DynamicObject =
            serde_json::from_value(value.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let name = obj.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map_err(|e| format!("applying {} {name}: {e}", gvk.kind))?;
    }
    Ok(())
}
