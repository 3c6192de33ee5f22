//! What `plan --render` writes is checked against upstream schemas: Talos patches against the
//! Talos machine-config schema of their release, LB IPAM objects against Cilium's CRD schemas,
//! Gateway API channels against the CRDs Cilium requires. The chart itself is checked by
//! `helm template` in render_helm.rs.

use harness::matrix::{AxisFlags, MatrixSpec, expand};
use harness::plan::{Plan, PlanOptions, plan};
use harness::profile::Catalog;
use harness::profile::overlay::Overlay;
use harness::render;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use suites::CheckFilter;

/// An upstream schema through the test-data chain (upstream/src/testdata.rs).
fn shared(rel: &str) -> PathBuf {
    upstream::testdata::path(&format!("schemas/{rel}"))
}

fn load_json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// The Talos schema of a release line, narrowed to the v1alpha1 machine config document.
fn talos_validator(minor: u64) -> jsonschema::Validator {
    let file = match minor {
        10 => "talos/config.schema.v1.10.9.json",
        11 => "talos/config.schema.v1.11.6.json",
        12 => "talos/config.schema.v1.12.11.json",
        13 => "talos/config.schema.v1.13.9.json",
        other => panic!("no schema for Talos 1.{other}"),
    };
    let mut schema = load_json(&shared(file));
    let obj = schema.as_object_mut().unwrap();
    obj.remove("oneOf");
    obj.insert("$ref".into(), json!("#/$defs/v1alpha1.Config"));
    jsonschema::validator_for(&schema).unwrap()
}

fn crd_validator(rel: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&load_json(&shared(rel))).unwrap()
}

fn all_profiles_plan(talos: &[&str], cilium: &[&str]) -> (Plan, Overlay) {
    let catalog = Catalog::embedded();
    let spec = MatrixSpec::load(
        None,
        AxisFlags {
            profiles: catalog.names().map(String::from).collect(),
            cilium_versions: cilium.iter().map(|s| s.to_string()).collect(),
            talos_versions: talos.iter().map(|s| s.to_string()).collect(),
            kubernetes_versions: vec![],
        },
    )
    .unwrap();
    let (cells, excluded) = expand(&spec, &catalog).unwrap();
    let overlay = Overlay::embedded();
    let opts = PlanOptions {
        values_files: vec![],
        filter: CheckFilter::new(&[], &[]).unwrap(),
        nodes: 2,
        external_target: None,
    };
    (
        plan(&cells, excluded, &catalog, &overlay, &opts).unwrap(),
        overlay,
    )
}

fn file<'a>(files: &'a [(PathBuf, String)], name: &str) -> &'a str {
    files
        .iter()
        .find(|(p, _)| p == Path::new(name))
        .map(|(_, t)| t.as_str())
        .unwrap_or_else(|| panic!("{name} not rendered"))
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).unwrap()
}

#[test]
fn talos_patches_validate_against_the_schema_of_their_release() {
    let (plan, overlay) =
        all_profiles_plan(&["v1.10.9", "v1.11.5", "v1.12.11", "v1.13.9"], &["1.18.4"]);
    assert_eq!(plan.cells.len(), 8 * 4);
    for cell in &plan.cells {
        let validator = talos_validator(cell.cell.talos.minor().1);
        let files = render::cell_files(cell, &overlay).unwrap();
        for role in ["talos/controlplane.patch.yaml", "talos/worker.patch.yaml"] {
            let patch = &yaml_docs(file(&files, role))[0];
            let errors: Vec<String> = validator
                .iter_errors(patch)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{} {role}: {errors:?}", cell.id);
            assert_eq!(patch["cluster"]["network"]["cni"]["name"], "none");
            assert_eq!(patch["machine"]["features"]["kubePrism"]["port"], 7445);
            assert_eq!(
                patch["cluster"]["proxy"]["disabled"].as_bool(),
                cell.features.kube_proxy_replacement.then_some(true),
                "{}: kube-proxy is disabled exactly when Cilium replaces it",
                cell.id
            );
        }
    }
}

#[test]
fn the_talos_schema_check_is_not_vacuous() {
    let validator = talos_validator(11);
    let typo = json!({"machine": {"features": {"kubePrizm": {"enabled": true}}}});
    assert!(!validator.is_valid(&typo));
    let wrong_type = json!({"machine": {"features": {"kubePrism": {"port": "7445"}}}});
    assert!(!validator.is_valid(&wrong_type));
}

