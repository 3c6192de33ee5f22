//! What the lb-ipam suite creates: its own CiliumLoadBalancerIPPool (one small block serving only
//! the run's Services) and selector-less LoadBalancer Services that ask LB IPAM for addresses.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A /29 from the top of 172.16.0.0/12, rarely used by Docker networks or clusters.
pub const DEFAULT_BLOCK: &str = "172.31.250.0/29";
pub const ANNOTATION_IPS: &str = "lbipam.cilium.io/ips";
pub const ANNOTATION_SHARING_KEY: &str = "lbipam.cilium.io/sharing-key";
pub const SATISFIED: [&str; 2] = [
    "cilium.io/IPAMRequestSatisfied",
    "io.cilium/lb-ipam-request-satisfied",
];
pub const IPS_TOTAL: [&str; 2] = ["cilium.io/IPsTotal", "io.cilium/ips-total"];
pub const IPS_AVAILABLE: [&str; 2] = ["cilium.io/IPsAvailable", "io.cilium/ips-available"];
pub const IPS_USED: [&str; 2] = ["cilium.io/IPsUsed", "io.cilium/ips-used"];
pub const POOL_CONFLICT: [&str; 2] = ["cilium.io/PoolConflict", "io.cilium/conflict"];
pub const POOL_KIND: &str = "CiliumLoadBalancerIPPool";
pub const POOL_PLURAL: &str = "ciliumloadbalancerippools";
/// The most Services the exhaustion check creates; pools with more free addresses than this
/// that also serve the test Services make exhaustion impractical to observe.
pub const MAX_FILL: usize = 40;

pub const SVC_BASIC: &str = "lb-basic";
pub const SVC_REQUESTED: &str = "lb-requested";
pub const SVC_SHARE: [&str; 2] = ["lb-share-a", "lb-share-b"];
pub const SVC_FILL_PREFIX: &str = "lb-fill-";
pub const SHARING_KEY: &str = "harness-shared";

pub fn pool_resource(version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cilium.io", version, POOL_KIND),
        POOL_PLURAL,
    )
}

/// The suite's pool: one block, every address allocatable, serving only `selector`'s Services.
pub fn pool_object(
    name: &str,
    api_version: &str,
    block: &str,
    selector: &BTreeMap<String, String>,
    owner: Option<(&str, &str)>,
) -> Value {
    let mut metadata = json!({"name": name, "labels": selector});
    if let Some((ns, uid)) = owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Namespace", "name": ns, "uid": uid
        }]);
    }
    json!({
        "apiVersion": api_version,
        "kind": POOL_KIND,
        "metadata": metadata,
        "spec": {
            "blocks": [{"cidr": block}],
            "allowFirstLastIPs": "Yes",
            "serviceSelector": {"matchLabels": selector},
        }
    })
}

/// A LoadBalancer Service without a selector (nothing needs to answer: LB IPAM is about the
/// address), labelled for the suite's pool.
pub fn lb_service(
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    port: i32,
) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.clone()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port,
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
