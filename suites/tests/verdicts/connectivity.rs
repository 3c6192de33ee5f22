//! Connectivity observations: curl and ping outputs from the fixtures, with the placement the
//! check relies on.

use crate::common::fixture_out;
use crate::{Scenario, case, series, thrice};
use suites::connectivity::judge::{NoFrag, Placed, PlacementFact};
use suites::kit::probe::curl::CurlResult;
use suites::kit::probe::ping::PingResult;
use suites::kit::retry::Leg;

fn curl(name: &str, exit_code: i32) -> CurlResult {
    CurlResult::parse(&fixture_out(name, exit_code).unwrap())
}

fn ping(name: &str, exit_code: i32) -> PingResult {
    PingResult::parse(&fixture_out(name, exit_code).unwrap())
}

fn apart(a_node: &str, b_node: &str) -> Vec<PlacementFact> {
    vec![PlacementFact {
        a: "client".into(),
        a_node: a_node.into(),
        b: "echo-other-node".into(),
        b_node: b_node.into(),
        same_node: false,
    }]
}

fn leg<T: Clone>(what: &str, series: suites::kit::Series<T>) -> Leg<T> {
    Leg {
        what: what.into(),
        series,
    }
}

pub fn scenarios() -> Vec<Scenario> {
    let ok = curl("curl-ok-200.txt", 0);
    let to_echo = "client -> echo-other-node (10.244.2.9:8080)";
    let http =
        |placement: Vec<PlacementFact>, legs: Vec<Leg<CurlResult>>| Placed { placement, legs };
    let no_frag = |r: PingResult| NoFrag {
        mtu: 1500,
        probes: Placed {
            placement: apart("w1", "w2"),
            legs: vec![leg("client -> echo-other-node (10.244.2.9)", thrice(r))],
        },
    };
    vec![
        case(
            "pod-to-pod-other-node",
            "three HTTP 200 in a row across nodes",
            &http(apart("w1", "w2"), vec![leg(to_echo, thrice(ok.clone()))]),
        ),
        case(
            "pod-to-pod-other-node",
            "both pods landed on one node",
            &http(apart("w1", "w1"), vec![leg(to_echo, thrice(ok.clone()))]),
        ),
        case(
            "pod-to-pod-other-node",
            "the connection times out",
            &http(
                apart("w1", "w2"),
                vec![leg(to_echo, thrice(curl("curl-timeout-28.txt", 28)))],
            ),
        ),
        case(
            "pod-to-service-other-node",
            "the Service refuses the connection",
            &http(
                vec![],
                vec![leg(
                    "client -> echo-service (10.96.12.40:8080)",
                    thrice(curl("curl-refused-7.txt", 7)),
                )],
            ),
        ),
        case(
            "pod-to-service-same-node",
            "the backend answers 503",
            &http(
                vec![],
                vec![leg(
                    "client -> echo-service (10.96.12.40:8080)",
                    thrice(curl("curl-http-error-503.txt", 22)),
                )],
            ),
        ),
        case(
            "pod-to-pod-same-node",
            "flapping: success, timeout, success",
            &http(
                vec![],
                vec![leg(
                    "client -> echo-same-node (10.244.1.7:8080)",
                    series(&[ok.clone(), curl("curl-timeout-28.txt", 28), ok.clone()]),
                )],
            ),
        ),
        case(
            "pod-to-world",
            "the external name does not resolve",
            &http(
                vec![],
                vec![leg(
                    "client -> https://one.one.one.one",
                    thrice(curl("curl-resolve-6.txt", 6)),
                )],
            ),
        ),
        case(
            "pod-to-world",
            "the TLS handshake is cut off",
            &http(
                vec![],
                vec![leg(
                    "client -> https://one.one.one.one",
                    thrice(curl("curl-tls-35.txt", 35)),
                )],
            ),
        ),
        case(
            "pod-to-host",
            "every node answers ping",
            &Placed {
                placement: vec![],
                legs: vec![leg(
                    "client -> node w2 (10.0.0.3)",
                    thrice(ping("ping-ok.txt", 0)),
                )],
            },
        ),
        case(
            "pod-to-host",
            "a node does not answer",
            &Placed {
                placement: vec![],
                legs: vec![leg(
                    "client -> node w2 (10.0.0.3)",
                    thrice(ping("ping-no-reply.txt", 1)),
                )],
            },
        ),
        case(
            "pod-to-host",
            "no node to ping",
            &Placed::<PingResult> {
                placement: vec![],
                legs: vec![],
            },
        ),
        case(
            "pod-to-pod-no-frag",
            "a full-size packet crosses nodes",
            &no_frag(ping("ping-ok-1472-df.txt", 0)),
        ),
        case(
            "pod-to-pod-no-frag",
            "a router on the path needs fragmentation",
            &no_frag(ping("ping-frag-needed.txt", 1)),
        ),
        case(
            "pod-to-pod-no-frag",
            "the pod's own route MTU is smaller",
            &no_frag(ping("ping-local-message-too-long.txt", 1)),
        ),
    ]
}
