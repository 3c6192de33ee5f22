//! The connectivity judges: did traffic take the path the check is about, and did it answer.
//! Pure: plain data in (placements and probe results), a verdict out.

use crate::kit::probe::curl::{self, CurlResult};
use crate::kit::probe::ping::{self, PingResult};
use crate::kit::retry::{Leg, judge_legs};
use crate::kit::topology::PodInfo;
use crate::kit::verdict::Verdict;
use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::exec::ExecOutput;
    use crate::kit::retry::{Series, Try};
    use std::time::Duration;

    fn series<T>(tries: Vec<T>) -> Series<T> {
        Series {
            required: 3,
            deadline: Duration::from_secs(60),
            elapsed: Duration::from_secs(2),
            tries: tries.into_iter().map(Try::Observed).collect(),
        }
    }

    fn curl_fixture(name: &str, exit_code: i32) -> CurlResult {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (stdout, stderr) = text.split_once("--- stderr\n").unwrap();
        CurlResult::parse(&ExecOutput {
            exit_code,
            stdout: stdout.trim_end().into(),
            stderr: stderr.into(),
        })
    }

    fn fact(a_node: &str, b_node: &str, same_node: bool) -> PlacementFact {
        PlacementFact {
            a: "client".into(),
            a_node: a_node.into(),
            b: "echo-other-node".into(),
            b_node: b_node.into(),
            same_node,
        }
    }

    #[test]
    fn three_successes_on_the_right_placement_pass() {
        let ok = curl_fixture("curl-ok-200.txt", 0);
        let o = Placed {
            placement: vec![fact("w1", "w2", false)],
            legs: vec![Leg {
                what: "client -> echo-other-node (10.244.2.9:8080)".into(),
                series: series(vec![ok.clone(), ok.clone(), ok]),
            }],
        };
        assert_eq!(
            http(&o),
            Verdict::Pass(
                "client -> echo-other-node (10.244.2.9:8080): HTTP 200 from 10.244.1.7:8080 (3 in a row)".into()
            )
        );
    }

    #[test]
    fn a_cross_node_check_on_one_node_fails_before_looking_at_traffic() {
        let ok = curl_fixture("curl-ok-200.txt", 0);
        let o = Placed {
            placement: vec![fact("w1", "w1", false)],
            legs: vec![Leg {
                what: "client -> echo-other-node".into(),
                series: series(vec![ok.clone(), ok.clone(), ok]),
            }],
        };
        let v = http(&o);
        assert!(!v.is_pass());
        assert!(v.message().contains("client runs on w1 and echo-other-node on w1, but this check needs them on different nodes"), "{}", v.message());
    }

    #[test]
    fn a_timeout_names_the_leg_and_the_drop() {
        let t = curl_fixture("curl-timeout-28.txt", 28);
        let ok = curl_fixture("curl-ok-200.txt", 0);
        let o = Placed {
            placement: vec![],
            legs: vec![
                Leg {
                    what: "client -> echo-same-node (10.244.1.7:8080)".into(),
                    series: series(vec![ok.clone(), ok.clone(), ok]),
                },
                Leg {
                    what: "client -> echo-other-node (10.244.2.9:8080)".into(),
                    series: series(vec![t.clone(), t.clone(), t]),
                },
            ],
        };
        let v = http(&o);
        assert!(
            v.message()
                .starts_with("client -> echo-other-node (10.244.2.9:8080): timeout (curl exit 28)"),
            "{}",
            v.message()
        );
        assert!(
            !v.message().contains("echo-same-node"),
            "passing legs stay out of a failure message"
        );
    }

    #[test]
    fn no_frag_reports_the_mtu_it_tried() {
        let path = format!(
            "{}/tests/fixtures/ping-frag-needed.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let (stdout, stderr) = text.split_once("--- stderr\n").unwrap();
        let r = PingResult::parse(&ExecOutput {
            exit_code: 1,
            stdout: stdout.into(),
            stderr: stderr.into(),
        });
        let o = NoFrag {
            mtu: 1500,
            probes: Placed {
                placement: vec![fact("w1", "w2", false)],
                legs: vec![Leg {
                    what: "client -> echo-other-node (10.244.2.9)".into(),
                    series: series(vec![r]),
                }],
            },
        };
        let v = no_frag(&o);
        assert!(v.message().starts_with("a full-MTU packet (1500 bytes, DF set) did not cross nodes: client -> echo-other-node (10.244.2.9): packet too big for the path: the path allows 1450 bytes;"), "{}", v.message());
    }

    #[test]
    fn pod_to_host_with_no_nodes_is_not_a_pass() {
        let o: Placed<PingResult> = Placed {
            placement: vec![],
            legs: vec![],
        };
        assert!(!ping(&o).is_pass());
    }
}

