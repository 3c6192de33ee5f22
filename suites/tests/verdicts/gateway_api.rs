//! Gateway API observations: GatewayClass, Gateway, HTTPRoute and Service status from the
//! fixtures, curl's header dumps of Envoy and echo-basic answers, and the Cilium facts the
//! address advice is chosen from.

use crate::common::{fixture_json, fixture_out};
use crate::{Scenario, case, series, thrice};
use suites::gateway_api::http::{Expect, HttpReply, Request, Sample};
use suites::gateway_api::judge::{
    ClassSeen, Exchange, GatewaySeen, Routed, RoutesSeen, ServiceSeen, Target, Weighted,
};
use suites::gateway_api::observe::{class_state, gateway_state, route_state, service_seen};
use suites::gateway_api::types::{Gateway, GatewayClass, HTTPRoute};
use suites::kit::cilium::{CiliumFacts, Version};

fn reply(name: &str, exit_code: i32) -> HttpReply {
    HttpReply::parse(&fixture_out(name, exit_code).unwrap())
}

fn class(name: &str) -> GatewayClass {
    serde_json::from_value(fixture_json(name)).unwrap()
}

fn gateway(name: &str) -> Gateway {
    serde_json::from_value(fixture_json(name)).unwrap()
}

fn route(name: &str) -> HTTPRoute {
    serde_json::from_value(fixture_json(name)).unwrap()
}

fn service(name: &str) -> ServiceSeen {
    service_seen(&serde_json::from_value(fixture_json(name)).unwrap())
}

fn pending() -> ServiceSeen {
    service("service-cilium-gateway-harness-gw-pending.json")
}

fn cilium(version: &str, host_network: bool) -> CiliumFacts {
    CiliumFacts {
        image: Some(format!("quay.io/cilium/cilium:v{version}")),
        version: Version::parse(version),
        config: [(
            "gateway-api-hostnetwork-enabled".to_string(),
            host_network.to_string(),
        )]
        .into(),
    }
}

fn seen(gateway_file: &str, service: Option<ServiceSeen>, cilium: CiliumFacts) -> GatewaySeen {
    GatewaySeen {
        name: "harness-gw".into(),
        gateway: Some(gateway_state(&gateway(gateway_file))),
        service,
        routes: 8,
        cilium,
    }
}

const UNADDRESSED: &str = "gateway-harness-gw-programmed-false-addressnotassigned.json";

fn addressed() -> ServiceSeen {
    ServiceSeen {
        ingress: vec!["172.18.0.240".into()],
        ..pending()
    }
}

fn target() -> Target {
    Target {
        addr: "172.18.0.240".into(),
        via: "Gateway harness-gw status.addresses[0]".into(),
    }
}

fn routed(hint: &str, exchanges: Vec<Exchange>) -> Routed {
    Routed {
        target: target(),
        hint: hint.into(),
        exchanges,
    }
}

fn headers_expected() -> Expect {
    Expect::Headers {
        backend: "echo-v1".into(),
        exact: vec![
            ("X-Header-Set".into(), vec!["set-overwrites-values".into()]),
            (
                "X-Header-Add".into(),
                vec!["header-val-1".into(), "add-appends-values".into()],
            ),
        ],
        absent: vec!["X-Header-Remove".into()],
    }
}

fn weighted(v1: usize, v2: usize, v3: usize, extra: Vec<Sample>) -> Weighted {
    let s = |pod: &str| Sample {
        exit_code: 0,
        status: 200,
        pod: Some(pod.into()),
    };
    Weighted {
        target: target(),
        warmup: Exchange {
            request: Request::new("weights.example.com", "/"),
            expect: Expect::AnyBackend(vec!["echo-v1".into(), "echo-v2".into()]),
            series: thrice(reply("curl-gateway-200-echo-v2-path-v2.txt", 0)),
        },
        requested: 200,
        weights: vec![
            ("echo-v1".into(), 70),
            ("echo-v2".into(), 30),
            ("echo-v3".into(), 0),
        ],
        samples: std::iter::repeat_n(s("echo-v1"), v1)
            .chain(std::iter::repeat_n(s("echo-v2"), v2))
            .chain(std::iter::repeat_n(s("echo-v3"), v3))
            .chain(extra)
            .collect(),
        stopped: None,
    }
}

