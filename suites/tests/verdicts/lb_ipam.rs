//! LB IPAM observations: pool and Service conditions as the operator writes them, from the
//! fixtures.

use crate::common::fixture_json;
use crate::{Scenario, case};
use suites::kit::probe::curl::CurlResult;
use suites::kit::probe::neigh;
use suites::kit::topology::NodeInfo;
use suites::lb_ipam::judge::{Allocation, Exhaustion, L2Reach, PoolState, SvcState};
use suites::lb_ipam::l2::lease_seen;
use suites::lb_ipam::observe::{pool_conditions, svc_state};

const BLOCK: &str = "172.31.250.0/29";

fn svc(file: &str) -> SvcState {
    svc_state(&serde_json::from_value(fixture_json(file)).unwrap())
}

fn pool(file: &str) -> PoolState {
    PoolState {
        name: "harness-lb-ipam-r1".into(),
        block: BLOCK.into(),
        conditions: pool_conditions(&fixture_json(file)),
    }
}

fn satisfied() -> SvcState {
    svc("service-lb-satisfied.json")
}

fn filler(i: usize, ip: &str) -> SvcState {
    SvcState {
        name: format!("lb-fill-{i}"),
        ingress: vec![ip.into()],
        ..satisfied()
    }
}

fn allocation(block: &str, requested: Option<&str>, service: SvcState) -> Allocation {
    Allocation {
        block: block.into(),
        requested: requested.map(String::from),
        service,
    }
}

/// What l2-reachable-from-host records: the L2 Service, three curl answers from outside, the
/// Lease (if any), the outside client's ARP table and the nodes.
fn l2(curl: (&str, i32), neigh: &str, holder: Option<&str>) -> L2Reach {
    let r = CurlResult::parse(&crate::common::fixture_out(curl.0, curl.1).unwrap());
    let mut lease = lease_seen(
        &serde_json::from_value(fixture_json("lease-cilium-l2announce-lb-l2.json")).unwrap(),
    );
    lease.holder = holder.map(String::from);
    L2Reach {
        block: "10.5.0.232/29".into(),
        service: svc("service-lb-l2-satisfied.json"),
        http: Some(crate::thrice(r)),
        lease_name: "cilium-l2announce-harness-lb-ipam-r1-lb-l2".into(),
        lease: holder.map(|_| lease),
        neighbours: Ok(neigh::parse(&crate::common::fixture(neigh))),
        nodes: vec![
            NodeInfo {
                name: "w1".into(),
                internal_ip: "10.5.0.3".into(),
            },
            NodeInfo {
                name: "w2".into(),
                internal_ip: "10.5.0.4".into(),
            },
        ],
    }
}

pub fn scenarios() -> Vec<Scenario> {
    let refused = svc("service-lb-out-of-ips.json");
    // A LoadBalancer Service no pool selects, as LB IPAM answers it (here the Gateway's).
    let no_pool = svc("service-cilium-gateway-harness-gw-no-pool.json");
    let mut unreconciled = pool("ciliumloadbalancerippool-ready.json");
    unreconciled
        .conditions
        .retain(|c| c.type_ != "cilium.io/IPsUsed");
    let shared = SvcState {
        name: "lb-share-b".into(),
        ..satisfied()
    };
    vec![
        case(
            "l2-reachable-from-host",
            "answers over L2 from the lease holder",
            &l2(
                ("curl-ok-200.txt", 0),
                "ip-neigh-l2-answered.txt",
                Some("w1"),
            ),
        ),
        case(
            "l2-reachable-from-host",
            "nobody announces: no lease, ARP unanswered",
            &l2(("curl-timeout-28.txt", 28), "ip-neigh-l2-failed.txt", None),
        ),
        case(
            "l2-reachable-from-host",
            "the lease holder does not answer ARP",
            &l2(
                ("curl-timeout-28.txt", 28),
                "ip-neigh-l2-failed.txt",
                Some("w1"),
            ),
        ),
        case(
            "l2-reachable-from-host",
            "ARP answered by a node that does not hold the lease",
            &l2(
                ("curl-refused-7.txt", 7),
                "ip-neigh-l2-answered.txt",
                Some("w2"),
            ),
        ),
        case(
            "pool-ready",
            "counts and no conflict",
            &pool("ciliumloadbalancerippool-ready.json"),
        ),
        case(
            "pool-ready",
            "the block overlaps another pool",
            &pool("ciliumloadbalancerippool-conflict.json"),
        ),
        case(
            "pool-ready",
            "the operator has not counted it",
            &unreconciled,
        ),
        case(
            "service-gets-ip",
            "an address from the test pool",
            &allocation(BLOCK, None, satisfied()),
        ),
        case(
            "service-gets-ip",
            "an address from another pool",
            &allocation("10.9.0.0/29", None, satisfied()),
        ),
        case(
            "service-gets-ip",
            "refused: no pool selects it",
            &allocation(BLOCK, None, no_pool.clone()),
        ),
        case(
            "service-gets-ip",
            "the operator never answered",
            &allocation(
                BLOCK,
                None,
                SvcState {
                    name: "lb-basic".into(),
                    ingress: vec![],
                    conditions: vec![],
                },
            ),
        ),
        case(
            "requested-ip-annotation",
            "the annotation was ignored",
            &allocation(BLOCK, Some("172.31.250.7"), satisfied()),
        ),
        case(
            "sharing-key",
            "one address for both",
            &vec![satisfied(), shared.clone()],
        ),
        case(
            "sharing-key",
            "two addresses",
            &vec![
                satisfied(),
                SvcState {
                    ingress: vec!["172.31.250.1".into()],
                    ..shared
                },
            ],
        ),
        case(
            "pool-exhausted-pending",
            "out_of_ips after the two free addresses",
            &Exhaustion {
                pools: vec![("harness-lb-ipam-r1".into(), 2)],
                services: vec![
                    filler(0, "172.31.250.3"),
                    filler(1, "172.31.250.4"),
                    refused.clone(),
                ],
            },
        ),
        case(
            "pool-exhausted-pending",
            "every Service got an address",
            &Exhaustion {
                pools: vec![("harness-lb-ipam-r1".into(), 2)],
                services: vec![
                    filler(0, "172.31.250.3"),
                    filler(1, "172.31.250.4"),
                    filler(2, "172.31.250.5"),
                ],
            },
        ),
        case(
            "pool-exhausted-pending",
            "refused while room was left",
            &Exhaustion {
                pools: vec![("harness-lb-ipam-r1".into(), 3)],
                services: vec![
                    filler(0, "172.31.250.3"),
                    filler(1, "172.31.250.4"),
                    refused.clone(),
                ],
            },
        ),
        case(
            "pool-exhausted-pending",
            "one address handed out twice",
            &Exhaustion {
                pools: vec![("harness-lb-ipam-r1".into(), 2)],
                services: vec![
                    filler(0, "172.31.250.3"),
                    filler(1, "172.31.250.3"),
                    refused,
                ],
            },
        ),
        case(
            "pool-exhausted-pending",
            "refused for no_pool",
            &Exhaustion {
                pools: vec![("harness-lb-ipam-r1".into(), 1)],
                services: vec![filler(0, "172.31.250.3"), no_pool],
            },
        ),
    ]
}
