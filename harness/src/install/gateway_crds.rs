//! Gateway API CRDs go in before Cilium, server-side, and must be Established first: Cilium's
//! operator checks for them once at start-up and leaves its gateway controller off otherwise.

use super::conditions::crd_established;
use super::wait;
use crate::profile::GatewayApiCrds;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One object of a Gateway API release bundle, typed.
#[derive(Debug)]
pub enum BundleObject {
    Crd(Box<CustomResourceDefinition>),
    Policy(Box<ValidatingAdmissionPolicy>),
    PolicyBinding(Box<ValidatingAdmissionPolicyBinding>),
}

/// Parse a release bundle (`standard-install.yaml` / `experimental-install.yaml`).
pub fn parse_bundle(text: &str) -> Result<Vec<BundleObject>, String> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("the bundle is not YAML: {e}"))?;
    docs.into_iter()
        .filter(|d| !d.is_null())
        .map(|d| {
            let kind = d
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let typed =
                |e: serde_json::Error| format!("a {kind} in the bundle does not parse: {e}");
            match kind.as_str() {
                "CustomResourceDefinition" => serde_json::from_value(d)
                    .map(|c| BundleObject::Crd(Box::new(c)))
                    .map_err(typed),
                "ValidatingAdmissionPolicy" => serde_json::from_value(d)
                    .map(|p| BundleObject::Policy(Box::new(p)))
                    .map_err(typed),
                "ValidatingAdmissionPolicyBinding" => serde_json::from_value(d)
                    .map(|b| BundleObject::PolicyBinding(Box::new(b)))
                    .map_err(typed),
                other => Err(format!("unexpected kind '{other}' in a Gateway API bundle")),
            }
        })
        .collect()
}

/// The API versions a cluster serves once the bundle is applied, in helm's `--api-versions`
/// forms (`group/version` and `group/version/Kind`), sorted.
pub fn api_versions(objects: &[BundleObject]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for obj in objects {
        let BundleObject::Crd(crd) = obj else {
            continue;
        };
        let spec = &crd.spec;
        for v in spec.versions.iter().filter(|v| v.served) {
            out.insert(format!("{}/{}", spec.group, v.name));
            out.insert(format!("{}/{}/{}", spec.group, v.name, spec.names.kind));
        }
    }
    out.into_iter().collect()
}

/// Where the bundle comes from: `dir/<version>/<channel>-install.yaml` when a mirror directory
/// is given, else the release asset over HTTPS with curl.
pub async fn fetch(crds: &GatewayApiCrds, mirror: Option<&Path>) -> Result<String, String> {
    if let Some(dir) = mirror {
        let path: PathBuf = dir
            .join(&crds.version)
            .join(format!("{}-install.yaml", crds.channel.as_str()));
        return std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()));
    }
    let url = crds.url();
    let out = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--location",
            "--max-time",
            "60",
            &url,
        ])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run curl to fetch {url}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot fetch {url}: {}; without internet, pass --gateway-api-dir DIR holding {}/{}-install.yaml",
            String::from_utf8_lossy(&out.stderr).trim(),
            crds.version,
            crds.channel.as_str()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{url} is not UTF-8"))
}

/// Apply the bundle server-side and wait for every CRD to be Established.
pub async fn apply(
    client: &Client,
    objects: Vec<BundleObject>,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let pp = PatchParams::apply("talos-cilium-harness").force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for obj in &objects {
        let result = match obj {
            BundleObject::Crd(c) => {
                let name = c.metadata.name.clone().unwrap_or_default();
                names.push(name.clone());
                crds.patch(&name, &pp, &Patch::Apply(c.as_ref()))
                    .await
                    .map(|_| ())
            }
            BundleObject::Policy(p) => {
                let api: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
                let name = p.metadata.name.clone().unwrap_or_default();
                api.patch(&name, &pp, &Patch::Apply(p.as_ref()))
                    .await
                    .map(|_| ())
            }
            BundleObject::PolicyBinding(b) => {
                let api: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
                let name = b.metadata.name.clone().unwrap_or_default();
                api.patch(&name, &pp, &Patch::Apply(b.as_ref()))
                    .await
                    .map(|_| ())
            }
        };
        result.map_err(|e| format!("server-side apply of the Gateway API bundle failed: {e}"))?;
    }
    for name in &names {
        wait::object(
            crds.clone(),
            name,
            &format!("CRD {name} to be Established"),
            crd_established,
            timeout,
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_v1_3_0_crds_parse_as_typed_objects() {
        let mut bundle = String::new();
        for e in upstream::testdata::entries_under("schemas/gateway-api/v1.3.0/standard") {
            bundle.push_str("---\n");
            bundle.push_str(&upstream::testdata::read_to_string(e.path));
        }
        let objects = parse_bundle(&bundle).unwrap();
        let crds: Vec<String> = objects
            .iter()
            .filter_map(|o| match o {
                BundleObject::Crd(c) => c.metadata.name.clone(),
                _ => None,
            })
            .collect();
        for required in [
            "gatewayclasses",
            "gateways",
            "httproutes",
            "grpcroutes",
            "referencegrants",
        ] {
            assert!(
                crds.contains(&format!("{required}.gateway.networking.k8s.io")),
                "{required} missing: {crds:?}"
            );
        }
    }

    #[test]
    fn the_bundle_adds_the_api_versions_the_chart_asks_about() {
        let mut bundle = String::new();
        for e in upstream::testdata::entries_under("schemas/gateway-api/v1.3.0/standard") {
            bundle.push_str("---\n");
            bundle.push_str(&upstream::testdata::read_to_string(e.path));
        }
        let apis = api_versions(&parse_bundle(&bundle).unwrap());
        // The chart creates its GatewayClass only when this one is present (gatewayClass.create
        // "auto", templates/cilium-gateway-api-class.yaml).
        assert!(apis.contains(&"gateway.networking.k8s.io/v1/GatewayClass".to_string()));
        assert!(apis.contains(&"gateway.networking.k8s.io/v1beta1/ReferenceGrant".to_string()));
        assert!(apis.contains(&"gateway.networking.k8s.io/v1".to_string()));
        assert!(
            !apis.iter().any(|a| a.contains("TLSRoute")),
            "TLSRoute is experimental"
        );
    }

    #[test]
    fn unexpected_kinds_are_refused() {
        let err =
            parse_bundle("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: gateway-system\n")
                .unwrap_err();
        assert_eq!(err, "unexpected kind 'Namespace' in a Gateway API bundle");
    }
}
