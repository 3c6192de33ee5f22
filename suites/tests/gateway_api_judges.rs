//! The gateway-api judges on fixtures shaped like the real objects and responses: GatewayClass,
//! Gateway and HTTPRoute status as Cilium writes it, echo-basic JSON, curl's header dumps.

mod common;

use common::{fixture, fixture_json, fixture_out};
use std::time::Duration;
use suites::gateway_api::http::{Echo, Expect, HttpReply, Request, Sample, judge_reply};
use suites::gateway_api::judge::{
    self, ClassSeen, Exchange, GatewaySeen, Routed, RoutesSeen, ServiceSeen, Target, Weighted,
};
use suites::gateway_api::observe::{class_state, gateway_state, route_state, service_seen};
use suites::gateway_api::types::{Gateway, GatewayClass, HTTPRoute};
use suites::kit::cilium::{CiliumFacts, Version};
use suites::kit::{Series, Try, Verdict};

fn class(name: &str) -> GatewayClass {
    serde_json::from_value(fixture_json(name)).unwrap()
}

fn gateway(name: &str) -> Gateway {
    serde_json::from_value(fixture_json(name)).unwrap()
}

fn route(name: &str) -> HTTPRoute {
    serde_json::from_value(fixture_json(name)).unwrap()
}

fn pending_service() -> ServiceSeen {
    service_seen(
        &serde_json::from_value(fixture_json(
            "service-cilium-gateway-harness-gw-pending.json",
        ))
        .unwrap(),
    )
}

fn fail(v: Verdict) -> String {
    assert!(!v.is_pass(), "expected a failure, got {v:?}");
    v.message().to_string()
}

const ECHO_V2: &str = "curl-gateway-200-echo-v2-path-v2.txt";
const ECHO_V1_HEADERS: &str = "curl-gateway-200-echo-v1-request-header-modifier.txt";

/// curl's header dump of an echo-basic answer through Envoy, from the fixtures; `edits` replace
/// text in it, for another pod or path answering the same way.
fn echo(file: &str, edits: &[(&str, &str)]) -> HttpReply {
    let mut out = fixture_out(file, 0).unwrap();
    for (from, to) in edits {
        assert!(out.stdout.contains(from), "{file} has no {from:?}");
        out.stdout = out.stdout.replace(from, to);
    }
    HttpReply::parse(&out)
}

fn series(tries: Vec<HttpReply>) -> Series<HttpReply> {
    Series {
        required: 3,
        deadline: Duration::from_secs(60),
        elapsed: Duration::from_secs(2),
        tries: tries.into_iter().map(Try::Observed).collect(),
    }
}

fn target() -> Target {
    Target {
        addr: "172.18.0.240".into(),
        via: "Gateway harness-gw status.addresses[0]".into(),
    }
}

#[test]
fn an_accepted_cilium_gatewayclass_passes_and_a_foreign_controller_fails() {
    let seen = ClassSeen {
        name: "cilium".into(),
        class: Some(class_state(&class("gatewayclass-cilium-accepted.json"))),
    };
    assert_eq!(
        judge::gatewayclass(&seen),
        Verdict::Pass(
            "GatewayClass cilium (controller io.cilium/gateway-controller): Accepted=True (Accepted: Valid GatewayClass)".into()
        )
    );
    let mut foreign = class("gatewayclass-cilium-accepted.json");
    foreign.spec.controller_name = "example.net/gateway-controller".into();
    let v = judge::gatewayclass(&ClassSeen {
        name: "cilium".into(),
        class: Some(class_state(&foreign)),
    });
    assert!(
        v.message()
            .contains("names controller \"example.net/gateway-controller\""),
        "{}",
        v.message()
    );
    let missing = judge::gatewayclass(&ClassSeen {
        name: "cilium".into(),
        class: None,
    });
    assert!(!missing.is_pass());
    assert!(missing.message().contains("gatewayAPI.enabled=true"));
}

#[test]
fn an_accepted_condition_about_an_older_generation_is_not_acceptance() {
    let mut c = class("gatewayclass-cilium-accepted.json");
    c.metadata.generation = Some(2);
    let v = judge::gatewayclass(&ClassSeen {
        name: "cilium".into(),
        class: Some(class_state(&c)),
    });
    assert!(
        v.message()
            .contains("Accepted describes an older generation than 2"),
        "{}",
        v.message()
    );
}

