//! The gateway-api suite's traffic checks: curl through the Gateway, from the client pod to its
//! address (or, while the LoadBalancer address is pending, its Service's ClusterIP), and for the
//! north-south checks from the run's outside client to its external address only.

use super::http::{self, Expect, HttpReply, Request, judge_reply};
use super::judge::{self, Exchange, Routed, Target, Weighted};
use super::objects::*;
use super::observe::{GatewayFixture, gateway_state};
use super::types::Gateway;
use crate::kit::check::{CheckCtx, Env};
use crate::kit::errors::KitError;
use crate::kit::probe::{Origin, Probe};
use crate::kit::transcript::Peer;
use crate::kit::wait;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;

/// Where a traffic check's requests come from: the client pod (in-cluster, to the Gateway's
/// address or its Service's ClusterIP) or the run's outside client (north-south, to the
/// Gateway's external address only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    InCluster,
    NorthSouth,
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
            via: via_status(),
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

/// The address a client outside the cluster uses: the Gateway's status.addresses, never the
/// in-cluster ClusterIP fallback.
async fn resolve_external(f: &GatewayFixture, env: &Env) -> Result<Target, KitError> {
    let t = f.target.get_or_try_init(|| resolve_target(env)).await?;
    if t.via == via_status() {
        return Ok(t.clone());
    }
    let ns = &env.namespace;
    Err(KitError::Missing {
        what: format!("an external address of Gateway {ns}/{GATEWAY}"),
        hint: format!(
            "its status.addresses is empty (the LoadBalancer address of Service {} is pending: no LB pool serves it, or LB IPAM has not answered), so nothing outside the cluster can reach it; see gateway-api::gateway-programmed",
            gateway_service(GATEWAY)
        ),
    })
}

/// How [`resolve_target`] says it used the Gateway's own status.
fn via_status() -> String {
    format!("Gateway {GATEWAY} status.addresses[0]")
}

async fn target(f: &GatewayFixture, ctx: &CheckCtx<'_>, side: Side) -> Result<Target, KitError> {
    let t = match side {
        Side::InCluster => f
            .target
            .get_or_try_init(|| resolve_target(ctx.env))
            .await?
            .clone(),
        Side::NorthSouth => f
            .external
            .get_or_try_init(|| resolve_external(f, ctx.env))
            .await?
            .clone(),
    };
    ctx.note(format!(
        "requests go to {}:{LISTENER_PORT}, the {}",
        t.addr, t.via
    ));
    Ok(t)
}

/// The probe source and origin of a side.
fn source(f: &GatewayFixture, ctx: &CheckCtx<'_>, side: Side) -> Result<(Peer, Origin), KitError> {
    Ok(match side {
        Side::InCluster => (f.client.source(), f.client.pod_ref().into()),
        Side::NorthSouth => (ctx.outside_peer()?, Origin::Outside),
    })
}

async fn exchange(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
    side: Side,
    t: &Target,
    request: Request,
    expect: Expect,
) -> Result<Exchange, KitError> {
    let (from, origin) = source(f, ctx, side)?;
    let probe = Probe {
        label: ctx.label(
            "curl",
            from,
            Peer::new(
                format!("{GATEWAY} {}", request.describe()),
                Some(format!("{}:{LISTENER_PORT}", t.addr)),
            ),
        ),
        origin,
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
    side: Side,
    hint: &str,
    cases: Vec<(Request, Expect)>,
) -> Result<Routed, KitError> {
    let t = target(f, ctx, side).await?;
    let mut exchanges = Vec::new();
    for (request, expect) in cases {
        exchanges.push(exchange(f, ctx, side, &t, request, expect).await?);
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
    path_prefix(f, ctx, Side::InCluster).await
}

pub(crate) async fn path_prefix_routing_from_outside(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Routed, KitError> {
    path_prefix(f, ctx, Side::NorthSouth).await
}

async fn path_prefix(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
    side: Side,
) -> Result<Routed, KitError> {
    let r = |p: &str| Request::new(HOST_PREFIX, p);
    routed(f, ctx, side,
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
    routed(f, ctx, Side::InCluster,
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
    routed(f, ctx, Side::InCluster,
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
    hostnames(f, ctx, Side::InCluster).await
}

pub(crate) async fn hostname_match_from_outside(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Routed, KitError> {
    hostnames(f, ctx, Side::NorthSouth).await
}

async fn hostnames(f: &GatewayFixture, ctx: &CheckCtx<'_>, side: Side) -> Result<Routed, KitError> {
    let r = |h: &str| Request::new(h, "/");
    routed(f, ctx, side,
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
    routed(f, ctx, Side::InCluster,
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
    routed(f, ctx, Side::InCluster,
        "a RequestHeaderModifier filter overwrites set headers, appends added ones and removes the listed ones before the backend sees the request (Gateway API HTTPRouteRequestHeaderModifier)",
        vec![(request, expect)],
    )
    .await
}

pub(crate) async fn weighted_backends(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Weighted, KitError> {
    weighted(f, ctx, Side::InCluster).await
}

pub(crate) async fn weighted_backends_from_outside(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Weighted, KitError> {
    weighted(f, ctx, Side::NorthSouth).await
}

async fn weighted(
    f: &GatewayFixture,
    ctx: &CheckCtx<'_>,
    side: Side,
) -> Result<Weighted, KitError> {
    let t = target(f, ctx, side).await?;
    let weights: Vec<(String, u32)> = WEIGHTS.iter().map(|(p, w)| (p.to_string(), *w)).collect();
    let warm = Expect::AnyBackend(
        weights
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(p, _)| p.clone())
            .collect(),
    );
    let warmup = exchange(f, ctx, side, &t, Request::new(HOST_WEIGHTS, "/"), warm).await?;
    let mut samples = Vec::new();
    let mut stopped = None;
    if judge::exchange(&warmup).is_pass() {
        let per = WEIGHT_REQUESTS / WEIGHT_BATCHES;
        // Each request may take curl's whole --max-time; the exec bound covers them all.
        let bound = http::batch_bound(per, ctx.env.timeouts.exec);
        let (from, origin) = source(f, ctx, side)?;
        let probe = Probe {
            label: ctx.label(
                &format!("curl-x{per}"),
                from,
                Peer::new(
                    format!("{GATEWAY} GET {HOST_WEIGHTS}/"),
                    Some(format!("{}:{LISTENER_PORT}", t.addr)),
                ),
            ),
            origin,
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
