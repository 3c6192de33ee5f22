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
//! after 3 consecutive good answers within the deadline ([`judge`]).

pub mod http;
pub mod judge;
pub mod objects;
pub mod observe;
pub mod types;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
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
        observe: observe::path_prefix_routing,
        judge: judge::routed,
    },
    check! {
        name: "exact-path",
        proves: "an Exact path match routes only that path",
        anchor: "Gateway API conformance: HTTPRouteExactPathMatching",
        assumes: "Gateway API: an Exact match routes only its own path, and a request no rule matches gets 404 from the Gateway",
        observe: observe::exact_path,
        judge: judge::routed,
    },
    check! {
        name: "header-match",
        proves: "a header match routes by header value",
        anchor: "Gateway API conformance: HTTPRouteHeaderMatching",
        assumes: "Gateway API: a header match is exact on the value and case-insensitive on the name",
        observe: observe::header_match,
        judge: judge::routed,
    },
    check! {
        name: "hostname-match",
        proves: "exact and wildcard hostnames route; others get 404",
        anchor: "Gateway API conformance: HTTPRouteHostnameIntersection",
        assumes: "Gateway API: a wildcard hostname matches one or more labels below its suffix but not the suffix itself, a port in the Host header is ignored, and unclaimed hostnames get 404",
        observe: observe::hostname_match,
        judge: judge::routed,
    },
    check! {
        name: "weighted-backends",
        proves: "backend weights split traffic within tolerance",
        anchor: "Gateway API conformance: HTTPRouteWeight",
        assumes: "Gateway API: requests are split in proportion to backendRef weights and a weight of 0 gets none; 200 requests put a 70/30 split within 10 points well beyond three standard deviations",
        observe: observe::weighted_backends,
        judge: judge::weighted,
    },
    check! {
        name: "redirect",
        proves: "a RequestRedirect filter answers 301/302 with Location",
        anchor: "Gateway API conformance: HTTPRouteRedirectHostAndStatus",
        assumes: "Gateway API: a RequestRedirect answers from the Gateway with its statusCode (302 when unset) and a Location on the new hostname that keeps the path",
        observe: observe::redirect,
        judge: judge::routed,
    },
    check! {
        name: "request-header-modifier",
        proves: "a RequestHeaderModifier filter sets, adds and removes headers",
        anchor: "Gateway API conformance: HTTPRouteRequestHeaderModifier",
        assumes: "Gateway API: set overwrites a header, add appends a value, remove deletes it, before the backend sees the request (echo-basic reports the headers it received)",
        observe: observe::request_header_modifier,
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