#[test]
fn a_programmed_gateway_with_an_address_and_its_service_passes() {
    let v = judge::gateway(&GatewaySeen {
        name: "harness-gw".into(),
        gateway: Some(gateway_state(&gateway(
            "gateway-harness-gw-programmed.json",
        ))),
        service: Some(ServiceSeen {
            ingress: vec!["172.18.0.240".into()],
            ..pending_service()
        }),
        routes: 8,
        cilium: CiliumFacts::default(),
    });
    assert_eq!(
        v,
        Verdict::Pass("Gateway harness-gw: Accepted=True, Programmed=True, addresses 172.18.0.240, listener http with 8 attached routes; Service cilium-gateway-harness-gw (LoadBalancer, clusterIP 10.96.40.2)".into())
    );
}

fn unaddressed(service: Option<ServiceSeen>, cilium: CiliumFacts) -> Verdict {
    judge::gateway(&GatewaySeen {
        name: "harness-gw".into(),
        gateway: Some(gateway_state(&gateway(
            "gateway-harness-gw-programmed-false-addressnotassigned.json",
        ))),
        service,
        routes: 8,
        cilium,
    })
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

#[test]
fn a_gateway_without_an_address_gets_advice_from_what_its_service_shows() {
    // A LoadBalancer nothing answered: no address, no LB IPAM condition.
    let m = fail(unaddressed(Some(pending_service()), CiliumFacts::default()));
    assert!(
        m.starts_with("Gateway harness-gw: not programmed: Programmed=False (AddressNotAssigned: Gateway waiting for address); Service cilium-gateway-harness-gw is a LoadBalancer with no address and no LB IPAM condition"),
        "{m}"
    );
    assert!(
        m.ends_with("; status.addresses is empty; listener http: Programmed=False (Pending: Address not ready yet)"),
        "{m}"
    );
    // LB IPAM answered no_pool: the advice is the pool's selector, not "add LB IPAM".
    let no_pool = service_seen(
        &serde_json::from_value(fixture_json(
            "service-cilium-gateway-harness-gw-no-pool.json",
        ))
        .unwrap(),
    );
    let m = fail(unaddressed(Some(no_pool), CiliumFacts::default()));
    assert!(
        m.contains("LB IPAM found no CiliumLoadBalancerIPPool that selects it (cilium.io/IPAMRequestSatisfied=False, no_pool: There are no enabled CiliumLoadBalancerIPPools that match this service)"),
        "{m}"
    );
    assert!(!m.contains("host-network"), "{m}");
    // The Service has its address: the Gateway's status is what lags.
    let m = fail(unaddressed(
        Some(ServiceSeen {
            ingress: vec!["172.18.0.240".into()],
            ..pending_service()
        }),
        CiliumFacts::default(),
    ));
    assert!(
        m.contains("Service cilium-gateway-harness-gw already has the address 172.18.0.240, yet the Gateway has none"),
        "{m}"
    );
    assert!(!m.contains("CiliumLoadBalancerIPPool"), "{m}");
    // Host-network mode: a ClusterIP Service. On the affected releases the known bug is named
    // with its fix; on a fixed release it is not.
    let cluster_ip = || ServiceSeen {
        type_: "ClusterIP".into(),
        ..pending_service()
    };
    let m = fail(unaddressed(Some(cluster_ip()), cilium("1.18.4", true)));
    assert!(
        m.contains("Cilium creates a ClusterIP Service in host-network mode (gateway-api-hostnetwork-enabled=true); Cilium 1.18.4 takes Gateway addresses only from a LoadBalancer's ingress"),
        "{m}"
    );
    assert!(
        m.contains(
            "known bug cilium/cilium#42786 (from 1.18.3), fixed in 1.19.5 by cilium/cilium#46350"
        ),
        "{m}"
    );
    let m = fail(unaddressed(Some(cluster_ip()), cilium("1.19.6", true)));
    assert!(!m.contains("known bug"), "{m}");
    assert!(
        m.contains("Cilium 1.19.6 gives such a Gateway its nodes' IPs"),
        "{m}"
    );
    let m = fail(unaddressed(Some(cluster_ip()), cilium("1.18.2", true)));
    assert!(!m.contains("known bug"), "before the regression: {m}");
    // Another reason is the controller's own words: no address advice.
    let mut listeners = gateway("gateway-harness-gw-programmed-false-addressnotassigned.json");
    let c = &mut listeners.status.as_mut().unwrap().conditions[1];
    c.reason = "ListenersNotValid".into();
    c.message = "No Accepted Listeners".into();
    let m = fail(judge::gateway(&GatewaySeen {
        name: "harness-gw".into(),
        gateway: Some(gateway_state(&listeners)),
        service: Some(pending_service()),
        routes: 8,
        cilium: CiliumFacts::default(),
    }));
    assert!(
        m.starts_with("Gateway harness-gw: not programmed: Programmed=False (ListenersNotValid: No Accepted Listeners); status.addresses is empty"),
        "{m}"
    );
}

#[test]
fn a_refused_listener_or_a_missing_service_fails_the_gateway() {
    let mut refused = gateway("gateway-harness-gw-programmed.json");
    let listener = &mut refused.status.as_mut().unwrap().listeners[0];
    // What Cilium writes for a listener it cannot serve (operator gateway_reconcile.go).
    listener.conditions[1].status = "False".into();
    listener.conditions[1].reason = "UnsupportedProtocol".into();
    listener.conditions[1].message = "Listener not valid. Unsupported Listener Protocol.".into();
    assert_eq!(
        judge::gateway(&GatewaySeen {
            name: "harness-gw".into(),
            gateway: Some(gateway_state(&refused)),
            service: Some(pending_service()),
            routes: 8,
            cilium: CiliumFacts::default(),
        }),
        Verdict::Fail(
            "Gateway harness-gw: listener http: Accepted=False (UnsupportedProtocol: Listener not valid. Unsupported Listener Protocol.)"
                .into()
        )
    );
    let no_svc = judge::gateway(&GatewaySeen {
        name: "harness-gw".into(),
        gateway: Some(gateway_state(&gateway(
            "gateway-harness-gw-programmed.json",
        ))),
        service: None,
        routes: 8,
        cilium: CiliumFacts::default(),
    });
    assert!(
        no_svc
            .message()
            .contains("Cilium did not create Service cilium-gateway-harness-gw")
    );
}

#[test]
fn routes_pass_only_when_every_parent_status_is_accepted_and_resolved() {
    let ok = RoutesSeen {
        gateway: "harness-gw".into(),
        routes: vec![(
            "path-prefix".into(),
            Some(route_state(&route("httproute-path-prefix-accepted.json"))),
        )],
    };
    assert_eq!(
        judge::routes(&ok),
        Verdict::Pass("HTTPRoute path-prefix: Accepted=True, ResolvedRefs=True".into())
    );
    let bad = RoutesSeen {
        gateway: "harness-gw".into(),
        routes: vec![
            (
                "path-prefix".into(),
                Some(route_state(&route("httproute-path-prefix-accepted.json"))),
            ),
            (
                "weights".into(),
                Some(route_state(&route(
                    "httproute-resolvedrefs-false-backendnotfound.json",
                ))),
            ),
        ],
    };
    assert_eq!(
        judge::routes(&bad),
        Verdict::Fail("HTTPRoute weights: ResolvedRefs=False (BackendNotFound: services \"echo-v3\" not found): a backendRef names a Service that does not exist in the route's namespace".into())
    );
    // A route the controller never looked at, and one under another Gateway.
    let mut unreconciled = route("httproute-path-prefix-accepted.json");
    unreconciled.status = None;
    let v = judge::routes(&RoutesSeen {
        gateway: "harness-gw".into(),
        routes: vec![("path-prefix".into(), Some(route_state(&unreconciled)))],
    });
    assert!(
        v.message()
            .contains("no status for parent Gateway harness-gw"),
        "{}",
        v.message()
    );
    assert!(
        !judge::routes(&RoutesSeen {
            gateway: "other-gw".into(),
            routes: vec![(
                "path-prefix".into(),
                Some(route_state(&route("httproute-path-prefix-accepted.json")))
            )],
        })
        .is_pass()
    );
}

#[test]
fn echo_basic_json_names_the_pod_and_the_wrong_rule_is_called_out() {
    let body = fixture("echo-basic-echo-v2-path-v2.json");
    let e: Echo = serde_json::from_str(&body).unwrap();
    assert_eq!(e.pod, "echo-v2");
    assert_eq!(e.path, "/v2");
    assert_eq!(
        e.header("x-forwarded-proto"),
        Some(vec!["http".to_string()])
    );
    let r = echo(ECHO_V2, &[]);
    assert_eq!(r.echo.as_ref(), Some(&e));
    assert_eq!(
        judge_reply(&r, &Expect::Backend("echo-v2".into())),
        Verdict::Pass("HTTP 200 from echo-v2 (path /v2)".into())
    );
    assert_eq!(
        judge_reply(&r, &Expect::Backend("echo-v1".into())),
        Verdict::Fail("got HTTP 200 from echo-v2 (path /v2), expected HTTP 200 from echo-v1: the request matched the wrong rule".into())
    );
    assert!(!judge_reply(&r, &Expect::Status(404)).is_pass());
}

#[test]
fn a_404_from_envoy_is_data_not_a_curl_error() {
    let r = HttpReply::parse(&fixture_out("curl-gateway-404-no-route.txt", 0).unwrap());
    assert_eq!(r.status, 404);
    assert_eq!(r.echo, None);
    assert_eq!(
        judge_reply(&r, &Expect::Status(404)),
        Verdict::Pass("HTTP 404 with no body".into())
    );
    assert_eq!(
        judge_reply(&r, &Expect::Backend("echo-v1".into())),
        Verdict::Fail("got HTTP 404 with no body, expected HTTP 200 from echo-v1".into())
    );
    // A timeout is judged by the kit's curl reading, which names the layer.
    let t = HttpReply::parse(&fixture_out("curl-timeout-28.txt", 28).unwrap());
    assert!(
        judge_reply(&t, &Expect::Status(404))
            .message()
            .starts_with("timeout (curl exit 28)")
    );
}

#[test]
fn a_redirect_is_judged_by_status_and_location() {
    let r = HttpReply::parse(&fixture_out("curl-gateway-301-location.txt", 0).unwrap());
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("Location"),
        Some("http://example.org/status-code-301")
    );
    let want = |status: u16, host: &str| Expect::Redirect {
        status,
        host: host.into(),
        path: "/status-code-301".into(),
    };
    assert_eq!(
        judge_reply(&r, &want(301, "example.org")),
        Verdict::Pass("HTTP 301 Location http://example.org/status-code-301".into())
    );
    assert_eq!(
        judge_reply(&r, &want(302, "example.org")),
        Verdict::Fail("got HTTP 301 with Location http://example.org/status-code-301, expected HTTP 302 with Location http://example.org/status-code-301".into())
    );
    assert!(!judge_reply(&r, &want(301, "example.net")).is_pass());
    let plain = echo(ECHO_V2, &[]);
    assert!(
        judge_reply(&plain, &want(301, "example.org"))
            .message()
            .contains("without a Location header")
    );
}

