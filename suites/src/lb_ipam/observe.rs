//! Everything the lb-ipam suite says to the cluster: setup refuses a block that overlaps an
//! existing pool and creates the suite's pool; each check creates its Services and waits
//! (bounded, by watch) for LB IPAM to answer; l2-reachable-from-host also probes from the outside
//! client and reads the announcement Lease; teardown deletes the pools by name.

use super::blocks::{block_size, parse_block, requested_ip};
use super::judge::{Allocation, Cond, Exhaustion, PoolState, SvcState, count, find, show};
use super::objects::*;
use crate::kit::check::{CheckCtx, Env};
use crate::kit::errors::KitError;
use crate::kit::wait;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbFixture {
    pub namespace: String,
    pub pool: String,
    pub api_version: String,
    pub block: String,
    pub labels: BTreeMap<String, String>,
    /// The L2 pool and its echo backend, when l2-reachable-from-host was selected.
    pub l2: Option<L2Fixture>,
}

/// What l2-reachable-from-host set up. Its failures stay with that check: `ready` holds why the
/// echo backend is not usable, and the other checks run regardless.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct L2Fixture {
    pub pool: String,
    pub block: String,
    pub ready: Result<(), String>,
}

/// A pool's status conditions, read from its JSON.
pub fn pool_conditions(pool: &Value) -> Vec<Cond> {
    pool["status"]["conditions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| Cond {
                    type_: c["type"].as_str().unwrap_or_default().into(),
                    status: c["status"].as_str().unwrap_or_default().into(),
                    reason: c["reason"].as_str().unwrap_or_default().into(),
                    message: c["message"].as_str().unwrap_or_default().into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What LB IPAM did with one Service, as the judges read it.
pub fn svc_state(svc: &Service) -> SvcState {
    let status = svc.status.as_ref();
    SvcState {
        name: svc.metadata.name.clone().unwrap_or_default(),
        ingress: status
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|i| i.iter().filter_map(|x| x.ip.clone()).collect())
            .unwrap_or_default(),
        conditions: status
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| Cond {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Whether a pool's serviceSelector may select a Service with `labels`: matchLabels and the
/// matchExpressions operators In, NotIn, Exists and DoesNotExist; an expression it cannot read
/// counts as matching (the safe side for a count of free addresses).
pub fn selects(pool: &Value, labels: &BTreeMap<String, String>) -> bool {
    let sel = &pool["spec"]["serviceSelector"];
    if sel.is_null() {
        return true;
    }
    let by_labels = sel["matchLabels"].as_object().is_none_or(|m| {
        m.iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    });
    let by_expressions = sel["matchExpressions"].as_array().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let value = e["key"].as_str().and_then(|k| labels.get(k));
            let listed = || {
                e["values"]
                    .as_array()
                    .is_some_and(|vs| vs.iter().any(|v| v.as_str() == value.map(String::as_str)))
            };
            match e["operator"].as_str() {
                Some("In") => value.is_some() && listed(),
                Some("NotIn") => value.is_none() || !listed(),
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                _ => true,
            }
        })
    });
    by_labels && by_expressions
}

/// The IPv4 range (first, last) of one entry of a pool's `spec.blocks` (or v2alpha1's
/// `spec.cidrs`): a `cidr` of any prefix length, or `start` with an optional `stop`. `None` for
/// IPv6 and entries it cannot read.
pub fn block_range(b: &Value) -> Option<(u32, u32)> {
    if let Some(cidr) = b["cidr"].as_str() {
        let (ip, len) = cidr.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let first = u32::from(ip) & mask;
        return Some((first, first | !mask));
    }
    let start: Ipv4Addr = b["start"].as_str()?.parse().ok()?;
    let stop = match b["stop"].as_str() {
        Some(s) => s.parse::<Ipv4Addr>().ok()?,
        None => start,
    };
    Some((u32::from(start), u32::from(stop)))
}

