//! The connectivity judges on curl and ping outputs as the tools print them, with the placement
//! each check relies on.

use std::time::Duration;
use suites::connectivity::judge::{self, NoFrag, Placed, PlacementFact};
use suites::kit::Verdict;
use suites::kit::exec::ExecOutput;
use suites::kit::probe::curl::CurlResult;
use suites::kit::probe::ping::PingResult;
use suites::kit::retry::{Leg, Series, Try};

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
        judge::http(&o),
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
    let v = judge::http(&o);
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
    let v = judge::http(&o);
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
    let v = judge::no_frag(&o);
    assert!(v.message().starts_with("a full-MTU packet (1500 bytes, DF set) did not cross nodes: client -> echo-other-node (10.244.2.9): packet too big for the path: the path allows 1450 bytes;"), "{}", v.message());
}

#[test]
fn pod_to_host_with_no_nodes_is_not_a_pass() {
    let o: Placed<PingResult> = Placed {
        placement: vec![],
        legs: vec![],
    };
    assert!(!judge::ping(&o).is_pass());
}