#[test]
fn the_header_modifier_is_judged_from_what_the_backend_saw() {
    let expect = Expect::Headers {
        backend: "echo-v1".into(),
        exact: vec![
            ("X-Header-Set".into(), vec!["set-overwrites-values".into()]),
            (
                "X-Header-Add".into(),
                vec!["header-val-1".into(), "add-appends-values".into()],
            ),
        ],
        absent: vec!["X-Header-Remove".into()],
    };
    assert!(judge_reply(&echo(ECHO_V1_HEADERS, &[]), &expect).is_pass());
    // The same headers folded into one comma-joined line (as a proxy may forward them) pass.
    let folded = echo(
        ECHO_V1_HEADERS,
        &[(
            "\"header-val-1\",\n   \"add-appends-values\"",
            "\"header-val-1,add-appends-values\"",
        )],
    );
    assert!(judge_reply(&folded, &expect).is_pass());
    // Unmodified: what the backend sees of the conformance request when the filter did nothing.
    let untouched = echo(
        ECHO_V1_HEADERS,
        &[
            ("set-overwrites-values", "some-other-value"),
            (",\n   \"add-appends-values\"", ""),
            (
                "\"X-Request-Id\"",
                "\"X-Header-Remove\": [\"val\"],\n  \"X-Request-Id\"",
            ),
        ],
    );
    assert_eq!(
        judge_reply(&untouched, &expect),
        Verdict::Fail("X-Header-Set reached the backend as [some-other-value], expected [set-overwrites-values]; X-Header-Add reached the backend as [header-val-1], expected [add-appends-values, header-val-1]; X-Header-Remove reached the backend as [val] but the filter removes it".into())
    );
}

