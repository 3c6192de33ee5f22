//! The WireGuard fixtures, composed from Cilium's API model so every file agrees with the others
//! (one node's interface key is the others' peer key and its CiliumNode annotation; allowed IPs
//! follow the routing mode). `the_wireguard_fixtures_are_current` compares the files with what
//! this writes; `UPDATE_FIXTURES=1` rewrites them.
//!
//! Shapes: `cilium-dbg status -o json` is a StatusResponse and `cilium-dbg debuginfo --output
//! json` a DebugInfo (api/v1/openapi.yaml; models/status_response.go, encryption_status.go,
//! wireguard_status.go, wireguard_interface.go, wireguard_peer.go, debug_info.go, routing_status.go
//! at v1.18), in kebab-case with Go's omitempty. The version line and kernel are those of a
//! published 1.18.0 debug report. Allowed IPs are what pkg/wireguard/agent programs for a peer:
//! its node's IPs, and in native routing every endpoint on that node as a /32 (1.18 tunnel mode:
//! node IPs only). Keys and UIDs are placeholders of the right form: base64 of 32 bytes, UUIDs.

use serde_json::{Value, json};

const VERSION: &str = "1.18.0 274205f0 2025-07-28T15:22:50+02:00 go version go1.24.5 linux/amd64";
const KERNEL: &str = "5.15.0";

struct Node {
    name: &'static str,
    ip: &'static str,
    cidr: &'static str,
    /// cilium_host (CiliumInternalIP), the health endpoint, and the suite's client pod.
    router: &'static str,
    health: &'static str,
    client: Option<&'static str>,
    key: &'static str,
    uid: &'static str,
    node_uid: &'static str,
}

const CP1: Node = Node {
    name: "cp1",
    ip: "10.5.0.2",
    cidr: "10.244.0.0/24",
    router: "10.244.0.83",
    health: "10.244.0.89",
    client: Some("10.244.0.50"),
    key: "bfmSAbWO+uTWm6v4C7i+0qpzpCjB9a0zwN39EQc6r58=",
    uid: "dcb86456-3bf9-6b78-c1d4-c530d408f86a",
    node_uid: "e33af0ed-cc04-3a57-9c00-848d782108cc",
};
const W1: Node = Node {
    name: "w1",
    ip: "10.5.0.3",
    cidr: "10.244.1.0/24",
    router: "10.244.1.35",
    health: "10.244.1.118",
    client: Some("10.244.1.50"),
    key: "/8tKjpjkgc2VgWmUN7Z5MFGiAsdtaLgCGyY4u/UJsKw=",
    uid: "8359f073-6eba-1aa6-1db3-787cc15295c9",
    node_uid: "bc8faca2-b233-a4d8-36e3-0e8c1acc191c",
};
const W2: Node = Node {
    name: "w2",
    ip: "10.5.0.4",
    cidr: "10.244.2.0/24",
    router: "10.244.2.12",
    health: "10.244.2.209",
    client: Some("10.244.2.50"),
    key: "akoqu18NAMjKf3TIAONADv3tYkWU9LmcWqsDnKqYPf4=",
    uid: "84e7fe16-ddbd-f3e2-6f70-7b04d9827663",
    node_uid: "ccd623a9-6f08-b1e3-eec5-740c92fb2b9f",
};
/// Issue 12's two nodes.
const NODE_A: Node = Node {
    name: "node-a",
    ip: "10.5.0.2",
    cidr: "10.244.0.0/24",
    router: "10.244.0.201",
    health: "10.244.0.33",
    client: None,
    key: "+4hin780OLxsDL9anDbdUq9stfGDnT00zU2aGHwWlLk=",
    uid: "bde21ddb-4fd4-c7e3-9402-30535a9d9bd6",
    node_uid: "d689e9f8-f93f-bfe6-2bba-003cfc9cbcb7",
};
const NODE_B: Node = Node {
    name: "node-b",
    ip: "10.5.0.3",
    cidr: "10.244.1.0/24",
    router: "10.244.1.4",
    health: "10.244.1.67",
    client: None,
    key: "HX22j74sU7W26zti/uRyB31jr6Zvron3ziApFT9j5fA=",
    uid: "c84e4685-6965-8fa3-e09b-3bcc14ff37d6",
    node_uid: "7922ef90-b41c-8041-cafd-50477872c7ce",
};

