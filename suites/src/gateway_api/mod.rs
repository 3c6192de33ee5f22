//! Gateway API on Cilium, after the Gateway API conformance suite: the GatewayClass, a Gateway and
//! its HTTPRoutes are accepted and programmed, and requests through the Gateway are routed by
//! path, header and hostname, split by weight, redirected and have their headers modified.
//!
//! Workloads in the suite namespace: `client` (curl) and three conformance echo servers
//! (`echo-basic`, answering with JSON that names the pod and the request it saw) behind ClusterIP
//! Services `echo-v1`, `echo-v2`, `echo-v3`; a Gateway `harness-gw` (class `cilium`, one HTTP
//! listener on port 80 admitting routes from its own namespace) and one HTTPRoute per behaviour,
//! each on its own hostname so no route can answer another's requests. Requests go from the
//! client pod with curl to the Gateway's address (status.addresses[0], or the ClusterIP of the
//! Service `cilium-gateway-harness-gw` Cilium creates while the LoadBalancer address is pending)
//! with a `Host` header; a request passes after 3 consecutive good answers within the deadline.

pub mod http;
pub mod types;

use crate::catalog::SuiteName;
use crate::kit::check::check_impl;
use crate::kit::check::{CheckCtx, Env, Runnable};
use crate::kit::errors::KitError;
use crate::kit::probe::Probe;
use crate::kit::retry::{Series, judge_series};
use crate::kit::topology::PodInfo;
use crate::kit::transcript::Peer;
use crate::kit::verdict::Verdict;
use crate::kit::wait;
use crate::kit::workload::{self, LABEL_NAME, Placement};
use crate::runner::SuiteImpl;
use http::{Expect, HttpReply, Request, Sample, judge_reply};
use k8s_openapi::api::core::v1::{
    ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, Pod,
    Probe as K8sProbe, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::time::Duration;
use types::{
    AllowedRoutes, BackendRef, CILIUM_CONTROLLER, Gateway, GatewayClass, GatewaySpec, HTTPRoute,
    HTTPRouteSpec, HeaderMatch, HeaderModifier, HeaderValue, Listener, ParentRef, PathMatch,
    RequestRedirect, RouteFilter, RouteMatch, RouteNamespaces, RouteRule,
};

pub const GATEWAY_CLASS: &str = "cilium";
pub const GATEWAY: &str = "harness-gw";
pub const LISTENER_PORT: u16 = 80;
pub const CLIENT: &str = "client";
pub const BACKENDS: [&str; 3] = ["echo-v1", "echo-v2", "echo-v3"];
/// echo-basic's default listening port.
pub const ECHO_PORT: i32 = 3000;
pub const SERVICE_PORT: i32 = 8080;

pub const ROUTE_PREFIX: &str = "path-prefix";
pub const ROUTE_EXACT: &str = "exact-path";
pub const ROUTE_HEADER: &str = "header-match";
pub const ROUTE_HOST_EXACT: &str = "hostname-exact";
pub const ROUTE_HOST_WILDCARD: &str = "hostname-wildcard";
pub const ROUTE_WEIGHTS: &str = "weights";
pub const ROUTE_REDIRECT: &str = "redirect";
pub const ROUTE_HEADER_MODIFIER: &str = "request-header-modifier";
/// The Gateway's only listener, which every route attaches to.
pub const LISTENER: &str = "http";
pub const ROUTES: [&str; 8] = [
    ROUTE_PREFIX,
    ROUTE_EXACT,
    ROUTE_HEADER,
    ROUTE_HOST_EXACT,
    ROUTE_HOST_WILDCARD,
    ROUTE_WEIGHTS,
    ROUTE_REDIRECT,
    ROUTE_HEADER_MODIFIER,
];

pub const HOST_PREFIX: &str = "prefix.example.com";
pub const HOST_EXACT: &str = "exact.example.com";
pub const HOST_HEADER: &str = "header.example.com";
pub const HOST_SPECIFIC: &str = "very.specific.com";
pub const HOST_WILDCARD: &str = "*.wildcard.io";
pub const HOST_WEIGHTS: &str = "weights.example.com";
pub const HOST_REDIRECT: &str = "redirect.example.com";
pub const HOST_HEADERS: &str = "headers.example.com";
pub const REDIRECT_TO: &str = "example.org";

/// Weighted split: requests sent, the weights, and how far a share may stray (10 points is more
/// than three standard deviations of a 70/30 split over 200 requests).
pub const WEIGHT_REQUESTS: u32 = 200;
pub const WEIGHTS: [(&str, u32); 3] = [("echo-v1", 70), ("echo-v2", 30), ("echo-v3", 0)];
pub const WEIGHT_TOLERANCE: f64 = 0.10;
/// The weighted requests go in this many execs of `WEIGHT_REQUESTS / WEIGHT_BATCHES` each, so
/// one exec stays short and a slow Gateway still leaves the samples taken before it stalled.
pub const WEIGHT_BATCHES: u32 = 10;

/// The Service Cilium creates for a Gateway.
pub fn gateway_service(gateway: &str) -> String {
    format!("cilium-gateway-{gateway}")
}

/// Where requests go, and which address that is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub addr: String,
    pub via: String,
}

pub struct GatewayFixture {
    pub namespace: String,
    pub client: PodInfo,
    /// Resolved once by the first traffic check that needs it.
    target: tokio::sync::OnceCell<Target>,
}

// ---- status checks ----

