//! The gateway-api judges: status as Cilium's gateway controller writes it, and answers through
//! the Gateway, against what the Gateway API specification (and its conformance tests) demand.
//! Pure: plain snapshots of the objects and of each request's replies in, a verdict out.

use super::http::{Expect, HttpReply, Request, Sample, judge_reply};
use super::objects::{GATEWAY_CLASS, LISTENER, LISTENER_PORT, WEIGHT_TOLERANCE, gateway_service};
use super::types::CILIUM_CONTROLLER;
use crate::kit::cilium::{CiliumFacts, Version};
use crate::kit::retry::{Series, judge_series};
use crate::kit::verdict::Verdict;
use serde::{Deserialize, Serialize};

/// The first Cilium release whose operator gives a hostNetwork (or NodePort) Gateway the node
/// IPs as its addresses: cilium/cilium#46350, reported working on 1.19.5 in
/// cilium/cilium#47456. Before it, from 1.18.3 (cilium/cilium#42786), such a Gateway stays
/// `Programmed=False, AddressNotAssigned` although Envoy serves on the nodes.
pub const HOSTNETWORK_ADDRESS_FIX: Version = Version::new(1, 19, 5);
/// The release that started to require an address before `Programmed=True` (cilium/cilium#42786).
pub const HOSTNETWORK_ADDRESS_REGRESSION: Version = Version::new(1, 18, 3);

/// A status condition as the judges read it: `metav1.Condition` without its timestamp.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cond {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
}

/// A condition as a judge reads it: its status, and whether it describes the object's current
/// generation (a True condition about an older spec proves nothing about this one).
pub fn condition<'a>(
    conditions: &'a [Cond],
    type_: &str,
    generation: Option<i64>,
) -> Option<&'a Cond> {
    conditions.iter().find(|c| {
        c.type_ == type_
            && match (c.observed_generation, generation) {
                (Some(seen), Some(current)) => seen >= current,
                _ => true,
            }
    })
}

pub fn is_true(conditions: &[Cond], type_: &str, generation: Option<i64>) -> bool {
    condition(conditions, type_, generation).is_some_and(|c| c.status == "True")
}

/// `Accepted=False (reason: message)`, or that the condition is absent.
pub fn describe(conditions: &[Cond], type_: &str, generation: Option<i64>) -> String {
    match condition(conditions, type_, generation) {
        Some(c) => {
            let why = [c.reason.as_str(), c.message.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            if why.is_empty() {
                format!("{type_}={}", c.status)
            } else {
                format!("{type_}={} ({why})", c.status)
            }
        }
        None if conditions.iter().any(|c| c.type_ == type_) => format!(
            "{type_} describes an older generation than {} (the controller has not caught up)",
            generation.unwrap_or_default()
        ),
        None => format!("no {type_} condition"),
    }
}

// ---- GatewayClass ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassState {
    pub controller: String,
    pub generation: Option<i64>,
    pub conditions: Vec<Cond>,
}

/// A GatewayClass as found after waiting (bounded) for it to be accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassSeen {
    pub name: String,
    pub class: Option<ClassState>,
}

pub fn gatewayclass(o: &ClassSeen) -> Verdict {
    let Some(c) = &o.class else {
        return Verdict::Fail(format!(
            "GatewayClass {} does not exist: Cilium creates it only when gatewayAPI.enabled=true and the Gateway API CRDs (standard channel, the version this Cilium supports) were installed before the Cilium operator started; install the CRDs and restart the operator (`kubectl -n kube-system rollout restart deploy/cilium-operator`)",
            o.name
        ));
    };
    if c.controller != CILIUM_CONTROLLER {
        return Verdict::Fail(format!(
            "GatewayClass {} names controller {:?}, not {CILIUM_CONTROLLER}: another controller owns it, so Cilium will not program its Gateways",
            o.name, c.controller
        ));
    }
    let accepted = describe(&c.conditions, "Accepted", c.generation);
    if is_true(&c.conditions, "Accepted", c.generation) {
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

/// The GatewayClass as last seen, for a wait that timed out.
pub fn describe_class(c: Option<&ClassState>) -> String {
    match c {
        None => "the GatewayClass does not exist".into(),
        Some(c) => format!(
            "controller {}; {}",
            c.controller,
            describe(&c.conditions, "Accepted", c.generation)
        ),
    }
}

// ---- Gateway ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerState {
    pub name: String,
    pub attached_routes: i32,
    pub conditions: Vec<Cond>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayState {
    pub generation: Option<i64>,
    pub conditions: Vec<Cond>,
    pub addresses: Vec<String>,
    pub listeners: Vec<ListenerState>,
}

/// The Service Cilium creates for a Gateway, as far as its address goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSeen {
    pub name: String,
    pub type_: String,
    pub cluster_ip: String,
    pub ingress: Vec<String>,
    /// The Service's conditions, e.g. LB IPAM's `cilium.io/IPAMRequestSatisfied`.
    pub conditions: Vec<Cond>,
}

/// What Cilium made of the Gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewaySeen {
    pub name: String,
    pub gateway: Option<GatewayState>,
    pub service: Option<ServiceSeen>,
    /// How many HTTPRoutes the suite attached to the listener [`LISTENER`].
    pub routes: usize,
    pub cilium: CiliumFacts,
}

