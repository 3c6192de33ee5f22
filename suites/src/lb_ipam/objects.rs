//! What the lb-ipam suite creates: its own CiliumLoadBalancerIPPool (one small block serving only
//! the run's Services) and selector-less LoadBalancer Services that ask LB IPAM for addresses;
//! for l2-reachable-from-host a second pool on the outside client's L2 segment and one
//! LoadBalancer Service in front of an echo pod.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
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

/// l2-reachable-from-host: a second pool on the outside client's L2 segment serving only the
/// Service that carries this label (besides the run labels), and that Service, in front of an
/// echo pod.
pub const L2_LABEL: (&str, &str) = ("io.harness.lb-ipam/l2", "announced");
pub const L2_POOL_SUFFIX: &str = "-l2";
pub const SVC_L2: &str = "lb-l2";
pub const ECHO_L2: &str = "lb-l2-echo";
/// The port the L2 Service answers on, in front of the echo pod's 8080.
pub const L2_PORT: i32 = 80;
/// Cilium's L2 announcer holds one Lease per announced Service, named
/// `cilium-l2announce-<namespace>-<service>` (pkg/l2announcer), in Cilium's namespace.
pub const L2_LEASE_PREFIX: &str = "cilium-l2announce-";

pub fn l2_lease_name(namespace: &str, service: &str) -> String {
    format!("{L2_LEASE_PREFIX}{namespace}-{service}")
}

/// The run labels plus [`L2_LABEL`]: what the L2 pool selects.
pub fn l2_labels(run_labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut l = run_labels.clone();
    l.insert(L2_LABEL.0.into(), L2_LABEL.1.into());
    l
}

/// The L2 Service: it asks for `ip` (an address of the L2 block, which only the L2 pool holds,
/// so the suite's other pool cannot serve it) and forwards to the echo pod.
pub fn l2_service(run_labels: &BTreeMap<String, String>, ip: &str) -> Service {
    let mut svc = lb_service(
        SVC_L2,
        &l2_labels(run_labels),
        BTreeMap::from([(ANNOTATION_IPS.to_string(), ip.to_string())]),
        L2_PORT,
    );
    if let Some(spec) = svc.spec.as_mut() {
        spec.selector = Some(BTreeMap::from([(
            crate::kit::workload::LABEL_NAME.to_string(),
            ECHO_L2.to_string(),
        )]));
        if let Some(port) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
            port.target_port = Some(IntOrString::String(
                crate::kit::workload::HTTP_PORT_NAME.into(),
            ));
        }
    }
    svc
}

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
