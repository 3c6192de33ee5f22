//! The LB IPAM judges: what the operator wrote on the pool and the Services, against what LB IPAM
//! promises (an address from a selecting pool, the requested one, one shared by a key, none
//! once full). Pure: plain condition and address snapshots in, a verdict out.

use super::blocks::{block_size, in_block, parse_block};
use super::objects::{
    ANNOTATION_IPS, ANNOTATION_SHARING_KEY, IPS_AVAILABLE, IPS_TOTAL, IPS_USED, POOL_CONFLICT,
    SATISFIED,
};
use crate::kit::probe::curl::{self, CurlResult};
use crate::kit::probe::neigh::{self, Neighbour};
use crate::kit::retry::{Series, judge_series};
use crate::kit::topology::NodeInfo;
use crate::kit::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A status condition, from a Service or a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

pub fn find<'a>(conds: &'a [Cond], types: &[&str]) -> Option<&'a Cond> {
    conds.iter().find(|c| types.contains(&c.type_.as_str()))
}

pub fn show(conds: &[Cond]) -> String {
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

/// What LB IPAM did with one Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SvcState {
    pub name: String,
    pub ingress: Vec<String>,
    pub conditions: Vec<Cond>,
}

impl SvcState {
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
fn granted(s: &SvcState) -> Result<(), String> {
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolState {
    pub name: String,
    pub block: String,
    pub conditions: Vec<Cond>,
}

pub fn count(conds: &[Cond], types: &[&str]) -> Option<u64> {
    find(conds, types).and_then(|c| c.message.trim().parse().ok())
}

pub fn pool(p: &PoolState) -> Verdict {
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub block: String,
    pub requested: Option<String>,
    pub service: SvcState,
}

pub fn allocation(a: &Allocation) -> Verdict {
    if let Err(m) = granted(&a.service) {
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
pub fn sharing(s: &Vec<SvcState>) -> Verdict {
    let mut wrong = Vec::new();
    for svc in s {
        if let Err(m) = granted(svc) {
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exhaustion {
    /// (pool, free addresses) of every enabled pool that may serve the test Services.
    pub pools: Vec<(String, u64)>,
    pub services: Vec<SvcState>,
}

pub fn exhaustion(e: &Exhaustion) -> Verdict {
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
    if let Some(bad) = before.iter().find(|s| granted(s).is_err()) {
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

/// The `cilium-l2announce-*` Lease of the announced Service, as read from the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSeen {
    pub namespace: String,
    pub name: String,
    /// The node whose agent announces the address; `None` when nobody holds it.
    pub holder: Option<String>,
    pub renew_time: Option<String>,
}

/// What l2-reachable-from-host saw: the Service, HTTP from the outside client to its address,
/// and, to explain a failure, the announcement Lease, the outside client's ARP table and the
/// nodes (to put a name on the MAC that answered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct L2Reach {
    /// The block of the outside client's L2 segment the suite's L2 pool serves.
    pub block: String,
    pub service: SvcState,
    /// Requests from the outside client to `http://<address>:<port>/`; `None` when LB IPAM
    /// gave no address to send them to.
    pub http: Option<Series<CurlResult>>,
    /// The Lease it looked for, and what it found under that name.
    pub lease_name: String,
    pub lease: Option<LeaseSeen>,
    /// The outside client's neighbour table after the requests, or why it could not be read.
    pub neighbours: Result<Vec<Neighbour>, String>,
    pub nodes: Vec<NodeInfo>,
}

/// Passes when the Service got an address of the L2 block that answers HTTP from outside (the
/// retry rule's streak); a failure names the lease holder, who answered ARP, and the Service's
/// status, so the broken layer (allocation, announcement, ARP, forwarding) shows in one line.
pub fn l2_reach(o: &L2Reach) -> Verdict {
    let svc = &o.service;
    if let Err(why) = granted(svc) {
        return Verdict::Fail(format!(
            "service {} got no LoadBalancer address from the L2 block {}: {why}",
            svc.name, o.block
        ));
    }
    let ip = svc.ingress[0].as_str();
    if !in_block(ip, &o.block) {
        return Verdict::Fail(format!(
            "service {} got {ip}, outside the L2 block {}: another pool served it, so nothing announces it on the outside client's segment",
            svc.name, o.block
        ));
    }
    let Some(http) = &o.http else {
        return Verdict::Fail(format!(
            "service {} has {ip} but no request was sent to it",
            svc.name
        ));
    };
    let lease = describe_lease(o);
    let arp = describe_arp(o, ip);
    match judge_series(http, curl::judge) {
        Verdict::Pass(m) => Verdict::Pass(format!(
            "{ip} (service {}) answers from outside the cluster over L2: {m}; {lease}; {arp}",
            svc.name
        )),
        Verdict::Fail(m) => {
            let mut hints = Vec::new();
            let holder = o.lease.as_ref().and_then(|l| l.holder.as_deref());
            let answered_by = answering_node(o, ip);
            match (holder, &answered_by) {
                (None, _) => hints.push(
                    "no agent holds the announcement lease: check l2announcements.enabled, that a CiliumL2AnnouncementPolicy with loadBalancerIPs selects the Service and its nodes, and the agents' logs for the L2 announcer".to_string(),
                ),
                (Some(h), Some(Ok(n))) if n != h => hints.push(format!(
                    "ARP was answered by node {n}, but the lease is held by {h}: a stale announcement; check the agent on {n}"
                )),
                (Some(h), None) => hints.push(format!(
                    "the lease holder {h} did not answer ARP: check that the policy's interfaces match the node's interface on the outside client's network, and `cilium-dbg statedb l2-announce` on {h}"
                )),
                _ => {}
            }
            let hints = if hints.is_empty() {
                String::new()
            } else {
                format!("; {}", hints.join("; "))
            };
            Verdict::Fail(format!(
                "{ip} (service {}) does not answer from outside the cluster: {m}; {lease}; {arp}; service status: {}{hints}",
                svc.name,
                svc.describe()
            ))
        }
    }
}

fn describe_lease(o: &L2Reach) -> String {
    match &o.lease {
        None => format!("no Lease {} exists", o.lease_name),
        Some(l) => match &l.holder {
            Some(h) => format!(
                "announced by node {h} (Lease {}/{}{})",
                l.namespace,
                l.name,
                l.renew_time
                    .as_deref()
                    .map(|t| format!(", renewed {t}"))
                    .unwrap_or_default()
            ),
            None => format!("Lease {}/{} has no holder", l.namespace, l.name),
        },
    }
}

/// The node whose MAC answered ARP for `ip`: `Some(Ok(node))`, `Some(Err(mac))` for a MAC no
/// node entry shares, `None` when nobody answered.
fn answering_node(o: &L2Reach, ip: &str) -> Option<Result<String, String>> {
    let table = o.neighbours.as_ref().ok()?;
    let mac = neigh::find(table, ip)
        .filter(|n| n.answered())?
        .lladdr
        .clone()?;
    let node = o.nodes.iter().find(|n| {
        neigh::find(table, &n.internal_ip).and_then(|e| e.lladdr.as_deref()) == Some(mac.as_str())
    });
    Some(match node {
        Some(n) => Ok(n.name.clone()),
        None => Err(mac),
    })
}

fn describe_arp(o: &L2Reach, ip: &str) -> String {
    let table = match &o.neighbours {
        Ok(t) => t,
        Err(why) => return format!("the outside client's ARP table could not be read ({why})"),
    };
    match neigh::find(table, ip) {
        None => format!(
            "the outside client has no ARP entry for {ip} (the address is not on its link, or no request reached it)"
        ),
        Some(n) if n.answered() => {
            let mac = n.lladdr.as_deref().unwrap_or_default();
            match answering_node(o, ip) {
                Some(Ok(node)) => format!("ARP for {ip} answered by {mac} (node {node})"),
                _ => format!("ARP for {ip} answered by {mac}, which is no node's MAC in the table"),
            }
        }
        Some(n) => format!(
            "ARP for {ip} not answered (neighbour state {})",
            n.states.join(" ")
        ),
    }
}