fn ciliumnode(n: &Node) -> Value {
    json!({
        "apiVersion": "cilium.io/v2", "kind": "CiliumNode",
        "metadata": {"name": n.name, "resourceVersion": "1234", "uid": n.uid,
            "annotations": {"network.cilium.io/wg-pub-key": n.key},
            "labels": {"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": n.name, "uid": n.node_uid}]},
        "spec": {"addresses": [{"type": "InternalIP", "ip": n.ip}, {"type": "CiliumInternalIP", "ip": n.router}],
            "encryption": {}, "eni": {}, "health": {"ipv4": n.health}, "ingress": {},
            "ipam": {"podCIDRs": [n.cidr], "pools": {}}},
        "status": {"alibaba-cloud": {}, "azure": {}, "eni": {}, "ipam": {"operator-status": {}}}
    })
}

fn node_list(nodes: &[&Node]) -> Value {
    json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNodeList", "metadata": {"resourceVersion": "5678"},
           "items": nodes.iter().map(|n| ciliumnode(n)).collect::<Vec<_>>()})
}

fn native() -> Value {
    json!({"intra-host-routing-mode": "BPF", "inter-host-routing-mode": "Native"})
}

fn tunnel() -> Value {
    json!({"intra-host-routing-mode": "BPF", "inter-host-routing-mode": "Tunnel", "tunnel-protocol": "vxlan"})
}

/// The status leaves the peers out (`peers` is null); debuginfo lists them.
fn status(n: &Node, peer_count: usize, mode: &str, routing: Value) -> Value {
    let encryption = if mode == "Wireguard" {
        json!({"mode": "Wireguard", "wireguard": {"interfaces": [{"name": "cilium_wg0", "listen-port": 51871,
            "public-key": n.key, "peer-count": peer_count, "peers": null}], "node-encryption": "Disabled"}})
    } else {
        json!({"mode": mode})
    };
    json!({"cilium": {"state": "Ok", "msg": "Ok"}, "routing": routing, "encryption": encryption})
}

fn peer(m: &Node, allowed: Vec<String>, handshake: &str, rx: i64, tx: i64) -> Value {
    json!({"public-key": m.key, "endpoint": format!("{}:51871", m.ip), "allowed-ips": allowed,
           "last-handshake-time": handshake, "transfer-rx": rx, "transfer-tx": tx})
}

fn debuginfo(n: &Node, status: &Value, peers: Option<Vec<Value>>) -> Value {
    let encryption = match peers {
        Some(p) => json!({"wireguard": {"interfaces": [{"name": "cilium_wg0", "listen-port": 51871,
            "public-key": n.key, "peer-count": p.len(), "peers": p}], "node-encryption": "Disabled"}}),
        None => json!({}),
    };
    json!({"cilium-version": VERSION, "kernel-version": KERNEL, "cilium-status": status,
           "encryption": encryption, "endpoint-list": [], "environment-variables": [], "service-list": []})
}

/// What a peer for node `m` holds in `mode`.
fn allowed(m: &Node, mode: &str) -> Vec<String> {
    let mut ips = vec![format!("{}/32", m.ip)];
    if mode == "native" {
        ips.extend(
            [Some(m.router), Some(m.health), m.client]
                .into_iter()
                .flatten()
                .map(|ip| format!("{ip}/32")),
        );
    }
    ips
}

