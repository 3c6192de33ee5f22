//! Everything the gateway-api suite says to the cluster: setup applies the objects of
//! [`super::objects`]; the status checks wait (bounded, by watch) for Cilium's controller and
//! read the objects back as plain snapshots. The traffic checks are in [`super::traffic`].

use super::judge::{
    self, ClassSeen, ClassState, Cond, GatewaySeen, GatewayState, ListenerState, ParentState,
    RouteState, RoutesSeen, ServiceSeen, Target,
};
use super::objects::*;
use super::types::{Gateway, GatewayClass, HTTPRoute};
use crate::kit::check::{CheckCtx, Env};
use crate::kit::cilium;
use crate::kit::errors::KitError;
use crate::kit::topology::PodInfo;
use crate::kit::wait;
use crate::kit::workload::{self, Placement};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, PostParams};
use std::time::Duration;

pub struct GatewayFixture {
    pub namespace: String,
    pub client: PodInfo,
    /// Resolved once by the first traffic check that needs it ([`super::traffic`]).
    pub(crate) target: tokio::sync::OnceCell<Target>,
    /// The Gateway's external address (status.addresses only), for the north-south checks.
    pub(crate) external: tokio::sync::OnceCell<Target>,
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
        external: tokio::sync::OnceCell::new(),
    })
}
