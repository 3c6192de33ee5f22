//! What the network-policy suite creates: a server listening on two ports, a second server, two
//! clients beside them, a client in a second namespace, headless Services naming the servers
//! (so a name resolves to the pod, as toFQDNs needs), and the policies each check applies.
//!
//! Policies select pods by `app.kubernetes.io/name`, which every workload carries. Kubernetes
//! NetworkPolicies are built from k8s-openapi's type; Cilium policies are JSON in the
//! cilium.io/v2 CRD's shape (tests validate them against the CRD schemas).

use crate::kit::check::Env;
use crate::kit::images::ImageRef;
use crate::kit::policy::{Kind, Policy};
use crate::kit::workload::{self, LABEL_NAME, Placement};
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const SERVER: &str = "server";
pub const SERVER_B: &str = "server-b";
pub const CLIENT: &str = "client";
pub const CLIENT_OTHER: &str = "client-other";
pub const CLIENT_REMOTE: &str = "client-remote";
/// The suffix of the second namespace, which holds [`CLIENT_REMOTE`].
pub const REMOTE_SUFFIX: &str = "remote";
/// The server's second port, for the L4 rule that allows one port and not the other.
pub const ALT_PORT: i32 = 8081;
pub const ALT_PORT_NAME: &str = "http-alt";
/// json-mock serves its `public` and `private` collections, as in `cilium connectivity test`'s
/// L7 tests: the HTTP rule allows `GET /public` and nothing else.
pub const L7_ALLOWED_PATH: &str = "/public";
pub const L7_OTHER_PATH: &str = "/private";
/// Where the kube-dns pods run, and how they are labelled (CoreDNS on Talos keeps the name).
const KUBE_DNS: [(&str, &str); 2] = [
    ("k8s:io.kubernetes.pod.namespace", "kube-system"),
    ("k8s:k8s-app", "kube-dns"),
];
const POD_NAMESPACE: &str = "k8s:io.kubernetes.pod.namespace";

/// The server: json-mock on 8080 (`http`) and a second one on 8081 (`http-alt`) in the same pod.
pub fn server(labels: &BTreeMap<String, String>, image: &ImageRef) -> Pod {
    let mut pod = workload::echo_pod(SERVER, labels, image, &Placement::Anywhere);
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers.push(workload::echo_container(
            "echo-alt",
            image,
            ALT_PORT,
            ALT_PORT_NAME,
        ));
    }
    pod
}

/// The pods of the suite's own namespace, each with the container probes exec into.
pub fn pods(env: &Env) -> Vec<(Pod, &'static str)> {
    let labels = env.run_labels();
    let img = &env.images;
    vec![
        (server(&labels, &img.echo), "echo"),
        (
            workload::echo_pod(SERVER_B, &labels, &img.echo, &Placement::Anywhere),
            "echo",
        ),
        (
            workload::client_pod(CLIENT, &labels, &img.client, &Placement::Anywhere),
            "client",
        ),
        (
            workload::client_pod(CLIENT_OTHER, &labels, &img.client, &Placement::Anywhere),
            "client",
        ),
    ]
}

pub fn remote_client(env: &Env) -> Pod {
    workload::client_pod(
        CLIENT_REMOTE,
        &env.run_labels(),
        &env.images.client,
        &Placement::Anywhere,
    )
}

/// A headless Service: its name resolves to the pod's own IP, which is what a toFQDNs rule
/// learns and allows.
pub fn headless(name: &str, labels: &BTreeMap<String, String>, ports: &[(&str, i32)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(BTreeMap::from([(LABEL_NAME.to_string(), name.to_string())])),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p)| ServicePort {
                        name: Some((*n).into()),
                        port: *p,
                        target_port: Some(IntOrString::String((*n).into())),
                        protocol: Some("TCP".into()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn services(env: &Env) -> Vec<Service> {
    let labels = env.run_labels();
    vec![
        headless(
            SERVER,
            &labels,
            &[
                (workload::HTTP_PORT_NAME, workload::HTTP_PORT),
                (ALT_PORT_NAME, ALT_PORT),
            ],
        ),
        headless(
            SERVER_B,
            &labels,
            &[(workload::HTTP_PORT_NAME, workload::HTTP_PORT)],
        ),
    ]
}

/// Where the policies go, and what they carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub namespace: String,
    pub remote_namespace: String,
    /// The suite namespace's uid: a cluster-scoped policy's owner.
    pub namespace_uid: String,
    pub labels: BTreeMap<String, String>,
}

fn by_name(name: &str) -> Value {
    json!({"matchLabels": {LABEL_NAME: name}})
}

/// A policy's metadata: the run's labels, and for a cluster-scoped one the suite's namespace as
/// its owner.
pub(crate) fn metadata(s: &Scope, name: &str, namespaced: bool) -> Value {
    let mut m = json!({"name": name, "labels": s.labels});
    if namespaced {
        m["namespace"] = json!(s.namespace);
    } else {
        m["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Namespace", "name": s.namespace, "uid": s.namespace_uid
        }]);
    }
    m
}

/// A Cilium policy of the run: namespaced in the suite's namespace, or cluster-wide and owned
/// by it.
pub(crate) fn cilium_policy(
    s: &Scope,
    kind: Kind,
    name: &str,
    description: &str,
    spec: Value,
) -> Policy {
    let namespaced = kind != Kind::CiliumClusterwideNetworkPolicy;
    let mut spec = spec;
    spec["description"] = json!(description);
    Policy {
        kind,
        name: name.into(),
        namespace: namespaced.then(|| s.namespace.clone()),
        body: json!({
            "apiVersion": kind.api_version(),
            "kind": kind.as_str(),
            "metadata": metadata(s, name, namespaced),
            "spec": spec,
        }),
    }
}

