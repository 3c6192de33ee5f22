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
//! suite deletes its pool by name when the run ends, passed or failed ([`LbIpam::teardown`]),
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

use crate::catalog::SuiteName;
use crate::kit::check::check_impl;
use crate::kit::check::{CheckCtx, Env, Runnable};
use crate::kit::errors::KitError;
use crate::kit::verdict::Verdict;
use crate::kit::wait;
use crate::runner::SuiteImpl;
use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// A /29 from the top of 172.16.0.0/12, rarely used by Docker networks or clusters.
pub const DEFAULT_BLOCK: &str = "172.31.250.0/29";
pub const ANNOTATION_IPS: &str = "lbipam.cilium.io/ips";
pub const ANNOTATION_SHARING_KEY: &str = "lbipam.cilium.io/sharing-key";
pub const SATISFIED: [&str; 2] = [
    "cilium.io/IPAMRequestSatisfied",
    "io.cilium/lb-ipam-request-satisfied",
];
pub const IPS_TOTAL: [&str; 2] = ["cilium.io/IPsTotal", "io.cilium/ips-total"];
pub const IPS_AVAILABLE: [&str; 2] = ["cilium.io/IPsAvailable", "io.cilium/ips-available"];
pub const IPS_USED: [&str; 2] = ["cilium.io/IPsUsed", "io.cilium/ips-used"];
pub const POOL_CONFLICT: [&str; 2] = ["cilium.io/PoolConflict", "io.cilium/conflict"];
pub const POOL_KIND: &str = "CiliumLoadBalancerIPPool";
pub const POOL_PLURAL: &str = "ciliumloadbalancerippools";
/// The most Services the exhaustion check creates; pools with more free addresses than this
/// that also serve the test Services make exhaustion impractical to observe.
pub const MAX_FILL: usize = 40;

pub const SVC_BASIC: &str = "lb-basic";
pub const SVC_REQUESTED: &str = "lb-requested";
pub const SVC_SHARE: [&str; 2] = ["lb-share-a", "lb-share-b"];
pub const SVC_FILL_PREFIX: &str = "lb-fill-";
pub const SHARING_KEY: &str = "harness-shared";

pub fn pool_resource(version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cilium.io", version, POOL_KIND),
        POOL_PLURAL,
    )
}

/// `a.b.c.d/len` as (network, len); only IPv4 blocks are supported.
pub fn parse_block(block: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = block
        .split_once('/')
        .ok_or_else(|| format!("{block:?} is not a CIDR (a.b.c.d/len)"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{block:?}: {ip:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| (24..=32).contains(l))
        .ok_or_else(|| {
            format!("{block:?}: the prefix length must be 24 to 32, a pool small enough to exhaust")
        })?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if u32::from(ip) & !mask != 0 {
        return Err(format!("{block:?} has host bits set"));
    }
    Ok((ip, len))
}

/// Addresses in a block; with `allowFirstLastIPs: Yes` every one is allocatable.
pub fn block_size(len: u8) -> u64 {
    1u64 << (32 - u32::from(len))
}

pub fn in_block(ip: &str, block: &str) -> bool {
    let (Ok((net, len)), Ok(ip)) = (parse_block(block), ip.parse::<Ipv4Addr>()) else {
        return false;
    };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net)
}

/// The suite's pool: one block, every address allocatable, serving only `selector`'s Services.
pub fn pool_object(
    name: &str,
    api_version: &str,
    block: &str,
    selector: &BTreeMap<String, String>,
    owner: Option<(&str, &str)>,
) -> Value {
    let mut metadata = json!({"name": name, "labels": selector});
    if let Some((ns, uid)) = owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Namespace", "name": ns, "uid": uid
        }]);
    }
    json!({
        "apiVersion": api_version,
        "kind": POOL_KIND,
        "metadata": metadata,
        "spec": {
            "blocks": [{"cidr": block}],
            "allowFirstLastIPs": "Yes",
            "serviceSelector": {"matchLabels": selector},
        }
    })
}

/// A LoadBalancer Service without a selector (nothing needs to answer: LB IPAM is about the
/// address), labelled for the suite's pool.
pub fn lb_service(
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    port: i32,
) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.clone()),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port,
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A status condition, from a Service or a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl std::fmt::Display for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.type_, self.status)?;
        if !self.reason.is_empty() || !self.message.is_empty() {
            write!(f, " ({}: {})", self.reason, self.message)?;
        }
        Ok(())
    }
}

