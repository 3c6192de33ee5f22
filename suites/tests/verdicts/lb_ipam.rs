//! LB IPAM observations: pool and Service conditions as the operator writes them, from the
//! fixtures.

use crate::common::fixture_json;
use crate::{Scenario, case};
use suites::lb_ipam::judge::{Allocation, Exhaustion, PoolState, SvcState};
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