#[test]
fn routed_needs_three_in_a_row_for_every_request_and_names_the_hint_and_target() {
    let v2 = echo(
        ECHO_V2,
        &[("\"path\": \"/v2\"", "\"path\": \"/v2example\"")],
    );
    let v1 = echo(
        ECHO_V2,
        &[
            ("\"path\": \"/v2\"", "\"path\": \"/v2example\""),
            ("\"pod\": \"echo-v2\"", "\"pod\": \"echo-v1\""),
        ],
    );
    let o = Routed {
        target: target(),
        hint: "PathPrefix matches whole path segments".into(),
        exchanges: vec![Exchange {
            request: Request::new("prefix.example.com", "/v2example"),
            expect: Expect::Backend("echo-v1".into()),
            series: series(vec![v1.clone(), v1.clone(), v1.clone()]),
        }],
    };
    assert_eq!(
        judge::routed(&o),
        Verdict::Pass("GET prefix.example.com/v2example: HTTP 200 from echo-v1 (path /v2example) (3 in a row) (via 172.18.0.240:80, the Gateway harness-gw status.addresses[0])".into())
    );
    let flapping = Routed {
        exchanges: vec![Exchange {
            series: series(vec![v1.clone(), v2.clone(), v1.clone(), v1]),
            ..o.exchanges[0].clone()
        }],
        ..o.clone()
    };
    assert!(!judge::routed(&flapping).is_pass());
    let wrong = Routed {
        exchanges: vec![Exchange {
            series: series(vec![v2.clone(), v2.clone(), v2]),
            ..o.exchanges[0].clone()
        }],
        ..o
    };
    let m = judge::routed(&wrong).message().to_string();
    assert!(
        m.starts_with("GET prefix.example.com/v2example: got HTTP 200 from echo-v2 (path /v2example), expected HTTP 200 from echo-v1: the request matched the wrong rule"),
        "{m}"
    );
    assert!(
        m.ends_with("\nPathPrefix matches whole path segments (requests went to 172.18.0.240:80, the Gateway harness-gw status.addresses[0])"),
        "{m}"
    );
}