/// A GatewayClass as found after waiting (bounded) for it to be accepted.
#[derive(Clone, Debug)]
pub struct ClassSeen {
    pub name: String,
    pub class: Option<GatewayClass>,
}

pub fn judge_gatewayclass(o: &ClassSeen) -> Verdict {
    let Some(c) = &o.class else {
        return Verdict::Fail(format!(
            "GatewayClass {} does not exist: Cilium creates it only when gatewayAPI.enabled=true and the Gateway API CRDs (standard channel, the version this Cilium supports) were installed before the Cilium operator started; install the CRDs and restart the operator (`kubectl -n kube-system rollout restart deploy/cilium-operator`)",
            o.name
        ));
    };
    if c.spec.controller_name != CILIUM_CONTROLLER {
        return Verdict::Fail(format!(
            "GatewayClass {} names controller {:?}, not {CILIUM_CONTROLLER}: another controller owns it, so Cilium will not program its Gateways",
            o.name, c.spec.controller_name
        ));
    }
    let generation = c.metadata.generation;
    let conditions = c
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let accepted = types::describe(conditions, "Accepted", generation);
    if types::is_true(conditions, "Accepted", generation) {
        Verdict::Pass(format!(
            "GatewayClass {} (controller {CILIUM_CONTROLLER}): {accepted}",
            o.name
        ))
    } else {
        Verdict::Fail(format!(
            "GatewayClass {} is not accepted: {accepted}; read the reason, then the Cilium operator log (`kubectl -n kube-system logs deploy/cilium-operator | grep -i gateway`); an unsupported CRD version (e.g. CRDs newer than this Cilium supports) shows here",
            o.name
        ))
    }
}

