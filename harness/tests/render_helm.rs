//! Real `helm template` of every profile on every published Cilium chart in the test data
//! (charts/*.tgz, sha256-checked by the test-data chain), with Helm 3 and Helm 4 as pinned in
//! .ci/helm-pins.tsv (installed by .ci/install-helm.sh). The command line is the install's own
//! (`HelmInstall::template_args`: the `upgrade --install` arguments with only the verb changed)
//! plus the cell's Kubernetes version and the API versions the Gateway API bundle adds.
//! Without helm or the charts the tests say why they skip; with `CI` set they fail instead.

use harness::install::gateway_crds;
use harness::install::helm::{ChartSource, ClusterApis, HelmInstall};
use harness::matrix::{AxisFlags, MatrixSpec, expand};
use harness::plan::{CellPlan, PlanOptions, plan};
use harness::profile::Catalog;
use harness::profile::overlay::Overlay;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use suites::CheckFilter;
use upstream::testdata;

/// The charts these tests render; `every_chart_in_the_test_data_is_rendered` keeps this list
/// and the test-data manifest in step.
const CHARTS: [&str; 4] = ["1.18.4", "1.18.12", "1.19.6", "1.20.0"];

#[path = "support/helm.rs"]
mod helm_pin;
use helm_pin::{Helm, need, pinned_helm};

fn chart(version: &str) -> Result<PathBuf, String> {
    testdata::try_path(&format!("charts/cilium-{version}.tgz")).map_err(|e| e.to_string())
}

fn plan_cells(cilium: &str) -> Result<Vec<CellPlan>, harness::errors::InputError> {
    let catalog = Catalog::embedded();
    let spec = MatrixSpec::load(
        None,
        AxisFlags {
            profiles: catalog.names().map(String::from).collect(),
            cilium_versions: vec![cilium.to_string()],
            talos_versions: vec!["v1.12.11".into()],
            kubernetes_versions: vec![],
        },
    )?;
    let (cells, excluded) = expand(&spec, &catalog)?;
    let opts = PlanOptions {
        values_files: vec![],
        filter: CheckFilter::new(&[], &[]).unwrap(),
        nodes: 2,
        external_target: None,
        outside: Some(harness::plan::talos_in_docker_outside()),
    };
    Ok(plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts)?.cells)
}

/// Every profile's cell for this chart. A chart whose minor the release table does not know yet
/// is rendered with the values planned for the newest chart the table knows, and says so: the
/// values do not depend on the Cilium version today, and the chart still judges them.
pub fn cells_for(cilium: &str) -> Vec<CellPlan> {
    match plan_cells(cilium) {
        Ok(cells) => cells,
        Err(e) if e.to_string().contains("is not in the release table") => {
            let known = CHARTS
                .iter()
                .rev()
                .find_map(|v| plan_cells(v).ok().map(|c| (v, c)))
                .expect("some chart's minor is known");
            eprintln!(
                "note: the plan refuses Cilium {cilium} ({e}); rendering the values planned for {} on the {cilium} chart",
                known.0
            );
            known.1
        }
        Err(e) => panic!("planning Cilium {cilium}: {e}"),
    }
}

/// The API versions the cluster serves when helm runs: the cell's Gateway API bundle is
/// applied before Cilium, so its CRDs are served (from the stored CRDs of that release).
pub fn cluster_apis(cell: &CellPlan) -> ClusterApis {
    let api_versions = match &cell.gateway_api {
        None => vec![],
        Some(g) => {
            let dir = format!("schemas/gateway-api/{}/{}", g.version, g.channel.as_str());
            // The release bundle is these CRDs; kustomization.yaml only lists them.
            let files: Vec<_> = testdata::entries_under(&dir)
                .into_iter()
                .filter(|e| !e.path.ends_with("/kustomization.yaml"))
                .collect();
            assert!(!files.is_empty(), "{}: no stored CRDs under {dir}", cell.id);
            let bundle: String = files
                .iter()
                .map(|e| format!("---\n{}", testdata::read_to_string(e.path)))
                .collect();
            let objects = gateway_crds::parse_bundle(&bundle)
                .unwrap_or_else(|e| panic!("{}: {dir}: {e}", cell.id));
            gateway_crds::api_versions(&objects)
        }
    };
    ClusterApis {
        kubernetes: cell.cell.kubernetes.to_string(),
        api_versions,
    }
}

