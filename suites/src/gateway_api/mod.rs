//! Gateway API on Cilium, after the Gateway API conformance suite: the GatewayClass, a Gateway and
//! its HTTPRoutes are accepted and programmed, and requests through the Gateway are routed by
//! path, header and hostname, split by weight, redirected and have their headers modified.
//!
//! Workloads in the suite namespace ([`objects`]): `client` (curl) and three conformance echo
//! servers (`echo-basic`, answering with JSON that names the pod and the request it saw) behind
//! ClusterIP Services `echo-v1`, `echo-v2`, `echo-v3`; a Gateway `harness-gw` (class `cilium`,
//! one HTTP listener on port 80 admitting routes from its own namespace) and one HTTPRoute per
//! behaviour, each on its own hostname so no route can answer another's requests. Requests go
//! from the client pod with curl ([`observe`], [`http`]) to the Gateway's address
//! (status.addresses[0], or the ClusterIP of the Service `cilium-gateway-harness-gw` Cilium
//! creates while the LoadBalancer address is pending) with a `Host` header; a request passes
//! after 3 consecutive good answers within the deadline ([`judge`]). The `*-from-outside` checks
//! send the same requests from the run's outside client to the Gateway's external address
//! (status.addresses only), reported apart so in-cluster and north-south results read apart.

pub mod http;
pub mod judge;
pub mod objects;
pub mod observe;
pub mod traffic;
pub mod types;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
use crate::rules::gateway_from_outside;
use crate::runner::SuiteImpl;

pub const NAME: SuiteName = SuiteName::new("gateway-api");

pub const SUITE: SuiteDecl = SuiteDecl {
    runs_alone: None,
    name: NAME,
    applies: crate::rules::gateway_api,
    checks: CHECKS,
    run: Some(crate::runner::runner::<GatewayApi>),
};