/// What Cilium made of the Gateway.
#[derive(Clone, Debug)]
pub struct GatewaySeen {
    pub name: String,
    pub gateway: Option<Gateway>,
    pub service: Option<ServiceSeen>,
    /// How many HTTPRoutes the suite attached to the listener [`LISTENER`].
    pub routes: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSeen {
    pub name: String,
    pub type_: String,
    pub cluster_ip: String,
    pub ingress: Vec<String>,
}

impl ServiceSeen {
    pub fn from_service(s: &Service) -> ServiceSeen {
        let spec = s.spec.clone().unwrap_or_default();
        ServiceSeen {
            name: s.metadata.name.clone().unwrap_or_default(),
            type_: spec.type_.unwrap_or_else(|| "ClusterIP".into()),
            cluster_ip: spec.cluster_ip.unwrap_or_default(),
            ingress: s
                .status
                .as_ref()
                .and_then(|st| st.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .map(|is| {
                    is.iter()
                        .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

pub fn judge_gateway(o: &GatewaySeen) -> Verdict {
    let Some(g) = &o.gateway else {
        return Verdict::Fail(format!(
            "Gateway {} was created by setup and is gone; something deleted it",
            o.name
        ));
    };
    let generation = g.metadata.generation;
    let status = g.status.clone().unwrap_or_default();
    let svc_name = gateway_service(&o.name);
    let mut wrong = Vec::new();
    if !types::is_true(&status.conditions, "Accepted", generation) {
        wrong.push(format!(
            "not accepted: {} (is GatewayClass {GATEWAY_CLASS} accepted? see gateway-api::gatewayclass-accepted)",
            types::describe(&status.conditions, "Accepted", generation)
        ));
    }
    if !types::is_true(&status.conditions, "Programmed", generation) {
        let svc = match &o.service {
            Some(s) if s.ingress.is_empty() => format!(
                "; Service {svc_name} is a {} with no load-balancer address, so nothing assigns it an IP: add a CiliumLoadBalancerIPPool (LB IPAM) and L2 announcements, or set gatewayAPI.hostNetwork.enabled=true",
                s.type_
            ),
            _ => String::new(),
        };
        wrong.push(format!(
            "not programmed: {}{svc}",
            types::describe(&status.conditions, "Programmed", generation)
        ));
    }
    if status.addresses.is_empty() {
        wrong.push("status.addresses is empty".into());
    }
    match status.listeners.iter().find(|l| l.name == LISTENER) {
        None => wrong.push(format!(
            "no status.listeners entry for listener {LISTENER}: the controller has not reconciled the listener, so nothing shows it serves the routes"
        )),
        Some(l) if usize::try_from(l.attached_routes).unwrap_or(0) < o.routes => {
            wrong.push(format!(
                "listener {LISTENER} has {} attached route(s), expected at least the {} HTTPRoutes the suite attached: routes the listener does not count are not served (see gateway-api::httproute-accepted)",
                l.attached_routes, o.routes
            ))
        }
        Some(_) => {}
    }
    // Listener conditions, where the controller wrote them: a listener it refused (a protocol
    // or port it does not support, a conflict) is not served even when the Gateway is.
    for l in &status.listeners {
        for t in ["Accepted", "Programmed", "ResolvedRefs"] {
            if l.conditions.iter().any(|c| c.type_ == t)
                && !types::is_true(&l.conditions, t, generation)
            {
                wrong.push(format!(
                    "listener {}: {}",
                    l.name,
                    types::describe(&l.conditions, t, generation)
                ));
            }
        }
    }
    if o.service.is_none() {
        wrong.push(format!(
            "Cilium did not create Service {svc_name}: the operator has not reconciled the Gateway (operator log, and that the Gateway API CRDs were present when it started)"
        ));
    }
    if !wrong.is_empty() {
        return Verdict::Fail(format!("Gateway {}: {}", o.name, wrong.join("; ")));
    }
    let addrs: Vec<&str> = status.addresses.iter().map(|a| a.value.as_str()).collect();
    let svc = o.service.as_ref().map_or(String::new(), |s| {
        format!(
            "; Service {} ({}, clusterIP {})",
            s.name, s.type_, s.cluster_ip
        )
    });
    let attached = status
        .listeners
        .iter()
        .find(|l| l.name == LISTENER)
        .map_or(0, |l| l.attached_routes);
    Verdict::Pass(format!(
        "Gateway {}: Accepted=True, Programmed=True, addresses {}, listener {LISTENER} with {attached} attached routes{svc}",
        o.name,
        addrs.join(", ")
    ))
}

/// The HTTPRoutes setup created, as found after waiting (bounded) for their status.
#[derive(Clone, Debug)]
pub struct RoutesSeen {
    pub gateway: String,
    pub routes: Vec<(String, Option<HTTPRoute>)>,
}

/// Accepted and ResolvedRefs for the parent that is our Gateway, set by Cilium.
pub fn judge_route(gateway: &str, name: &str, route: Option<&HTTPRoute>) -> Verdict {
    let Some(r) = route else {
        return Verdict::Fail(format!("HTTPRoute {name} was created by setup and is gone"));
    };
    let generation = r.metadata.generation;
    let parents = r
        .status
        .as_ref()
        .map(|s| s.parents.as_slice())
        .unwrap_or_default();
    let Some(p) = parents.iter().find(|p| p.parent_ref.name == gateway) else {
        return Verdict::Fail(format!(
            "no status for parent Gateway {gateway}: Cilium has not reconciled the route (is the Gateway accepted? operator log)"
        ));
    };
    let mut wrong = Vec::new();
    if p.controller_name != CILIUM_CONTROLLER {
        wrong.push(format!(
            "the parent status was written by {:?}, not {CILIUM_CONTROLLER}",
            p.controller_name
        ));
    }
    for t in ["Accepted", "ResolvedRefs"] {
        if !types::is_true(&p.conditions, t, generation) {
            let hint = match types::condition(&p.conditions, t, generation)
                .map(|c| c.reason.as_str())
            {
                Some("BackendNotFound") => {
                    ": a backendRef names a Service that does not exist in the route's namespace"
                }
                Some("RefNotPermitted") => ": a cross-namespace backendRef needs a ReferenceGrant",
                Some("NotAllowedByListeners") => {
                    ": the listener's allowedRoutes does not admit this route"
                }
                Some("NoMatchingListenerHostname") => {
                    ": no listener hostname intersects the route's hostnames"
                }
                _ => "",
            };
            wrong.push(format!(
                "{}{hint}",
                types::describe(&p.conditions, t, generation)
            ));
        }
    }
    if wrong.is_empty() {
        Verdict::Pass("Accepted=True, ResolvedRefs=True".into())
    } else {
        Verdict::Fail(wrong.join("; "))
    }
}

pub fn judge_routes(o: &RoutesSeen) -> Verdict {
    Verdict::all(o.routes.iter().map(|(name, r)| {
        (
            format!("HTTPRoute {name}"),
            judge_route(&o.gateway, name, r.as_ref()),
        )
    }))
}

// ---- traffic checks ----

/// One request sent until it gave the expected answer 3 times in a row (or the deadline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub request: Request,
    pub expect: Expect,
    pub series: Series<HttpReply>,
}

/// Requests through the Gateway and what a conforming implementation must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routed {
    pub target: Target,
    /// What to look at when an answer is wrong.
    pub hint: &'static str,
    pub exchanges: Vec<Exchange>,
}

pub fn judge_exchange(e: &Exchange) -> Verdict {
    judge_series(&e.series, |r| judge_reply(r, &e.expect))
}

pub fn judge_routed(o: &Routed) -> Verdict {
    let v = Verdict::all(
        o.exchanges
            .iter()
            .map(|e| (e.request.describe(), judge_exchange(e))),
    );
    match v {
        Verdict::Pass(m) => Verdict::Pass(format!(
            "{m} (via {}:{LISTENER_PORT}, the {})",
            o.target.addr, o.target.via
        )),
        Verdict::Fail(m) => Verdict::Fail(format!(
            "{m}\n{} (requests went to {}:{LISTENER_PORT}, the {})",
            o.hint, o.target.addr, o.target.via
        )),
    }
}

/// A weighted split: a warm-up request until the route answers steadily, then one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weighted {
    pub target: Target,
    pub warmup: Exchange,
    pub requested: u32,
    pub weights: Vec<(String, u32)>,
    /// Empty when the warm-up failed and no batch was sent.
    pub samples: Vec<Sample>,
    /// Why the batches stopped before `requested` requests were sent, if they did.
    pub stopped: Option<String>,
}

pub fn judge_weighted(o: &Weighted) -> Verdict {
    if let Verdict::Fail(m) = judge_exchange(&o.warmup) {
        return Verdict::Fail(format!(
            "the weighted route never answered steadily, so no split was measured: {m} (requests went to {}:{LISTENER_PORT}, the {})",
            o.target.addr, o.target.via
        ));
    }
    let bad: Vec<&Sample> = o
        .samples
        .iter()
        .filter(|s| s.exit_code != 0 || s.status != 200 || s.pod.is_none())
        .collect();
    if o.samples.len() < o.requested as usize || !bad.is_empty() {
        let first = bad.first().map_or(String::new(), |s| {
            format!(
                "; the first failure: HTTP {} (curl exit {})",
                s.status, s.exit_code
            )
        });
        let stopped = match (&o.stopped, o.samples.len() < o.requested as usize) {
            (Some(why), _) => format!(
                "; the batches stopped after {} of {} requests: {why}",
                o.samples.len(),
                o.requested
            ),
            (None, true) => format!(
                "; only {} of {} requests were sent",
                o.samples.len(),
                o.requested
            ),
            (None, false) => String::new(),
        };
        return Verdict::Fail(format!(
            "{} of {} requests got an answer from a backend{first}{stopped}; every request through a weighted route must reach one of its backends",
            o.samples.len() - bad.len(),
            o.requested
        ));
    }
    let n = o.samples.len() as f64;
    let total: u32 = o.weights.iter().map(|(_, w)| w).sum();
    let mut parts = Vec::new();
    let mut off = Vec::new();
    for (pod, w) in &o.weights {
        let got = o
            .samples
            .iter()
            .filter(|s| s.pod.as_deref() == Some(pod.as_str()))
            .count();
        let share = got as f64 / n;
        let want = f64::from(*w) / f64::from(total.max(1));
        let line = format!(
            "{pod} {got}/{} ({:.1}%, weight {w} -> {:.0}%)",
            o.samples.len(),
            share * 100.0,
            want * 100.0
        );
        let wrong = if *w == 0 {
            got > 0
        } else {
            (share - want).abs() > WEIGHT_TOLERANCE
        };
        if wrong {
            off.push(line.clone());
        }
        parts.push(line);
    }
    let strays: Vec<String> = o
        .samples
        .iter()
        .filter_map(|s| s.pod.clone())
        .filter(|p| !o.weights.iter().any(|(w, _)| w == p))
        .collect();
    if !strays.is_empty() {
        off.push(format!(
            "answers from pods outside the route: {}",
            strays.join(", ")
        ));
    }
    if off.is_empty() {
        Verdict::Pass(format!(
            "{} (within {:.0} points)",
            parts.join(", "),
            WEIGHT_TOLERANCE * 100.0
        ))
    } else {
        Verdict::Fail(format!(
            "the split does not follow the weights: {}; all: {}. A backend with weight 0 must get nothing; look at the weighted clusters Cilium generated (`kubectl get ciliumenvoyconfig -n <ns> -o yaml`)",
            off.join("; "),
            parts.join(", ")
        ))
    }
}

async fn resolve_target(env: &Env) -> Result<Target, KitError> {
    let ns = &env.namespace;
    let api: Api<Gateway> = Api::namespaced(env.client.clone(), ns);
    let what = format!("Gateway {ns}/{GATEWAY} to have an address");
    let found = wait::until(
        api.clone(),
        GATEWAY,
        &what,
        env.timeouts.controller,
        |g: &Gateway| g.status.as_ref().is_some_and(|s| !s.addresses.is_empty()),
        describe_gateway,
    )
    .await;
    let gw = match found {
        Ok(g) => Some(g),
        Err(_) => api
            .get_opt(GATEWAY)
            .await
            .map_err(KitError::api(format!("get gateway {ns}/{GATEWAY}")))?,
    };
    if let Some(a) = gw
        .as_ref()
        .and_then(|g| g.status.as_ref())
        .and_then(|s| s.addresses.first())
    {
        return Ok(Target {
            addr: a.value.clone(),
            via: format!("Gateway {GATEWAY} status.addresses[0]"),
        });
    }
    let svc_name = gateway_service(GATEWAY);
    let svc = Api::<Service>::namespaced(env.client.clone(), ns)
        .get_opt(&svc_name)
        .await
        .map_err(KitError::api(format!("get service {ns}/{svc_name}")))?;
    match svc
        .and_then(|s| s.spec)
        .and_then(|s| s.cluster_ip)
        .filter(|ip| !ip.is_empty() && ip != "None")
    {
        Some(ip) => Ok(Target {
            addr: ip,
            via: format!(
                "ClusterIP of Service {svc_name} (Gateway status.addresses is empty: the LoadBalancer address is pending)"
            ),
        }),
        None => Err(KitError::Missing {
            what: format!("an address for Gateway {ns}/{GATEWAY}"),
            hint: format!(
                "status.addresses is empty and Service {svc_name} has no ClusterIP: Cilium has not programmed the Gateway (see gateway-api::gateway-programmed)"
            ),
        }),
    }
}

async fn target(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Target, KitError> {
    let t = f
        .target
        .get_or_try_init(|| resolve_target(ctx.env))
        .await?
        .clone();
    ctx.note(format!(
        "requests go to {}:{LISTENER_PORT}, the {}",
        t.addr, t.via
    ));
    Ok(t)
}

async fn exchange(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
    t: &Target,
    request: Request,
    expect: Expect,
) -> Result<Exchange, KitError> {
    let probe = Probe {
        label: ctx.label(
            "curl",
            f.client.source(),
            Peer::new(
                format!("{GATEWAY} {}", request.describe()),
                Some(format!("{}:{LISTENER_PORT}", t.addr)),
            ),
        ),
        pod: f.client.pod_ref(),
        argv: request.argv(&t.addr, LISTENER_PORT),
    };
    let series = ctx
        .until_stable(&probe, HttpReply::parse, |r| judge_reply(r, &expect))
        .await?;
    Ok(Exchange {
        request,
        expect,
        series,
    })
}

async fn routed(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
    hint: &'static str,
    cases: Vec<(Request, Expect)>,
) -> Result<Routed, KitError> {
    let t = target(f, ctx).await?;
    let mut exchanges = Vec::new();
    for (request, expect) in cases {
        exchanges.push(exchange(f, ctx, &t, request, expect).await?);
    }
    Ok(Routed {
        target: t,
        hint,
        exchanges,
    })
}

fn backend(n: usize) -> Expect {
    Expect::Backend(BACKENDS[n].to_string())
}

async fn path_prefix_routing(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Routed, KitError> {
    let r = |p: &str| Request::new(HOST_PREFIX, p);
    routed(f, ctx,
        "PathPrefix matches whole path segments: /v2 matches /v2 and /v2/..., never /v2example (Gateway API HTTPRouteMatching); compare the route with what Cilium translated (`kubectl get ciliumenvoyconfig -n <ns> -o yaml`)",
        vec![
            (r("/"), backend(0)),
            (r("/v2"), backend(1)),
            (r("/v2/example"), backend(1)),
            (r("/v2example"), backend(0)),
        ],
    )
    .await
}

async fn exact_path(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Routed, KitError> {
    let r = |p: &str| Request::new(HOST_EXACT, p);
    routed(f, ctx,
        "an Exact match routes only its own path; every other path on the host must be 404 (Gateway API HTTPRouteExactPathMatching)",
        vec![
            (r("/one"), backend(0)),
            (r("/two"), backend(1)),
            (r("/"), Expect::Status(404)),
            (r("/one/example"), Expect::Status(404)),
            (r("/two/"), Expect::Status(404)),
        ],
    )
    .await
}

async fn header_match(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Routed, KitError> {
    let r = || Request::new(HOST_HEADER, "/");
    routed(f, ctx,
        "a header match routes by the header's exact value and nothing else matches without it (Gateway API HTTPRouteHeaderMatching)",
        vec![
            (r().header("version", "one"), backend(0)),
            (r().header("version", "two"), backend(1)),
            (r(), Expect::Status(404)),
        ],
    )
    .await
}

async fn hostname_match(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Routed, KitError> {
    let r = |h: &str| Request::new(h, "/");
    routed(f, ctx,
        "hostnames: an exact name matches itself (a port in Host is ignored), *.wildcard.io matches any name below wildcard.io but not wildcard.io itself, and a name no route claims gets 404 (Gateway API HTTPRouteHostnameIntersection)",
        vec![
            (r(HOST_SPECIFIC), backend(0)),
            (r(&format!("{HOST_SPECIFIC}:1234")), backend(0)),
            (r("foo.wildcard.io"), backend(1)),
            (r("bar.foo.wildcard.io"), backend(1)),
            (r("wildcard.io"), Expect::Status(404)),
            (r("non.matching.com"), Expect::Status(404)),
        ],
    )
    .await
}

async fn redirect(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Routed, KitError> {
    let r = |p: &str| Request::new(HOST_REDIRECT, p);
    let to = |status: u16, path: &str| Expect::Redirect {
        status,
        host: REDIRECT_TO.into(),
        path: path.into(),
    };
    routed(f, ctx,
        "a RequestRedirect filter answers itself with the configured status (302 by default) and a Location on the new hostname with the path kept (Gateway API HTTPRouteRedirectHostAndStatus)",
        vec![
            (r("/hostname-redirect"), to(302, "/hostname-redirect")),
            (r("/status-code-301"), to(301, "/status-code-301")),
        ],
    )
    .await
}

async fn request_header_modifier(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Routed, KitError> {
    let request = Request::new(HOST_HEADERS, "/")
        .header("X-Header-Set", "some-other-value")
        .header("X-Header-Add", "header-val-1")
        .header("X-Header-Remove", "val");
    let expect = Expect::Headers {
        backend: BACKENDS[0].into(),
        exact: vec![
            ("X-Header-Set".into(), vec!["set-overwrites-values".into()]),
            (
                "X-Header-Add".into(),
                vec!["header-val-1".into(), "add-appends-values".into()],
            ),
        ],
        absent: vec!["X-Header-Remove".into()],
    };
    routed(f, ctx,
        "a RequestHeaderModifier filter overwrites set headers, appends added ones and removes the listed ones before the backend sees the request (Gateway API HTTPRouteRequestHeaderModifier)",
        vec![(request, expect)],
    )
    .await
}

async fn weighted_backends(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Weighted, KitError> {
    let t = target(f, ctx).await?;
    let weights: Vec<(String, u32)> = WEIGHTS.iter().map(|(p, w)| (p.to_string(), *w)).collect();
    let warm = Expect::AnyBackend(
        weights
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(p, _)| p.clone())
            .collect(),
    );
    let warmup = exchange(f, ctx, &t, Request::new(HOST_WEIGHTS, "/"), warm).await?;
    let mut samples = Vec::new();
    let mut stopped = None;
    if judge_exchange(&warmup).is_pass() {
        let per = WEIGHT_REQUESTS / WEIGHT_BATCHES;
        // Each request may take curl's whole --max-time; the exec bound covers them all.
        let bound = http::batch_bound(per, ctx.env.timeouts.exec);
        let probe = Probe {
            label: ctx.label(
                &format!("curl-x{per}"),
                f.client.source(),
                Peer::new(
                    format!("{GATEWAY} GET {HOST_WEIGHTS}/"),
                    Some(format!("{}:{LISTENER_PORT}", t.addr)),
                ),
            ),
            pod: f.client.pod_ref(),
            argv: http::batch_argv(&t.addr, LISTENER_PORT, HOST_WEIGHTS, "/", per),
        };
        for b in 1..=WEIGHT_BATCHES {
            match ctx.run_within(&probe, bound).await {
                Ok(out) => {
                    let got = http::parse_batch(&out);
                    let short = got.len() < per as usize || got.iter().any(|s| s.exit_code != 0);
                    samples.extend(got);
                    if short {
                        stopped = Some(format!(
                            "batch {b} of {WEIGHT_BATCHES} ended early (a request curl could not complete ends its batch)"
                        ));
                        break;
                    }
                }
                Err(e) => {
                    stopped = Some(format!("batch {b} of {WEIGHT_BATCHES}: {e}"));
                    break;
                }
            }
        }
        ctx.note(format!(
            "{} of {WEIGHT_REQUESTS} weighted requests sent in batches of {per}{}",
            samples.len(),
            stopped
                .as_deref()
                .map(|w| format!("; stopped at {w}"))
                .unwrap_or_default()
        ));
    }
    Ok(Weighted {
        target: t,
        warmup,
        requested: WEIGHT_REQUESTS,
        weights,
        samples,
        stopped,
    })
}

async fn gatewayclass_accepted(
    _f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<ClassSeen, KitError> {
    let api: Api<GatewayClass> = Api::all(ctx.env.client.clone());
    let what = format!("GatewayClass {GATEWAY_CLASS} to be Accepted");
    let class = settle(
        ctx,
        api,
        GATEWAY_CLASS,
        &what,
        ctx.env.timeouts.controller,
        |c: &GatewayClass| {
            c.status
                .as_ref()
                .is_some_and(|s| types::is_true(&s.conditions, "Accepted", c.metadata.generation))
        },
        describe_gatewayclass,
    )
    .await?;
    Ok(ClassSeen {
        name: GATEWAY_CLASS.into(),
        class,
    })
}

async fn gateway_programmed(
    _f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<GatewaySeen, KitError> {
    let env = ctx.env;
    let api: Api<Gateway> = Api::namespaced(env.client.clone(), &env.namespace);
    let what = format!(
        "Gateway {}/{GATEWAY} to be Programmed with {} routes attached to listener {LISTENER}",
        env.namespace,
        ROUTES.len()
    );
    // Programming includes an address, which may wait on a load-balancer IP: the pod bound.
    let gateway = settle(
        ctx,
        api,
        GATEWAY,
        &what,
        env.timeouts.pod_ready,
        |g: &Gateway| {
            g.status.as_ref().is_some_and(|s| {
                types::is_true(&s.conditions, "Programmed", g.metadata.generation)
                    && !s.addresses.is_empty()
                    && s.listeners.iter().any(|l| {
                        l.name == LISTENER
                            && usize::try_from(l.attached_routes).unwrap_or(0) >= ROUTES.len()
                    })
            })
        },
        describe_gateway,
    )
    .await?;
    let svc_name = gateway_service(GATEWAY);
    let service = Api::<Service>::namespaced(env.client.clone(), &env.namespace)
        .get_opt(&svc_name)
        .await
        .map_err(KitError::api(format!(
            "get service {}/{svc_name}",
            env.namespace
        )))?
        .map(|s| ServiceSeen::from_service(&s));
    Ok(GatewaySeen {
        name: GATEWAY.into(),
        gateway,
        service,
        routes: ROUTES.len(),
    })
}

async fn httproute_accepted(
    _f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<RoutesSeen, KitError> {
    let env = ctx.env;
    let api: Api<HTTPRoute> = Api::namespaced(env.client.clone(), &env.namespace);
    let routes = futures::future::try_join_all(ROUTES.iter().map(|name| {
        let api = api.clone();
        async move {
            let what = format!(
                "HTTPRoute {}/{name} to be Accepted with ResolvedRefs",
                env.namespace
            );
            let r = settle(
                ctx,
                api,
                name,
                &what,
                env.timeouts.controller,
                |r: &HTTPRoute| judge_route(GATEWAY, "", Some(r)).is_pass(),
                describe_route,
            )
            .await?;
            Ok::<_, KitError>((name.to_string(), r))
        }
    }))
    .await?;
    Ok(RoutesSeen {
        gateway: GATEWAY.into(),
        routes,
    })
}

/// Waits (bounded, by watch) for `done`, then reads the object as it is, so a judge sees the
/// final state whether or not it got there. `None`: the object (or its CRD) does not exist.
async fn settle<K>(
    ctx: &CheckCtx<'_>,
    api: Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&K) -> bool + Send + 'static,
    describe: impl Fn(Option<&K>) -> String + Send + 'static,
) -> Result<Option<K>, KitError>
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + 'static,
{
    match wait::until(api.clone(), name, what, timeout, done, describe).await {
        Ok(o) => {
            ctx.note(format!("{what}: done"));
            return Ok(Some(o));
        }
        Err(e) => ctx.note(e.to_string()),
    }
    api.get_opt(name)
        .await
        .map_err(KitError::api(format!("get {name}")))
}

/// The GatewayClass as last seen, for a wait that timed out.
pub fn describe_gatewayclass(c: Option<&GatewayClass>) -> String {
    let Some(c) = c else {
        return "the GatewayClass does not exist".into();
    };
    let conditions = c
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    format!(
        "controller {}; {}",
        c.spec.controller_name,
        types::describe(conditions, "Accepted", c.metadata.generation)
    )
}

/// The Gateway as last seen: its conditions, addresses and listeners.
pub fn describe_gateway(g: Option<&Gateway>) -> String {
    let Some(g) = g else {
        return "the Gateway does not exist".into();
    };
    let generation = g.metadata.generation;
    let s = g.status.clone().unwrap_or_default();
    let mut line = format!(
        "{}; {}; {} address(es)",
        types::describe(&s.conditions, "Accepted", generation),
        types::describe(&s.conditions, "Programmed", generation),
        s.addresses.len()
    );
    if s.listeners.is_empty() {
        line.push_str("; no listener status");
    }
    for l in &s.listeners {
        line.push_str(&format!(
            "; listener {}: {} attached route(s), {}, {}",
            l.name,
            l.attached_routes,
            types::describe(&l.conditions, "Accepted", generation),
            types::describe(&l.conditions, "Programmed", generation)
        ));
    }
    line
}

/// An HTTPRoute as last seen: the conditions of its parent status for [`GATEWAY`].
pub fn describe_route(r: Option<&HTTPRoute>) -> String {
    let Some(r) = r else {
        return "the HTTPRoute does not exist".into();
    };
    let generation = r.metadata.generation;
    let parents = r
        .status
        .as_ref()
        .map(|s| s.parents.as_slice())
        .unwrap_or_default();
    match parents.iter().find(|p| p.parent_ref.name == GATEWAY) {
        None => format!("no status for parent Gateway {GATEWAY}"),
        Some(p) => format!(
            "parent {GATEWAY} (controller {}): {}; {}",
            p.controller_name,
            types::describe(&p.conditions, "Accepted", generation),
            types::describe(&p.conditions, "ResolvedRefs", generation)
        ),
    }
}

// ---- setup ----

fn meta(name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    }
}

/// A conformance echo server naming itself through the downward API, as the conformance
/// manifests deploy it.
pub fn echo_pod(name: &str, env: &Env) -> Pod {
    let mut c = workload::container("echo", &env.images.gateway_echo);
    let field = |path: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.into(),
            ..ObjectFieldSelector::default()
        }),
        ..EnvVarSource::default()
    };
    c.env = Some(vec![
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(field("metadata.name")),
            ..EnvVar::default()
        },
        EnvVar {
            name: "NAMESPACE".into(),
            value_from: Some(field("metadata.namespace")),
            ..EnvVar::default()
        },
    ]);
    c.ports = Some(vec![ContainerPort {
        name: Some("http".into()),
        container_port: ECHO_PORT,
        ..ContainerPort::default()
    }]);
    c.readiness_probe = Some(K8sProbe {
        http_get: Some(HTTPGetAction {
            path: Some("/".into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(2),
        ..K8sProbe::default()
    });
    workload::pod(name, &env.run_labels(), &Placement::Anywhere, vec![c])
}

pub fn echo_service(name: &str, env: &Env) -> Service {
    Service {
        metadata: meta(name, &env.run_labels()),
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([(LABEL_NAME.to_string(), name.to_string())])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn gateway(labels: &BTreeMap<String, String>) -> Gateway {
    Gateway {
        metadata: meta(GATEWAY, labels),
        spec: GatewaySpec {
            gateway_class_name: GATEWAY_CLASS.into(),
            listeners: vec![Listener {
                name: LISTENER.into(),
                port: i32::from(LISTENER_PORT),
                protocol: "HTTP".into(),
                allowed_routes: Some(AllowedRoutes {
                    namespaces: Some(RouteNamespaces {
                        from: Some("Same".into()),
                    }),
                }),
            }],
        },
        status: None,
    }
}

fn to(n: usize, weight: Option<i32>) -> BackendRef {
    BackendRef {
        name: BACKENDS[n].into(),
        port: Some(SERVICE_PORT),
        weight,
    }
}

fn path(type_: &str, value: &str) -> RouteMatch {
    RouteMatch {
        path: Some(PathMatch {
            type_: type_.into(),
            value: value.into(),
        }),
        headers: Vec::new(),
    }
}

fn rule(
    matches: Vec<RouteMatch>,
    filters: Vec<RouteFilter>,
    backends: Vec<BackendRef>,
) -> RouteRule {
    RouteRule {
        matches,
        filters,
        backend_refs: backends,
    }
}

fn redirect_filter(status_code: Option<u16>) -> RouteFilter {
    RouteFilter {
        type_: "RequestRedirect".into(),
        request_header_modifier: None,
        request_redirect: Some(RequestRedirect {
            hostname: Some(REDIRECT_TO.into()),
            status_code,
        }),
    }
}

/// Every HTTPRoute of the suite, each on its own hostname.
pub fn routes(labels: &BTreeMap<String, String>) -> Vec<HTTPRoute> {
    let header = |v: &str| RouteMatch {
        path: None,
        headers: vec![HeaderMatch {
            name: "version".into(),
            value: v.into(),
        }],
    };
    let hv = |n: &str, v: &str| HeaderValue {
        name: n.into(),
        value: v.into(),
    };
    let specs: Vec<(&str, Vec<&str>, Vec<RouteRule>)> = vec![
        (
            ROUTE_PREFIX,
            vec![HOST_PREFIX],
            vec![
                rule(vec![path("PathPrefix", "/")], vec![], vec![to(0, None)]),
                rule(vec![path("PathPrefix", "/v2")], vec![], vec![to(1, None)]),
            ],
        ),
        (
            ROUTE_EXACT,
            vec![HOST_EXACT],
            vec![
                rule(vec![path("Exact", "/one")], vec![], vec![to(0, None)]),
                rule(vec![path("Exact", "/two")], vec![], vec![to(1, None)]),
            ],
        ),
        (
            ROUTE_HEADER,
            vec![HOST_HEADER],
            vec![
                rule(vec![header("one")], vec![], vec![to(0, None)]),
                rule(vec![header("two")], vec![], vec![to(1, None)]),
            ],
        ),
        (
            ROUTE_HOST_EXACT,
            vec![HOST_SPECIFIC],
            vec![rule(vec![], vec![], vec![to(0, None)])],
        ),
        (
            ROUTE_HOST_WILDCARD,
            vec![HOST_WILDCARD],
            vec![rule(vec![], vec![], vec![to(1, None)])],
        ),
        (
            ROUTE_WEIGHTS,
            vec![HOST_WEIGHTS],
            vec![rule(
                vec![],
                vec![],
                WEIGHTS
                    .iter()
                    .enumerate()
                    .map(|(i, (_, w))| to(i, Some(*w as i32)))
                    .collect(),
            )],
        ),
        (
            ROUTE_REDIRECT,
            vec![HOST_REDIRECT],
            vec![
                rule(
                    vec![path("PathPrefix", "/hostname-redirect")],
                    vec![redirect_filter(None)],
                    vec![],
                ),
                rule(
                    vec![path("PathPrefix", "/status-code-301")],
                    vec![redirect_filter(Some(301))],
                    vec![],
                ),
            ],
        ),
        (
            ROUTE_HEADER_MODIFIER,
            vec![HOST_HEADERS],
            vec![rule(
                vec![],
                vec![RouteFilter {
                    type_: "RequestHeaderModifier".into(),
                    request_header_modifier: Some(HeaderModifier {
                        set: vec![hv("X-Header-Set", "set-overwrites-values")],
                        add: vec![hv("X-Header-Add", "add-appends-values")],
                        remove: vec!["X-Header-Remove".into()],
                    }),
                    request_redirect: None,
                }],
                vec![to(0, None)],
            )],
        ),
    ];
    specs
        .into_iter()
        .map(|(name, hostnames, rules)| HTTPRoute {
            metadata: meta(name, labels),
            spec: HTTPRouteSpec {
                parent_refs: vec![ParentRef {
                    name: GATEWAY.into(),
                    namespace: None,
                    section_name: None,
                }],
                hostnames: hostnames.into_iter().map(String::from).collect(),
                rules,
            },
            status: None,
        })
        .collect()
}

pub(crate) struct GatewayApi;

impl SuiteImpl for GatewayApi {
    type Fixture = GatewayFixture;
    const SUITE: SuiteName = SuiteName::GatewayApi;

    fn checks() -> Vec<Box<dyn Runnable<GatewayFixture>>> {
        vec![
            check_impl!(
                "gatewayclass-accepted",
                gatewayclass_accepted,
                judge_gatewayclass
            ),
            check_impl!("gateway-programmed", gateway_programmed, judge_gateway),
            check_impl!("httproute-accepted", httproute_accepted, judge_routes),
            check_impl!("path-prefix-routing", path_prefix_routing, judge_routed),
            check_impl!("exact-path", exact_path, judge_routed),
            check_impl!("header-match", header_match, judge_routed),
            check_impl!("hostname-match", hostname_match, judge_routed),
            check_impl!("weighted-backends", weighted_backends, judge_weighted),
            check_impl!("redirect", redirect, judge_routed),
            check_impl!(
                "request-header-modifier",
                request_header_modifier,
                judge_routed
            ),
        ]
    }

    async fn setup(
        env: &Env,
        _wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<GatewayFixture, KitError> {
        let ns = &env.namespace;
        let labels = env.run_labels();
        workload::create_pod(
            &env.client,
            ns,
            &workload::client_pod(CLIENT, &labels, &env.images.client, &Placement::Anywhere),
        )
        .await?;
        for b in BACKENDS {
            workload::create_pod(&env.client, ns, &echo_pod(b, env)).await?;
        }
        for b in BACKENDS {
            workload::create_service(&env.client, ns, &echo_service(b, env)).await?;
        }
        let pp = PostParams::default();
        Api::<Gateway>::namespaced(env.client.clone(), ns)
            .create(&pp, &gateway(&labels))
            .await
            .map_err(KitError::api(format!(
                "create gateway {ns}/{GATEWAY} (are the Gateway API CRDs installed?)"
            )))?;
        let routes_api = Api::<HTTPRoute>::namespaced(env.client.clone(), ns);
        for r in routes(&labels) {
            let name = r.metadata.name.clone().unwrap_or_default();
            routes_api
                .create(&pp, &r)
                .await
                .map_err(KitError::api(format!("create httproute {ns}/{name}")))?;
        }
        log.note(format!(
            "Gateway {GATEWAY} (class {GATEWAY_CLASS}, HTTP :{LISTENER_PORT}) and HTTPRoutes {} created",
            ROUTES.join(", ")
        ));
        let api: Api<Pod> = Api::namespaced(env.client.clone(), ns);
        let t = env.timeouts.pod_ready;
        let ready =
            futures::future::try_join_all(std::iter::once(CLIENT).chain(BACKENDS).map(|n| {
                let api = api.clone();
                async move { wait::pod_ready(api, n, t).await }
            }))
            .await?;
        for p in &ready {
            let i = PodInfo::from_pod(p, "echo")?;
            log.note(format!(
                "{} ready on node {} with ip {}",
                i.name, i.node, i.ip
            ));
        }
        Ok(GatewayFixture {
            namespace: ns.clone(),
            client: PodInfo::from_pod(&ready[0], "client")?,
            target: tokio::sync::OnceCell::new(),
        })
    }
}
