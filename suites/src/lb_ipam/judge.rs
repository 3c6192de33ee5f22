//! The LB IPAM judges: what the operator wrote on the pool and the Services, against what LB IPAM
//! promises (an address from a selecting pool, the requested one, one shared by a key, none
//! once full). Pure: plain condition and address snapshots in, a verdict out.

use super::blocks::{block_size, in_block, parse_block};
use super::objects::{
    ANNOTATION_IPS, ANNOTATION_SHARING_KEY, IPS_AVAILABLE, IPS_TOTAL, IPS_USED, POOL_CONFLICT,
    SATISFIED,
};
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