/// Last handshake and bytes received, per (agent, peer).
fn traffic(from: &str, to: &str) -> (&'static str, i64) {
    match (from, to) {
        ("cp1", "w1") => ("2026-11-22T04:05:10.123Z", 10744),
        ("cp1", "w2") => ("2026-11-22T04:07:12.345Z", 12744),
        ("w1", "cp1") => ("2026-11-22T04:05:10.118Z", 9412),
        ("w1", "w2") => ("2026-11-22T04:06:40.500Z", 8120),
        ("w2", "cp1") => ("2026-11-22T04:07:12.340Z", 11212),
        ("w2", "w1") => ("2026-11-22T04:06:40.505Z", 7988),
        other => panic!("no traffic between {other:?}"),
    }
}

fn mesh_peer(n: &Node, m: &Node, mode: &str) -> Value {
    let (handshake, rx) = traffic(n.name, m.name);
    let tx = traffic(m.name, n.name).1;
    peer(m, allowed(m, mode), handshake, rx, tx)
}

/// Every WireGuard fixture, by file name, as it must read.
pub fn all() -> Vec<(String, String)> {
    let mesh = [&CP1, &W1, &W2];
    let mut files: Vec<(String, Value)> = vec![(
        "ciliumnodelist-wireguard-3-nodes.json".into(),
        node_list(&mesh),
    )];
    for (mode, routing) in [("native", native()), ("tunnel", tunnel())] {
        for n in mesh {
            let peers: Vec<Value> = mesh
                .iter()
                .filter(|m| m.name != n.name)
                .map(|m| mesh_peer(n, m, mode))
                .collect();
            let st = status(n, peers.len(), "Wireguard", routing.clone());
            files.push((
                format!("cilium-dbg-debuginfo-wireguard-{mode}-{}.json", n.name),
                debuginfo(n, &st, Some(peers)),
            ));
            files.push((
                format!("cilium-dbg-status-wireguard-{mode}-{}.json", n.name),
                st,
            ));
        }
    }
    // w2 without its peer for cp1.
    let st = status(&W2, 1, "Wireguard", native());
    files.push((
        "cilium-dbg-debuginfo-wireguard-native-w2-missing-peer.json".into(),
        debuginfo(&W2, &st, Some(vec![mesh_peer(&W2, &W1, "native")])),
    ));
    files.push((
        "cilium-dbg-status-wireguard-native-w2-missing-peer.json".into(),
        st,
    ));
    // An agent on w1 encrypting with IPsec: no WireGuard section anywhere.
    let st = status(&W1, 0, "IPsec", native());
    files.push((
        "cilium-dbg-debuginfo-ipsec-w1.json".into(),
        debuginfo(&W1, &st, None),
    ));
    files.push(("cilium-dbg-status-ipsec-w1.json".into(), st));
    // Issue 12: native routing, each peer holding the node IP and one /32 per endpoint.
    files.push((
        "ciliumnodelist-wireguard-issue12-2-nodes.json".into(),
        node_list(&[&NODE_A, &NODE_B]),
    ));
    let issue12 = |ips: [&str; 4]| ips.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (n, p) in [
        (
            &NODE_A,
            peer(
                &NODE_B,
                issue12([
                    "10.5.0.3/32",
                    "10.244.1.141/32",
                    "10.244.1.67/32",
                    "10.244.1.4/32",
                ]),
                "2026-11-22T04:06:01.250Z",
                48120,
                51344,
            ),
        ),
        (
            &NODE_B,
            peer(
                &NODE_A,
                issue12([
                    "10.5.0.2/32",
                    "10.244.0.19/32",
                    "10.244.0.33/32",
                    "10.244.0.201/32",
                ]),
                "2026-11-22T04:06:01.248Z",
                51344,
                48120,
            ),
        ),
    ] {
        let st = status(n, 1, "Wireguard", native());
        files.push((
            format!("cilium-dbg-debuginfo-wireguard-issue12-{}.json", n.name),
            debuginfo(n, &st, Some(vec![p])),
        ));
        files.push((
            format!("cilium-dbg-status-wireguard-issue12-{}.json", n.name),
            st,
        ));
    }
    files
        .into_iter()
        .map(|(name, v)| (name, serde_json::to_string_pretty(&v).unwrap() + "\n"))
        .collect()
}
