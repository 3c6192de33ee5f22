//! What `plan --render` writes is checked against upstream schemas: Talos patches against the
//! Talos machine-config schema of their release, LB IPAM objects against Cilium's CRD schemas,
//! Gateway API channels against the CRDs Cilium requires. The chart itself is checked by
//! `helm template` in render_helm.rs.

use harness::matrix::{AxisFlags, MatrixSpec, expand};
use harness::plan::{Plan, PlanOptions, ValuesFile, plan};
use harness::profile::Catalog;
use harness::profile::overlay::Overlay;
use harness::releases::ReleaseTable;
use harness::render;
use serde_json::{Value, json};
use std::collections::BTreeMap;
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

/// The stored Talos schema of each release line in the table.
fn talos_schema_file(minor: u64) -> &'static str {
    match minor {
        11 => "talos/config.schema.v1.11.6.json",
        12 => "talos/config.schema.v1.12.11.json",
        13 => "talos/config.schema.v1.13.9.json",
        14 => "talos/config.schema.v1.14.0-rc.1.json",
        other => panic!("no stored schema for Talos 1.{other}"),
    }
}

fn strip_required(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("required");
            m.values_mut().for_each(strip_required);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_required),
        _ => {}
    }
}

/// Validates the documents of a Talos config patch against one release's own schema: the
/// v1alpha1 document against `v1alpha1.Config`, every other document against the definition
/// of its kind (without `required`, since a patch merges into the generated document; unknown
/// keys still fail), and a `$patch: delete` selector by its kind and apiVersion alone.
struct TalosSchema {
    schema: Value,
}

impl TalosSchema {
    fn of(minor: u64) -> Self {
        TalosSchema {
            schema: load_json(&shared(talos_schema_file(minor))),
        }
    }

    fn validator_for(&self, def: &str, patch: bool) -> jsonschema::Validator {
        let mut schema = self.schema.clone();
        let obj = schema.as_object_mut().unwrap();
        obj.remove("oneOf");
        obj.insert("$ref".into(), json!(format!("#/$defs/{def}")));
        if patch {
            strip_required(&mut schema);
        }
        jsonschema::validator_for(&schema).unwrap()
    }

    /// The definition whose `kind` enum holds `kind`.
    fn def_of(&self, kind: &str) -> Option<(String, Value)> {
        self.schema["$defs"]
            .as_object()
            .unwrap()
            .iter()
            .find_map(|(name, def)| {
                let kinds = def["properties"]["kind"]["enum"].as_array()?;
                kinds.iter().any(|k| k == kind).then(|| {
                    (
                        name.clone(),
                        def["properties"]["apiVersion"]["enum"].clone(),
                    )
                })
            })
    }