fn weighted(samples: Vec<Sample>) -> Weighted {
    let ok = echo(ECHO_V1_HEADERS, &[]);
    Weighted {
        target: target(),
        warmup: Exchange {
            request: Request::new("weights.example.com", "/"),
            expect: Expect::AnyBackend(vec!["echo-v1".into(), "echo-v2".into()]),
            series: series(vec![ok.clone(), ok.clone(), ok]),
        },
        requested: 200,
        weights: vec![
            ("echo-v1".into(), 70),
            ("echo-v2".into(), 30),
            ("echo-v3".into(), 0),
        ],
        samples,
        stopped: None,
    }
}

fn split(v1: usize, v2: usize, v3: usize) -> Vec<Sample> {
    let s = |pod: &str| Sample {
        exit_code: 0,
        status: 200,
        pod: Some(pod.into()),
    };
    std::iter::repeat_n(s("echo-v1"), v1)
        .chain(std::iter::repeat_n(s("echo-v2"), v2))
        .chain(std::iter::repeat_n(s("echo-v3"), v3))
        .collect()
}

#[test]
fn a_split_within_tolerance_passes_and_a_weight_zero_backend_must_get_nothing() {
    assert_eq!(
        judge::weighted(&weighted(split(146, 54, 0))),
        Verdict::Pass("echo-v1 146/200 (73.0%, weight 70 -> 70%), echo-v2 54/200 (27.0%, weight 30 -> 30%), echo-v3 0/200 (0.0%, weight 0 -> 0%) (within 10 points)".into())
    );
    let even = judge::weighted(&weighted(split(100, 100, 0)));
    assert!(
        even.message()
            .starts_with("the split does not follow the weights: echo-v1 100/200 (50.0%, weight 70 -> 70%); echo-v2 100/200 (50.0%, weight 30 -> 30%)"),
        "{}",
        even.message()
    );
    let leak = judge::weighted(&weighted(split(139, 60, 1)));
    assert!(
        leak.message()
            .starts_with("the split does not follow the weights: echo-v3 1/200"),
        "{}",
        leak.message()
    );
}