/// LB IPAM's answer on a Service, under its current and its pre-1.15 name.
const LB_IPAM_SATISFIED: [&str; 2] = [
    "cilium.io/IPAMRequestSatisfied",
    "io.cilium/lb-ipam-request-satisfied",
];

/// Why the Gateway has no address, from what was seen of its Service and of Cilium: the advice
/// follows the Service's type and status, and names a known upstream bug only where its
/// signature (Service type, mode, version range) matches.
pub fn address_hint(o: &GatewaySeen) -> String {
    let svc_name = gateway_service(&o.name);
    let Some(s) = &o.service else {
        return format!(
            "Cilium did not create Service {svc_name}, whose address the Gateway takes: the operator has not reconciled the Gateway (operator log, and that the Gateway API CRDs were present when it started)"
        );
    };
    let version = o.cilium.version;
    let cilium = o.cilium.describe_version();
    match s.type_.as_str() {
        "LoadBalancer" if !s.ingress.is_empty() => format!(
            "Service {svc_name} already has the address {}, yet the Gateway has none: the operator has not reconciled the Gateway since the address arrived; read the operator log (`kubectl -n kube-system logs deploy/cilium-operator | grep -i gateway`), restarting the operator reconciles it again",
            s.ingress.join(", ")
        ),
        "LoadBalancer" => {
            let lb = s
                .conditions
                .iter()
                .find(|c| LB_IPAM_SATISFIED.contains(&c.type_.as_str()));
            match lb {
                Some(c) if c.status == "False" && c.reason == "no_pool" => format!(
                    "Service {svc_name} (LoadBalancer) has no address: LB IPAM found no CiliumLoadBalancerIPPool that selects it ({}=False, no_pool: {}); add a pool whose serviceSelector matches the Service, and L2 announcements or BGP so the address is reachable",
                    c.type_, c.message
                ),
                Some(c) if c.status == "False" && c.reason == "out_of_ips" => format!(
                    "Service {svc_name} (LoadBalancer) has no address: the pools that select it are full ({}=False, out_of_ips: {}); free an address or add a block",
                    c.type_, c.message
                ),
                Some(c) if c.status == "False" => format!(
                    "Service {svc_name} (LoadBalancer) has no address: LB IPAM refused it ({}=False, {}: {})",
                    c.type_, c.reason, c.message
                ),
                Some(c) => format!(
                    "Service {svc_name} (LoadBalancer) says {}={} but has no ingress address yet: LB IPAM assigned one and the Service status has not caught up",
                    c.type_, c.status
                ),
                None => format!(
                    "Service {svc_name} is a LoadBalancer with no address and no LB IPAM condition, so no load-balancer implementation answered it: add a CiliumLoadBalancerIPPool that selects it (with L2 announcements or BGP to reach it), or run the Gateway in host-network mode (gatewayAPI.hostNetwork.enabled)"
                ),
            }
        }
        other @ ("ClusterIP" | "NodePort") => {
            let host_network = o.cilium.flag("gateway-api-hostnetwork-enabled") == Some(true);
            let why = if other == "ClusterIP" && host_network {
                "Cilium creates a ClusterIP Service in host-network mode (gateway-api-hostnetwork-enabled=true)"
            } else if other == "NodePort" {
                "a NodePort Service (CiliumGatewayClassConfig service.type, or host-network mode once fixed) has no load-balancer ingress"
            } else {
                "a ClusterIP Service has no load-balancer ingress"
            };
            match version {
                Some(v) if v >= HOSTNETWORK_ADDRESS_REGRESSION && v < HOSTNETWORK_ADDRESS_FIX => {
                    format!(
                        "Service {svc_name} is {other}: {why}; {cilium} takes Gateway addresses only from a LoadBalancer's ingress, so the Gateway stays AddressNotAssigned although Envoy serves on the nodes: known bug cilium/cilium#42786 (from {HOSTNETWORK_ADDRESS_REGRESSION}), fixed in {HOSTNETWORK_ADDRESS_FIX} by cilium/cilium#46350; upgrade, or use a LoadBalancer Service with LB IPAM"
                    )
                }
                Some(v) if v >= HOSTNETWORK_ADDRESS_FIX => format!(
                    "Service {svc_name} is {other}: {why}; {cilium} gives such a Gateway its nodes' IPs, so an empty address list means the operator found no node address (read the operator log)"
                ),
                _ => format!(
                    "Service {svc_name} is {other}: {why}; {cilium} may take Gateway addresses only from a LoadBalancer's ingress (cilium/cilium#42786, from {HOSTNETWORK_ADDRESS_REGRESSION}, fixed in {HOSTNETWORK_ADDRESS_FIX})"
                ),
            }
        }
        other => format!(
            "Service {svc_name} is of type {other}, which Cilium's operator takes no Gateway address from (\"Invalid service type for gateway\")"
        ),
    }
}