const CHECKS: &[CheckDecl] = &[
    check! {
        name: "gatewayclass-accepted",
        proves: "GatewayClass cilium is Accepted by io.cilium/gateway-controller",
        anchor: "Gateway API conformance: GatewayClassObservedGenerationBump",
        assumes: "Cilium's operator (gatewayAPI.enabled) creates GatewayClass cilium with controllerName io.cilium/gateway-controller and sets Accepted=True for the current generation once the CRDs it needs are present (1.14 and later)",
        observe: observe::gatewayclass_accepted,
        judge: judge::gatewayclass,
    },
    check! {
        name: "gateway-programmed",
        proves: "a Gateway is Accepted and Programmed with an address",
        anchor: "Gateway API conformance: GatewayWithAttachedRoutes",
        assumes: "Cilium's operator creates Service cilium-gateway-<name> (LoadBalancer; ClusterIP in host-network mode, NodePort by CiliumGatewayClassConfig) and writes Programmed=True with status.addresses once that Service has an address; 1.18.3 up to 1.19.5 leave host-network and NodePort Gateways AddressNotAssigned (cilium/cilium#42786), which the judge names when it sees that signature",
        observe: observe::gateway_programmed,
        judge: judge::gateway,
    },
    check! {
        name: "httproute-accepted",
        proves: "an HTTPRoute's parent status is Accepted and ResolvedRefs",
        anchor: "Gateway API conformance: HTTPRouteSimpleSameNamespace",
        assumes: "the controller writes a status.parents entry per parent Gateway with Accepted and ResolvedRefs for the route's current generation (Gateway API v1.0 and later)",
        observe: observe::httproute_accepted,
        judge: judge::routes,
    },
    check! {
        name: "path-prefix-routing",
        proves: "PathPrefix matches whole segments (/v2 vs /v2example)",
        anchor: "Gateway API conformance: HTTPRouteMatching",
        assumes: "Gateway API: PathPrefix matches by path element, and the longest matching prefix wins",
        observe: traffic::path_prefix_routing,
        judge: judge::routed,
    },
    check! {
        name: "exact-path",
        proves: "an Exact path match routes only that path",
        anchor: "Gateway API conformance: HTTPRouteExactPathMatching",
        assumes: "Gateway API: an Exact match routes only its own path, and a request no rule matches gets 404 from the Gateway",
        observe: traffic::exact_path,
        judge: judge::routed,
    },
    check! {
        name: "header-match",
        proves: "a header match routes by header value",
        anchor: "Gateway API conformance: HTTPRouteHeaderMatching",
        assumes: "Gateway API: a header match is exact on the value and case-insensitive on the name",
        observe: traffic::header_match,
        judge: judge::routed,
    },
    check! {
        name: "hostname-match",
        proves: "exact and wildcard hostnames route; others get 404",
        anchor: "Gateway API conformance: HTTPRouteHostnameIntersection",
        assumes: "Gateway API: a wildcard hostname matches one or more labels below its suffix but not the suffix itself, a port in the Host header is ignored, and unclaimed hostnames get 404",
        observe: traffic::hostname_match,
        judge: judge::routed,
    },
    check! {
        name: "weighted-backends",
        proves: "backend weights split traffic within tolerance",
        anchor: "Gateway API conformance: HTTPRouteWeight",
        assumes: "Gateway API: requests are split in proportion to backendRef weights and a weight of 0 gets none; 200 requests put a 70/30 split within 10 points well beyond three standard deviations",
        observe: traffic::weighted_backends,
        judge: judge::weighted,
    },
    check! {
        name: "path-prefix-routing-from-outside",
        proves: "path-prefix-routing, north-south: from a client outside the cluster to the Gateway's external address",
        anchor: "Gateway API conformance: HTTPRouteMatching, from outside the cluster",
        assumes: "as path-prefix-routing; the Gateway's status.addresses holds a LoadBalancer address reachable from the outside client (announced over L2 from the Talos-in-Docker overlay's pool)",
        applies: gateway_from_outside,
        outside: true,
        observe: traffic::path_prefix_routing_from_outside,
        judge: judge::routed,
    },
    check! {
        name: "hostname-match-from-outside",
        proves: "hostname-match, north-south: Host headers route from outside the cluster",
        anchor: "Gateway API conformance: HTTPRouteHostnameIntersection, from outside the cluster",
        assumes: "as hostname-match; the Gateway's external address is reachable from the outside client",
        applies: gateway_from_outside,
        outside: true,
        observe: traffic::hostname_match_from_outside,
        judge: judge::routed,
    },
    check! {
        name: "weighted-backends-from-outside",
        proves: "weighted-backends, north-south: weights split traffic that arrives from outside the cluster",
        anchor: "Gateway API conformance: HTTPRouteWeight, from outside the cluster",
        assumes: "as weighted-backends; the Gateway's external address is reachable from the outside client, which has curl and sh",
        applies: gateway_from_outside,
        outside: true,
        observe: traffic::weighted_backends_from_outside,
        judge: judge::weighted,
    },
    check! {
        name: "redirect",
        proves: "a RequestRedirect filter answers 301/302 with Location",
        anchor: "Gateway API conformance: HTTPRouteRedirectHostAndStatus",
        assumes: "Gateway API: a RequestRedirect answers from the Gateway with its statusCode (302 when unset) and a Location on the new hostname that keeps the path",
        observe: traffic::redirect,
        judge: judge::routed,
    },
    check! {
        name: "request-header-modifier",
        proves: "a RequestHeaderModifier filter sets, adds and removes headers",
        anchor: "Gateway API conformance: HTTPRouteRequestHeaderModifier",
        assumes: "Gateway API: set overwrites a header, add appends a value, remove deletes it, before the backend sees the request (echo-basic reports the headers it received)",
        observe: traffic::request_header_modifier,
        judge: judge::routed,
    },
];

pub(crate) struct GatewayApi;

impl SuiteImpl for GatewayApi {
    type Fixture = observe::GatewayFixture;

    async fn setup(
        env: &Env,
        _wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<observe::GatewayFixture, KitError> {
        observe::setup(env, log).await
    }
}