/// `helm template` of `values` the way the install passes them; the rendered documents, or
/// helm's stderr.
pub fn template(
    helm: &Helm,
    chart: &Path,
    cell: &CellPlan,
    values: &Value,
) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().unwrap();
    let values_path = dir.path().join("values.yaml");
    std::fs::write(&values_path, serde_saphyr::to_string(values).unwrap()).unwrap();
    let install = HelmInstall {
        helm: helm.path.clone(),
        kubeconfig: dir.path().join("kubeconfig"),
        chart: ChartSource::Chart(chart.display().to_string()),
        version: cell.cell.cilium.to_string(),
        values: values_path,
        timeout: Duration::from_secs(300),
    };
    let out = Command::new(&helm.path)
        .args(install.template_args(&cluster_apis(cell)))
        // Keep the user's helm repositories, plugins and cache out of it.
        .env("HELM_CONFIG_HOME", dir.path().join("config"))
        .env("HELM_CACHE_HOME", dir.path().join("cache"))
        .env("HELM_DATA_HOME", dir.path().join("data"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", helm.path.display()));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("helm's output is not YAML: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn renders_every_profile(cilium: &str, helm_major: u32) {
    let Some(helm) = need(pinned_helm(helm_major)) else {
        return;
    };
    let Some(chart) = need(chart(cilium)) else {
        return;
    };
    let cells = cells_for(cilium);
    assert_eq!(
        cells.len(),
        Catalog::embedded().names().count(),
        "one cell per profile"
    );
    let mut failures = Vec::new();
    for cell in &cells {
        match template(&helm, &chart, cell, &cell.values) {
            Ok(docs) => {
                let agent = docs
                    .iter()
                    .any(|d| d["kind"] == "DaemonSet" && d["metadata"]["name"] == "cilium");
                assert!(agent, "{}: no cilium DaemonSet rendered", cell.id);
                if cell.gateway_api.is_some() && cell.features.gateway_api {
                    let class = docs.iter().any(|d| d["kind"] == "GatewayClass");
                    assert!(
                        class,
                        "{}: the GatewayClass needs the API versions",
                        cell.id
                    );
                }
            }
            Err(stderr) => failures.push(format!(
                "{} with helm {}: {stderr}",
                cell.profile.name, helm.version
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "the cilium {cilium} chart refused:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_chart_in_the_test_data_is_rendered() {
    let mut listed: Vec<String> = testdata::entries_under("charts")
        .iter()
        .filter_map(|e| e.path.strip_prefix("charts/cilium-")?.strip_suffix(".tgz"))
        .map(String::from)
        .collect();
    listed.sort();
    let mut tested: Vec<String> = CHARTS.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(listed, tested);
}

#[test]
fn helm3_renders_every_profile_on_cilium_1_18_4() {
    renders_every_profile("1.18.4", 3);
}

#[test]
fn helm3_renders_every_profile_on_cilium_1_18_12() {
    renders_every_profile("1.18.12", 3);
}

#[test]
fn helm3_renders_every_profile_on_cilium_1_19_6() {
    renders_every_profile("1.19.6", 3);
}

#[test]
fn helm3_renders_every_profile_on_cilium_1_20_0() {
    renders_every_profile("1.20.0", 3);
}

#[test]
fn helm4_renders_every_profile_on_cilium_1_18_4() {
    renders_every_profile("1.18.4", 4);
}

#[test]
fn helm4_renders_every_profile_on_cilium_1_18_12() {
    renders_every_profile("1.18.12", 4);
}

#[test]
fn helm4_renders_every_profile_on_cilium_1_19_6() {
    renders_every_profile("1.19.6", 4);
}

#[test]
fn helm4_renders_every_profile_on_cilium_1_20_0() {
    renders_every_profile("1.20.0", 4);
}

#[test]
fn the_chart_refuses_what_the_lint_refuses() {
    // The render check has teeth: seed 000's literal `tunnel: disabled` fails on the real chart.
    let Some(helm) = need(pinned_helm(3)) else {
        return;
    };
    let Some(chart) = need(chart("1.18.4")) else {
        return;
    };
    let cell = &cells_for("1.18.4")[0];
    let mut values = cell.values.clone();
    values["tunnel"] = Value::String("disabled".into());
    let err = template(&helm, &chart, cell, &values).unwrap_err();
    assert!(err.contains("tunnel was deprecated in v1.14"), "{err}");
}

/// The workloads helm rendered, as the install's waits describe them.
fn rendered_workloads(docs: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = docs
        .iter()
        .filter_map(|d| {
            let kind = d["kind"].as_str()?;
            let replicas = match kind {
                "DaemonSet" => "every node".to_string(),
                "Deployment" | "StatefulSet" => {
                    let n = d["spec"]["replicas"].as_u64().unwrap_or(1);
                    format!("{n} replica{}", if n == 1 { "" } else { "s" })
                }
                _ => return None,
            };
            Some(format!(
                "{kind} {}/{} ({replicas})",
                d["metadata"]["namespace"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str()?
            ))
        })
        .collect();
    out.sort();
    out
}

fn derived_workloads(values: &Value) -> Vec<String> {
    let mut out: Vec<String> = harness::install::waits::workloads(values)
        .iter()
        .map(|w| w.to_string())
        .collect();
    out.sort();
    out
}

/// Value changes that flip the chart's conditions and counts.
fn variations() -> Vec<(&'static str, Value)> {
    use serde_json::json;
    vec![
        ("operator.replicas=1", json!({"operator": {"replicas": 1}})),
        ("operator.replicas=3", json!({"operator": {"replicas": 3}})),
        ("envoy.enabled=false", json!({"envoy": {"enabled": false}})),
        ("envoy.enabled=true", json!({"envoy": {"enabled": true}})),
        (
            "l7Proxy=false",
            json!({"l7Proxy": false, "gatewayAPI": {"enabled": false}}),
        ),
        (
            "hubble relay and ui on, 2 relays",
            json!({"hubble": {"enabled": true, "relay": {"enabled": true, "replicas": 2}, "ui": {"enabled": true}}}),
        ),
        (
            "hubble relay and ui off",
            json!({"hubble": {"relay": {"enabled": false}, "ui": {"enabled": false}}}),
        ),
        (
            // Without standalone the chart refuses a UI without relay (templates/validate.yaml).
            "hubble off, standalone ui on",
            json!({"hubble": {"enabled": false, "relay": {"enabled": false}, "ui": {"enabled": true, "standalone": {"enabled": true}}}}),
        ),
        (
            "spire on",
            json!({"authentication": {"enabled": true, "mutual": {"spire": {"enabled": true, "install": {"enabled": true}}}}}),
        ),
    ]
}

/// `plan`'s waits (derived in code) against what helm renders: every profile as it is, and the
/// first profile under each variation.
fn waits_match_the_chart(cilium: &str) {
    let Some(helm) = need(pinned_helm(3)) else {
        return;
    };
    let Some(chart) = need(chart(cilium)) else {
        return;
    };
    let cells = cells_for(cilium);
    let mut compared = 0;
    for cell in &cells {
        let docs = template(&helm, &chart, cell, &cell.values)
            .unwrap_or_else(|e| panic!("{}: {e}", cell.id));
        assert_eq!(
            derived_workloads(&cell.values),
            rendered_workloads(&docs),
            "{}",
            cell.id
        );
        let planned: Vec<String> = cell.waits.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            planned,
            harness::install::waits::workloads(&cell.values)
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        );
        compared += 1;
    }
    let base = cells
        .iter()
        .find(|c| c.profile.name == "talos-hubble")
        .expect("the talos-hubble profile");
    for (name, change) in variations() {
        let mut values = base.values.clone();
        harness::values::merge(&mut values, &change);
        let docs = template(&helm, &chart, base, &values).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            derived_workloads(&values),
            rendered_workloads(&docs),
            "talos-hubble with {name} on cilium {cilium}"
        );
        compared += 1;
    }
    assert_eq!(compared, cells.len() + variations().len());
}

#[test]
fn waits_match_the_chart_1_18_4() {
    waits_match_the_chart("1.18.4");
}

#[test]
fn waits_match_the_chart_1_18_12() {
    waits_match_the_chart("1.18.12");
}

#[test]
fn waits_match_the_chart_1_19_6() {
    waits_match_the_chart("1.19.6");
}

#[test]
fn waits_match_the_chart_1_20_0() {
    waits_match_the_chart("1.20.0");
}

/// Discovery entries of one built-in kind, from k8s-openapi's generated type (Kubernetes'
/// own OpenAPI spec): (group, version, resource list entry).
fn discovered<K>() -> (&'static str, &'static str, Value)
where
    K: k8s_openapi::Resource,
    K::Scope: 'static,
{
    let namespaced = std::any::TypeId::of::<K::Scope>()
        == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>();
    (
        K::GROUP,
        K::VERSION,
        serde_json::json!({
            "name": K::URL_PATH_SEGMENT, "singularName": K::KIND.to_lowercase(),
            "namespaced": namespaced, "kind": K::KIND,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        }),
    )
}

/// A fake API server with what helm reads before an install: the version, discovery of the
/// built-in kinds the chart renders (helm 3 maps every object through discovery), and the
/// (empty) release storage in kube-system's Secrets. No OpenAPI document is served, and every
/// write is refused.
fn fake_api_server() -> upstream::test_server::Server {
    use k8s_openapi::api::{apps, core, policy, rbac};
    use serde_json::json;
    let kinds = [
        discovered::<core::v1::Namespace>(),
        discovered::<core::v1::ServiceAccount>(),
        discovered::<core::v1::ConfigMap>(),
        discovered::<core::v1::Secret>(),
        discovered::<core::v1::Service>(),
        discovered::<apps::v1::DaemonSet>(),
        discovered::<apps::v1::Deployment>(),
        discovered::<apps::v1::StatefulSet>(),
        discovered::<rbac::v1::ClusterRole>(),
        discovered::<rbac::v1::ClusterRoleBinding>(),
        discovered::<rbac::v1::Role>(),
        discovered::<rbac::v1::RoleBinding>(),
        discovered::<policy::v1::PodDisruptionBudget>(),
    ];
    let lists = move |group: &str, version: &str| {
        let resources: Vec<Value> = kinds
            .iter()
            .filter(|(g, v, _)| *g == group && *v == version)
            .map(|(_, _, r)| r.clone())
            .collect();
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources})
    };
    let groups: Vec<Value> = ["apps", "rbac.authorization.k8s.io", "policy"]
        .iter()
        .map(|g| {
            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    upstream::test_server::Server::with_handler(move |method, url| {
        let path = url.split('?').next().unwrap_or(url);
        let body = match (method, path) {
            ("GET", "/version") => {
                json!({"major": "1", "minor": "34", "gitVersion": "v1.34.1", "platform": "linux/amd64"})
            }
            ("GET", "/api") => {
                json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
            }
            ("GET", "/apis") => {
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
            }
            ("GET", "/api/v1") => lists("", "v1"),
            ("GET", p) if p.starts_with("/apis/") && p.matches('/').count() == 3 => {
                let mut parts = p.trim_start_matches("/apis/").split('/');
                lists(parts.next().unwrap_or(""), parts.next().unwrap_or(""))
            }
            ("GET", "/api/v1/namespaces/kube-system/secrets") => {
                json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []})
            }
            _ => {
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404});
                return (404, "application/json", status.to_string().into_bytes());
            }
        };
        (200, "application/json", body.to_string().into_bytes())
    })
}