fn find<'a>(conds: &'a [Cond], types: &[&str]) -> Option<&'a Cond> {
    conds.iter().find(|c| types.contains(&c.type_.as_str()))
}

fn show(conds: &[Cond]) -> String {
    if conds.is_empty() {
        "no conditions".into()
    } else {
        conds
            .iter()
            .map(Cond::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

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

/// What LB IPAM did with one Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvcState {
    pub name: String,
    pub ingress: Vec<String>,
    pub conditions: Vec<Cond>,
}

impl SvcState {
    pub fn from_service(svc: &Service) -> SvcState {
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

    pub fn satisfied(&self) -> Option<&Cond> {
        find(&self.conditions, &SATISFIED)
    }

    pub fn describe(&self) -> String {
        format!(
            "ingress [{}]; {}",
            self.ingress.join(", "),
            show(&self.conditions)
        )
    }
}

/// Pass if LB IPAM satisfied the Service with at least one address; the message says why not.
fn judge_satisfied(s: &SvcState) -> Result<(), String> {
    match s.satisfied() {
        Some(c) if c.status == "True" && !s.ingress.is_empty() => Ok(()),
        Some(c) if c.status == "True" => Err(format!(
            "{} says satisfied but status.loadBalancer.ingress is empty",
            c.type_
        )),
        Some(c) => Err(format!(
            "LB IPAM refused it: {c}{}",
            match c.reason.as_str() {
                "no_pool" =>
                    "; no enabled pool selects the Service: check the pool's serviceSelector against the Service's labels",
                "out_of_ips" => "; every pool that selects it is full",
                _ => "",
            }
        )),
        None => Err(format!(
            "LB IPAM never wrote {} ({}); is the Cilium operator running, and does it see the pool?",
            SATISFIED[0],
            s.describe()
        )),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolState {
    pub name: String,
    pub block: String,
    pub conditions: Vec<Cond>,
}

fn count(conds: &[Cond], types: &[&str]) -> Option<u64> {
    find(conds, types).and_then(|c| c.message.trim().parse().ok())
}

pub fn judge_pool(p: &PoolState) -> Verdict {
    let conds = &p.conditions;
    if let Some(c) = find(conds, &POOL_CONFLICT)
        && c.status == "True"
    {
        return Verdict::Fail(format!(
            "pool {} conflicts with another pool ({c}): the block {} overlaps one already in use; choose a free range with RunOptions::lb_ipam_block",
            p.name, p.block
        ));
    }
    let want = parse_block(&p.block).map(|(_, l)| block_size(l));
    let (total, available, used) = (
        count(conds, &IPS_TOTAL),
        count(conds, &IPS_AVAILABLE),
        count(conds, &IPS_USED),
    );
    let (Some(total), Some(available), Some(used)) = (total, available, used) else {
        return Verdict::Fail(format!(
            "pool {} does not report IPsTotal, IPsAvailable and IPsUsed ({}): the operator has not reconciled it",
            p.name,
            show(conds)
        ));
    };
    match want {
        Ok(w) if w != total => Verdict::Fail(format!(
            "pool {} reports {total} addresses for {} with allowFirstLastIPs=Yes, expected {w}",
            p.name, p.block
        )),
        Err(e) => Verdict::Fail(e),
        Ok(_) if available + used != total => Verdict::Fail(format!(
            "pool {} counts do not add up: {available} available + {used} used != {total} total",
            p.name
        )),
        Ok(_) => Verdict::Pass(format!(
            "pool {} ({}): {total} total, {available} available, {used} used, no conflict",
            p.name, p.block
        )),
    }
}

/// One Service and the block of the suite's pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub block: String,
    pub requested: Option<String>,
    pub service: SvcState,
}

pub fn judge_allocation(a: &Allocation) -> Verdict {
    if let Err(m) = judge_satisfied(&a.service) {
        return Verdict::Fail(format!("{}: {m}", a.service.name));
    }
    let ips = a.service.ingress.join(", ");
    match &a.requested {
        Some(r) if a.service.ingress == [r.clone()] => Verdict::Pass(format!(
            "{} got the requested {r} ({ANNOTATION_IPS})",
            a.service.name
        )),
        Some(r) => Verdict::Fail(format!(
            "{} asked for {r} with {ANNOTATION_IPS} but got {ips}: LB IPAM ignored the annotation",
            a.service.name
        )),
        None if a.service.ingress.iter().all(|ip| in_block(ip, &a.block)) => {
            Verdict::Pass(format!(
                "{} got {ips} from the test pool {}",
                a.service.name, a.block
            ))
        }
        None => Verdict::Fail(format!(
            "{} got {ips}, outside the test pool {}: another pool selects the suite's Services; give every other pool a serviceSelector that excludes {}=lb-ipam",
            a.service.name,
            a.block,
            crate::kit::namespace::LABEL_SUITE
        )),
    }
}

#[allow(
    clippy::ptr_arg,
    reason = "a judge takes `&Observation`, and this observation is a Vec"
)]
pub fn judge_sharing(s: &Vec<SvcState>) -> Verdict {
    let mut wrong = Vec::new();
    for svc in s {
        if let Err(m) = judge_satisfied(svc) {
            wrong.push(format!("{}: {m}", svc.name));
        }
    }
    if s.len() < 2 {
        wrong.push(format!("expected two Services, observed {}", s.len()));
    }
    if !wrong.is_empty() {
        return Verdict::Fail(wrong.join("; "));
    }
    let first = &s[0].ingress;
    if s.iter().all(|x| &x.ingress == first) && first.len() == 1 {
        Verdict::Pass(format!(
            "{} share {} ({ANNOTATION_SHARING_KEY})",
            s.iter()
                .map(|x| x.name.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            first[0]
        ))
    } else {
        Verdict::Fail(format!(
            "Services with one {ANNOTATION_SHARING_KEY} and different ports got different addresses ({}): sharing is not honoured",
            s.iter()
                .map(|x| format!("{} [{}]", x.name, x.ingress.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Services created until one was refused, and the free addresses the pools reported first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exhaustion {
    /// (pool, free addresses) of every enabled pool that may serve the test Services.
    pub pools: Vec<(String, u64)>,
    pub services: Vec<SvcState>,
}

pub fn judge_exhaustion(e: &Exhaustion) -> Verdict {
    let free: u64 = e.pools.iter().map(|(_, n)| n).sum();
    let pools = e
        .pools
        .iter()
        .map(|(p, n)| format!("{p} ({n} free)"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some((last, before)) = e.services.split_last() else {
        return Verdict::Fail("no Service was created, so nothing was proved".into());
    };
    if let Some(bad) = before.iter().find(|s| judge_satisfied(s).is_err()) {
        return Verdict::Fail(format!(
            "{} was refused while the pools ({pools}) still had room: {}",
            bad.name,
            bad.describe()
        ));
    }
    let mut holders: BTreeMap<&str, &str> = BTreeMap::new();
    for s in before {
        for ip in &s.ingress {
            if let Some(other) = holders.insert(ip, &s.name) {
                return Verdict::Fail(format!(
                    "{other} and {} both got {ip} without a sharing key: LB IPAM handed one address out twice",
                    s.name
                ));
            }
        }
    }
    match last.satisfied() {
        Some(c) if c.status == "False" && c.reason == "out_of_ips" && last.ingress.is_empty() => {
            if before.len() as u64 != free {
                return Verdict::Fail(format!(
                    "{} was refused (out_of_ips) after {} Services got addresses, but the pools ({pools}) reported {free} free: IPsAvailable does not match what LB IPAM hands out",
                    last.name,
                    before.len()
                ));
            }
            Verdict::Pass(format!(
                "after {} Services took the {free} free addresses of {pools}, {} stays pending: {c}",
                before.len(),
                last.name
            ))
        }
        Some(c) if c.status == "False" => Verdict::Fail(format!(
            "{} was refused for the wrong reason: {c}, expected out_of_ips",
            last.name
        )),
        _ => Verdict::Fail(format!(
            "{} Services all got addresses although the pools ({pools}) reported {free} free; the last one, {}: {}; IPsAvailable is wrong or a pool hands out more than it has",
            e.services.len(),
            last.name,
            last.describe()
        )),
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbFixture {
    pub namespace: String,
    pub pool: String,
    pub api_version: String,
    pub block: String,
    pub labels: BTreeMap<String, String>,
}

fn services(ctx: &CheckCtx<'_>) -> Api<Service> {
    Api::namespaced(ctx.env.client.clone(), &ctx.env.namespace)
}

/// Creates a Service and waits until LB IPAM has written its condition.
async fn create_and_settle(ctx: &CheckCtx<'_>, svc: &Service) -> Result<SvcState, KitError> {
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
        |s: &Service| SvcState::from_service(s).satisfied().is_some(),
        |s: Option<&Service>| match s {
            Some(s) => SvcState::from_service(s).describe(),
            None => "the Service does not exist".into(),
        },
    )
    .await?;
    let state = SvcState::from_service(&got);
    ctx.note(format!("{name}: {}", state.describe()));
    Ok(state)
}

async fn pool_ready(f: &LbFixture, ctx: &CheckCtx<'_>) -> Result<PoolState, KitError> {
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

async fn service_gets_ip(f: &LbFixture, ctx: &CheckCtx<'_>) -> Result<Allocation, KitError> {
    let svc = lb_service(SVC_BASIC, &f.labels, BTreeMap::new(), 80);
    Ok(Allocation {
        block: f.block.clone(),
        requested: None,
        service: create_and_settle(ctx, &svc).await?,
    })
}

/// The address the requested-IP check asks for: the last of the block.
pub fn requested_ip(block: &str) -> Result<String, String> {
    let (net, len) = parse_block(block)?;
    let last = u32::from(net) + (block_size(len) as u32 - 1);
    Ok(Ipv4Addr::from(last).to_string())
}

async fn requested_ip_annotation(
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

async fn sharing_key(f: &LbFixture, ctx: &CheckCtx<'_>) -> Result<Vec<SvcState>, KitError> {
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

async fn pool_exhausted(f: &LbFixture, ctx: &CheckCtx<'_>) -> Result<Exhaustion, KitError> {
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

pub(crate) struct LbIpam;

impl SuiteImpl for LbIpam {
    type Fixture = LbFixture;
    const SUITE: SuiteName = SuiteName::LbIpam;

    fn checks() -> Vec<Box<dyn Runnable<LbFixture>>> {
        vec![
            check_impl!("pool-ready", pool_ready, judge_pool),
            check_impl!("service-gets-ip", service_gets_ip, judge_allocation),
            check_impl!(
                "requested-ip-annotation",
                requested_ip_annotation,
                judge_allocation
            ),
            check_impl!("sharing-key", sharing_key, judge_sharing),
            check_impl!("pool-exhausted-pending", pool_exhausted, judge_exhaustion),
        ]
    }

    async fn setup(
        env: &Env,
        _wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<LbFixture, KitError> {
        parse_block(&env.lb_ipam_block).map_err(|detail| KitError::Parse {
            what: "RunOptions::lb_ipam_block".into(),
            detail,
        })?;
        let ns = Api::<Namespace>::all(env.client.clone())
            .get(&env.namespace)
            .await
            .map_err(KitError::api(format!("get namespace {}", env.namespace)))?;
        let uid = ns.metadata.uid.ok_or_else(|| KitError::Missing {
            what: format!("the uid of namespace {}", env.namespace),
            hint: "the API server returned the namespace without one; the pool could not be tied to it for cleanup".into(),
        })?;
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
            let overlaps: Vec<String> = existing
                .iter()
                .filter_map(|p| {
                    let blocks = overlapping_blocks(&p.data, &env.lb_ipam_block);
                    (!blocks.is_empty()).then(|| {
                        format!(
                            "{} ({})",
                            p.metadata.name.as_deref().unwrap_or_default(),
                            blocks.join(", ")
                        )
                    })
                })
                .collect();
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
                    return Ok(LbFixture {
                        namespace: env.namespace.clone(),
                        pool: name,
                        api_version: version.into(),
                        block: env.lb_ipam_block.clone(),
                        labels,
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

    /// Deletes the suite's pool by name: the namespace's garbage collection would remove it only
    /// after the namespace finished terminating, and the next run's pool on the same block would
    /// conflict with it until then. A kept namespace keeps its pool, and the cleanup says so.
    async fn teardown(
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
            return Ok(vec![format!(
                "the cluster-scoped {POOL_KIND} {} (block {}) is kept with it; delete it (`kubectl delete {POOL_PLURAL}.cilium.io {}`) before the next run on an overlapping block, whose setup stops on the overlap",
                f.pool, f.block, f.pool
            )]);
        }
        let api =
            Api::<DynamicObject>::all_with(env.client.clone(), &pool_resource(&f.api_version));
        match api.delete(&f.pool, &DeleteParams::default()).await {
            Ok(_) => log.note(format!("teardown: pool {} deleted", f.pool)),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                log.note(format!("teardown: pool {} was already gone", f.pool));
            }
            Err(e) => {
                return Err(KitError::api(format!(
                    "delete pool {} (cilium.io/{})",
                    f.pool, f.api_version
                ))(e));
            }
        }
        Ok(Vec::new())
    }
}
