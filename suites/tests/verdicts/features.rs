//! Features observations: the agents' status, service list and bandwidth map, Hubble Relay's
//! flows and Hubble UI's page from the fixtures; the policy checks from curl replies and the
//! operator's policy status.

use crate::common::{fixture, fixture_json, fixture_out};
use crate::{Scenario, case, thrice};
use suites::features::judge::{Bandwidth, Congestion, RelayFlows, ServiceLb, UiPage};
use suites::features::model::{parse_bandwidth, parse_services, parse_status};
use suites::features::objects::{EGRESS_LIMIT_BITS, HUBBLE_UI_TITLE};
use suites::kit::hubble::{self, Record};
use suites::kit::policy::status_of;
use suites::network_policy::judge::{Expect, PolicyRun, Probed, Reply, Step};
use suites::network_policy::observe::parse_reply;

const NS: &str = "harness-features-r1";
const STARTED: &str = "2026-11-30T07:12:17Z";

fn reply(file: &str, exit: i32) -> Reply {
    parse_reply(&fixture_out(file, exit).unwrap())
}

fn relay(flows: Record) -> RelayFlows {
    RelayFlows {
        relay: "10.96.40.2:80".into(),
        from: format!("{NS}/client"),
        to_ip: "10.244.2.9".into(),
        to_port: 8080,
        started: STARTED.into(),
        connection: thrice(reply("curl-ok-200.txt", 0)),
        flows,
    }
}

fn lb(status: &str, kube_proxy: Vec<String>) -> ServiceLb {
    ServiceLb {
        agent: "cilium-9qz7m on w2".into(),
        mode: parse_status(&fixture(status))
            .unwrap()
            .kube_proxy_replacement,
        services: parse_services(&fixture("cilium-dbg-service-list.json")).unwrap(),
        want_frontend: "10.96.12.11:8080".into(),
        want_backend: "10.244.2.9:8080".into(),
        kube_proxy_pods: kube_proxy,
        kube_proxy_daemonset: false,
    }
}

fn bandwidth(endpoint: u64) -> Bandwidth {
    let st = parse_status(&fixture("cilium-dbg-status-kpr-bandwidth-bbr.json")).unwrap();
    Bandwidth {
        agent: "cilium-9qz7m on w2".into(),
        enabled: st.bandwidth_enabled,
        congestion_control: st.congestion_control,
        devices: st.bandwidth_devices,
        pod: format!("{NS}/shaped"),
        endpoint_id: Some(endpoint),
        want_bits: EGRESS_LIMIT_BITS,
        entries: parse_bandwidth(&fixture("cilium-dbg-bpf-bandwidth-list.json")).unwrap(),
    }
}

fn congestion(files: &[&str]) -> Congestion {
    Congestion {
        agents: files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    format!("cilium-{i} on w{}", i + 1),
                    parse_status(&fixture(f)).unwrap().congestion_control,
                )
            })
            .collect(),
    }
}

fn probe(what: &str, expect: Expect, r: Reply, to_ip: &str, port: u32) -> Probed {
    Probed {
        what: what.into(),
        expect,
        from: format!("{NS}/client"),
        to_ip: Some(to_ip.into()),
        to_port: port,
        started: STARTED.into(),
        series: thrice(r),
        hubble: Record::Off,
    }
}

fn host_firewall(during: Reply, after: Reply) -> PolicyRun {
    let host = |r: Reply, expect| {
        probe(
            "client -> node w2 (10.5.0.4:39080) GET /",
            expect,
            r,
            "10.5.0.4",
            39080,
        )
    };
    let policy = format!("CiliumClusterwideNetworkPolicy {NS}-host-port");
    PolicyRun {
        steps: vec![
            Step {
                policies: vec![],
                status: vec![],
                probes: vec![host(reply("curl-ok-200.txt", 0), Expect::Allowed)],
            },
            Step {
                policies: vec![policy.clone()],
                status: vec![status_of(
                    &policy,
                    &fixture_json("ciliumnetworkpolicy-valid.json"),
                )],
                probes: vec![
                    host(during, Expect::Dropped),
                    probe(
                        "client -> kube-apiserver (10.96.0.1:443) GET /version",
                        Expect::Reached,
                        reply("curl-ok-200.txt", 0),
                        "10.96.0.1",
                        443,
                    ),
                ],
            },
            Step {
                policies: vec![],
                status: vec![],
                probes: vec![host(after, Expect::Allowed)],
            },
        ],
    }
}