#[test]
fn lb_ipam_objects_validate_against_the_cilium_crd_schemas() {
    let (plan, overlay) = all_profiles_plan(&["v1.11.5"], &["1.17.10", "1.18.4", "1.19.8"]);
    let pool_v2 =
        crd_validator("cilium-crds/jsonschema-crds-catalog/ciliumloadbalancerippool_v2.json");
    let pool_v2alpha1 =
        crd_validator("cilium-crds/jsonschema-crds-catalog/ciliumloadbalancerippool_v2alpha1.json");
    let l2 = crd_validator(
        "cilium-crds/jsonschema-crds-catalog/ciliuml2announcementpolicy_v2alpha1.json",
    );
    let mut rendered = 0;
    for cell in &plan.cells {
        let files = render::cell_files(cell, &overlay).unwrap();
        assert!(
            cell.features.l2_announcements,
            "every embedded profile has kube-proxy replacement"
        );
        let docs = yaml_docs(file(&files, "lb-ipam.yaml"));
        let (pool, policy) = (&docs[0], &docs[1]);
        let expected = if cell.cell.cilium.minor() >= (1, 18) {
            "cilium.io/v2"
        } else {
            "cilium.io/v2alpha1"
        };
        assert_eq!(pool["apiVersion"], expected, "{}", cell.id);
        let v = if expected == "cilium.io/v2" {
            &pool_v2
        } else {
            &pool_v2alpha1
        };
        assert!(v.is_valid(pool), "{}: {pool}", cell.id);
        assert!(l2.is_valid(policy), "{}: {policy}", cell.id);
        assert_eq!(pool["spec"]["blocks"][0]["cidr"], "10.5.0.240/28");
        rendered += 1;
    }
    assert_eq!(rendered, 24);
    // The seed's `cidrs:` pool would not pass the v2 schema: the check has teeth.
    let seed_pool = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumLoadBalancerIPPool",
        "metadata": {"name": "pool-1"}, "spec": {"cidrs": [{"cidr": "192.168.1.200/29"}]}});
    assert!(!pool_v2.is_valid(&seed_pool));
}

#[test]
fn gateway_api_channels_serve_the_crds_cilium_requires() {
    let (plan, _) = all_profiles_plan(&["v1.11.5"], &["1.18.4"]);
    let mut checked = 0;
    for cell in plan.cells.iter().filter(|c| c.features.gateway_api) {
        let crds = cell
            .gateway_api
            .as_ref()
            .expect("gateway API on means CRDs are installed");
        let dir = format!(
            "schemas/gateway-api/{}/{}",
            crds.version,
            crds.channel.as_str()
        );
        assert!(
            !upstream::testdata::entries_under(&dir).is_empty(),
            "{}: no stored CRDs for Gateway API {}",
            cell.id,
            crds.version
        );
        for kind in [
            "gatewayclasses",
            "gateways",
            "httproutes",
            "grpcroutes",
            "referencegrants",
        ] {
            let rel = format!("{dir}/gateway.networking.k8s.io_{kind}.yaml");
            assert!(
                upstream::testdata::entry(&rel).is_some(),
                "{}: {kind} missing from {dir}",
                cell.id
            );
            let text = upstream::testdata::read_to_string(&rel);
            let crd = &yaml_docs(&text)[0];
            let served_v1 =
                crd["spec"]["versions"].as_array().unwrap().iter().any(|v| {
                    v["served"] == true && (v["name"] == "v1" || kind == "referencegrants")
                });
            assert!(
                served_v1,
                "{}: {kind} is not served as Cilium needs",
                cell.id
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "the gateway profiles were checked");
}

#[test]
fn rendered_values_read_back_as_the_merged_values() {
    let (plan, overlay) = all_profiles_plan(&["v1.11.5"], &["1.18.4"]);
    for cell in &plan.cells {
        let files = render::cell_files(cell, &overlay).unwrap();
        let text = file(&files, "values.yaml");
        assert!(
            text.starts_with("# Helm values for the cilium chart 1.18.4; merged from: profile ")
        );
        assert_eq!(yaml_docs(text)[0], cell.values, "{}", cell.id);
        assert_eq!(
            harness::values::get(&cell.values, "bpf.hostLegacyRouting"),
            Some(&json!(true)),
            "overlay applied"
        );
    }
}