pub fn gateway(o: &GatewaySeen) -> Verdict {
    let Some(g) = &o.gateway else {
        return Verdict::Fail(format!(
            "Gateway {} was created by setup and is gone; something deleted it",
            o.name
        ));
    };
    let generation = g.generation;
    let svc_name = gateway_service(&o.name);
    let mut wrong = Vec::new();
    if !is_true(&g.conditions, "Accepted", generation) {
        wrong.push(format!(
            "not accepted: {} (is GatewayClass {GATEWAY_CLASS} accepted? see gateway-api::gatewayclass-accepted)",
            describe(&g.conditions, "Accepted", generation)
        ));
    }
    if !is_true(&g.conditions, "Programmed", generation) {
        let programmed = condition(&g.conditions, "Programmed", generation);
        // Only a missing address is explained from the Service; another reason (listeners,
        // resources) is the controller's own words.
        let hint = match programmed {
            Some(c) if c.reason == "AddressNotAssigned" => format!("; {}", address_hint(o)),
            _ => String::new(),
        };
        wrong.push(format!(
            "not programmed: {}{hint}",
            describe(&g.conditions, "Programmed", generation)
        ));
    }
    if g.addresses.is_empty() {
        wrong.push("status.addresses is empty".into());
    }
    match g.listeners.iter().find(|l| l.name == LISTENER) {
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
    for l in &g.listeners {
        for t in ["Accepted", "Programmed", "ResolvedRefs"] {
            if l.conditions.iter().any(|c| c.type_ == t) && !is_true(&l.conditions, t, generation) {
                wrong.push(format!(
                    "listener {}: {}",
                    l.name,
                    describe(&l.conditions, t, generation)
                ));
            }
        }
    }
    let address_explained = wrong.iter().any(|w| w.contains(&svc_name));
    if o.service.is_none() && !address_explained {
        wrong.push(format!(
            "Cilium did not create Service {svc_name}: the operator has not reconciled the Gateway (operator log, and that the Gateway API CRDs were present when it started)"
        ));
    }
    if !wrong.is_empty() {
        return Verdict::Fail(format!("Gateway {}: {}", o.name, wrong.join("; ")));
    }
    let svc = o.service.as_ref().map_or(String::new(), |s| {
        format!(
            "; Service {} ({}, clusterIP {})",
            s.name, s.type_, s.cluster_ip
        )
    });
    let attached = g
        .listeners
        .iter()
        .find(|l| l.name == LISTENER)
        .map_or(0, |l| l.attached_routes);
    Verdict::Pass(format!(
        "Gateway {}: Accepted=True, Programmed=True, addresses {}, listener {LISTENER} with {attached} attached routes{svc}",
        o.name,
        g.addresses.join(", ")
    ))
}

/// The Gateway as last seen: its conditions, addresses and listeners.
pub fn describe_gateway(g: Option<&GatewayState>) -> String {
    let Some(g) = g else {
        return "the Gateway does not exist".into();
    };
    let mut line = format!(
        "{}; {}; {} address(es)",
        describe(&g.conditions, "Accepted", g.generation),
        describe(&g.conditions, "Programmed", g.generation),
        g.addresses.len()
    );
    if g.listeners.is_empty() {
        line.push_str("; no listener status");
    }
    for l in &g.listeners {
        line.push_str(&format!(
            "; listener {}: {} attached route(s), {}, {}",
            l.name,
            l.attached_routes,
            describe(&l.conditions, "Accepted", g.generation),
            describe(&l.conditions, "Programmed", g.generation)
        ));
    }
    line
}

// ---- HTTPRoutes ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentState {
    /// The parent Gateway's name.
    pub gateway: String,
    pub controller: String,
    pub conditions: Vec<Cond>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteState {
    pub generation: Option<i64>,
    pub parents: Vec<ParentState>,
}

/// The HTTPRoutes setup created, as found after waiting (bounded) for their status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutesSeen {
    pub gateway: String,
    pub routes: Vec<(String, Option<RouteState>)>,
}

