//! Network-policy observations: curl replies and Hubble flows from the fixtures, the policies'
//! status as Cilium's operator writes it.

use crate::common::{fixture, fixture_json, fixture_out};
use crate::{Scenario, case, thrice};
use suites::kit::hubble::{self, Record};
use suites::kit::policy::status_of;
use suites::network_policy::judge::{Expect, PolicyRun, Probed, Reply, Step};
use suites::network_policy::observe::parse_reply;

const NS: &str = "harness-network-policy-r1";
/// Before the fixtures' flows (07:12:18.51).
const STARTED: &str = "2026-11-30T07:12:17Z";

pub fn reply(file: &str, exit: i32) -> Reply {
    parse_reply(&fixture_out(file, exit).unwrap())
}

pub fn ok() -> Reply {
    reply("curl-ok-200.txt", 0)
}

pub fn timeout() -> Reply {
    reply("curl-timeout-28.txt", 28)
}

pub fn flows(file: &str) -> Record {
    Record::Flows(hubble::parse(&fixture(file)).unwrap())
}

pub fn probed(from: &str, expect: Expect, r: Reply, hubble: Record) -> Probed {
    Probed {
        what: format!("{from} -> server (10.244.2.7:8080) GET /"),
        expect,
        from: format!("{NS}/{from}"),
        to_ip: Some("10.244.2.7".into()),
        to_port: 8080,
        started: STARTED.into(),
        series: thrice(r),
        hubble,
    }
}

fn one_step(policy: &str, probes: Vec<Probed>) -> PolicyRun {
    PolicyRun {
        steps: vec![Step {
            policies: vec![format!("CiliumNetworkPolicy {NS}/{policy}")],
            status: vec![status_of(
                &format!("CiliumNetworkPolicy {NS}/{policy}"),
                &fixture_json("ciliumnetworkpolicy-valid.json"),
            )],
            probes,
        }],
    }
}

fn allowed(from: &str) -> Probed {
    probed(from, Expect::Allowed, ok(), Record::Off)
}

fn dropped(hubble: Record) -> Probed {
    probed("client-other", Expect::Dropped, timeout(), hubble)
}

pub fn scenarios() -> Vec<Scenario> {
    let denied = || flows("hubble-observe-dropped-policy-denied.jsonl");
    let default_deny = PolicyRun {
        steps: vec![
            Step {
                policies: Vec::new(),
                status: Vec::new(),
                probes: vec![allowed("client-other")],
            },
            Step {
                policies: vec![
                    format!("NetworkPolicy {NS}/deny-all-ingress"),
                    format!("NetworkPolicy {NS}/allow-client-to-server"),
                ],
                status: Vec::new(),
                probes: vec![allowed("client"), dropped(denied())],
            },
        ],
    };
    let mut still_open = default_deny.clone();
    still_open.steps[1].probes[1] = probed("client-other", Expect::Dropped, ok(), denied());
    let envoy = reply("curl-envoy-403-access-denied.txt", 0);
    let l7 = |refused: Reply| {
        let mut other = probed("client", Expect::ProxyDenied, refused, Record::Off);
        other.what = "client -> server (10.244.2.7:8080) GET /private".into();
        one_step("allow-get-public", vec![allowed("client"), other])
    };
    let mut rejected = one_step(
        "allow-port-8080",
        vec![allowed("client"), dropped(Record::Off)],
    );
    rejected.steps[0].status = vec![status_of(
        &format!("CiliumNetworkPolicy {NS}/allow-port-8080"),
        &fixture_json("ciliumnetworkpolicy-invalid-mutual-auth.json"),
    )];
    vec![
        case(
            "default-deny-ingress",
            "allowed before, then only the labelled client; the drop is in Hubble",
            &default_deny,
        ),
        case(
            "default-deny-ingress",
            "not refused: the other client still gets in",
            &still_open,
        ),
        case(
            "deny-wins",
            "the deny rule drops the client (POLICY_DENY)",
            &one_step(
                "deny-client-other",
                vec![
                    allowed("client"),
                    dropped(flows("hubble-observe-dropped-policy-deny.jsonl")),
                ],
            ),
        ),
        case(
            "l4-port",
            "refused for the wrong reason: a reset",
            &one_step(
                "allow-port-8080",
                vec![
                    allowed("client"),
                    probed(
                        "client-other",
                        Expect::Dropped,
                        reply("curl-refused-7.txt", 7),
                        denied(),
                    ),
                ],
            ),
        ),
        case(
            "l4-port",
            "refused for the wrong reason: Hubble records a conntrack drop",
            &one_step(
                "allow-port-8080",
                vec![dropped(flows(
                    "hubble-observe-dropped-ct-map-insertion-failed.jsonl",
                ))],
            ),
        ),
        case(
            "l4-port",
            "nothing observed: Hubble has no drop",
            &one_step("allow-port-8080", vec![dropped(Record::Flows(Vec::new()))]),
        ),
        case(
            "l4-port",
            "Hubble off: the probes alone",
            &one_step(
                "allow-port-8080",
                vec![allowed("client"), dropped(Record::Off)],
            ),
        ),
        case("l4-port", "Cilium refused the policy", &rejected),
        case(
            "l7-http",
            "Envoy refuses the other path with its 403",
            &l7(envoy),
        ),
        case(
            "l7-http",
            "refused for the wrong reason: dropped instead of a 403",
            &l7(timeout()),
        ),
        case(
            "clusterwide-policy",
            "Hubble on but not reachable",
            &one_step(
                "clusterwide",
                vec![
                    allowed("client-remote"),
                    dropped(Record::Unavailable(
                        "no Ready Cilium agent runs on w2".into(),
                    )),
                ],
            ),
        ),
    ]
}