/// The install's exact `upgrade --install` argument list, run by the real helm against the
/// fake API server with `--dry-run=client`: helm reads the cluster's version and discovery and
/// looks for an existing release, then renders, and writes nothing.
fn upgrade_install_dry_run(helm_major: u32, extra: &[&str]) {
    let Some(helm) = need(pinned_helm(helm_major)) else {
        return;
    };
    let Some(chart) = need(chart("1.18.4")) else {
        return;
    };
    let cell = cells_for("1.18.4")
        .into_iter()
        .find(|c| c.profile.name == "talos-hubble")
        .unwrap();
    let server = fake_api_server();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"{}\"}}}}]\nusers: [{{name: u, user: {{token: fake}}}}]\ncontexts: [{{name: c, context: {{cluster: fake, user: u}}}}]\ncurrent-context: c\n",
            server.base
        ),
    )
    .unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, serde_saphyr::to_string(&cell.values).unwrap()).unwrap();
    let install = HelmInstall {
        helm: helm.path.clone(),
        kubeconfig: kubeconfig.clone(),
        chart: ChartSource::Chart(chart.display().to_string()),
        version: cell.cell.cilium.to_string(),
        values,
        timeout: Duration::from_secs(300),
    };
    let out = Command::new(&helm.path)
        .args(install.args())
        .arg("--dry-run=client")
        .args(extra)
        .env("KUBECONFIG", &kubeconfig)
        .env("HELM_CONFIG_HOME", dir.path().join("config"))
        .env("HELM_CACHE_HOME", dir.path().join("cache"))
        .env("HELM_DATA_HOME", dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helm {}: {stderr}", helm.version);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("STATUS: pending-install"), "{stdout}");
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.starts_with(
            "GET /api/v1/namespaces/kube-system/secrets?labelSelector=name%3Dcilium%2Cowner%3Dhelm"
        )),
        "helm looked for the release: {requests:?}"
    );
    assert!(requests.iter().any(|r| r.starts_with("GET /version")));
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "a client dry run writes nothing: {requests:?}"
    );
}

#[test]
fn helm4_runs_the_exact_upgrade_install_against_the_fake_api_server() {
    upgrade_install_dry_run(4, &[]);
}

#[test]
fn helm3_runs_the_exact_upgrade_install_against_the_fake_api_server() {
    // Helm 3 validates the manifest client-side against the server's OpenAPI document, which the
    // fake does not serve (it answers 404, and helm 3 fails with "failed to download openapi");
    // only that validation is switched off. Helm 4 leaves validation to the server.
    upgrade_install_dry_run(3, &["--disable-openapi-validation"]);
}
