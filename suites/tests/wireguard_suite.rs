//! The wireguard suite: its judges on `cilium-dbg status -o json` / `debuginfo --output json`
//! shaped by Cilium's API model, CiliumNode lists and endpoints, in native routing and in tunnel
//! mode; and the whole suite against the fake API server with scripted agents.

mod common;
#[path = "wireguard/fixtures.rs"]
mod wireguard_fixtures;

use common::{
    Cluster, Reply, ScriptedExec, cluster, ctx, fast_options, fixture, fixture_json, fixture_out,
    out,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use suites::kit::Verdict;
use suites::kit::cilium::{CiliumFacts, Version};
use suites::kit::probe::ping::PingResult;
use suites::kit::retry::{Leg, Series, Try};
use suites::wireguard::judge::{self, AgentReport, Endpoint, Handshakes, NodeKeys, Snapshot};
use suites::wireguard::model::{merge, parse_debuginfo, parse_status};
use suites::wireguard::observe::node_keys;
use suites::{CheckFilter, CheckOutcome, run_suite_with};

const NODES: [(&str, &str); 3] = [("cp1", "10.5.0.2"), ("w1", "10.5.0.3"), ("w2", "10.5.0.4")];

/// An agent's report from `cilium-dbg-status-<name>.json` and `cilium-dbg-debuginfo-<name>.json`.
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

/// The idle clients the fake cluster places, one per node (their IPs are in the fixtures'
/// native-routing allowed IPs, as the agent adds every endpoint of a remote node).
fn clients() -> Vec<Endpoint> {
    NODES
        .iter()
        .enumerate()
        .map(|(i, (n, _))| Endpoint {
            pod: format!("harness-wireguard-r1/wg-client-{i}"),
            node: n.to_string(),
            ips: vec![format!("10.244.{i}.50")],
        })
        .collect()
}

/// Three nodes in `mode` (`native` or `tunnel`), every agent healthy.
fn healthy_in(mode: &str) -> Snapshot {
    Snapshot {
        agents: NODES
            .iter()
            .map(|(n, _)| report(n, &format!("wireguard-{mode}-{n}")))
            .collect(),
        nodes: nodes("ciliumnodelist-wireguard-3-nodes.json"),
        endpoints: clients(),
        cilium: CiliumFacts::default(),
    }
}

fn healthy() -> Snapshot {
    healthy_in("native")
}

fn fail(v: Verdict) -> String {
    assert!(!v.is_pass(), "expected a failure, got {v:?}");
    v.message().to_string()
}

#[test]
fn the_fixtures_parse_into_the_fields_the_checks_read() {
    let r = report("cp1", "wireguard-native-cp1");
    assert_eq!(r.encryption.mode, "Wireguard");
    assert_eq!(
        r.routing.as_ref().unwrap().inter_host_routing_mode,
        "Native"
    );
    assert_eq!(
        r.version.as_deref().and_then(Version::parse),
        Some(Version::new(1, 18, 0))
    );
    let i = r.interface().unwrap();
    assert_eq!(
        (i.name.as_str(), i.listen_port, i.peer_count),
        ("cilium_wg0", 51871, 2)
    );
    let p = &i.peers.as_ref().unwrap()[0];
    assert_eq!(p.endpoint, "10.5.0.3:51871");
    assert_eq!(p.allowed_ips.as_ref().unwrap()[0], "10.5.0.3/32");
    assert!(p.transfer_rx > 0 && p.handshake_epoch().is_some());
    let n = nodes("ciliumnodelist-wireguard-3-nodes.json");
    assert_eq!(n.len(), 3);
    assert_eq!(n[1].pod_cidrs, ["10.244.1.0/24"]);
    assert_eq!(n[1].internal_ips, ["10.5.0.3"]);
    assert_eq!(
        n[0].wg_pub_key.as_deref(),
        Some(i.public_key.as_str()),
        "cp1's annotation is its interface key"
    );
    // The status carries the count but not the peers; those come from debuginfo.
    let (status, _) =
        parse_status(&fixture("cilium-dbg-status-wireguard-native-cp1.json")).unwrap();
    let iface = &status.wireguard.as_ref().unwrap().interfaces[0];
    assert_eq!((iface.peer_count, iface.peers.is_none()), (2, true));
    assert_eq!(
        parse_debuginfo(&fixture("cilium-dbg-debuginfo-ipsec-w1.json"))
            .unwrap()
            .1,
        None
    );
    assert!(
        parse_status("{\"cilium\": {}}")
            .unwrap_err()
            .contains(".encryption")
    );
}

#[test]
fn a_healthy_three_node_mesh_passes_every_static_check_in_both_routing_modes() {
    for mode in ["native", "tunnel"] {
        let s = healthy_in(mode);
        for (name, v) in [
            ("mode", judge::mode(&s)),
            ("count", judge::peer_count(&s)),
            ("keys", judge::peer_keys(&s)),
            ("allowed", judge::allowed_ips(&s)),
        ] {
            assert!(v.is_pass(), "{mode} {name}: {}", v.message());
        }
    }
    assert!(
        judge::peer_keys(&healthy()).message().starts_with(
            "agent on cp1: peers are nodes w1, w2; agent on w1: peers are nodes cp1, w2"
        )
    );
}

/// Issue 12's report: native routing, two nodes; node a's peer for node b holds b's node IP
/// and one /32 per endpoint on b, and no pod CIDR. That is what Cilium programs, so it passes.
#[test]
fn native_routing_with_node_ip_and_endpoint_host_routes_passes() {
    let s = Snapshot {
        agents: vec![
            report("node-a", "wireguard-issue12-node-a"),
            report("node-b", "wireguard-issue12-node-b"),
        ],
        nodes: nodes("ciliumnodelist-wireguard-issue12-2-nodes.json"),
        endpoints: vec![
            Endpoint {
                pod: "default/web-0".into(),
                node: "node-b".into(),
                ips: vec!["10.244.1.141".into()],
            },
            Endpoint {
                pod: "default/db-0".into(),
                node: "node-a".into(),
                ips: vec!["10.244.0.19".into()],
            },
        ],
        cilium: CiliumFacts::default(),
    };
    assert_eq!(s.nodes[1].pod_cidrs, ["10.244.1.0/24"]);
    let v = judge::allowed_ips(&s);
    assert!(v.is_pass(), "{}", v.message());
    // Without the node IP the peer no longer carries node-b's own traffic.
    let mut no_node_ip = s.clone();
    let iface = &mut no_node_ip.agents[0]
        .encryption
        .wireguard
        .as_mut()
        .unwrap()
        .interfaces[0];
    iface.peers.as_mut().unwrap()[0]
        .allowed_ips
        .as_mut()
        .unwrap()
        .retain(|ip| ip != "10.5.0.3/32");
    assert!(
        fail(judge::allowed_ips(&no_node_ip))
            .contains("node IP 10.5.0.3 is in no peer's allowed IPs")
    );
    // An endpoint on node-b that its peer does not route.
    let mut new_pod = s;
    new_pod.endpoints.push(Endpoint {
        pod: "default/web-1".into(),
        node: "node-b".into(),
        ips: vec!["10.244.1.200".into()],
    });
    let m = fail(judge::allowed_ips(&new_pod));
    assert!(
        m.contains("node node-b: pod default/web-1 (10.244.1.200) is in no peer's allowed IPs"),
        "{m}"
    );
}

#[test]
fn tunnel_mode_needs_node_ips_only_and_native_routing_every_endpoint() {
    // Tunnel-mode peers hold node IPs only: the endpoints are reached inside VXLAN.
    let tunnel = healthy_in("tunnel");
    assert!(
        judge::allowed_ips(&tunnel).message().starts_with(
            "agent on cp1: tunnel routing, Cilium 1.18.0: w1 (10.5.0.3) through its peer"
        ),
        "{}",
        judge::allowed_ips(&tunnel).message()
    );
    // The same allowed IPs with native routing miss every endpoint.
    let mut native = tunnel;
    for a in &mut native.agents {
        a.routing.as_mut().unwrap().inter_host_routing_mode = "Native".into();
    }
    let m = fail(judge::allowed_ips(&native));
    assert!(
        m.contains("node w1: pod harness-wireguard-r1/wg-client-1 (10.244.1.50) is in no peer's allowed IPs"),
        "{m}"
    );
    assert!(m.contains("in native routing a peer must hold"), "{m}");
    // Before 1.15 tunnel mode sent pod traffic through WireGuard unencapsulated.
    assert_eq!(
        judge::needs("tunnel", Some(Version::new(1, 14, 6))),
        judge::Needs::NodeIpsAndEndpoints
    );
    assert_eq!(judge::needs("tunnel", None), judge::Needs::NodeIps);
}

#[test]
fn an_address_routed_to_the_wrong_peer_is_named() {
    let mut s = healthy();
    // cp1's peer for w2 also claims w1's client: WireGuard sends it to w2.
    let iface = &mut s.agents[0]
        .encryption
        .wireguard
        .as_mut()
        .unwrap()
        .interfaces[0];
    let peers = iface.peers.as_mut().unwrap();
    peers[0]
        .allowed_ips
        .as_mut()
        .unwrap()
        .retain(|ip| ip != "10.244.1.50/32");
    peers[1]
        .allowed_ips
        .as_mut()
        .unwrap()
        .push("10.244.1.0/24".into());
    let m = fail(judge::allowed_ips(&s));
    assert!(
        m.contains("agent on cp1: native routing, Cilium 1.18.0: node w1: pod harness-wireguard-r1/wg-client-1 (10.244.1.50) routes through the peer of node w2"),
        "{m}"
    );
}

#[test]
fn the_routing_mode_comes_from_the_agent_or_cilium_config() {
    let mut s = healthy();
    for a in &mut s.agents {
        a.routing = None;
    }
    assert!(
        fail(judge::allowed_ips(&s)).contains("the routing mode is unknown"),
        "no mode: no verdict on what must be routed"
    );
    s.cilium
        .config
        .insert("routing-mode".into(), "native".into());
    assert!(judge::allowed_ips(&s).is_pass());
}

#[test]
fn an_ipsec_agent_fails_the_mode_check_with_the_fix() {
    let mut s = healthy();
    s.agents[1] = report("w1", "ipsec-w1");
    let m = fail(judge::mode(&s));
    assert!(
        m.starts_with("agent on w1: encryption mode is \"IPsec\", expected Wireguard: the agent encrypts with IPsec: set encryption.type=wireguard"),
        "{m}"
    );
    assert!(!m.contains("agent on cp1"), "only failures are listed: {m}");
    assert!(
        fail(judge::peer_count(&s))
            .contains("agent on w1: the agent reports mode \"IPsec\" but no WireGuard interface")
    );
}

#[test]
fn a_missing_peer_fails_count_keys_and_routes_naming_the_node() {
    let mut s = healthy();
    s.agents[2] = report("w2", "wireguard-native-w2-missing-peer");
    let m = fail(judge::peer_count(&s));
    assert!(
        m.starts_with(
            "agent on w2: cilium_wg0 has 1 peers, expected 2 (one per other CiliumNode of 3)"
        ),
        "{m}"
    );
    assert_eq!(
        fail(judge::peer_keys(&s)),
        "agent on w2: no peer for node cp1"
    );
    assert!(
        fail(judge::allowed_ips(&s)).starts_with(
            "agent on w2: native routing, Cilium 1.18.0: node cp1: node IP 10.5.0.2 is in no peer's allowed IPs"
        ),
        "{}",
        fail(judge::allowed_ips(&s))
    );
    let h = Handshakes {
        started: started("2026-11-22T04:07:00Z"),
        pings: pings(true),
        before: s.clone(),
        after: bump_rx(s, 588),
    };
    assert_eq!(
        fail(judge::handshakes(&h)),
        "agent on w2: no peer for node cp1, so no handshake with it is possible"
    );
}

#[test]
fn merge_takes_only_the_peers_from_debuginfo_by_interface_name() {
    let status = || {
        parse_status(&fixture("cilium-dbg-status-wireguard-native-cp1.json"))
            .unwrap()
            .0
    };
    // debuginfo from another agent, with another key and peer count: only its peers are taken.
    let other = parse_debuginfo(&fixture(
        "cilium-dbg-debuginfo-wireguard-native-w2-missing-peer.json",
    ))
    .unwrap()
    .1;
    let merged = merge(status(), other.clone());
    let i = &merged.wireguard.as_ref().unwrap().interfaces[0];
    let cp1_key = nodes("ciliumnodelist-wireguard-3-nodes.json")[0]
        .wg_pub_key
        .clone()
        .unwrap();
    assert_eq!(
        (i.name.as_str(), i.peer_count, i.public_key.as_str()),
        ("cilium_wg0", 2, cp1_key.as_str()),
        "name, count and key stay from the status"
    );
    assert_eq!(i.peers.as_ref().unwrap().len(), 1);
    // An interface debuginfo lists under another name lends no peers.
    let mut renamed = other.unwrap();
    renamed.interfaces[0].name = "cilium_wg1".into();
    let merged = merge(status(), Some(renamed));
    let ifaces = &merged.wireguard.as_ref().unwrap().interfaces;
    assert_eq!(ifaces.len(), 1);
    assert_eq!((ifaces[0].peer_count, ifaces[0].peers.is_none()), (2, true));
    assert_eq!(merge(status(), None), status());
}

#[test]
fn a_node_without_a_ready_agent_fails_every_check() {
    let mut s = healthy();
    s.agents.remove(2);
    let want = "node w2: no Ready Cilium agent (k8s-app=cilium in kube-system) runs on it, so its tunnel could not be read";
    assert_eq!(fail(judge::mode(&s)), want);
    assert_eq!(fail(judge::peer_count(&s)), want);
    assert_eq!(fail(judge::peer_keys(&s)), want);
    assert_eq!(fail(judge::allowed_ips(&s)), want);
    let h = Handshakes {
        started: started("2026-11-22T04:07:00Z"),
        pings: pings(true),
        before: s.clone(),
        after: bump_rx(s, 588),
    };
    assert_eq!(fail(judge::handshakes(&h)), want);
}

#[test]
fn stale_and_self_keys_are_named() {
    let mut s = healthy();
    let cp1_key = s.nodes[0].wg_pub_key.clone().unwrap();
    // cp1 was re-keyed: its annotation no longer matches what the others peer with.
    s.nodes[0].wg_pub_key = Some("bm90LWEta2V5LW9mLWFueS1ub2RlLWF0LWFsbC0xMjM0NTY=".into());
    let m = fail(judge::peer_keys(&s));
    assert!(
        m.contains(&format!("agent on cp1: its interface key {cp1_key} differs from its CiliumNode's network.cilium.io/wg-pub-key")),
        "{m}"
    );
    assert!(
        m.contains(&format!("agent on w1: peer key {cp1_key} (endpoint 10.5.0.2:51871) is no CiliumNode's network.cilium.io/wg-pub-key: a stale peer")),
        "{m}"
    );
    assert!(m.contains("no peer for node cp1"), "{m}");

    let mut s = healthy();
    let own = s.agents[1].interface().unwrap().public_key.clone();
    let enc = &mut s.agents[1].encryption;
    let iface = &mut enc.wireguard.as_mut().unwrap().interfaces[0];
    iface.peers.as_mut().unwrap()[0].public_key = own.clone();
    let m = fail(judge::peer_keys(&s));
    assert!(
        m.contains(&format!("agent on w1: it peers with itself (key {own})")),
        "{m}"
    );
}

fn epoch(t: &str) -> i64 {
    t.parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap()
        .as_second()
}

fn pings(ok: bool) -> Vec<Leg<PingResult>> {
    let r = PingResult::parse(
        &fixture_out(
            if ok {
                "ping-ok.txt"
            } else {
                "ping-no-reply.txt"
            },
            if ok { 0 } else { 1 },
        )
        .unwrap(),
    );
    vec![Leg {
        what: "cp1 -> w1".into(),
        series: Series {
            required: 3,
            deadline: std::time::Duration::from_secs(60),
            elapsed: std::time::Duration::from_secs(3),
            tries: vec![
                Try::Observed(r.clone()),
                Try::Observed(r.clone()),
                Try::Observed(r),
            ],
        },
    }]
}

fn bump_rx(mut s: Snapshot, by: i64) -> Snapshot {
    for a in &mut s.agents {
        for i in &mut a.encryption.wireguard.as_mut().unwrap().interfaces {
            for p in i.peers.iter_mut().flatten() {
                p.transfer_rx += by;
            }
        }
    }
    s
}

fn started(at: &str) -> BTreeMap<String, i64> {
    NODES
        .iter()
        .map(|(n, _)| (n.to_string(), epoch(at)))
        .collect()
}

#[test]
fn handshakes_after_traffic_pass_with_received_bytes() {
    // Fixture handshakes are 04:05:10 to 04:07:12; traffic at 04:07:00 renews none older than 120s.
    let h = Handshakes {
        started: started("2026-11-22T04:07:00Z"),
        pings: pings(true),
        before: healthy(),
        after: bump_rx(healthy(), 588),
    };
    let v = judge::handshakes(&h);
    assert!(v.is_pass(), "{}", v.message());
    assert!(
        v.message()
            .contains("w2 (handshake 12s after the traffic started, rx +588 bytes)"),
        "{}",
        v.message()
    );
}

#[test]
fn a_stale_handshake_or_no_bytes_fails() {
    let h = Handshakes {
        started: started("2026-11-22T04:10:00Z"),
        pings: pings(true),
        before: healthy(),
        after: bump_rx(healthy(), 588),
    };
    let m = fail(judge::handshakes(&h));
    assert!(
        m.contains("agent on w1: peer cp1: last handshake 290s before the traffic started"),
        "{m}"
    );

    let h = Handshakes {
        started: started("2026-11-22T04:07:00Z"),
        pings: pings(true),
        before: healthy(),
        after: healthy(),
    };
    assert!(
        fail(judge::handshakes(&h)).contains("nothing was received from it during the traffic")
    );

    let mut never = healthy();
    let iface = &mut never.agents[0]
        .encryption
        .wireguard
        .as_mut()
        .unwrap()
        .interfaces[0];
    // What the agent reports for a peer that never completed a handshake: Go's zero time.
    iface.peers.as_mut().unwrap()[0].last_handshake_time = Some("0001-01-01T00:00:00.000Z".into());
    let h = Handshakes {
        started: started("2026-11-22T04:07:00Z"),
        pings: pings(true),
        before: healthy(),
        after: bump_rx(never, 10),
    };
    assert!(fail(judge::handshakes(&h)).contains(
        "agent on cp1: peer w1 never completed a handshake (endpoint 10.5.0.3:51871): UDP 51871"
    ));
}

#[test]
fn failed_pings_fail_before_any_handshake_is_judged() {
    let h = Handshakes {
        started: started("2026-11-22T04:07:00Z"),
        pings: pings(false),
        before: healthy(),
        after: bump_rx(healthy(), 588),
    };
    assert!(
        fail(judge::handshakes(&h))
            .starts_with("cross-node pings failed, so handshakes cannot be judged")
    );
    let h = Handshakes { pings: vec![], ..h };
    assert!(fail(judge::handshakes(&h)).contains("no cross-node traffic was generated"));
}

/// A Cilium agent pod as the DaemonSet runs it (Cilium chart `templates/cilium-agent/daemonset.yaml`:
/// label `k8s-app: cilium`, container `cilium-agent`, hostNetwork), so its IP is its node's.
fn agent_pod(node: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": format!("cilium-{node}"), "namespace": "kube-system",
                        "labels": {"k8s-app": "cilium"}, "resourceVersion": "5"},
           "spec": {"nodeName": node, "hostNetwork": true,
                    "containers": [{"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.18.0"}]},
           "status": {"phase": "Running", "podIP": ip, "hostIP": ip,
                      "podIPs": [{"ip": ip}],
                      "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn wg_cluster() -> Cluster {
    let mut c = Cluster::new(&NODES);
    for (i, (n, ip)) in NODES.iter().enumerate() {
        c.objects.insert(
            ("pods".into(), "kube-system".into(), format!("cilium-{n}")),
            agent_pod(n, ip),
        );
        c.place(
            &format!("wg-client-{i}"),
            n,
            &format!("10.244.{i}.50"),
            true,
        );
    }
    c
}

/// Agents answering from fixtures (`w2` as `w2_name`), each debuginfo call reporting a little
/// more received than the last.
fn agents(mode: &'static str, w2_name: &'static str) -> std::sync::Arc<ScriptedExec> {
    let calls: Mutex<BTreeMap<String, i64>> = Mutex::new(BTreeMap::new());
    ScriptedExec::new(move |pod, argv| match argv[0].as_str() {
        "cilium-dbg" => {
            assert_eq!(pod.container, "cilium-agent");
            let node = pod.name.trim_start_matches("cilium-");
            let name = if node == "w2" {
                w2_name.to_string()
            } else {
                format!("wireguard-{mode}-{node}")
            };
            match argv[1..].join(" ").as_str() {
                "status -o json" => out(0, &fixture(&format!("cilium-dbg-status-{name}.json")), ""),
                "debuginfo --output json" => {
                    let n = {
                        let mut c = calls.lock().unwrap();
                        let e = c.entry(node.to_string()).or_default();
                        *e += 1;
                        *e
                    };
                    let mut v = fixture_json(&format!("cilium-dbg-debuginfo-{name}.json"));
                    for p in v["encryption"]["wireguard"]["interfaces"][0]["peers"]
                        .as_array_mut()
                        .unwrap()
                    {
                        p["transfer-rx"] = json!(p["transfer-rx"].as_i64().unwrap() + 500 * n);
                    }
                    out(0, &v.to_string(), "")
                }
                other => panic!("unexpected cilium-dbg {other}"),
            }
        }
        "date" => out(0, &format!("{}\n", epoch("2026-11-22T04:07:00Z")), ""),
        "ping" => fixture_out("ping-ok.txt", 0),
        other => panic!("unexpected command {other}"),
    })
}

fn serve_ciliumnodes(s: &common::Seen, _: &mut Cluster) -> Option<Reply> {
    (s.method == "GET" && s.path == "/apis/cilium.io/v2/ciliumnodes")
        .then(|| Reply::Json(200, fixture_json("ciliumnodelist-wireguard-3-nodes.json")))
}

#[tokio::test]
async fn the_suite_passes_on_a_healthy_mesh_and_pings_every_node_pair() {
    let (client, log) = cluster(wg_cluster(), serve_ciliumnodes);
    let exec = agents("native", "wireguard-native-w2");
    let run = run_suite_with(
        &client,
        exec.clone(),
        suites::wireguard::NAME,
        &ctx(3, None),
        &CheckFilter::new(&[], &[]).unwrap(),
        &fast_options("r1"),
    )
    .await;
    assert_eq!(run.checks.len(), 5);
    for c in &run.checks {
        assert!(
            matches!(c.outcome, CheckOutcome::Passed { .. }),
            "{}: {:?}\nsetup:\n{}\n{}",
            c.name(),
            c.outcome,
            run.setup.render(),
            c.transcript.render()
        );
        // What the judge saw is kept, for a later recording.
        assert!(c.observation.is_some(), "{}", c.name());
    }
    let seen = log.lock().unwrap();
    let clients: Vec<(String, String)> = seen
        .iter()
        .filter(|s| s.is("POST", "/api/v1/namespaces/harness-wireguard-r1/pods"))
        .map(|s| {
            (
                s.body["metadata"]["name"].as_str().unwrap().to_string(),
                s.body["spec"]["nodeName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        clients,
        [
            ("wg-client-0".to_string(), "cp1".to_string()),
            ("wg-client-1".into(), "w1".into()),
            ("wg-client-2".into(), "w2".into())
        ]
    );
    let list = seen
        .iter()
        .find(|s| s.is("GET", "/api/v1/namespaces/kube-system/pods"))
        .unwrap();
    assert_eq!(
        list.param("labelSelector").as_deref(),
        Some("k8s-app=cilium")
    );
    assert!(
        seen.iter().any(|s| s.is("GET", "/api/v1/pods")),
        "the endpoints come from every namespace"
    );
    let calls = exec.calls.lock().unwrap();
    let pings: Vec<&Vec<String>> = calls
        .iter()
        .filter(|(_, a)| a[0] == "ping")
        .map(|(_, a)| a)
        .collect();
    for node in ["cp1", "w1", "w2"] {
        for cmd in [
            ["cilium-dbg", "status", "-o", "json"],
            ["cilium-dbg", "debuginfo", "--output", "json"],
        ] {
            assert!(
                calls
                    .iter()
                    .any(|(p, a)| p == &format!("kube-system/cilium-{node}") && a == &cmd),
                "{node}: {cmd:?}"
            );
        }
    }
    // 3 nodes: 6 ordered pairs, 3 in a row each.
    assert_eq!(pings.len(), 18);
    assert!(calls.iter().any(
        |(p, a)| p == "harness-wireguard-r1/wg-client-0" && a.last().unwrap() == "10.244.2.50"
    ));
    let handshake = &run.checks[4];
    assert!(handshake.transcript.render().contains("cilium-dbg"));
}

#[tokio::test]
async fn a_missing_peer_fails_the_peer_checks_and_passes_the_mode() {
    let (client, _log) = cluster(wg_cluster(), serve_ciliumnodes);
    let filter =
        CheckFilter::new(&[], &["!wireguard::handshake-after-traffic".to_string()]).unwrap();
    let run = run_suite_with(
        &client,
        agents("native", "wireguard-native-w2-missing-peer"),
        suites::wireguard::NAME,
        &ctx(3, None),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let got: Vec<(String, bool)> = run
        .checks
        .iter()
        .map(|c| {
            (
                c.check.to_string(),
                matches!(c.outcome, CheckOutcome::Passed { .. }),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("encryption-mode".to_string(), true),
            ("peer-count".into(), false),
            ("peer-keys-match-nodes".into(), false),
            ("allowed-ips-cover-pod-cidrs".into(), false),
        ]
    );
    let CheckOutcome::Failed { message } = &run.checks[1].outcome else {
        unreachable!()
    };
    assert!(
        message.starts_with("agent on w2: cilium_wg0 has 1 peers, expected 2"),
        "{message}"
    );
}

#[tokio::test]
async fn tunnel_mode_agents_pass_with_node_ips_only() {
    let (client, _log) = cluster(wg_cluster(), serve_ciliumnodes);
    let filter =
        CheckFilter::new(&[], &["wireguard::allowed-ips-cover-pod-cidrs".to_string()]).unwrap();
    let run = run_suite_with(
        &client,
        agents("tunnel", "wireguard-tunnel-w2"),
        suites::wireguard::NAME,
        &ctx(3, None),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Passed { evidence } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(
        evidence.contains("tunnel routing, Cilium 1.18.0"),
        "{evidence}"
    );
}

#[test]
fn the_wireguard_fixtures_are_current() {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let mut stale = Vec::new();
    for (name, text) in wireguard_fixtures::all() {
        let path = format!("{dir}/{name}");
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale WireGuard fixtures (rerun with UPDATE_FIXTURES=1): {stale:?}"
    );
}

/// The CiliumNode fixtures are valid CiliumNode objects for the cilium.io/v2 CRD's schema.
#[test]
fn the_ciliumnode_fixtures_are_valid_for_the_crd_schema() {
    let path = format!(
        "{}/../../shared/schemas/cilium-crds/jsonschema-crds-catalog/ciliumnode_v2.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for file in [
        "ciliumnodelist-wireguard-3-nodes.json",
        "ciliumnodelist-wireguard-issue12-2-nodes.json",
    ] {
        for node in fixture_json(file)["items"].as_array().unwrap() {
            let errors: Vec<String> = validator
                .iter_errors(node)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{file} {}: {errors:?}",
                node["metadata"]["name"]
            );
        }
    }
    // The schema does check: addresses that are not a list are refused.
    let mut bad = fixture_json("ciliumnodelist-wireguard-3-nodes.json")["items"][0].clone();
    bad["spec"]["addresses"] = json!("10.5.0.2");
    assert!(!validator.is_valid(&bad));
}