    fn errors(&self, doc: &Value) -> Vec<String> {
        let Some(kind) = doc.get("kind").and_then(Value::as_str) else {
            return self
                .validator_for("v1alpha1.Config", false)
                .iter_errors(doc)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
        };
        let Some((def, api_versions)) = self.def_of(kind) else {
            return vec![format!("no document kind {kind} in this release")];
        };
        if !api_versions
            .as_array()
            .is_some_and(|a| a.contains(&doc["apiVersion"]))
        {
            return vec![format!("{kind} has no apiVersion {}", doc["apiVersion"])];
        }
        if doc.get("$patch").is_some() {
            let only_selector = doc
                .as_object()
                .unwrap()
                .keys()
                .all(|k| k == "apiVersion" || k == "kind" || k == "$patch");
            return if doc["$patch"] == "delete" && only_selector {
                vec![]
            } else {
                vec![format!(
                    "{kind}: a delete selector holds apiVersion, kind and `$patch: delete` only"
                )]
            };
        }
        self.validator_for(&def, true)
            .iter_errors(doc)
            .map(|e| format!("{kind}: {e} at {}", e.instance_path()))
            .collect()
    }
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
        outside: Some(harness::plan::talos_in_docker_outside()),
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

fn talos_minors() -> Vec<u64> {
    ReleaseTable::embedded()
        .talos
        .iter()
        .map(|t| t.minor.1)
        .collect()
}

fn latest_talos() -> Vec<String> {
    ReleaseTable::embedded()
        .talos
        .iter()
        .map(|t| t.latest.to_string())
        .collect()
}

fn latest_cilium() -> Vec<String> {
    ReleaseTable::embedded()
        .cilium
        .iter()
        .map(|c| c.latest.to_string())
        .collect()
}

fn patch_docs(files: &[(PathBuf, String)], role: &str) -> Vec<Value> {
    yaml_docs(file(files, role))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

#[test]
fn talos_patches_validate_against_the_schema_of_their_own_release() {
    let talos = latest_talos();
    let talos: Vec<&str> = talos.iter().map(String::as_str).collect();
    let (plan, overlay) = all_profiles_plan(&talos, &["1.20.2"]);
    assert_eq!(plan.cells.len(), 8 * talos_minors().len());
    let schemas: Vec<(u64, TalosSchema)> = talos_minors()
        .into_iter()
        .map(|m| (m, TalosSchema::of(m)))
        .collect();
    for cell in &plan.cells {
        let minor = cell.cell.talos.minor().1;
        let schema = &schemas.iter().find(|(m, _)| *m == minor).unwrap().1;
        let files = render::cell_files(cell, &overlay).unwrap();
        for role in ["talos/controlplane.patch.yaml", "talos/worker.patch.yaml"] {
            let docs = patch_docs(&files, role);
            assert!(!docs.is_empty(), "{} {role}", cell.id);
            for doc in &docs {
                let errors = schema.errors(doc);
                assert!(errors.is_empty(), "{} {role}: {errors:?}", cell.id);
            }
        }
        let cp = patch_docs(&files, "talos/controlplane.patch.yaml");
        let worker = patch_docs(&files, "talos/worker.patch.yaml");
        let kpr = cell.features.kube_proxy_replacement;
        if minor >= 14 {
            let kinds = |docs: &[Value]| -> Vec<String> {
                docs.iter()
                    .map(|d| d["kind"].as_str().unwrap().to_string())
                    .collect()
            };
            let mut want = vec!["KubeFlannelCNIConfig"];
            if kpr {
                want.push("KubeProxyConfig");
            }
            want.push("KubePrismConfig");
            assert_eq!(kinds(&cp), want, "{}", cell.id);
            assert_eq!(kinds(&worker), ["KubePrismConfig"], "{}", cell.id);
            assert_eq!(cp[0]["$patch"], "delete");
            assert!(
                cp.iter().all(|d| d.get("cluster").is_none()),
                "no v1alpha1 keys on 1.14"
            );
        } else {
            assert_eq!(cp, worker, "{}: one patch for every node", cell.id);
            let p = &cp[0];
            assert_eq!(p["cluster"]["network"]["cni"]["name"], "none");
            assert_eq!(p["machine"]["features"]["kubePrism"]["port"], 7445);
            assert_eq!(
                p["cluster"]["proxy"]["disabled"].as_bool(),
                kpr.then_some(true),
                "{}: kube-proxy is disabled exactly when Cilium replaces it",
                cell.id
            );
        }
    }
}

#[test]
fn host_dns_forwarding_validates_in_every_form() {
    let catalog = Catalog::embedded();
    let overlay = Overlay::embedded();
    let talos = latest_talos();
    let spec = MatrixSpec::load(
        None,
        AxisFlags {
            profiles: vec!["talos-basic".into()],
            cilium_versions: vec!["newest".into()],
            talos_versions: talos,
            kubernetes_versions: vec![],
        },
    )
    .unwrap();
    let (cells, excluded) = expand(&spec, &catalog).unwrap();
    let opts = PlanOptions {
        values_files: vec![
            ValuesFile::parse(
                "bpf-host-routing.yaml",
                "bpf:\n  hostLegacyRouting: false\n",
            )
            .unwrap(),
        ],
        filter: CheckFilter::new(&[], &[]).unwrap(),
        nodes: 2,
        external_target: None,
        outside: Some(harness::plan::talos_in_docker_outside()),
    };
    let plan = plan(&cells, excluded, &catalog, &overlay, &opts).unwrap();
    for cell in &plan.cells {
        let schema = TalosSchema::of(cell.cell.talos.minor().1);
        let files = render::cell_files(cell, &overlay).unwrap();
        let worker = patch_docs(&files, "talos/worker.patch.yaml");
        let forward = worker.iter().find_map(|d| {
            d.pointer("/machine/features/hostDNS/forwardKubeDNSToHost")
                .or_else(|| d.pointer("/hostDNS/forwardKubeDNSToHost"))
        });
        assert_eq!(forward, Some(&json!(false)), "{}", cell.id);
        for doc in &worker {
            assert!(
                schema.errors(doc).is_empty(),
                "{}: {:?}",
                cell.id,
                schema.errors(doc)
            );
        }
    }
}

#[test]
fn the_talos_schema_check_is_not_vacuous() {
    let v11 = TalosSchema::of(11);
    let typo = json!({"machine": {"features": {"kubePrizm": {"enabled": true}}}});
    assert!(!v11.errors(&typo).is_empty());
    let wrong_type = json!({"machine": {"features": {"kubePrism": {"port": "7445"}}}});
    assert!(!v11.errors(&wrong_type).is_empty());
    // The v1alpha1 form of 1.13 is no longer part of 1.14's schema, and 1.14's documents are
    // not part of 1.13's: neither release's patch is accepted through the other's schema.
    let v13_patch =
        json!({"cluster": {"network": {"cni": {"name": "none"}}, "proxy": {"disabled": true}}});
    assert!(TalosSchema::of(13).errors(&v13_patch).is_empty());
    assert!(!TalosSchema::of(14).errors(&v13_patch).is_empty());
    let prism = json!({"apiVersion": "v1alpha1", "kind": "KubePrismConfig", "port": 7445});
    assert!(TalosSchema::of(14).errors(&prism).is_empty());
    assert!(!TalosSchema::of(13).errors(&prism).is_empty());
    let unknown_key =
        json!({"apiVersion": "v1alpha1", "kind": "KubeProxyConfig", "disabled": true});
    assert!(!TalosSchema::of(14).errors(&unknown_key).is_empty());
    let bad_delete = json!({"apiVersion": "v1alpha1", "kind": "KubeFlannelCNIConfig", "$patch": "delete", "backendType": "vxlan"});
    assert!(!TalosSchema::of(14).errors(&bad_delete).is_empty());
}

#[test]
fn lb_ipam_objects_validate_against_the_cilium_crd_schemas() {
    let cilium = latest_cilium();
    let cilium: Vec<&str> = cilium.iter().map(String::as_str).collect();
    let (plan, overlay) = all_profiles_plan(&["v1.14.0"], &cilium);
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
        let expected = cell.cell.cilium.release().unwrap().lb_pool_api_version();
        assert_eq!(pool["apiVersion"], expected.as_str(), "{}", cell.id);
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
    assert_eq!(rendered, 8 * 3);
    // The seed's `cidrs:` pool would not pass the v2 schema: the check has teeth.
    let seed_pool = json!({"apiVersion": "cilium.io/v2", "kind": "CiliumLoadBalancerIPPool",
        "metadata": {"name": "pool-1"}, "spec": {"cidrs": [{"cidr": "192.168.1.200/29"}]}});
    assert!(!pool_v2.is_valid(&seed_pool));
}

/// Kind -> (listed versions, served versions) of a stored Gateway API bundle.
fn bundle(version: &str, channel: &str) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let dir = format!("schemas/gateway-api/{version}/{channel}");
    let files = upstream::testdata::entries_under(&dir);
    assert!(!files.is_empty(), "no stored CRDs under {dir}");
    let mut out = BTreeMap::new();
    for file in files.iter().filter(|e| e.path.ends_with(".yaml")) {
        for doc in yaml_docs(&upstream::testdata::read_to_string(file.path)) {
            if doc["kind"] != "CustomResourceDefinition" {
                continue;
            }
            let kind = doc["spec"]["names"]["kind"].as_str().unwrap().to_string();
            let versions = doc["spec"]["versions"].as_array().unwrap();
            let names = |served_only: bool| {
                versions
                    .iter()
                    .filter(|v| !served_only || v["served"] == true)
                    .map(|v| v["name"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            };
            out.insert(kind, (names(false), names(true)));
        }
    }
    out
}

/// Whether a Cilium minor's operator starts its gateway controller on a bundle, judged from
/// the bundle's CRDs with the requirements the release table records.
fn cilium_works_with(
    support: &harness::releases::GatewayApiSupport,
    crds: &BTreeMap<String, (Vec<String>, Vec<String>)>,
) -> bool {
    let served = |kind: &str, version: &str| {
        crds.get(kind)
            .is_some_and(|(_, served)| served.iter().any(|v| v == version))
    };
    support
        .requires_served
        .iter()
        .all(|r| served(&r.kind, &r.version))
        && support.fails_if_unserved.iter().all(|r| {
            // Watched only when the CRD lists the version; listed but unserved stops the operator.
            crds.get(&r.kind)
                .is_none_or(|(listed, _)| !listed.contains(&r.version))
                || served(&r.kind, &r.version)
        })
}

/// The tolerated ranges in the release table agree with the stored CRDs of every Gateway API
/// release: inside a range every channel serves what that Cilium requires; outside it, the
/// standard channel does not.
#[test]
fn gateway_api_tolerance_matches_the_stored_crds() {
    let table = ReleaseTable::embedded();
    let mut judged = 0;
    for release in &table.gateway_api_releases {
        let version = release.version.to_string();
        for cilium in &table.cilium {
            let support = &cilium.gateway_api;
            let refused = support.refuses(&release.version);
            for channel in ["standard", "experimental"] {
                let works = cilium_works_with(support, &bundle(&version, channel));
                if refused.is_none() {
                    assert!(
                        works,
                        "Cilium {} with Gateway API {version} {channel}",
                        cilium.minor
                    );
                } else if channel == "standard" {
                    assert!(
                        !works,
                        "Cilium {} is said to refuse {version}, but its CRDs fit",
                        cilium.minor
                    );
                }
                judged += 1;
            }
        }
    }
    assert_eq!(
        judged,
        table.gateway_api_releases.len() * table.cilium.len() * 2
    );
}

#[test]
fn every_cell_installs_gateway_api_crds_its_cilium_works_with() {
    let cilium = latest_cilium();
    let mut cilium: Vec<&str> = cilium.iter().map(String::as_str).collect();
    cilium.push("1.18.4");
    let (plan, _) = all_profiles_plan(&["v1.14.0"], &cilium);
    let mut checked = 0;
    for cell in plan.cells.iter().filter(|c| c.features.gateway_api) {
        let crds = cell
            .gateway_api
            .as_ref()
            .expect("gateway API on means CRDs are installed");
        let support = &cell.cell.cilium.release().unwrap().gateway_api;
        let stored = bundle(&crds.version, crds.channel.as_str());
        assert!(
            cilium_works_with(support, &stored),
            "{}: Gateway API {} {}",
            cell.id,
            crds.version,
            crds.channel.as_str()
        );
        if cell.profile.name == "native-routing-gateway" && cell.cell.cilium.minor() == (1, 18) {
            assert_eq!(crds.version, "v1.4.0", "the seed's own pairing");
            assert!(cell.gateway_api_note.is_some());
        } else {
            assert_eq!(
                crds.version,
                support.built_against.to_string(),
                "{}",
                cell.id
            );
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        3 * 4,
        "three gateway profiles on four Cilium releases"
    );
}

#[test]
fn a_pin_the_table_knows_to_be_broken_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = include_str!("../../profiles/native-routing-gateway.yaml")
        .replace("version: v1.4.0", "version: v1.5.1")
        .replace("cilium_version: 1.18.4", "cilium_version: 1.19.6");
    std::fs::write(dir.path().join("native-routing-gateway.yaml"), text).unwrap();
    let catalog = Catalog::with_dir(Some(dir.path())).unwrap();
    let spec = MatrixSpec::load(
        None,
        AxisFlags {
            profiles: vec!["native-routing-gateway".into()],
            cilium_versions: vec!["seed".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let (cells, excluded) = expand(&spec, &catalog).unwrap();
    let opts = PlanOptions {
        values_files: vec![],
        filter: CheckFilter::new(&[], &[]).unwrap(),
        nodes: 2,
        external_target: None,
        outside: Some(harness::plan::talos_in_docker_outside()),
    };
    let err = plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Cilium 1.19 does not work with Gateway API v1.5.1") && err.contains("#44920"),
        "{err}"
    );
}

/// `plan --talos-version v1.14.x --cilium-version 1.20.x --render DIR` for every profile: the
/// files on disk hold Talos patches the 1.14 schema accepts and values the 1.20 chart reads.
#[test]
fn plan_render_on_talos_1_14_and_cilium_1_20_writes_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = Catalog::embedded()
        .names()
        .flat_map(|n| ["--profile".to_string(), n.to_string()])
        .collect::<Vec<_>>();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "plan",
            "--talos-version",
            "v1.14.0",
            "--cilium-version",
            "1.20.2",
            "--render",
        ])
        .arg(dir.path())
        .args(&profiles)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema = TalosSchema::of(14);
    let mut cells = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let cell = entry.unwrap().path();
        for role in ["controlplane", "worker"] {
            let text =
                std::fs::read_to_string(cell.join(format!("talos/{role}.patch.yaml"))).unwrap();
            for doc in yaml_docs(&text).iter().filter(|d| !d.is_null()) {
                let errors = schema.errors(doc);
                assert!(errors.is_empty(), "{} {role}: {errors:?}", cell.display());
            }
        }
        let values: Value =
            yaml_docs(&std::fs::read_to_string(cell.join("values.yaml")).unwrap()).remove(0);
        let removed: Vec<&str> = ReleaseTable::embedded()
            .removed_by(harness::releases::Minor(1, 20))
            .map(|r| r.key.as_str())
            .filter(|k| harness::values::get(&values, k).is_some())
            .collect();
        assert!(removed.is_empty(), "{}: {removed:?}", cell.display());
        cells += 1;
    }
    assert_eq!(cells, 8, "every profile, the opt-in SPIRE one included");
    let spire = std::fs::read_to_string(
        dir.path()
            .join("service-mesh-spire_cilium-1.20.2_talos-v1.14.0_k8s-1.36.3/namespaces.yaml"),
    )
    .unwrap();
    assert!(
        spire.contains("pod-security.kubernetes.io/enforce: privileged"),
        "{spire}"
    );
}

#[test]
fn rendered_values_read_back_as_the_merged_values() {
    let (plan, overlay) = all_profiles_plan(&["v1.14.0"], &["1.20.2"]);
    for cell in &plan.cells {
        let files = render::cell_files(cell, &overlay).unwrap();
        let text = file(&files, "values.yaml");
        assert!(
            text.starts_with("# Helm values for the cilium chart 1.20.2; merged from: profile ")
        );
        assert_eq!(yaml_docs(text)[0], cell.values, "{}", cell.id);
        assert_eq!(
            harness::values::get(&cell.values, "bpf.hostLegacyRouting"),
            Some(&json!(true)),
            "overlay applied"
        );
    }
}

/// `--registry-mirror` in each release's form validates against that release's schema, and the
/// forms are not interchangeable: 1.11 has no RegistryMirrorConfig, 1.12 no machine.registries.
#[test]
fn registry_mirrors_validate_in_the_form_of_each_release() {
    use harness::registry_mirror::{Mirror, documents};
    let mirrors = [
        Mirror::parse("http://10.5.0.1:5000").unwrap(),
        Mirror::parse("quay.io=http://10.5.0.1:5001").unwrap(),
    ];
    let table = ReleaseTable::embedded();
    for minor in talos_minors() {
        let release = table.talos.iter().find(|t| t.minor.1 == minor).unwrap();
        let schema = TalosSchema::of(minor);
        let docs = documents(&mirrors, release);
        assert!(!docs.is_empty());
        for doc in &docs {
            let errors = schema.errors(doc);
            assert!(errors.is_empty(), "Talos 1.{minor}: {doc}: {errors:?}");
        }
    }
    let v11 = table.talos.iter().find(|t| t.minor.1 == 11).unwrap();
    let v12 = table.talos.iter().find(|t| t.minor.1 == 12).unwrap();
    for doc in documents(&mirrors, v12) {
        assert!(!TalosSchema::of(11).errors(&doc).is_empty(), "{doc}");
    }
    for doc in documents(&mirrors, v11) {
        assert!(!TalosSchema::of(12).errors(&doc).is_empty(), "{doc}");
    }
}