pub fn scenarios() -> Vec<Scenario> {
    let v2 = reply("curl-gateway-200-echo-v2-path-v2.txt", 0);
    let prefix = |expect: Expect, answers| Exchange {
        request: Request::new("prefix.example.com", "/v2"),
        expect,
        series: answers,
    };
    let cluster_ip = || ServiceSeen {
        type_: "ClusterIP".into(),
        ..pending()
    };
    let mut foreign = class("gatewayclass-cilium-accepted.json");
    foreign.spec.controller_name = "example.net/gateway-controller".into();
    let mut listener_refused = gateway("gateway-harness-gw-programmed.json");
    let l = &mut listener_refused.status.as_mut().unwrap().listeners[0];
    // What Cilium writes for a listener it cannot serve (operator gateway_reconcile.go).
    l.conditions[1].status = "False".into();
    l.conditions[1].reason = "UnsupportedProtocol".into();
    l.conditions[1].message = "Listener not valid. Unsupported Listener Protocol.".into();
    let headers = Request::new("headers.example.com", "/");
    vec![
        case(
            "gatewayclass-accepted",
            "Accepted by Cilium's controller",
            &ClassSeen {
                name: "cilium".into(),
                class: Some(class_state(&class("gatewayclass-cilium-accepted.json"))),
            },
        ),
        case(
            "gatewayclass-accepted",
            "owned by another controller",
            &ClassSeen {
                name: "cilium".into(),
                class: Some(class_state(&foreign)),
            },
        ),
        case(
            "gatewayclass-accepted",
            "no GatewayClass",
            &ClassSeen {
                name: "cilium".into(),
                class: None,
            },
        ),
        case(
            "gateway-programmed",
            "Programmed with an address",
            &seen(
                "gateway-harness-gw-programmed.json",
                Some(addressed()),
                CiliumFacts::default(),
            ),
        ),
        case(
            "gateway-programmed",
            "a listener is refused",
            &GatewaySeen {
                gateway: Some(gateway_state(&listener_refused)),
                ..seen(
                    "gateway-harness-gw-programmed.json",
                    Some(pending()),
                    CiliumFacts::default(),
                )
            },
        ),
        case(
            "gateway-programmed",
            "no Service for the Gateway",
            &seen(
                "gateway-harness-gw-programmed.json",
                None,
                CiliumFacts::default(),
            ),
        ),
        case(
            "gateway-programmed",
            "AddressNotAssigned, LoadBalancer nothing answered",
            &seen(UNADDRESSED, Some(pending()), CiliumFacts::default()),
        ),
        case(
            "gateway-programmed",
            "AddressNotAssigned, LB IPAM has no pool for it",
            &seen(
                UNADDRESSED,
                Some(service("service-cilium-gateway-harness-gw-no-pool.json")),
                CiliumFacts::default(),
            ),
        ),
        case(
            "gateway-programmed",
            "AddressNotAssigned, the Service has its address",
            &seen(UNADDRESSED, Some(addressed()), CiliumFacts::default()),
        ),
        case(
            "gateway-programmed",
            "AddressNotAssigned, host-network ClusterIP on Cilium 1.18.4",
            &seen(UNADDRESSED, Some(cluster_ip()), cilium("1.18.4", true)),
        ),
        case(
            "gateway-programmed",
            "AddressNotAssigned, host-network ClusterIP on Cilium 1.19.6",
            &seen(UNADDRESSED, Some(cluster_ip()), cilium("1.19.6", true)),
        ),
        case(
            "httproute-accepted",
            "Accepted and ResolvedRefs",
            &RoutesSeen {
                gateway: "harness-gw".into(),
                routes: vec![(
                    "path-prefix".into(),
                    Some(route_state(&route("httproute-path-prefix-accepted.json"))),
                )],
            },
        ),
        case(
            "httproute-accepted",
            "a backendRef names no Service",
            &RoutesSeen {
                gateway: "harness-gw".into(),
                routes: vec![(
                    "weights".into(),
                    Some(route_state(&route(
                        "httproute-resolvedrefs-false-backendnotfound.json",
                    ))),
                )],
            },
        ),
        case(
            "path-prefix-routing",
            "/v2 reaches echo-v2",
            &routed(
                "PathPrefix matches whole path segments",
                vec![prefix(
                    Expect::Backend("echo-v2".into()),
                    thrice(v2.clone()),
                )],
            ),
        ),
        case(
            "path-prefix-routing",
            "/v2 reaches the wrong backend",
            &routed(
                "PathPrefix matches whole path segments",
                vec![prefix(
                    Expect::Backend("echo-v1".into()),
                    thrice(v2.clone()),
                )],
            ),
        ),
        case(
            "exact-path",
            "an unmatched path gets 404 from the Gateway",
            &routed(
                "an Exact match routes only its own path",
                vec![Exchange {
                    request: Request::new("exact.example.com", "/exact/other"),
                    expect: Expect::Status(404),
                    series: thrice(reply("curl-gateway-404-no-route.txt", 0)),
                }],
            ),
        ),
        case(
            "exact-path",
            "a backend answered where 404 was due",
            &routed(
                "an Exact match routes only its own path",
                vec![Exchange {
                    request: Request::new("exact.example.com", "/exact/other"),
                    expect: Expect::Status(404),
                    series: thrice(v2.clone()),
                }],
            ),
        ),
        case(
            "header-match",
            "the Gateway does not answer",
            &routed(
                "a header match is exact on the value",
                vec![Exchange {
                    request: Request::new("headers.example.com", "/").header("version", "two"),
                    expect: Expect::Backend("echo-v2".into()),
                    series: thrice(reply("curl-timeout-28.txt", 28)),
                }],
            ),
        ),
        case(
            "hostname-match",
            "answers that flap between backends",
            &routed(
                "a wildcard hostname matches labels below its suffix",
                vec![Exchange {
                    request: Request::new("foo.wildcard.example.com", "/"),
                    expect: Expect::Backend("echo-v2".into()),
                    series: series(&[
                        v2.clone(),
                        reply("curl-gateway-404-no-route.txt", 0),
                        v2.clone(),
                    ]),
                }],
            ),
        ),
        case(
            "redirect",
            "301 to the new host",
            &routed(
                "a RequestRedirect answers from the Gateway",
                vec![Exchange {
                    request: Request::new("redirect.example.com", "/status-code-301"),
                    expect: Expect::Redirect {
                        status: 301,
                        host: "example.org".into(),
                        path: "/status-code-301".into(),
                    },
                    series: thrice(reply("curl-gateway-301-location.txt", 0)),
                }],
            ),
        ),
        case(
            "redirect",
            "302 due, 301 given",
            &routed(
                "a RequestRedirect answers from the Gateway",
                vec![Exchange {
                    request: Request::new("redirect.example.com", "/status-code-301"),
                    expect: Expect::Redirect {
                        status: 302,
                        host: "example.org".into(),
                        path: "/status-code-301".into(),
                    },
                    series: thrice(reply("curl-gateway-301-location.txt", 0)),
                }],
            ),
        ),
        case(
            "request-header-modifier",
            "the backend saw the set, added and removed headers",
            &routed(
                "set overwrites, add appends, remove deletes",
                vec![Exchange {
                    request: headers.clone(),
                    expect: headers_expected(),
                    series: thrice(reply(
                        "curl-gateway-200-echo-v1-request-header-modifier.txt",
                        0,
                    )),
                }],
            ),
        ),
        case(
            "request-header-modifier",
            "the filter did nothing",
            &routed(
                "set overwrites, add appends, remove deletes",
                vec![Exchange {
                    request: headers,
                    expect: headers_expected(),
                    series: thrice(v2.clone()),
                }],
            ),
        ),
        case(
            "weighted-backends",
            "146/54/0 for weights 70/30/0",
            &weighted(146, 54, 0, vec![]),
        ),
        case(
            "weighted-backends",
            "an even split",
            &weighted(100, 100, 0, vec![]),
        ),
        case(
            "weighted-backends",
            "one request failed",
            &weighted(
                139,
                60,
                0,
                vec![Sample {
                    exit_code: 0,
                    status: 503,
                    pod: None,
                }],
            ),
        ),
        case(
            "weighted-backends",
            "the route never answered",
            &Weighted {
                warmup: Exchange {
                    series: thrice(reply("curl-gateway-404-no-route.txt", 0)),
                    ..weighted(0, 0, 0, vec![]).warmup
                },
                ..weighted(0, 0, 0, vec![])
            },
        ),
    ]
}
