//! Pod connectivity, after `cilium connectivity test`: pod-to-pod, pod-to-Service, NodePort,
//! pod-to-host, host-to-pod, hairpin, egress and a don't-fragment payload.
//!
//! Workloads ([`objects`]): `client` anywhere; `echo-same-node` and `host-netns` pinned to the
//! client's node by podAffinity; with two or more nodes, `client-other-node` and
//! `echo-other-node` kept off it by podAntiAffinity. Each echo pod has a NodePort Service of its
//! own name (which also has a ClusterIP). Checks verify the placement they rely on before judging
//! traffic ([`judge`]); every probe runs by exec in a pod ([`observe`]), except
//! nodeport-from-outside, which curls each node's NodePort from the run's outside client.

pub mod judge;
pub mod objects;
pub mod observe;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
use crate::rules::{egress, outside_client, two_nodes};
use crate::runner::SuiteImpl;

pub const NAME: SuiteName = SuiteName::new("connectivity");

/// Checks that use the host-network pod.
const HOST_TO_POD: &str = "host-to-pod";
/// Checks that use the other-node workloads.
const POD_TO_POD_OTHER_NODE: &str = "pod-to-pod-other-node";
const POD_TO_SERVICE_OTHER_NODE: &str = "pod-to-service-other-node";
const POD_TO_NODEPORT_REMOTE: &str = "pod-to-nodeport-remote";
const POD_TO_POD_NO_FRAG: &str = "pod-to-pod-no-frag";
const NEEDS_OTHER_NODE: [&str; 5] = [
    POD_TO_POD_OTHER_NODE,
    POD_TO_SERVICE_OTHER_NODE,
    POD_TO_NODEPORT_REMOTE,
    POD_TO_POD_NO_FRAG,
    HOST_TO_POD,
];

pub const SUITE: SuiteDecl = SuiteDecl {
    runs_alone: None,
    name: NAME,
    applies: crate::rules::always,
    checks: CHECKS,
    run: Some(crate::runner::runner::<Connectivity>),
};