fn cnp(s: &Scope, name: &str, description: &str, spec: Value) -> Policy {
    cilium_policy(s, Kind::CiliumNetworkPolicy, name, description, spec)
}

fn tcp(port: i32) -> Value {
    json!({"ports": [{"port": port.to_string(), "protocol": "TCP"}]})
}

fn k8s_policy(s: &Scope, name: &str, spec: NetworkPolicySpec) -> Policy {
    let np = NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(s.namespace.clone()),
            labels: Some(s.labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
    };
    let mut body = serde_json::to_value(&np).unwrap_or_default();
    body["apiVersion"] = json!(Kind::NetworkPolicy.api_version());
    body["kind"] = json!(Kind::NetworkPolicy.as_str());
    Policy {
        kind: Kind::NetworkPolicy,
        name: name.into(),
        namespace: Some(s.namespace.clone()),
        body,
    }
}

fn select(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(LABEL_NAME.to_string(), name.to_string())])),
        ..LabelSelector::default()
    }
}

/// Kubernetes NetworkPolicies: every pod of the namespace denies ingress, then the server lets
/// in the labelled client only.
pub fn default_deny(s: &Scope) -> Vec<Policy> {
    vec![
        k8s_policy(
            s,
            "deny-all-ingress",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into()]),
                ..NetworkPolicySpec::default()
            },
        ),
        k8s_policy(
            s,
            "allow-client-to-server",
            NetworkPolicySpec {
                pod_selector: Some(select(SERVER)),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(select(CLIENT)),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ..NetworkPolicyIngressRule::default()
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
    ]
}

/// The client may reach the server's 8080 and nothing else of it.
pub fn l4_port(s: &Scope) -> Policy {
    cnp(
        s,
        "allow-port-8080",
        "harness: client to server on 8080/TCP only",
        json!({
            "endpointSelector": by_name(SERVER),
            "ingress": [{"fromEndpoints": [by_name(CLIENT)], "toPorts": [tcp(workload::HTTP_PORT)]}],
        }),
    )
}

/// The client may `GET /public` on the server's 8080; Envoy refuses every other request.
pub fn l7_http(s: &Scope) -> Policy {
    let mut port = tcp(workload::HTTP_PORT);
    port["rules"] = json!({"http": [{"method": "GET", "path": L7_ALLOWED_PATH}]});
    cnp(
        s,
        "allow-get-public",
        "harness: client may GET /public on the server, nothing else",
        json!({
            "endpointSelector": by_name(SERVER),
            "ingress": [{"fromEndpoints": [by_name(CLIENT)], "toPorts": [port]}],
        }),
    )
}

/// A cluster-wide policy on the server that lets in the client of the other namespace only.
pub fn clusterwide(s: &Scope) -> Policy {
    cilium_policy(
        s,
        Kind::CiliumClusterwideNetworkPolicy,
        &format!("{}-clusterwide", s.namespace),
        "harness: the server admits only the client of the other namespace",
        json!({
            "endpointSelector": {"matchLabels": {LABEL_NAME: SERVER, POD_NAMESPACE: s.namespace}},
            "ingress": [{"fromEndpoints": [
                {"matchLabels": {LABEL_NAME: CLIENT_REMOTE, POD_NAMESPACE: s.remote_namespace}}
            ]}],
        }),
    )
}

fn kube_dns_rule(with_proxy: bool) -> Value {
    let dns: serde_json::Map<String, Value> = KUBE_DNS
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    let mut port = json!({"ports": [{"port": "53", "protocol": "ANY"}]});
    if with_proxy {
        port["rules"] = json!({"dns": [{"matchPattern": "*"}]});
    }
    json!({"toEndpoints": [{"matchLabels": dns}], "toPorts": [port]})
}

/// Egress of the client to one entity (`kube-apiserver`, `cluster`, `world`); with `world`
/// also to kube-dns, so the external name resolves.
pub fn entity(s: &Scope, entity: &str) -> Policy {
    let mut egress = vec![json!({"toEntities": [entity]})];
    if entity == "world" {
        egress.push(kube_dns_rule(false));
    }
    cnp(
        s,
        &format!("entity-{entity}"),
        "harness: the client may reach one entity only",
        json!({"endpointSelector": by_name(CLIENT), "egress": egress}),
    )
}

/// Egress of the client: DNS through Cilium's DNS proxy, then only the one name.
pub fn fqdn(s: &Scope, allowed: &str) -> Policy {
    cnp(
        s,
        "allow-one-name",
        "harness: the client may reach one name only",
        json!({
            "endpointSelector": by_name(CLIENT),
            "egress": [kube_dns_rule(true), {"toFQDNs": [{"matchName": allowed}]}],
        }),
    )
}

/// Both clients are allowed in, and client-other is denied as well: the deny must win.
pub fn deny_wins(s: &Scope) -> Policy {
    cnp(
        s,
        "deny-client-other",
        "harness: client-other is both allowed and denied",
        json!({
            "endpointSelector": by_name(SERVER),
            "ingress": [{"fromEndpoints": [by_name(CLIENT), by_name(CLIENT_OTHER)]}],
            "ingressDeny": [{"fromEndpoints": [by_name(CLIENT_OTHER)]}],
        }),
    )
}

/// Every policy the suite can apply, for schema tests.
pub fn all(s: &Scope, fqdn_name: &str) -> Vec<Policy> {
    let mut out = default_deny(s);
    out.extend([
        l4_port(s),
        l7_http(s),
        clusterwide(s),
        entity(s, "kube-apiserver"),
        entity(s, "cluster"),
        entity(s, "world"),
        fqdn(s, fqdn_name),
        deny_wins(s),
    ]);
    out
}