/// Accepted and ResolvedRefs for the parent that is our Gateway, set by Cilium.
pub fn route(gateway: &str, name: &str, route: Option<&RouteState>) -> Verdict {
    let Some(r) = route else {
        return Verdict::Fail(format!("HTTPRoute {name} was created by setup and is gone"));
    };
    let Some(p) = r.parents.iter().find(|p| p.gateway == gateway) else {
        return Verdict::Fail(format!(
            "no status for parent Gateway {gateway}: Cilium has not reconciled the route (is the Gateway accepted? operator log)"
        ));
    };
    let mut wrong = Vec::new();
    if p.controller != CILIUM_CONTROLLER {
        wrong.push(format!(
            "the parent status was written by {:?}, not {CILIUM_CONTROLLER}",
            p.controller
        ));
    }
    for t in ["Accepted", "ResolvedRefs"] {
        if !is_true(&p.conditions, t, r.generation) {
            let hint = match condition(&p.conditions, t, r.generation).map(|c| c.reason.as_str()) {
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
                describe(&p.conditions, t, r.generation)
            ));
        }
    }
    if wrong.is_empty() {
        Verdict::Pass("Accepted=True, ResolvedRefs=True".into())
    } else {
        Verdict::Fail(wrong.join("; "))
    }
}

pub fn routes(o: &RoutesSeen) -> Verdict {
    Verdict::all(o.routes.iter().map(|(name, r)| {
        (
            format!("HTTPRoute {name}"),
            route(&o.gateway, name, r.as_ref()),
        )
    }))
}

/// An HTTPRoute as last seen: the conditions of its parent status for `gateway`.
pub fn describe_route(gateway: &str, r: Option<&RouteState>) -> String {
    let Some(r) = r else {
        return "the HTTPRoute does not exist".into();
    };
    match r.parents.iter().find(|p| p.gateway == gateway) {
        None => format!("no status for parent Gateway {gateway}"),
        Some(p) => format!(
            "parent {gateway} (controller {}): {}; {}",
            p.controller,
            describe(&p.conditions, "Accepted", r.generation),
            describe(&p.conditions, "ResolvedRefs", r.generation)
        ),
    }
}

// ---- traffic ----

/// Where requests go, and which address that is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub addr: String,
    pub via: String,
}

/// One request sent until it gave the expected answer 3 times in a row (or the deadline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub request: Request,
    pub expect: Expect,
    pub series: Series<HttpReply>,
}

/// Requests through the Gateway and what a conforming implementation must answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    pub target: Target,
    /// What to look at when an answer is wrong.
    pub hint: String,
    pub exchanges: Vec<Exchange>,
}

pub fn exchange(e: &Exchange) -> Verdict {
    judge_series(&e.series, |r| judge_reply(r, &e.expect))
}

pub fn routed(o: &Routed) -> Verdict {
    let v = Verdict::all(
        o.exchanges
            .iter()
            .map(|e| (e.request.describe(), exchange(e))),
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

pub fn weighted(o: &Weighted) -> Verdict {
    if let Verdict::Fail(m) = exchange(&o.warmup) {
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
