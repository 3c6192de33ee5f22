//! The features a profile turns on, each proved where the values turn it on: Hubble Relay and
//! Hubble UI, kube-proxy replacement, the bandwidth manager and BBR, the host firewall and
//! SPIRE mutual authentication.
//!
//! Workloads ([`objects`]): `client` and `echo` (behind a Service `echo`); with the bandwidth
//! check `shaped`, a client annotated `kubernetes.io/egress-bandwidth: 10M`; with the host-firewall
//! check `host-echo`, json-mock in a node's network namespace on port 39080 (off the client's
//! node when there are two). The agents are asked by exec (`cilium-dbg`, `hubble`), the cluster
//! through the API ([`observe`]); the judges are pure ([`judge`], [`model`] reads the agents'
//! JSON). The host-firewall and mutual-authentication checks apply a policy for one step, like
//! the network-policy suite, and remove it the same ways (after the step, on error, on
//! interrupt; the cluster-wide host policy is also owned by the suite's namespace).

pub mod judge;
pub mod model;
pub mod objects;
pub mod observe;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
use crate::rules::{
    bandwidth_manager, bbr, host_firewall, hubble_relay, hubble_ui, kube_proxy_replacement,
    mutual_auth_spire,
};
use crate::runner::SuiteImpl;

pub const NAME: SuiteName = SuiteName::new("features");

const BANDWIDTH_LIMIT: &str = "bandwidth-limit";
const HOST_FIREWALL_PORT: &str = "host-firewall-port";

pub const SUITE: SuiteDecl = SuiteDecl {
    runs_alone: Some(
        "its host policy changes what one node accepts from every pod while it is applied",
    ),
    name: NAME,
    applies: crate::rules::always,
    checks: CHECKS,
    run: Some(crate::runner::runner::<Features>),
};

const CHECKS: &[CheckDecl] = &[
    check! {
        name: "hubble-relay-flows",
        proves: "Hubble Relay serves the flow of a connection the client just made",
        anchor: "cilium connectivity test: hubble flow validation; `hubble observe --server hubble-relay`",
        assumes: "Hubble Relay (Service kube-system/hubble-relay, plaintext, hubble.relay.tls.server off as the chart defaults) merges every agent's flows; the agent image ships the hubble CLI; the flow is FORWARDED from client to echo",
        applies: hubble_relay,
        observe: observe::hubble_relay,
        judge: judge::relay,
    },
    check! {
        name: "hubble-ui-answers",
        proves: "Hubble UI answers its page through its Service",
        anchor: "Cilium docs: Service Map & Hubble UI",
        assumes: "the chart's Service kube-system/hubble-ui (port 80) serves the frontend, whose page has the title `Hubble UI` (cilium/hubble-ui src/index.html)",
        applies: hubble_ui,
        observe: observe::hubble_ui,
        judge: judge::ui,
    },
    check! {
        name: "kpr-serves-services",
        proves: "Cilium's load balancer serves the echo Service's ClusterIP with its pod, the agent reports kube-proxy replacement, and no kube-proxy runs",
        anchor: "Cilium docs: Kubernetes without kube-proxy (cilium-dbg status, cilium-dbg service list)",
        assumes: "with kubeProxyReplacement the agent's status has kube-proxy-replacement.mode True and its service list a ClusterIP frontend per Service port with the ready endpoints as backends; Talos runs no kube-proxy when cluster.proxy is disabled",
        applies: kube_proxy_replacement,
        observe: observe::kube_proxy_replacement,
        judge: judge::kube_proxy_replacement,
    },
    check! {
        name: BANDWIDTH_LIMIT,
        proves: "the agent reports the bandwidth manager on, and a pod's kubernetes.io/egress-bandwidth reaches the datapath as its limit",
        anchor: "Cilium docs: Bandwidth Manager (cilium-dbg status, cilium-dbg bpf bandwidth list)",
        assumes: "the agent's status has bandwidth-manager.enabled; the pod's endpoint (its CiliumEndpoint's status.id) gets an egress entry in the throttle map holding the annotation's rate in bytes per second (cilium-dbg prints the map as key `<endpoint>[, <direction>]`, value `<bytes/s>[, <prio>]`)",
        applies: bandwidth_manager,
        observe: observe::bandwidth_manager,
        judge: judge::bandwidth_manager,
    },
    check! {
        name: "bbr-congestion-control",
        proves: "every agent reports BBR as the pods' congestion control",
        anchor: "Cilium docs: Bandwidth Manager, BBR congestion control for Pods",
        assumes: "with bandwidthManager.bbr the agent's status has bandwidth-manager.congestionControl bbr (host kernel 5.18 or later); BBR for pods needs BPF host routing, so cells with bpf.hostLegacyRouting do not run it",
        applies: bbr,
        observe: observe::bbr,
        judge: judge::bbr,
    },
    check! {
        name: HOST_FIREWALL_PORT,
        proves: "a host policy on one node drops pods' connections to a chosen port there, leaves the API server reachable, and the port answers again once the policy is removed",
        anchor: "Cilium docs: Host Firewall; cilium connectivity test host-firewall tests",
        assumes: "with hostFirewall.enabled a CiliumClusterwideNetworkPolicy with a nodeSelector applies to the node's host endpoint; enableDefaultDeny false keeps every other ingress, ingressDeny from the cluster entity drops the port (POLICY_DENY in Hubble)",
        applies: host_firewall,
        observe: observe::host_firewall,
        judge: judge::host_firewall,
    },
    check! {
        name: "mutual-auth-admits",
        proves: "a policy that requires mutual authentication admits traffic between workloads with SPIFFE identities",
        anchor: "Cilium docs: Mutual Authentication (Beta), SPIRE",
        assumes: "with authentication.mutual.spire the operator accepts an authentication mode required rule (Valid True; with mutual auth off it answers Valid False) and the agents complete the SPIFFE handshake before the first packet passes",
        applies: mutual_auth_spire,
        observe: observe::mutual_auth,
        judge: judge::mutual_auth,
    },
];

pub(crate) struct Features;

impl SuiteImpl for Features {
    type Fixture = observe::FtFixture;

    async fn setup(
        env: &Env,
        wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<observe::FtFixture, KitError> {
        observe::setup(
            env,
            wanted.contains(&BANDWIDTH_LIMIT),
            wanted.contains(&HOST_FIREWALL_PORT),
            log,
        )
        .await
    }
}
