//! Network policy enforcement, after the policy tests of `cilium connectivity test`: Kubernetes
//! NetworkPolicy, CiliumNetworkPolicy at L3/L4 and L7 HTTP, a CiliumClusterwideNetworkPolicy,
//! entity rules, DNS-based egress and deny rules.
//!
//! Workloads ([`objects`]): `server` (json-mock on 8080 and 8081), `server-b`, `client` and
//! `client-other` in the suite's namespace, `client-remote` in a second one
//! (`harness-network-policy-<run>-remote`), and headless Services `server` and `server-b`. Each
//! check runs in steps ([`observe::step`]): apply the step's policies, probe, read the
//! policies' `Valid` condition, remove the policies. The policies go when the step ends, when
//! the check errors on the way and when the run is interrupted ([`crate::kit::policy`]); the
//! cluster-wide one also carries an ownerReference to the suite's namespace. Every policy a
//! check applies is named in its transcript.
//!
//! A drop must be a policy drop ([`judge`]): no answer at all (a reset or a 403 is refused for
//! the wrong reason), and where Hubble runs, a `DROPPED` flow with reason `POLICY_DENIED` or
//! `POLICY_DENY` from the agents on the client's and the server's nodes.

pub mod judge;
pub mod objects;
pub mod observe;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
use crate::rules::l7_proxy;
use crate::runner::SuiteImpl;

pub const NAME: SuiteName = SuiteName::new("network-policy");

pub const SUITE: SuiteDecl = SuiteDecl {
    // Its policies select only its own pods (the cluster-wide one by namespace too).
    runs_alone: None,
    name: NAME,
    applies: crate::rules::policy_enforcement,
    checks: CHECKS,
    run: Some(crate::runner::runner::<NetworkPolicy>),
};

const CHECKS: &[CheckDecl] = &[
    check! {
        name: "default-deny-ingress",
        proves: "a default-deny NetworkPolicy blocks a client that was allowed before, and an allow rule lets in only the labelled client",
        anchor: "cilium connectivity test: all-ingress-deny, client-ingress (Kubernetes NetworkPolicy)",
        assumes: "Cilium enforces networking.k8s.io/v1 NetworkPolicy (every release): a pod selected by an Ingress policy accepts only what some policy allows, and a refused SYN is dropped without an answer (POLICY_DENIED in Hubble)",
        observe: observe::default_deny_ingress,
        judge: judge::policy,
    },
    check! {
        name: "l4-port",
        proves: "an L4 rule allows one port of the server and not another",
        anchor: "cilium connectivity test: client-ingress-to-echo-named-port / echo-ingress-l4",
        assumes: "a CiliumNetworkPolicy toPorts rule allows only the listed port; the other port of the same pod is dropped (POLICY_DENIED)",
        observe: observe::l4_port,
        judge: judge::policy,
    },
    check! {
        name: "l7-http",
        proves: "an L7 HTTP rule allows GET /public and refuses other methods and paths with Envoy's 403",
        anchor: "cilium connectivity test: echo-ingress-l7 (HTTP rules)",
        assumes: "with l7Proxy the agent redirects the port to Envoy, which answers a request no rule allows with 403 and the body `Access denied` (Cilium's HTTP-aware policy guide); json-mock serves /public and /private as in cilium-cli's L7 tests",
        applies: l7_proxy,
        observe: observe::l7_http,
        judge: judge::policy,
    },
    check! {
        name: "clusterwide-policy",
        proves: "a CiliumClusterwideNetworkPolicy admits a client of another namespace and drops one of the server's own",
        anchor: "Cilium docs: CiliumClusterwideNetworkPolicy",
        assumes: "a cluster-wide policy's fromEndpoints selects across namespaces through the k8s:io.kubernetes.pod.namespace label (a namespaced policy's do not), and cilium.io/v2 CiliumClusterwideNetworkPolicy is served",
        observe: observe::clusterwide,
        judge: judge::policy,
    },
    check! {
        name: "entities",
        proves: "egress rules to the kube-apiserver, cluster and (with egress) world entities allow what the entity covers and drop the rest",
        anchor: "cilium connectivity test: to-entities-world, client-egress-to-cidr; Cilium docs: Entities based",
        assumes: "kube-apiserver covers the API server behind the `kubernetes` Service, cluster every endpoint and node of the cluster (kube-dns included), world everything outside it (Cilium's policy language reference); any HTTP answer of the API server counts as reached",
        observe: observe::entities,
        judge: judge::policy,
    },
    check! {
        name: "fqdn-egress",
        proves: "a toFQDNs rule lets the client reach the named host and drops another name",
        anchor: "cilium connectivity test: to-fqdns",
        assumes: "toFQDNs needs DNS through Cilium's DNS proxy (a dns rule on the kube-dns port, part of the L7 proxy); the allowed name is the external target where the run has egress, otherwise a headless Service name, which resolves to the pod itself",
        applies: l7_proxy,
        observe: observe::fqdn_egress,
        judge: judge::policy,
    },
    check! {
        name: "deny-wins",
        proves: "an ingressDeny rule wins over an ingress rule that allows the same client",
        anchor: "cilium connectivity test: client-ingress-from-other-client-icmp-deny / echo-ingress-from-other-client-deny",
        assumes: "deny rules take precedence over allow rules (Cilium 1.9 and later); the denied flow shows as POLICY_DENY (or POLICY_DENIED) in Hubble",
        observe: observe::deny_wins,
        judge: judge::policy,
    },
];

pub(crate) struct NetworkPolicy;

impl SuiteImpl for NetworkPolicy {
    type Fixture = observe::NpFixture;

    fn extra_namespaces(env: &Env) -> Vec<String> {
        vec![observe::remote_namespace(env)]
    }

    async fn setup(
        env: &Env,
        _wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<observe::NpFixture, KitError> {
        observe::setup(env, log).await
    }
}
