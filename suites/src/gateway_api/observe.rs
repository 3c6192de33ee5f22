//! Everything the gateway-api suite says to the cluster: setup applies the objects of
//! [`super::objects`]; the status checks wait (bounded, by watch) for Cilium's controller and
//! read the objects back as plain snapshots; the traffic checks run curl in the client pod
//! against the Gateway's address.

use super::http::{self, Expect, HttpReply, Request, judge_reply};
use super::judge::{
    self, ClassSeen, ClassState, Cond, Exchange, GatewaySeen, GatewayState, ListenerState,
    ParentState, RouteState, Routed, RoutesSeen, ServiceSeen, Target, Weighted,
};
use super::objects::*;
use super::types::{Gateway, GatewayClass, HTTPRoute};
use crate::kit::check::{CheckCtx, Env};
use crate::kit::cilium;
use crate::kit::errors::KitError;
use crate::kit::probe::Probe;
use crate::kit::topology::PodInfo;
use crate::kit::transcript::Peer;
use crate::kit::wait;
use crate::kit::workload::{self, Placement};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, PostParams};
use std::time::Duration;

pub struct GatewayFixture {
    pub namespace: String,
    pub client: PodInfo,
    /// Resolved once by the first traffic check that needs it.
    target: tokio::sync::OnceCell<Target>,
}

pub fn cond(c: &Condition) -> Cond {
    Cond {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        observed_generation: c.observed_generation,
    }
}

pub fn class_state(c: &GatewayClass) -> ClassState {
    ClassState {
        controller: c.spec.controller_name.clone(),
        generation: c.metadata.generation,
        conditions: c
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().map(cond))
            .collect(),
    }
}

pub fn gateway_state(g: &Gateway) -> GatewayState {
    let status = g.status.clone().unwrap_or_default();
    GatewayState {
        generation: g.metadata.generation,
        conditions: status.conditions.iter().map(cond).collect(),
        addresses: status.addresses.iter().map(|a| a.value.clone()).collect(),
        listeners: status
            .listeners
            .iter()
            .map(|l| ListenerState {
                name: l.name.clone(),
                attached_routes: l.attached_routes,
                conditions: l.conditions.iter().map(cond).collect(),
            })
            .collect(),
    }
}

pub fn route_state(r: &HTTPRoute) -> RouteState {
    RouteState {
        generation: r.metadata.generation,
        parents: r
            .status
            .iter()
            .flat_map(|s| s.parents.iter())
            .map(|p| ParentState {
                gateway: p.parent_ref.name.clone(),
                controller: p.controller_name.clone(),
                conditions: p.conditions.iter().map(cond).collect(),
            })
            .collect(),
    }
}

pub fn service_seen(s: &Service) -> ServiceSeen {
    let spec = s.spec.clone().unwrap_or_default();
    let status = s.status.as_ref();
    ServiceSeen {
        name: s.metadata.name.clone().unwrap_or_default(),
        type_: spec.type_.unwrap_or_else(|| "ClusterIP".into()),
        cluster_ip: spec.cluster_ip.unwrap_or_default(),
        ingress: status
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|is| {
                is.iter()
                    .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        conditions: status
            .and_then(|st| st.conditions.as_ref())
            .map(|cs| cs.iter().map(cond).collect())
            .unwrap_or_default(),
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
        |g: Option<&Gateway>| judge::describe_gateway(g.map(gateway_state).as_ref()),
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
    hint: &str,
    cases: Vec<(Request, Expect)>,
) -> Result<Routed, KitError> {
    let t = target(f, ctx).await?;
    let mut exchanges = Vec::new();
    for (request, expect) in cases {
        exchanges.push(exchange(f, ctx, &t, request, expect).await?);
    }
    Ok(Routed {
        target: t,
        hint: hint.into(),
        exchanges,
    })
}

fn backend(n: usize) -> Expect {
    Expect::Backend(BACKENDS[n].to_string())
}

pub(crate) async fn path_prefix_routing(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Routed, KitError> {
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

pub(crate) async fn exact_path(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Routed, KitError> {
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

pub(crate) async fn header_match(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Routed, KitError> {
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

pub(crate) async fn hostname_match(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Routed, KitError> {
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

pub(crate) async fn redirect(f: &GatewayFixture, ctx: &CheckCtx<'_>) -> Result<Routed, KitError> {
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

pub(crate) async fn request_header_modifier(
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

pub(crate) async fn weighted_backends(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Weighted, KitError> {
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
    if judge::exchange(&warmup).is_pass() {
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

pub(crate) async fn gatewayclass_accepted(
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
            let c = class_state(c);
            judge::is_true(&c.conditions, "Accepted", c.generation)
        },
        |c: Option<&GatewayClass>| judge::describe_class(c.map(class_state).as_ref()),
    )
    .await?;
    Ok(ClassSeen {
        name: GATEWAY_CLASS.into(),
        class: class.as_ref().map(class_state),
    })
}

pub(crate) async fn gateway_programmed(
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
            let g = gateway_state(g);
            judge::is_true(&g.conditions, "Programmed", g.generation)
                && !g.addresses.is_empty()
                && g.listeners.iter().any(|l| {
                    l.name == LISTENER
                        && usize::try_from(l.attached_routes).unwrap_or(0) >= ROUTES.len()
                })
        },
        |g: Option<&Gateway>| judge::describe_gateway(g.map(gateway_state).as_ref()),
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
        .map(|s| service_seen(&s));
    // Which Cilium, and whether it runs Gateways on the host network, decide what an empty
    // address means (see judge::address_hint).
    let cilium = cilium::facts(&env.client).await?;
    Ok(GatewaySeen {
        name: GATEWAY.into(),
        gateway: gateway.as_ref().map(gateway_state),
        service,
        routes: ROUTES.len(),
        cilium,
    })
}

pub(crate) async fn httproute_accepted(
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
                |r: &HTTPRoute| judge::route(GATEWAY, "", Some(&route_state(r))).is_pass(),
                |r: Option<&HTTPRoute>| judge::describe_route(GATEWAY, r.map(route_state).as_ref()),
            )
            .await?;
            Ok::<_, KitError>((name.to_string(), r.as_ref().map(route_state)))
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

pub(crate) async fn setup(env: &Env, log: &CheckCtx<'_>) -> Result<GatewayFixture, KitError> {
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
    let ready = futures::future::try_join_all(std::iter::once(CLIENT).chain(BACKENDS).map(|n| {
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
