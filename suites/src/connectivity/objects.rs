//! What the connectivity suite creates: a client, an echo server on its node, a host-network
//! pod beside them and, with a second node, a client and an echo server kept off the first
//! client's node; each echo server behind a NodePort Service of its own name.

use crate::kit::check::Env;
use crate::kit::workload::{self, Placement};
use k8s_openapi::api::core::v1::{Pod, Service};

pub const CLIENT: &str = "client";
pub const CLIENT_OTHER_NODE: &str = "client-other-node";
pub const ECHO_SAME_NODE: &str = "echo-same-node";
pub const ECHO_OTHER_NODE: &str = "echo-other-node";
pub const HOST_NETNS: &str = "host-netns";

/// The pods to create, each with the container probes exec into.
pub fn pods(env: &Env, host: bool, other_node: bool) -> Vec<(Pod, &'static str)> {
    let labels = env.run_labels();
    let img = &env.images;
    let near = Placement::SameNodeAs(CLIENT.into());
    let far = Placement::OtherNodeThan(CLIENT.into());
    let mut pods = vec![
        (
            workload::client_pod(CLIENT, &labels, &img.client, &Placement::Anywhere),
            "client",
        ),
        (
            workload::echo_pod(ECHO_SAME_NODE, &labels, &img.echo, &near),
            "echo",
        ),
    ];
    if host {
        pods.push((
            workload::host_netns_pod(HOST_NETNS, &labels, &img.client, &near),
            "client",
        ));
    }
    if other_node {
        pods.push((
            workload::client_pod(CLIENT_OTHER_NODE, &labels, &img.client, &far),
            "client",
        ));
        pods.push((
            workload::echo_pod(ECHO_OTHER_NODE, &labels, &img.echo, &far),
            "echo",
        ));
    }
    pods
}

/// The echo servers' Services: the same-node one first.
pub fn services(env: &Env, other_node: bool) -> Vec<Service> {
    let labels = env.run_labels();
    let mut services = vec![workload::echo_service(
        ECHO_SAME_NODE,
        &labels,
        ECHO_SAME_NODE,
    )];
    if other_node {
        services.push(workload::echo_service(
            ECHO_OTHER_NODE,
            &labels,
            ECHO_OTHER_NODE,
        ));
    }
    services
}
