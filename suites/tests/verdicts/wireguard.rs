//! WireGuard observations: `cilium-dbg status -o json` and `debuginfo --output json` from the
//! fixtures (Cilium's API model), CiliumNode lists and endpoints, in both routing modes.

use crate::common::{fixture, fixture_json, fixture_out};
use crate::{Scenario, case, thrice};
use std::collections::BTreeMap;
use suites::kit::cilium::CiliumFacts;
use suites::kit::probe::ping::PingResult;
use suites::kit::retry::Leg;
use suites::wireguard::judge::{AgentReport, Endpoint, Handshakes, NodeKeys, Snapshot};
use suites::wireguard::model::{merge, parse_debuginfo, parse_status};
use suites::wireguard::observe::node_keys;

const NODES: [&str; 3] = ["cp1", "w1", "w2"];

fn report(node: &str, name: &str) -> AgentReport {
    let (status, routing) =
        parse_status(&fixture(&format!("cilium-dbg-status-{name}.json"))).unwrap();
    let (version, peers) =
        parse_debuginfo(&fixture(&format!("cilium-dbg-debuginfo-{name}.json"))).unwrap();
    AgentReport {
        node: node.into(),
        pod: format!("kube-system/cilium-{node}"),
        encryption: merge(status, peers),
        routing,
        version,
    }
}

fn nodes(file: &str) -> Vec<NodeKeys> {
    let list: kube::core::ObjectList<kube::api::DynamicObject> =
        serde_json::from_value(fixture_json(file)).unwrap();
    node_keys(&list.items)
}

fn endpoint(pod: &str, node: &str, ip: &str) -> Endpoint {
    Endpoint {
        pod: pod.into(),
        node: node.into(),
        ips: vec![ip.into()],
    }
}

/// Three nodes in `mode`, with the idle client pod the suite places on each node.
fn mesh(mode: &str) -> Snapshot {
    Snapshot {
        agents: NODES
            .iter()
            .map(|n| report(n, &format!("wireguard-{mode}-{n}")))
            .collect(),
        nodes: nodes("ciliumnodelist-wireguard-3-nodes.json"),
        endpoints: NODES
            .iter()
            .enumerate()
            .map(|(i, n)| {
                endpoint(
                    &format!("harness-wireguard-r1/wg-client-{i}"),
                    n,
                    &format!("10.244.{i}.50"),
                )
            })
            .collect(),
        cilium: CiliumFacts::default(),
    }
}

/// Issue 12's cluster: native routing, two nodes, endpoints routed as /32s.
fn issue12() -> Snapshot {
    Snapshot {
        agents: vec![
            report("node-a", "wireguard-issue12-node-a"),
            report("node-b", "wireguard-issue12-node-b"),
        ],
        nodes: nodes("ciliumnodelist-wireguard-issue12-2-nodes.json"),
        endpoints: vec![
            endpoint("default/web-0", "node-b", "10.244.1.141"),
            endpoint("default/db-0", "node-a", "10.244.0.19"),
        ],
        cilium: CiliumFacts::default(),
    }
}

fn pings(ok: bool) -> Vec<Leg<PingResult>> {
    let r = if ok {
        PingResult::parse(&fixture_out("ping-ok.txt", 0).unwrap())
    } else {
        PingResult::parse(&fixture_out("ping-no-reply.txt", 1).unwrap())
    };
    vec![Leg {
        what: "cp1 -> w1".into(),
        series: thrice(r),
    }]
}

fn with_rx(mut s: Snapshot, by: i64) -> Snapshot {
    for a in &mut s.agents {
        for i in &mut a.encryption.wireguard.as_mut().unwrap().interfaces {
            for p in i.peers.iter_mut().flatten() {
                p.transfer_rx += by;
            }
        }
    }
    s
}

/// When the traffic started on every node; the fixtures' handshakes are 04:05:10 to 04:07:12.
fn started(at: &str) -> BTreeMap<String, i64> {
    let t = at
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap()
        .as_second();
    NODES.iter().map(|n| (n.to_string(), t)).collect()
}

fn handshakes(at: &str, ok: bool, after: Snapshot) -> Handshakes {
    Handshakes {
        started: started(at),
        pings: pings(ok),
        before: mesh("native"),
        after,
    }
}

pub fn scenarios() -> Vec<Scenario> {
    let mut ipsec = mesh("native");
    ipsec.agents[1] = report("w1", "ipsec-w1");
    let mut missing_peer = mesh("native");
    missing_peer.agents[2] = report("w2", "wireguard-native-w2-missing-peer");
    let mut no_agent = mesh("native");
    no_agent.agents.remove(2);
    let mut rekeyed = mesh("native");
    rekeyed.nodes[0].wg_pub_key = Some("bm90LWEta2V5LW9mLWFueS1ub2RlLWF0LWFsbC0xMjM0NTY=".into());
    let mut tunnel_as_native = mesh("tunnel");
    for a in &mut tunnel_as_native.agents {
        a.routing.as_mut().unwrap().inter_host_routing_mode = "Native".into();
    }
    let mut no_mode = mesh("native");
    for a in &mut no_mode.agents {
        a.routing = None;
    }
    let mut new_pod = issue12();
    new_pod
        .endpoints
        .push(endpoint("default/web-1", "node-b", "10.244.1.200"));
    vec![
        case(
            "encryption-mode",
            "every agent reports Wireguard",
            &mesh("native"),
        ),
        case("encryption-mode", "one agent runs IPsec", &ipsec),
        case("encryption-mode", "a node without an agent", &no_agent),
        case(
            "peer-count",
            "two peers each of three nodes",
            &mesh("native"),
        ),
        case("peer-count", "a peer is missing", &missing_peer),
        case(
            "peer-keys-match-nodes",
            "keys match the CiliumNodes",
            &mesh("native"),
        ),
        case("peer-keys-match-nodes", "a node was re-keyed", &rekeyed),
        case(
            "allowed-ips-cover-pod-cidrs",
            "native routing, node IPs and endpoints",
            &mesh("native"),
        ),
        case(
            "allowed-ips-cover-pod-cidrs",
            "tunnel routing, node IPs only",
            &mesh("tunnel"),
        ),
        case(
            "allowed-ips-cover-pod-cidrs",
            "issue 12: native routing, node IP and endpoint /32s, no pod CIDR",
            &issue12(),
        ),
        case(
            "allowed-ips-cover-pod-cidrs",
            "issue 12's cluster with an endpoint the peer does not route",
            &new_pod,
        ),
        case(
            "allowed-ips-cover-pod-cidrs",
            "tunnel-mode allowed IPs under native routing",
            &tunnel_as_native,
        ),
        case(
            "allowed-ips-cover-pod-cidrs",
            "no routing mode reported or configured",
            &no_mode,
        ),
        case(
            "handshake-after-traffic",
            "fresh handshakes and received bytes",
            &handshakes("2026-11-22T04:07:00Z", true, with_rx(mesh("native"), 588)),
        ),
        case(
            "handshake-after-traffic",
            "handshakes older than the traffic",
            &handshakes("2026-11-22T04:10:00Z", true, with_rx(mesh("native"), 588)),
        ),
        case(
            "handshake-after-traffic",
            "nothing received during the traffic",
            &handshakes("2026-11-22T04:07:00Z", true, mesh("native")),
        ),
        case(
            "handshake-after-traffic",
            "the pings failed",
            &handshakes("2026-11-22T04:07:00Z", false, with_rx(mesh("native"), 588)),
        ),
    ]
}