/// The blocks of `pool`, as the pool writes them, that share an address with `block`.
pub fn overlapping_blocks(pool: &Value, block: &str) -> Vec<String> {
    let Ok((net, len)) = parse_block(block) else {
        return Vec::new();
    };
    let lo = u32::from(net);
    let hi = lo + (block_size(len) - 1) as u32;
    ["blocks", "cidrs"]
        .iter()
        .flat_map(|k| pool["spec"][k].as_array().into_iter().flatten())
        .filter(|b| block_range(b).is_some_and(|(first, last)| first <= hi && lo <= last))
        .map(|b| match b["cidr"].as_str() {
            Some(c) => c.to_string(),
            None => format!(
                "{}-{}",
                b["start"].as_str().unwrap_or_default(),
                b["stop"].as_str().unwrap_or_default()
            ),
        })
        .collect()
}

/// Whether LB IPAM hands out addresses from this pool: not disabled, and not in conflict
/// (a conflicting pool allocates nothing).
pub fn pool_allocates(pool: &Value) -> bool {
    pool["spec"]["disabled"].as_bool() != Some(true)
        && find(&pool_conditions(pool), &POOL_CONFLICT).is_none_or(|c| c.status != "True")
}

fn services(ctx: &CheckCtx<'_>) -> Api<Service> {
    Api::namespaced(ctx.env.client.clone(), &ctx.env.namespace)
}

/// Creates a Service and waits until LB IPAM has written its condition.
pub(crate) async fn create_and_settle(
    ctx: &CheckCtx<'_>,
    svc: &Service,
) -> Result<SvcState, KitError> {
    let api = services(ctx);
    let name = svc.metadata.name.clone().unwrap_or_default();
    api.create(&PostParams::default(), svc)
        .await
        .map_err(KitError::api(format!(
            "create service {}/{name}",
            ctx.env.namespace
        )))?;
    let what = format!(
        "LB IPAM to answer service {}/{name} ({})",
        ctx.env.namespace, SATISFIED[0]
    );
    let got = wait::until(
        api,
        &name,
        &what,
        ctx.env.timeouts.controller,
        |s: &Service| svc_state(s).satisfied().is_some(),
        |s: Option<&Service>| match s {
            Some(s) => svc_state(s).describe(),
            None => "the Service does not exist".into(),
        },
    )
    .await?;
    let state = svc_state(&got);
    ctx.note(format!("{name}: {}", state.describe()));
    Ok(state)
}

pub(crate) async fn pool_ready(f: &LbFixture, ctx: &CheckCtx<'_>) -> Result<PoolState, KitError> {
    let api =
        Api::<DynamicObject>::all_with(ctx.env.client.clone(), &pool_resource(&f.api_version));
    let what = format!("pool {} to report its IP counts", f.pool);
    let pool = wait::until(
        api,
        &f.pool,
        &what,
        ctx.env.timeouts.controller,
        |p: &DynamicObject| {
            let c = pool_conditions(&p.data);
            find(&c, &IPS_TOTAL).is_some()
                || find(&c, &POOL_CONFLICT).is_some_and(|c| c.status == "True")
        },
        |p: Option<&DynamicObject>| match p {
            Some(p) => show(&pool_conditions(&p.data)),
            None => "the pool does not exist".into(),
        },
    )
    .await?;
    let conditions = pool_conditions(&pool.data);
    ctx.note(format!("pool {}: {}", f.pool, show(&conditions)));
    Ok(PoolState {
        name: f.pool.clone(),
        block: f.block.clone(),
        conditions,
    })
}

