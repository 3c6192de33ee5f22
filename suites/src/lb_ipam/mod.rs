//! LoadBalancer IP address management by Cilium's operator (LB IPAM).
//!
//! The suite brings its own CiliumLoadBalancerIPPool (`cilium.io/v2`, or `v2alpha1` on Cilium
//! 1.17 and older): one small block ([`crate::RunOptions::lb_ipam_block`], by default
//! [`DEFAULT_BLOCK`]) with a `serviceSelector` on the run's labels, so it serves only this run's
//! Services and is small enough to exhaust.
//!
//! The pool is cluster-scoped. Its ownerReference to the suite's namespace is only a safety net:
//! the garbage collector removes it after the namespace has finished terminating, and every run
//! uses the same default block, so a pool left behind makes the next run's pool conflict. So the
//! suite deletes its pool by name when the run ends, passed or failed ([`observe::teardown`]),
//! and keeps it only when the namespace is kept (the cleanup says so). Setup stops with an error
//! naming any existing pool whose blocks overlap the suite's block, before creating its own.
//!
//! The suite's Services carry the run labels ([`crate::kit::namespace::run_labels`]):
//! `app.kubernetes.io/managed-by=talos-cilium-harness`, `io.harness.run-id=<run id>` and
//! `io.harness.suite=lb-ipam`. service-gets-ip passes only if the address comes from the suite's
//! block, so the result means something only if no other pool selects the suite's Services: a
//! pool without a `serviceSelector` selects every Service, and LB IPAM may then hand out its
//! address instead. Other pools (the harness's own included) must exclude
//! `io.harness.suite=lb-ipam`, e.g. with a `NotIn` match expression.
//!
//! Names, from cilium/cilium `operator/pkg/lbipam` and `pkg/annotation`: Service condition
//! `cilium.io/IPAMRequestSatisfied` (before 1.15 `io.cilium/lb-ipam-request-satisfied`) with
//! reasons `satisfied`, `no_pool`, `out_of_ips`; pool conditions `cilium.io/IPsTotal`,
//! `cilium.io/IPsAvailable`, `cilium.io/IPsUsed` (the count is the message) and
//! `cilium.io/PoolConflict`; annotations `lbipam.cilium.io/ips` and `lbipam.cilium.io/sharing-key`.
//!
//! Every wait is a bounded watch ([`crate::kit::wait::until`]) whose timeout names the object
//! and the conditions it last showed.
//!
//! Rooms: [`objects`] (the pool and Services), [`observe`] (every API conversation), [`judge`]
//! (pure), [`blocks`] (IPv4 block arithmetic).

pub mod blocks;
pub mod judge;
pub mod l2;
pub mod objects;
pub mod observe;

pub use objects::DEFAULT_BLOCK;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
use crate::rules::l2_from_outside;

const L2_REACHABLE: &str = "l2-reachable-from-host";
use crate::runner::SuiteImpl;

pub const NAME: SuiteName = SuiteName::new("lb-ipam");

pub const SUITE: SuiteDecl = SuiteDecl {
    runs_alone: Some(
        "it counts and fills the addresses of every LB IPAM pool serving its Services, which other suites' LoadBalancer Services (a Gateway's) would take too",
    ),
    name: NAME,
    applies: crate::rules::always,
    checks: CHECKS,
    run: Some(crate::runner::runner::<LbIpam>),
};

const CHECKS: &[CheckDecl] = &[
    check! {
        name: "pool-ready",
        proves: "the CiliumLoadBalancerIPPool reports its IP counts and no conflict",
        anchor: "Cilium LB IPAM pool conditions",
        assumes: "the operator writes cilium.io/IPsTotal, IPsAvailable and IPsUsed (the count as the message) and cilium.io/PoolConflict on every pool it reconciles (1.15 and later; io.cilium/* before); with allowFirstLastIPs Yes every address of the block counts",
        observe: observe::pool_ready,
        judge: judge::pool,
    },
    check! {
        name: "service-gets-ip",
        proves: "a LoadBalancer Service gets an IP from the pool",
        anchor: "Cilium LB IPAM: cilium.io/IPAMRequestSatisfied",
        assumes: "LB IPAM gives a LoadBalancer Service an address from a pool whose serviceSelector matches it and records cilium.io/IPAMRequestSatisfied=True (reason satisfied); other pools must not select the suite's Services",
        observe: observe::service_gets_ip,
        judge: judge::allocation,
    },
    check! {
        name: "requested-ip-annotation",
        proves: "lbipam.cilium.io/ips assigns the requested address",
        anchor: "Cilium LB IPAM service annotations",
        assumes: "LB IPAM honours lbipam.cilium.io/ips (1.15 and later; io.cilium/lb-ipam-ips before) when the address is free in a selecting pool",
        observe: observe::requested_ip_annotation,
        judge: judge::allocation,
    },
    check! {
        name: "sharing-key",
        proves: "two Services with one sharing key share an IP",
        anchor: "Cilium LB IPAM: lbipam.cilium.io/sharing-key",
        assumes: "LB IPAM gives Services with one lbipam.cilium.io/sharing-key and different ports the same address (1.15 and later)",
        observe: observe::sharing_key,
        judge: judge::sharing,
    },
    check! {
        name: "pool-exhausted-pending",
        proves: "a Service beyond the pool's size stays pending with reason out_of_ips",
        anchor: "Cilium LB IPAM: IPAMRequestSatisfied=False",
        assumes: "once every selecting pool is full LB IPAM leaves the next Service without an address and writes IPAMRequestSatisfied=False with reason out_of_ips, and IPsAvailable counts exactly the addresses it will still hand out",
        observe: observe::pool_exhausted,
        judge: judge::exhaustion,
    },
    check! {
        name: L2_REACHABLE,
        proves: "a LoadBalancer IP from a pool on the outside client's L2 segment answers HTTP from outside the cluster via L2 announcements",
        anchor: "Cilium CI (kind) L2 announcement tests",
        assumes: "with l2announcements.enabled one agent takes the Lease cilium-l2announce-<namespace>-<service> (spec.holderIdentity = its node) and answers ARP for the address with its node's MAC on the interfaces of a CiliumL2AnnouncementPolicy that selects the Service (loadBalancerIPs: true; the Talos-in-Docker overlay's policy selects every Service on eth*); on an existing cluster such a policy must select the suite's Service",
        applies: l2_from_outside,
        outside: true,
        observe: l2::l2_reachable_from_host,
        judge: judge::l2_reach,
    },
];

pub(crate) struct LbIpam;

impl SuiteImpl for LbIpam {
    type Fixture = observe::LbFixture;

    async fn setup(
        env: &Env,
        wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<observe::LbFixture, KitError> {
        observe::setup(env, wanted.contains(&L2_REACHABLE), log).await
    }

    async fn teardown(
        env: &Env,
        fixture: &observe::LbFixture,
        keep: bool,
        log: &CheckCtx<'_>,
    ) -> Result<Vec<String>, KitError> {
        observe::teardown(env, fixture, keep, log).await
    }
}
