//! What the features suite creates: a client and an echo server behind a Service (for the
//! Hubble, load-balancer and mutual-authentication checks), a client with an egress-bandwidth
//! annotation, a host-network echo server on a chosen port of one node, and the policies of the
//! host-firewall and mutual-authentication checks.

use crate::kit::check::Env;
use crate::kit::policy::{Kind, Policy};
use crate::kit::workload::{self, LABEL_NAME, Placement};
use crate::network_policy::objects::{Scope, cilium_policy};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use std::collections::BTreeMap;

pub const CLIENT: &str = "client";
pub const ECHO: &str = "echo";
pub const SHAPED: &str = "shaped";
pub const HOST_ECHO: &str = "host-echo";
/// The pod annotation the bandwidth manager enforces, and the limit the check asks for.
pub const EGRESS_BANDWIDTH: &str = "kubernetes.io/egress-bandwidth";
pub const EGRESS_LIMIT: &str = "10M";
/// 10M in bits per second, as Kubernetes reads the quantity.
pub const EGRESS_LIMIT_BITS: u64 = 10_000_000;
/// The port the host-network server listens on: high, unlikely to be taken on a node, outside
/// the NodePort range.
pub const HOST_PORT: i32 = 39080;
pub const HOST_PORT_NAME: &str = "host-http";
/// Where Hubble Relay and Hubble UI run, as the chart names them.
pub const HUBBLE_RELAY: &str = "hubble-relay";
pub const HUBBLE_UI: &str = "hubble-ui";
/// What Hubble UI's page carries (cilium/hubble-ui `src/index.html`).
pub const HUBBLE_UI_TITLE: &str = "<title>Hubble UI</title>";

pub fn client(env: &Env) -> Pod {
    workload::client_pod(
        CLIENT,
        &env.run_labels(),
        &env.images.client,
        &Placement::Anywhere,
    )
}

pub fn echo(env: &Env) -> Pod {
    workload::echo_pod(
        ECHO,
        &env.run_labels(),
        &env.images.echo,
        &Placement::Anywhere,
    )
}

/// A client whose egress the bandwidth manager must limit to [`EGRESS_LIMIT`].
pub fn shaped(env: &Env) -> Pod {
    let mut p = workload::client_pod(
        SHAPED,
        &env.run_labels(),
        &env.images.client,
        &Placement::Anywhere,
    );
    p.metadata.annotations = Some(BTreeMap::from([(
        EGRESS_BANDWIDTH.to_string(),
        EGRESS_LIMIT.to_string(),
    )]));
    p
}

/// json-mock in the node's network namespace on [`HOST_PORT`]; with two nodes kept off the
/// client's, so the probe crosses into another host.
pub fn host_echo(env: &Env) -> Pod {
    let placement = if env.nodes >= 2 {
        Placement::OtherNodeThan(CLIENT.into())
    } else {
        Placement::Anywhere
    };
    let c = workload::echo_container("echo", &env.images.echo, HOST_PORT, HOST_PORT_NAME);
    let mut p = workload::pod(HOST_ECHO, &env.run_labels(), &placement, vec![c]);
    if let Some(spec) = p.spec.as_mut() {
        spec.host_network = Some(true);
    }
    p
}

/// A host policy on one node that drops pods' connections to [`HOST_PORT`] and nothing else:
/// without default deny, so the node keeps every other ingress (the API server, the kubelet).
pub fn host_firewall(s: &Scope, node: &str) -> Policy {
    cilium_policy(
        s,
        Kind::CiliumClusterwideNetworkPolicy,
        &format!("{}-host-port", s.namespace),
        "harness: pods may not reach one port of one node",
        json!({
            "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": node}},
            "enableDefaultDeny": {"ingress": false, "egress": false},
            "ingressDeny": [{
                "fromEntities": ["cluster"],
                "toPorts": [{"ports": [{"port": HOST_PORT.to_string(), "protocol": "TCP"}]}],
            }],
        }),
    )
}

/// The echo server admits the client only once both have proved their SPIFFE identities.
pub fn mutual_auth(s: &Scope) -> Policy {
    cilium_policy(
        s,
        Kind::CiliumNetworkPolicy,
        "require-mutual-auth",
        "harness: the echo server admits the client after mutual authentication",
        json!({
            "endpointSelector": {"matchLabels": {LABEL_NAME: ECHO}},
            "ingress": [{
                "fromEndpoints": [{"matchLabels": {LABEL_NAME: CLIENT}}],
                "authentication": {"mode": "required"},
            }],
        }),
    )
}