pub(crate) async fn service_gets_ip(
    f: &LbFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Allocation, KitError> {
    let svc = lb_service(SVC_BASIC, &f.labels, BTreeMap::new(), 80);
    Ok(Allocation {
        block: f.block.clone(),
        requested: None,
        service: create_and_settle(ctx, &svc).await?,
    })
}

pub(crate) async fn requested_ip_annotation(
    f: &LbFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Allocation, KitError> {
    let ip = requested_ip(&f.block).map_err(|detail| KitError::Parse {
        what: "the lb-ipam block".into(),
        detail,
    })?;
    let svc = lb_service(
        SVC_REQUESTED,
        &f.labels,
        BTreeMap::from([(ANNOTATION_IPS.to_string(), ip.clone())]),
        80,
    );
    Ok(Allocation {
        block: f.block.clone(),
        requested: Some(ip),
        service: create_and_settle(ctx, &svc).await?,
    })
}

pub(crate) async fn sharing_key(
    f: &LbFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<SvcState>, KitError> {
    let mut out = Vec::new();
    for (i, name) in SVC_SHARE.iter().enumerate() {
        let svc = lb_service(
            name,
            &f.labels,
            BTreeMap::from([(ANNOTATION_SHARING_KEY.to_string(), SHARING_KEY.to_string())]),
            80 + i as i32,
        );
        out.push(create_and_settle(ctx, &svc).await?);
    }
    Ok(out)
}

pub(crate) async fn pool_exhausted(
    f: &LbFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Exhaustion, KitError> {
    let list =
        Api::<DynamicObject>::all_with(ctx.env.client.clone(), &pool_resource(&f.api_version))
            .list(&ListParams::default())
            .await
            .map_err(KitError::api(format!(
                "list {POOL_PLURAL}.cilium.io/{}",
                f.api_version
            )))?;
    let mut pools = Vec::new();
    for p in &list.items {
        let name = p.metadata.name.clone().unwrap_or_default();
        if !selects(&p.data, &f.labels) {
            continue;
        }
        if !pool_allocates(&p.data) {
            ctx.note(format!(
                "pool {name} selects the test Services but is disabled or in conflict ({}): its addresses are not counted",
                show(&pool_conditions(&p.data))
            ));
            continue;
        }
        let free =
            count(&pool_conditions(&p.data), &IPS_AVAILABLE).ok_or_else(|| KitError::Missing {
                what: format!("the IPsAvailable count of pool {name}"),
                hint: "the operator has not reconciled the pool yet".into(),
            })?;
        pools.push((name, free));
    }
    let free: u64 = pools.iter().map(|(_, n)| n).sum();
    ctx.note(format!(
        "pools serving the test Services: {}",
        pools
            .iter()
            .map(|(p, n)| format!("{p} ({n} free)"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if free as usize >= MAX_FILL {
        return Err(KitError::Missing {
            what: "a set of pools small enough to exhaust".into(),
            hint: format!(
                "the pools that serve the test Services have {free} free addresses (at most {} are filled); give the large pools a serviceSelector so only the test pool serves this run",
                MAX_FILL - 1
            ),
        });
    }
    let mut out = Vec::new();
    let mut created = Vec::new();
    let mut failed = None;
    for i in 0..=free as usize {
        let name = format!("{SVC_FILL_PREFIX}{i}");
        let svc = lb_service(&name, &f.labels, BTreeMap::new(), 80);
        // Deleted below even if creating or settling it failed: it may exist all the same.
        created.push(name);
        match create_and_settle(ctx, &svc).await {
            Ok(s) => {
                let refused = s.satisfied().is_some_and(|c| c.status == "False");
                out.push(s);
                if refused {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // Give the addresses back at once rather than at namespace deletion, also on error.
    let api = services(ctx);
    for name in &created {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => ctx.note(format!("could not delete {name}: {e}")),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(Exhaustion {
        pools,
        services: out,
    })
}

pub(crate) async fn setup(
    env: &Env,
    with_l2: bool,
    log: &CheckCtx<'_>,
) -> Result<LbFixture, KitError> {
    parse_block(&env.lb_ipam_block).map_err(|detail| KitError::Parse {
        what: "RunOptions::lb_ipam_block".into(),
        detail,
    })?;
    let uid = crate::kit::namespace::uid(&env.client, &env.namespace).await?;
    let labels = env.run_labels();
    let name = env.namespace.clone();
    let mut last_err = None;
    // cilium.io/v2 from Cilium 1.18; v2alpha1 before.
    for version in ["v2", "v2alpha1"] {
        let api = Api::<DynamicObject>::all_with(env.client.clone(), &pool_resource(version));
        let existing = match api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                log.note(format!("{POOL_PLURAL}.cilium.io/{version} is not served"));
                last_err = Some(format!("{} ({} {})", s.message, s.code, s.reason));
                continue;
            }
            Err(e) => {
                return Err(KitError::api(format!(
                    "list {POOL_PLURAL}.cilium.io/{version}"
                ))(e));
            }
        };
        let overlaps = overlapping_pools(&existing, &env.lb_ipam_block);
        if !overlaps.is_empty() {
            return Err(KitError::Missing {
                what: format!("a free block for the suite's pool {name}"),
                hint: format!(
                    "{} overlaps the existing {POOL_KIND} {}, so Cilium would report a PoolConflict; delete a pool left over by an earlier run (`kubectl delete {POOL_PLURAL}.cilium.io <name>`) or choose another RunOptions::lb_ipam_block",
                    env.lb_ipam_block,
                    overlaps.join(", ")
                ),
            });
        }
        let body: DynamicObject = serde_json::from_value(pool_object(
            &name,
            &format!("cilium.io/{version}"),
            &env.lb_ipam_block,
            &labels,
            Some((&env.namespace, &uid)),
        ))
        .map_err(|e| KitError::Parse {
            what: "the pool object".into(),
            detail: e.to_string(),
        })?;
        match api.create(&PostParams::default(), &body).await {
            Ok(_) => {
                log.note(format!(
                    "pool {name} (cilium.io/{version}) created with block {} selecting {}; deleted by name when the suite ends, unless its namespace {} is kept",
                    env.lb_ipam_block,
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    env.namespace
                ));
                let l2 = match (&env.lb_l2_block, with_l2) {
                    (Some(block), true) => Some(
                        super::l2::setup(env, &api, version, &existing, block, &uid, log).await?,
                    ),
                    _ => None,
                };
                return Ok(LbFixture {
                    namespace: env.namespace.clone(),
                    pool: name,
                    api_version: version.into(),
                    block: env.lb_ipam_block.clone(),
                    labels,
                    l2,
                });
            }
            Err(e) => {
                return Err(KitError::api(format!(
                    "create pool {name} (cilium.io/{version})"
                ))(e));
            }
        }
    }
    Err(KitError::Missing {
        what: format!("the {POOL_KIND} CRD"),
        hint: format!(
            "neither cilium.io/v2 nor v2alpha1 is served ({}); is Cilium installed?",
            last_err.unwrap_or_default()
        ),
    })
}

/// Pools among `existing` with a block sharing an address with `block`, as `name (blocks)`.
pub(crate) fn overlapping_pools(existing: &[DynamicObject], block: &str) -> Vec<String> {
    existing
        .iter()
        .filter_map(|p| {
            let blocks = overlapping_blocks(&p.data, block);
            (!blocks.is_empty()).then(|| {
                format!(
                    "{} ({})",
                    p.metadata.name.as_deref().unwrap_or_default(),
                    blocks.join(", ")
                )
            })
        })
        .collect()
}

/// Deletes the suite's pool by name: the namespace's garbage collection would remove it only
/// after the namespace finished terminating, and the next run's pool on the same block would
/// conflict with it until then. A kept namespace keeps its pool, and the cleanup says so.
pub(crate) async fn teardown(
    env: &Env,
    f: &LbFixture,
    keep: bool,
    log: &CheckCtx<'_>,
) -> Result<Vec<String>, KitError> {
    if keep {
        log.note(format!(
            "teardown: pool {} (block {}) kept with namespace {}",
            f.pool, f.block, f.namespace
        ));
        let mut kept = vec![format!(
            "the cluster-scoped {POOL_KIND} {} (block {}) is kept with it; delete it (`kubectl delete {POOL_PLURAL}.cilium.io {}`) before the next run on an overlapping block, whose setup stops on the overlap",
            f.pool, f.block, f.pool
        )];
        if let Some(l2) = &f.l2 {
            kept.push(format!(
                "so is its L2 pool {} (block {}; `kubectl delete {POOL_PLURAL}.cilium.io {}`)",
                l2.pool, l2.block, l2.pool
            ));
        }
        return Ok(kept);
    }
    let api = Api::<DynamicObject>::all_with(env.client.clone(), &pool_resource(&f.api_version));
    let mut errors = Vec::new();
    for pool in std::iter::once(&f.pool).chain(f.l2.as_ref().map(|l| &l.pool)) {
        match api.delete(pool, &DeleteParams::default()).await {
            Ok(_) => log.note(format!("teardown: pool {pool} deleted")),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                log.note(format!("teardown: pool {pool} was already gone"));
            }
            Err(e) => errors.push(KitError::api(format!(
                "delete pool {pool} (cilium.io/{})",
                f.api_version
            ))(e)),
        }
    }
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(Vec::new()),
    }
}