fn mutual_auth(status_file: &str) -> PolicyRun {
    let policy = format!("CiliumNetworkPolicy {NS}/require-mutual-auth");
    PolicyRun {
        steps: vec![Step {
            policies: vec![policy.clone()],
            status: vec![status_of(&policy, &fixture_json(status_file))],
            probes: vec![probe(
                "client -> echo (10.244.2.9:8080) GET /",
                Expect::Allowed,
                reply("curl-ok-200.txt", 0),
                "10.244.2.9",
                8080,
            )],
        }],
    }
}

pub fn scenarios() -> Vec<Scenario> {
    let forwarded =
        Record::Flows(hubble::parse(&fixture("hubble-observe-forwarded-relay.jsonl")).unwrap());
    let mut dropped = hubble::parse(&fixture("hubble-observe-forwarded-relay.jsonl")).unwrap();
    dropped[0].verdict = "DROPPED".into();
    dropped[0].drop_reason = Some("POLICY_DENIED".into());
    let page = reply("curl-hubble-ui-page.txt", 0);
    let ui = |r: Reply| UiPage {
        service: "kube-system/hubble-ui (10.96.33.21:80)".into(),
        series: thrice(r),
        marker: HUBBLE_UI_TITLE.into(),
    };
    let timeout = || reply("curl-timeout-28.txt", 28);
    let mut slower = bandwidth(1843);
    slower.entries = vec![("1843, 0".into(), "625000, 0".into())];
    vec![
        case(
            "hubble-relay-flows",
            "the relay serves the connection",
            &relay(forwarded),
        ),
        case(
            "hubble-relay-flows",
            "nothing observed",
            &relay(Record::Flows(Vec::new())),
        ),
        case(
            "hubble-relay-flows",
            "only as dropped",
            &relay(Record::Flows(dropped)),
        ),
        case(
            "hubble-relay-flows",
            "the relay does not answer",
            &relay(Record::Unavailable(
                "no Ready Cilium agent runs on w1".into(),
            )),
        ),
        case("hubble-ui-answers", "Hubble UI's page", &ui(page)),
        case(
            "hubble-ui-answers",
            "another page",
            &ui(reply("curl-ok-200.txt", 0)),
        ),
        case("hubble-ui-answers", "no answer", &ui(timeout())),
        case(
            "kpr-serves-services",
            "Cilium serves the Service, no kube-proxy",
            &lb("cilium-dbg-status-kpr-bandwidth-bbr.json", Vec::new()),
        ),
        case(
            "kpr-serves-services",
            "kube-proxy replacement off and kube-proxy running",
            &ServiceLb {
                want_frontend: "10.96.12.12:8080".into(),
                ..lb(
                    "cilium-dbg-status-kpr-false-bandwidth-cubic.json",
                    vec!["kube-proxy-4kq9z".into()],
                )
            },
        ),
        case(
            "bandwidth-limit",
            "the limit is in the map",
            &bandwidth(1843),
        ),
        case(
            "bandwidth-limit",
            "nothing for the endpoint",
            &bandwidth(1902),
        ),
        case("bandwidth-limit", "another rate", &slower),
        case(
            "bbr-congestion-control",
            "every agent on bbr",
            &congestion(&[
                "cilium-dbg-status-kpr-bandwidth-bbr.json",
                "cilium-dbg-status-kpr-bandwidth-bbr.json",
            ]),
        ),
        case(
            "bbr-congestion-control",
            "one agent on cubic",
            &congestion(&[
                "cilium-dbg-status-kpr-bandwidth-bbr.json",
                "cilium-dbg-status-kpr-false-bandwidth-cubic.json",
            ]),
        ),
        case(
            "host-firewall-port",
            "dropped while the host policy holds, open before and after",
            &host_firewall(timeout(), reply("curl-ok-200.txt", 0)),
        ),
        case(
            "host-firewall-port",
            "not refused, and still closed after removal",
            &host_firewall(reply("curl-ok-200.txt", 0), timeout()),
        ),
        case(
            "mutual-auth-admits",
            "admitted with the policy valid",
            &mutual_auth("ciliumnetworkpolicy-valid.json"),
        ),
        case(
            "mutual-auth-admits",
            "the operator refuses the policy",
            &mutual_auth("ciliumnetworkpolicy-invalid-mutual-auth.json"),
        ),
    ]
}
