//! The connectivity judges: did traffic take the path the check is about, and did it answer.
//! Pure: plain data in (placements and probe results), a verdict out.

use crate::kit::probe::curl::{self, CurlResult};
use crate::kit::probe::ping::{self, PingResult};
use crate::kit::retry::{Leg, judge_legs};
use crate::kit::topology::PodInfo;
use crate::kit::verdict::Verdict;
use serde::{Deserialize, Serialize};

/// A fact about placement a check depends on: two pods (or a pod and a node) on the same node,
/// or on different ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementFact {
    pub a: String,
    pub a_node: String,
    pub b: String,
    pub b_node: String,
    pub same_node: bool,
}

impl PlacementFact {
    pub fn same(a: &PodInfo, b: &PodInfo) -> PlacementFact {
        PlacementFact {
            a: a.name.clone(),
            a_node: a.node.clone(),
            b: b.name.clone(),
            b_node: b.node.clone(),
            same_node: true,
        }
    }

    pub fn different(a: &PodInfo, b: &PodInfo) -> PlacementFact {
        PlacementFact {
            same_node: false,
            ..PlacementFact::same(a, b)
        }
    }

    fn holds(&self) -> bool {
        (self.a_node == self.b_node) == self.same_node
    }
}

/// What a traffic check observed: the placement it relied on and every probe it ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed<T> {
    pub placement: Vec<PlacementFact>,
    pub legs: Vec<Leg<T>>,
}

fn judge_placement(facts: &[PlacementFact]) -> Option<Verdict> {
    let broken: Vec<String> = facts
        .iter()
        .filter(|f| !f.holds())
        .map(|f| {
            format!(
                "{} runs on {} and {} on {}, but this check needs them on {} nodes",
                f.a,
                f.a_node,
                f.b,
                f.b_node,
                if f.same_node { "the same" } else { "different" }
            )
        })
        .collect();
    (!broken.is_empty()).then(|| {
        Verdict::Fail(format!(
            "placement does not hold, so the traffic result would prove the wrong path: {}; the scheduler did not honour the pod (anti-)affinity",
            broken.join("; ")
        ))
    })
}

pub fn http(o: &Placed<CurlResult>) -> Verdict {
    judge_placement(&o.placement).unwrap_or_else(|| judge_legs(&o.legs, curl::judge))
}

pub fn ping(o: &Placed<PingResult>) -> Verdict {
    judge_placement(&o.placement).unwrap_or_else(|| judge_legs(&o.legs, ping::judge))
}

/// The don't-fragment probe also needs the MTU it sized its payload from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoFrag {
    pub mtu: u32,
    pub probes: Placed<PingResult>,
}

pub fn no_frag(o: &NoFrag) -> Verdict {
    match ping(&o.probes) {
        Verdict::Pass(m) => Verdict::Pass(format!(
            "{}-byte packets (pod MTU {}) crossed nodes with DF set: {m}",
            o.mtu, o.mtu
        )),
        Verdict::Fail(m) => Verdict::Fail(format!(
            "a full-MTU packet ({} bytes, DF set) did not cross nodes: {m}",
            o.mtu
        )),
    }
}