#[test]
fn a_batch_with_failures_or_cut_short_fails_and_no_warmup_means_no_split() {
    let mut s = split(139, 60, 0);
    s.push(Sample {
        exit_code: 0,
        status: 503,
        pod: None,
    });
    assert_eq!(
        judge::weighted(&weighted(s)),
        Verdict::Fail("199 of 200 requests got an answer from a backend; the first failure: HTTP 503 (curl exit 0); every request through a weighted route must reach one of its backends".into())
    );
    assert!(!judge::weighted(&weighted(split(70, 30, 0))).is_pass());
    let mut cold = weighted(Vec::new());
    let nf = HttpReply::parse(&fixture_out("curl-gateway-404-no-route.txt", 0).unwrap());
    cold.warmup.series = series(vec![nf.clone(), nf.clone(), nf]);
    assert!(judge::weighted(&cold).message().starts_with(
        "the weighted route never answered steadily, so no split was measured: got HTTP 404"
    ));
}

fn programmed(routes: usize, edit: impl FnOnce(&mut Gateway)) -> Verdict {
    let mut g = gateway("gateway-harness-gw-programmed.json");
    edit(&mut g);
    judge::gateway(&GatewaySeen {
        name: "harness-gw".into(),
        gateway: Some(gateway_state(&g)),
        service: Some(ServiceSeen {
            ingress: vec!["172.18.0.240".into()],
            ..pending_service()
        }),
        routes,
        cilium: CiliumFacts::default(),
    })
}

#[test]
fn a_programmed_gateway_fails_without_the_http_listener_status_or_its_attached_routes() {
    assert!(programmed(8, |_| {}).is_pass());
    let none = programmed(8, |g| g.status.as_mut().unwrap().listeners.clear());
    assert_eq!(
        none,
        Verdict::Fail("Gateway harness-gw: no status.listeners entry for listener http: the controller has not reconciled the listener, so nothing shows it serves the routes".into())
    );
    let other = programmed(8, |g| {
        g.status.as_mut().unwrap().listeners[0].name = "https".into();
    });
    assert!(
        other
            .message()
            .contains("no status.listeners entry for listener http"),
        "{}",
        other.message()
    );
    let few = programmed(8, |g| {
        g.status.as_mut().unwrap().listeners[0].attached_routes = 7;
    });
    assert!(
        few.message().starts_with(
            "Gateway harness-gw: listener http has 7 attached route(s), expected at least the 8 HTTPRoutes the suite attached"
        ),
        "{}",
        few.message()
    );
    assert!(!few.is_pass());
}

#[test]
fn a_status_expectation_fails_when_a_backend_answered() {
    let routed = echo(ECHO_V2, &[]);
    assert_eq!(
        judge_reply(&routed, &Expect::Status(404)),
        Verdict::Fail("got HTTP 200 from echo-v2 (path /v2), expected HTTP 404 from the Gateway itself: backend echo-v2 answered, so a route matched the request".into())
    );
}

#[test]
fn batches_cut_short_report_how_far_they_got_and_why() {
    let mut w = weighted(split(42, 18, 0));
    w.stopped =
        Some("batch 4 of 10: exec \"/bin/sh\" in ns/client: did not finish within 230s".into());
    assert_eq!(
        judge::weighted(&w),
        Verdict::Fail("60 of 200 requests got an answer from a backend; the batches stopped after 60 of 200 requests: batch 4 of 10: exec \"/bin/sh\" in ns/client: did not finish within 230s; every request through a weighted route must reach one of its backends".into())
    );
    let short = judge::weighted(&weighted(split(70, 30, 0)));
    assert!(
        short
            .message()
            .contains("; only 100 of 200 requests were sent;"),
        "{}",
        short.message()
    );
}
