//! PodSecurity admission as Talos configures it: namespaces labelled privileged, baseline,
//! restricted and warn-only, plus one left unlabelled to show the cluster default (Talos:
//! enforce=baseline, audit/warn=restricted, kube-system exempt).
//!
//! Everything here is an API conversation, no traffic ([`observe`]): pods ([`objects`]) are
//! created with server-side dry-run (admission runs in full, nothing is persisted), except the
//! Deployment, whose point is that the ReplicaSet controller fails to create its pods afterwards.
//! [`admission`] reads an answer; [`judge`] compares it with the PodSecurity standards.

pub mod admission;
pub mod judge;
pub mod objects;
pub mod observe;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
use crate::runner::SuiteImpl;

pub const NAME: SuiteName = SuiteName::new("pod-security");

pub const SUITE: SuiteDecl = SuiteDecl {
    runs_alone: None,
    name: NAME,
    applies: crate::rules::always,
    checks: CHECKS,
    run: Some(crate::runner::runner::<PodSecurity>),
};

const CHECKS: &[CheckDecl] = &[
    check! {
        name: "namespace-levels",
        proves: "namespaces at privileged, baseline, restricted and warn-only are created as labelled",
        anchor: "Kubernetes Pod Security admission",
        assumes: "the API server keeps the pod-security.kubernetes.io/{enforce,audit,warn} labels a namespace is created with (nothing in Kubernetes or Talos rewrites them)",
        observe: observe::namespace_levels,
        judge: judge::namespace_levels,
    },
    check! {
        name: "baseline-refuses-net-raw",
        proves: "baseline refuses a pod adding NET_RAW, naming the control",
        anchor: "PodSecurity baseline: non-default capabilities",
        assumes: "PodSecurity admission (GA since Kubernetes 1.25) refuses with HTTP 403 and a message `violates PodSecurity \"baseline:<version>\": non-default capabilities (... \"NET_RAW\" ...)`",
        observe: observe::baseline_refuses_net_raw,
        judge: judge::refusal,
    },
    check! {
        name: "baseline-refuses-host-network",
        proves: "baseline refuses hostNetwork, naming the control",
        anchor: "PodSecurity baseline: host namespaces",
        assumes: "as baseline-refuses-net-raw, with the control `host namespaces (hostNetwork=true)`",
        observe: observe::baseline_refuses_host_network,
        judge: judge::refusal,
    },
    check! {
        name: "baseline-refuses-host-port",
        proves: "baseline refuses hostPort, naming the control",
        anchor: "PodSecurity baseline: hostPort",
        assumes: "as baseline-refuses-net-raw, with the control `hostPort (... hostPort 8080)`",
        observe: observe::baseline_refuses_host_port,
        judge: judge::refusal,
    },
    check! {
        name: "baseline-refuses-privileged",
        proves: "baseline refuses a privileged container, naming the control",
        anchor: "PodSecurity baseline: privileged",
        assumes: "as baseline-refuses-net-raw, with the control `privileged (... securityContext.privileged=true)`",
        observe: observe::baseline_refuses_privileged,
        judge: judge::refusal,
    },
    check! {
        name: "restricted-admits-compliant-pod",
        proves: "restricted admits a pod that meets every restricted control",
        anchor: "PodSecurity restricted",
        assumes: "the restricted profile of Kubernetes 1.25 and later asks for allowPrivilegeEscalation=false, capabilities drop ALL, runAsNonRoot and a RuntimeDefault or Localhost seccomp profile, which the submitted pod sets",
        observe: observe::restricted_admits_compliant_pod,
        judge: judge::restricted_admits,
    },
    check! {
        name: "warn-level-warning-header",
        proves: "a warn-only namespace admits a violating pod with a Warning header",
        anchor: "PodSecurity warn mode",
        assumes: "PodSecurity warn mode admits the pod and adds an HTTP `Warning: 299 - \"would violate PodSecurity \\\"restricted:<version>\\\": ...\"` header",
        observe: observe::warn_level_warning_header,
        judge: judge::warning,
    },
    check! {
        name: "deployment-admitted-replicaset-failedcreate",
        proves: "a violating Deployment is admitted and its ReplicaSet records FailedCreate",
        anchor: "PodSecurity enforces on pods, not controllers",
        assumes: "PodSecurity enforce applies to Pods only (a Deployment gets a warning), so the ReplicaSet controller's pod creation is refused and recorded as ReplicaFailure/FailedCreate and as FailedCreate events",
        observe: observe::deployment_admitted_replicaset_failedcreate,
        judge: judge::deployment,
    },
    check! {
        name: "cluster-default-is-baseline",
        proves: "an unlabelled namespace enforces baseline, as Talos documents",
        anchor: "Talos default admission configuration",
        assumes: "Talos configures the API server's PodSecurity defaults to enforce=baseline, audit/warn=restricted (cluster.apiServer.admissionControl); Kubernetes itself admits as privileged when no admission configuration sets a default. The judge reads the nodes' osImage and says which of the two it is looking at",
        observe: observe::cluster_default_is_baseline,
        judge: judge::default_level,
    },
    check! {
        name: "harness-namespaces-labelled",
        proves: "the harness's own test namespaces carry enforce=privileged",
        anchor: "cilium/cilium#30346, cilium-cli#3173",
        assumes: "a namespace labelled enforce=privileged admits NET_RAW and hostNetwork pods whatever the cluster default",
        observe: observe::harness_namespaces_labelled,
        judge: judge::harness_namespace,
    },
];

pub(crate) struct PodSecurity;

impl SuiteImpl for PodSecurity {
    type Fixture = observe::PsaFixture;

    fn extra_namespaces(env: &Env) -> Vec<String> {
        objects::levels(env).into_iter().map(|(n, _)| n).collect()
    }

    async fn setup(
        env: &Env,
        _wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<observe::PsaFixture, KitError> {
        observe::setup(env, log).await
    }
}
