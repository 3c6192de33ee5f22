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

/// The steps as the transcript shows them, one a line with its time.
pub fn transcript(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| format!("{} ({:.1}s)\n", s.name, s.duration.as_secs_f64()))
        .collect()
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

/// Namespaces the values leave to the harness (e.g. SPIRE's, labelled for PodSecurity), applied
/// server-side so a retry converges.
async fn create_namespaces(
    client: &Client,
    namespaces: &[crate::profile::namespaces::Namespace],
) -> Result<(), String> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let pp = PatchParams::apply("talos-cilium-harness").force();
    for ns in namespaces {
        api.patch(&ns.name, &pp, &Patch::Apply(ns.manifest()))
            .await
            .map_err(|e| format!("creating namespace {}: {e}", ns.name))?;
    }
    Ok(())
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
    let mut done = apply(client, kubeconfig, workdir, cell, opts).await?;
    match settle(client, cell, overlay, subnet, nodes, opts.timeout).await {
        Ok(more) => {
            done.extend(more);
            Ok(done)
        }
        Err(mut e) => {
            done.extend(e.steps);
            e.steps = done;
            Err(e)
        }
    }
}

/// The cell's Gateway API CRDs, namespaces and `helm upgrade --install`: an install, or a move
/// of an installed Cilium to the cell's version (the upgrade gate).
pub async fn apply(
    client: &Client,
    kubeconfig: &Path,
    workdir: &Path,
    cell: &CellPlan,
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

    if !cell.namespaces.is_empty() {
        steps
            .run(
                "create namespaces",
                create_namespaces(client, &cell.namespaces),
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
    Ok(steps.done)
}

/// Waits, each within `timeout`, for every workload the cell's values turn on and for every
/// node to be Ready, then applies the LoadBalancer pool the overlay asks for.
pub async fn settle(
    client: &Client,
    cell: &CellPlan,
    overlay: &Overlay,
    subnet: talos_docker::Ipv4Net,
    nodes: usize,
    timeout: Duration,
) -> Result<Vec<Step>, InstallError> {
    let mut steps = Steps { done: Vec::new() };
    for w in expected_workloads(cell) {
        let what = format!("{:?} {}/{} to be ready", w.kind, w.namespace, w.name);
        let name = w.name.as_str();
        let result = match w.kind {
            waits::Kind::DaemonSet => {
                let api: Api<DaemonSet> = Api::namespaced(client.clone(), &w.namespace);
                steps
                    .run(&what, async {
                        wait::object(api, name, &what, daemonset_rolled_out, timeout)
                            .await
                            .map_err(|e| e.to_string())
                    })
                    .await
            }
            waits::Kind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(client.clone(), &w.namespace);
                steps
                    .run(&what, async {
                        wait::object(api, name, &what, deployment_available, timeout)
                            .await
                            .map_err(|e| e.to_string())
                    })
                    .await
            }
            waits::Kind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(client.clone(), &w.namespace);
                steps
                    .run(&what, async {
                        wait::object(api, name, &what, statefulset_ready, timeout)
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
                timeout,
            )
            .await
            .map_err(|e| e.to_string())
        })
        .await?;

    if cell.features.l2_announcements {
        steps
            .run(
                "LB IPAM pool and L2 policy",
                apply_lb_objects(client, cell, overlay, subnet, timeout),
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
    let (policy_group, policy_version) = policy
        .api_version
        .split_once('/')
        .unwrap_or(("cilium.io", "v2alpha1"));
    let docs = [
        (
            GroupVersionKind::gvk(pool_group, pool_version, pool.kind),
            "ciliumloadbalancerippools",
            serde_json::to_value(&pool),
        ),
        (
            GroupVersionKind::gvk(policy_group, policy_version, policy.kind),
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

#[cfg(test)]
mod namespace_tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    #[tokio::test]
    async fn namespaces_are_applied_server_side_with_their_labels() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("a patch request");
            assert_eq!(request.method(), "PATCH");
            let uri = request.uri().to_string();
            assert!(uri.starts_with("/api/v1/namespaces/cilium-spire?"), "{uri}");
            assert!(
                uri.contains("fieldManager=talos-cilium-harness") && uri.contains("force=true")
            );
            let body = request.into_body().collect_bytes().await.unwrap();
            let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                sent["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
                "privileged"
            );
            send.send_response(Response::builder().body(Body::from(body.to_vec())).unwrap());
        });
        let values = serde_json::json!({"authentication": {"mutual": {"spire": {"enabled": true,
            "install": {"existingNamespace": true}}}}});
        let namespaces = crate::profile::namespaces::prepared(&values);
        create_namespaces(&client, &namespaces).await.unwrap();
        server.await.unwrap();
    }
}