const CHECKS: &[CheckDecl] = &[
    check! {
        name: "pod-to-pod-same-node",
        proves: "a client reaches an echo pod on its own node by pod IP",
        anchor: "cilium connectivity test: pod-to-pod (echo-same-node)",
        assumes: "a pod IP answers from any pod in every routing mode (tunnel or native) and Cilium version; the json-mock echo server answers HTTP 200 on :8080",
        observe: observe::pod_to_pod_same_node,
        judge: judge::http,
    },
    check! {
        name: POD_TO_POD_OTHER_NODE,
        proves: "a client reaches an echo pod on another node by pod IP",
        anchor: "cilium connectivity test: pod-to-pod (echo-other-node)",
        assumes: "pod IPs are routed between nodes by the tunnel (VXLAN/Geneve) or, in native routing, by node routes; both directions are probed; encryption (WireGuard) is transparent to the pods",
        applies: two_nodes,
        observe: observe::pod_to_pod_other_node,
        judge: judge::http,
    },
    check! {
        name: "pod-to-service-same-node",
        proves: "a ClusterIP Service with a backend on the client's node answers",
        anchor: "cilium connectivity test: pod-to-service",
        assumes: "a ClusterIP is translated to a ready backend, by Cilium's socket LB with kube-proxy replacement or by kube-proxy without it",
        observe: observe::pod_to_service_same_node,
        judge: judge::http,
    },
    check! {
        name: POD_TO_SERVICE_OTHER_NODE,
        proves: "a ClusterIP Service with a backend on another node answers",
        anchor: "cilium connectivity test: pod-to-service",
        assumes: "as pod-to-service-same-node, with the backend behind the node-to-node path",
        applies: two_nodes,
        observe: observe::pod_to_service_other_node,
        judge: judge::http,
    },
    check! {
        name: "pod-to-nodeport-local",
        proves: "a NodePort answers on the client's own node IP",
        anchor: "cilium connectivity test: pod-to-local-nodeport",
        assumes: "a NodePort is served on every node's InternalIP (Cilium's BPF NodePort with kube-proxy replacement, kube-proxy otherwise)",
        observe: observe::pod_to_nodeport_local,
        judge: judge::http,
    },
    check! {
        name: POD_TO_NODEPORT_REMOTE,
        proves: "a NodePort answers on another node's IP",
        anchor: "cilium connectivity test: pod-to-remote-nodeport",
        assumes: "as pod-to-nodeport-local; through the other node's IP both a local backend there and one back on the client's node must answer (SNAT or DSR both qualify)",
        applies: two_nodes,
        observe: observe::pod_to_nodeport_remote,
        judge: judge::http,
    },
    check! {
        name: "nodeport-from-outside",
        proves: "a NodePort answers on every node's IP from a client outside the cluster",
        anchor: "Kubernetes Service type NodePort; cilium connectivity test: pod-to-remote-nodeport, from outside the cluster",
        assumes: "every node forwards its NodePorts (Cilium's kube-proxy replacement or kube-proxy) on its InternalIP to a ready backend on any node, for clients on the nodes' network as for pods",
        applies: outside_client,
        outside: true,
        observe: observe::nodeport_from_outside,
        judge: judge::http,
    },
    check! {
        name: "pod-to-host",
        proves: "a pod reaches a node IP (ICMP)",
        anchor: "cilium connectivity test: pod-to-host",
        assumes: "nodes answer ICMP echo from pods; Cilium's host firewall, when on without host policies, allows it (a host policy may not)",
        observe: observe::pod_to_host,
        judge: judge::ping,
    },
    check! {
        name: HOST_TO_POD,
        proves: "a host-network pod reaches a pod IP",
        anchor: "cilium connectivity test: host-to-pod",
        assumes: "the node's own network namespace routes to local pods (cilium_host) and to remote pods (tunnel or native routes); the host-network pod needs PodSecurity privileged, which the suite's namespace has",
        observe: observe::host_to_pod,
        judge: judge::http,
    },
    check! {
        name: "pod-to-itself-via-service",
        proves: "a pod reaches itself through its own Service (hairpin)",
        anchor: "cilium connectivity test: pod-to-itself-via-service",
        assumes: "Service translation delivers a connection back to the pod that sent it when that pod is the only backend (Cilium's socket LB and BPF datapath do, in every routing mode)",
        observe: observe::pod_to_itself_via_service,
        judge: judge::http,
    },
    check! {
        name: "pod-to-world",
        proves: "a pod reaches the external target over HTTPS",
        anchor: "cilium connectivity test: pod-to-world",
        assumes: "pod egress to the internet is masqueraded to the node IP (BPF or iptables masquerading) and the node has a route out; any 2xx/3xx answer counts",
        applies: egress,
        observe: observe::pod_to_world,
        judge: judge::http,
    },
    check! {
        name: POD_TO_POD_NO_FRAG,
        proves: "a large payload crosses nodes without fragmentation failures",
        anchor: "cilium connectivity test: pod-to-pod-no-frag",
        assumes: "Cilium sets the pod MTU to the node route MTU minus the overhead of its tunnel and encryption (pkg/mtu), so a packet of the pod's own MTU with DF set crosses nodes unfragmented",
        applies: two_nodes,
        observe: observe::pod_to_pod_no_frag,
        judge: judge::no_frag,
    },
];

pub(crate) struct Connectivity;

impl SuiteImpl for Connectivity {
    type Fixture = observe::Topology;

    async fn setup(
        env: &Env,
        wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<observe::Topology, KitError> {
        let host = wanted.contains(&HOST_TO_POD);
        let other_node = wanted.iter().any(|c| NEEDS_OTHER_NODE.contains(c));
        observe::setup(env, host, other_node, log).await
    }
}
