//! The whole gateway-api suite against the fake API server (tower-test mock) serving Gateway API
//! objects with Cilium-like status, and a scripted executor playing a Gateway that routes curl's
//! requests to echo-basic JSON: the objects created, the requests sent, outcomes and transcripts.

mod common;

use common::{
    Cluster, Reply, ScriptedExec, ScriptedOutside, Seen, cluster, ctx, ctx_outside, fast_options,
    fixture_json, out,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use suites::kit::{ExecOutput, KitError, PodRef};
use suites::{CheckFilter, CheckOutcome, Cleanup, run_suite_from, run_suite_with};

const NS: &str = "harness-gateway-api-r1";
const GW_PATH: &str = "/apis/gateway.networking.k8s.io/v1";

fn all() -> CheckFilter {
    CheckFilter::new(&[], &[]).unwrap()
}

fn only(pattern: &str) -> CheckFilter {
    CheckFilter::new(&[], &[pattern.into()]).unwrap()
}

fn gateway_cluster() -> Cluster {
    let mut c = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    c.place("client", "w1", "10.244.1.3", true);
    c.place("echo-v1", "w1", "10.244.1.11", true);
    c.place("echo-v2", "w2", "10.244.2.12", true);
    c.place("echo-v3", "w2", "10.244.2.13", true);
    c
}

/// A status condition as Cilium's operator writes it (metav1.Condition; the messages used are
/// those of `operator/pkg/gateway-api`, listed in fixtures/SOURCES.md).
fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": 1, "lastTransitionTime": "2026-11-22T10:01:02Z"})
}

/// How the fake Cilium treats the Gateway API objects.
#[derive(Clone)]
struct Cilium {
    /// Gateway gets an address (else Programmed=False AddressNotAssigned, LB pending).
    lb_address: bool,
    /// Routes whose ResolvedRefs is False with BackendNotFound.
    unresolved: &'static [&'static str],
    /// GatewayClass cilium exists.
    class: bool,
    /// The http listener's attachedRoutes.
    attached: u32,
}

impl Default for Cilium {
    fn default() -> Self {
        Cilium {
            lb_address: true,
            unresolved: &[],
            class: true,
            attached: 8,
        }
    }
}

fn list(kind: &str, items: Vec<Value>) -> Reply {
    Reply::Json(
        200,
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": format!("{kind}List"),
               "metadata": {"resourceVersion": "50"}, "items": items}),
    )
}

fn not_found(what: &str) -> Reply {
    Reply::Json(
        404,
        common::status(404, "NotFound", &format!("{what} not found")),
    )
}

/// The Gateway API part of the fake API server, with status as Cilium writes it.
fn gateway_hook(cilium: Cilium) -> impl FnMut(&Seen, &mut Cluster) -> Option<Reply> + Send {
    move |s, c| {
        let rest = s.path.strip_prefix(GW_PATH)?;
        if s.is_watch() {
            return Some(Reply::Hang);
        }
        let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let by_name = s
            .param("fieldSelector")
            .and_then(|f| f.strip_prefix("metadata.name=").map(String::from));
        Some(match (s.method.as_str(), parts.as_slice()) {
            ("GET", ["gatewayclasses", ..]) if !cilium.class => match parts.len() {
                1 => list("GatewayClass", vec![]),
                _ => not_found("gatewayclasses.gateway.networking.k8s.io \"cilium\""),
            },
            ("GET", ["gatewayclasses"]) => list(
                "GatewayClass",
                vec![fixture_json("gatewayclass-cilium-accepted.json")],
            ),
            ("GET", ["gatewayclasses", "cilium"]) => {
                Reply::Json(200, fixture_json("gatewayclass-cilium-accepted.json"))
            }
            ("POST", ["namespaces", ns, kind]) => {
                let mut o = s.body.clone();
                let name = o["metadata"]["name"].as_str().unwrap().to_string();
                o["metadata"]["namespace"] = json!(ns);
                o["metadata"]["generation"] = json!(1);
                o["metadata"]["resourceVersion"] = json!("20");
                if *kind == "gateways" {
                    let svc = format!("cilium-gateway-{name}");
                    let mut service =
                        fixture_json("service-cilium-gateway-harness-gw-pending.json");
                    if cilium.lb_address {
                        o["status"] =
                            fixture_json("gateway-harness-gw-programmed.json")["status"].clone();
                        o["status"]["listeners"][0]["attachedRoutes"] = json!(cilium.attached);
                        service["status"] = json!({"loadBalancer": {"ingress": [{"ip": "172.18.0.240", "ipMode": "VIP"}]}});
                    } else {
                        o["status"] = fixture_json(
                            "gateway-harness-gw-programmed-false-addressnotassigned.json",
                        )["status"]
                            .clone();
                    }
                    c.objects
                        .insert(("services".into(), ns.to_string(), svc), service);
                } else {
                    let resolved = if cilium.unresolved.contains(&name.as_str()) {
                        cond(
                            "ResolvedRefs",
                            "False",
                            "BackendNotFound",
                            // The controller-runtime NotFound error Cilium's route check
                            // (CheckBackendIsExistingService) writes as the message.
                            "services \"echo-v9\" not found",
                        )
                    } else {
                        cond(
                            "ResolvedRefs",
                            "True",
                            "ResolvedRefs",
                            "Service reference is valid",
                        )
                    };
                    o["status"] = json!({"parents": [{
                        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "harness-gw"},
                        "controllerName": "io.cilium/gateway-controller",
                        "conditions": [cond("Accepted", "True", "Accepted", "Accepted HTTPRoute"), resolved]}]});
                }
                c.objects
                    .insert((kind.to_string(), ns.to_string(), name), o.clone());
                Reply::Json(201, o)
            }
            ("GET", ["namespaces", ns, kind]) => list(
                if *kind == "gateways" {
                    "Gateway"
                } else {
                    "HTTPRoute"
                },
                c.objects
                    .iter()
                    .filter(|((k, n, name), _)| {
                        k == kind && n == ns && by_name.as_ref().is_none_or(|w| w == name)
                    })
                    .map(|(_, v)| v.clone())
                    .collect(),
            ),
            ("GET", ["namespaces", ns, kind, name]) => {
                match c
                    .objects
                    .get(&(kind.to_string(), ns.to_string(), name.to_string()))
                {
                    Some(v) => Reply::Json(200, v.clone()),
                    None => not_found(&format!("{kind} \"{name}\"")),
                }
            }
            _ => not_found(&format!("{} {}", s.method, s.path)),
        })
    }
}

/// What a Gateway that implements the routes correctly answers; `segment_blind` makes
/// PathPrefix a plain string prefix, the classic bug.
fn route(
    host: &str,
    path: &str,
    headers: &[(String, String)],
    n: usize,
    segment_blind: bool,
) -> (u16, Option<&'static str>, Option<String>) {
    let header = |k: &str| {
        headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let host = host.split(':').next().unwrap();
    let v2_prefix = if segment_blind {
        path.starts_with("/v2")
    } else {
        path == "/v2" || path.starts_with("/v2/")
    };
    match host {
        "prefix.example.com" if v2_prefix => (200, Some("echo-v2"), None),
        "prefix.example.com" => (200, Some("echo-v1"), None),
        "exact.example.com" => match path {
            "/one" => (200, Some("echo-v1"), None),
            "/two" => (200, Some("echo-v2"), None),
            _ => (404, None, None),
        },
        "header.example.com" => match header("version") {
            Some("one") => (200, Some("echo-v1"), None),
            Some("two") => (200, Some("echo-v2"), None),
            _ => (404, None, None),
        },
        "very.specific.com" => (200, Some("echo-v1"), None),
        h if h.ends_with(".wildcard.io") => (200, Some("echo-v2"), None),
        "weights.example.com" if n % 10 < 7 => (200, Some("echo-v1"), None),
        "weights.example.com" => (200, Some("echo-v2"), None),
        "redirect.example.com" if path.starts_with("/hostname-redirect") => {
            (302, None, Some(format!("http://example.org{path}")))
        }
        "redirect.example.com" if path.starts_with("/status-code-301") => {
            (301, None, Some(format!("http://example.org{path}")))
        }
        "headers.example.com" => (200, Some("echo-v1"), None),
        _ => (404, None, None),
    }
}

/// echo-basic's answer: its RequestAssertions JSON (fields as at the pinned 40c666fd, as in the
/// echo-basic fixtures), with the headers the conformance HTTPRouteRequestHeaderModifier filter
/// leaves for `headers.example.com`.
fn echo_json(pod: &str, host: &str, path: &str, headers: &[(String, String)]) -> String {
    let mut h: serde_json::Map<String, Value> = serde_json::Map::new();
    h.insert("Accept".into(), json!(["*/*"]));
    for (k, v) in headers {
        h.entry(k.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!(v));
    }
    if host.starts_with("headers.example.com") {
        h.insert("X-Header-Set".into(), json!(["set-overwrites-values"]));
        h.entry("X-Header-Add")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!("add-appends-values"));
        h.remove("X-Header-Remove");
    }
    serde_json::to_string_pretty(&json!({"path": path, "host": host, "method": "GET",
        "proto": "HTTP/1.1", "headers": h, "namespace": NS, "ingress": "", "service": "",
        "pod": pod}))
    .unwrap()
}

/// The client pod's curl against a scripted Cilium Gateway on `addr`.
fn gateway_exec(addr: &'static str, segment_blind: bool) -> Arc<ScriptedExec> {
    gateway_exec_stalling(addr, segment_blind, None)
}

/// As [`gateway_exec`]; the weighted batch number `stall` (from 1), if any, never finishes and
/// fails as an exec past its bound does.
fn gateway_exec_stalling(
    addr: &'static str,
    segment_blind: bool,
    stall: Option<usize>,
) -> Arc<ScriptedExec> {
    let n = Arc::new(AtomicUsize::new(0));
    let batches = Arc::new(AtomicUsize::new(0));
    ScriptedExec::new(
        move |pod: &PodRef, argv: &[String]| -> Result<ExecOutput, KitError> {
            assert_eq!(pod.to_string(), format!("{NS}/client"));
            match argv[0].as_str() {
                "curl" => {
                    let mut headers = Vec::new();
                    let mut host = String::new();
                    for w in argv.windows(2) {
                        if w[0] == "-H" {
                            let (k, v) = w[1].split_once(": ").unwrap();
                            if k == "Host" {
                                host = v.to_string();
                            } else {
                                headers.push((k.to_string(), v.to_string()));
                            }
                        }
                    }
                    let url = argv.last().unwrap();
                    let prefix = format!("http://{addr}:80");
                    let Some(path) = url.strip_prefix(&prefix) else {
                        return out(
                            28,
                            "",
                            "curl: (28) Connection timed out after 2002 milliseconds",
                        );
                    };
                    let i = n.fetch_add(1, Ordering::SeqCst);
                    let (status, backend, location) =
                        route(&host, path, &headers, i, segment_blind);
                    let mut text = format!("HTTP/1.1 {status} X\r\nserver: envoy\r\n");
                    if let Some(l) = location {
                        text.push_str(&format!("location: {l}\r\n"));
                    }
                    text.push_str("\r\n");
                    if let Some(b) = backend {
                        text.push_str(&echo_json(b, &host, path, &headers));
                    }
                    out(0, &text, "")
                }
                "/bin/sh" => {
                    let script = &argv[2];
                    assert!(script.contains(&format!("'http://{addr}:80/'")), "{script}");
                    assert!(
                        script.contains("-H 'Host: weights.example.com'"),
                        "{script}"
                    );
                    let b = batches.fetch_add(1, Ordering::SeqCst) + 1;
                    if stall == Some(b) {
                        return Err(KitError::Exec {
                            pod: pod.to_string(),
                            argv0: "/bin/sh".into(),
                            reason: "did not finish within 230s (the exec bound)".into(),
                        });
                    }
                    let count: usize = script
                        .split("while [ $i -lt ")
                        .nth(1)
                        .and_then(|r| r.split(' ').next())
                        .and_then(|c| c.parse().ok())
                        .unwrap();
                    let mut text = String::new();
                    for i in 0..count {
                        let (status, backend, _) = route("weights.example.com", "/", &[], i, false);
                        text.push_str(&echo_json(
                            backend.unwrap(),
                            "weights.example.com",
                            "/",
                            &[],
                        ));
                        text.push_str(&format!("\n@@ {status} 0\n"));
                    }
                    out(0, &text, "")
                }
                other => panic!("unexpected command {other}"),
            }
        },
    )
}

fn outcome<'a>(run: &'a suites::SuiteRun, check: &str) -> &'a CheckOutcome {
    &run.checks
        .iter()
        .find(|c| c.check == check)
        .unwrap()
        .outcome
}

#[tokio::test]
async fn gateway_api_passes_against_a_conforming_cilium_gateway() {
    let (client, log) = cluster(gateway_cluster(), gateway_hook(Cilium::default()));
    let exec = gateway_exec("172.18.0.240", false);
    let outside = ScriptedOutside::like(exec.clone(), NS);
    let run = run_suite_from(
        &client,
        exec.clone(),
        Some(outside.clone()),
        suites::gateway_api::NAME,
        &ctx_outside(2, None),
        &all(),
        &fast_options("r1"),
    )
    .await;
    assert_eq!(run.checks.len(), 13);
    // North-south: the same requests, from the outside client to the external address, each
    // reported as its own check.
    for check in [
        "path-prefix-routing-from-outside",
        "hostname-match-from-outside",
        "weighted-backends-from-outside",
    ] {
        let c = run.checks.iter().find(|c| c.check == check).unwrap();
        let t = c.transcript.render();
        assert!(
            t.starts_with(
                "# requests go to 172.18.0.240:80, the Gateway harness-gw status.addresses[0]\n"
            ),
            "{check}: {t}"
        );
        assert!(
            t.contains(&format!(
                "gateway-api/{check}:curl: outside h1-outside (10.5.0.9) -> harness-gw "
            )),
            "{check}: {t}"
        );
        assert!(!t.contains("harness-gateway-api-r1/client"), "{check}: {t}");
    }
    let outside_calls = outside.calls.lock().unwrap();
    assert!(
        outside_calls
            .iter()
            .any(|a| a.last().unwrap() == "http://172.18.0.240:80/v2example")
    );
    assert!(
        outside_calls
            .iter()
            .any(|a| a.join(" ").contains("Host: foo.wildcard.io"))
    );
    drop(outside_calls);
    for c in &run.checks {
        assert!(
            matches!(c.outcome, CheckOutcome::Passed { .. }),
            "{}: {:?}\n{}\nsetup:\n{}",
            c.name(),
            c.outcome,
            c.transcript.render(),
            run.setup.render()
        );
    }
    assert_eq!(
        run.cleanup,
        Cleanup::Deleted {
            namespaces: vec![NS.into()]
        }
    );

    let seen = log.lock().unwrap();
    let posted: Vec<String> = seen
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| {
            format!(
                "{} {}",
                s.path,
                s.body["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    let p = |kind: &str, name: &str| format!("/api/v1/namespaces/{NS}/{kind} {name}");
    let g = |kind: &str, name: &str| format!("{GW_PATH}/namespaces/{NS}/{kind} {name}");
    assert_eq!(
        posted,
        [
            "/api/v1/namespaces harness-gateway-api-r1".to_string(),
            p("pods", "client"),
            p("pods", "echo-v1"),
            p("pods", "echo-v2"),
            p("pods", "echo-v3"),
            p("services", "echo-v1"),
            p("services", "echo-v2"),
            p("services", "echo-v3"),
            g("gateways", "harness-gw"),
            g("httproutes", "path-prefix"),
            g("httproutes", "exact"),
            g("httproutes", "header"),
            g("httproutes", "hostname-exact"),
            g("httproutes", "hostname-wildcard"),
            g("httproutes", "weights"),
            g("httproutes", "hostname-redirect"),
            g("httproutes", "header-modifier"),
        ]
    );
    let body = |kind: &str, name: &str| {
        seen.iter()
            .find(|s| {
                s.method == "POST" && s.path.ends_with(kind) && s.body["metadata"]["name"] == name
            })
            .unwrap()
            .body
            .clone()
    };
    let gw = body("/gateways", "harness-gw");
    assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(gw["kind"], "Gateway");
    assert_eq!(
        gw["spec"],
        json!({"gatewayClassName": "cilium", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}}]})
    );
    assert!(
        gw.get("status").is_none(),
        "status is the controller's: {gw}"
    );
    assert_eq!(gw["metadata"]["labels"]["io.harness.run-id"], "r1");
    let prefix = body("/httproutes", "path-prefix");
    assert_eq!(
        prefix["spec"],
        json!({"parentRefs": [{"name": "harness-gw"}], "hostnames": ["prefix.example.com"], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": "echo-v1", "port": 8080}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}], "backendRefs": [{"name": "echo-v2", "port": 8080}]}]})
    );
    assert_eq!(
        body("/httproutes", "weights")["spec"]["rules"][0]["backendRefs"],
        json!([{"name": "echo-v1", "port": 8080, "weight": 70}, {"name": "echo-v2", "port": 8080, "weight": 30}, {"name": "echo-v3", "port": 8080, "weight": 0}])
    );
    assert_eq!(
        body("/httproutes", "hostname-redirect")["spec"]["rules"][1],
        json!({"matches": [{"path": {"type": "PathPrefix", "value": "/status-code-301"}}],
               "filters": [{"type": "RequestRedirect", "requestRedirect": {"hostname": "example.org", "statusCode": 301}}]})
    );
    assert_eq!(
        body("/httproutes", "header-modifier")["spec"]["rules"][0]["filters"],
        json!([{"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}],
            "add": [{"name": "X-Header-Add", "value": "add-appends-values"}],
            "remove": ["X-Header-Remove"]}}])
    );
    assert_eq!(
        body("/httproutes", "hostname-wildcard")["spec"]["hostnames"],
        json!(["*.wildcard.io"])
    );
    let echo = body("/pods", "echo-v2");
    let c = &echo["spec"]["containers"][0];
    assert_eq!(c["image"], suites::kit::images::GATEWAY_ECHO);
    assert_eq!(
        c["ports"][0],
        json!({"name": "http", "containerPort": 3000})
    );
    assert_eq!(
        c["env"][0],
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    );
    let svc = body("/services", "echo-v2");
    assert_eq!(svc["spec"]["selector"]["app.kubernetes.io/name"], "echo-v2");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    // The status checks read the cluster-scoped class and watched the namespaced objects.
    assert!(
        seen.iter()
            .any(|s| s.is("GET", &format!("{GW_PATH}/gatewayclasses"))
                && s.param("fieldSelector").as_deref() == Some("metadata.name=cilium"))
    );
    assert!(seen.iter().any(
        |s| s.path == format!("{GW_PATH}/namespaces/{NS}/httproutes")
            && s.param("fieldSelector").as_deref() == Some("metadata.name=weights")
    ));
    drop(seen);

    let calls = exec.calls.lock().unwrap();
    let curls: Vec<String> = calls.iter().map(|(_, a)| a.join(" ")).collect();
    assert!(curls.contains(&"curl --silent --show-error --connect-timeout 2 --max-time 10 --dump-header - -H Host: prefix.example.com http://172.18.0.240:80/v2example".to_string()), "{curls:#?}");
    assert!(
        curls
            .iter()
            .any(|c| c.ends_with("-H Host: very.specific.com:1234 http://172.18.0.240:80/"))
    );
    assert!(curls.iter().any(|c| {
        c.ends_with("-H Host: header.example.com -H version: two http://172.18.0.240:80/")
    }));
    assert_eq!(
        calls.iter().filter(|(_, a)| a[0] == "/bin/sh").count(),
        10,
        "ten batches of 20 for the split"
    );

    let t = run
        .checks
        .iter()
        .find(|c| c.check == "path-prefix-routing")
        .unwrap()
        .transcript
        .render();
    assert!(
        t.starts_with(
            "# requests go to 172.18.0.240:80, the Gateway harness-gw status.addresses[0]\n"
        ),
        "{t}"
    );
    assert!(t.contains("gateway-api/path-prefix-routing:curl: harness-gateway-api-r1/client (10.244.1.3) -> harness-gw GET prefix.example.com/v2example (172.18.0.240:80)\n"), "{t}");
    let CheckOutcome::Passed { evidence } = outcome(&run, "weighted-backends") else {
        unreachable!()
    };
    assert!(
        evidence.starts_with("echo-v1 140/200 (70.0%, weight 70 -> 70%), echo-v2 60/200 (30.0%"),
        "{evidence}"
    );
    // 10 batches of 20, each exec bounded by 20 x curl's --max-time (10s) plus the exec bound.
    let bounds = exec.bounds.lock().unwrap();
    assert_eq!(bounds.len(), 10, "{bounds:?}");
    for (argv, bound) in bounds.iter() {
        assert!(argv[2].contains("while [ $i -lt 20 ]"), "{}", argv[2]);
        assert_eq!(*bound, std::time::Duration::from_secs(20 * 10 + 30));
    }
    let CheckOutcome::Passed { evidence } = outcome(&run, "redirect") else {
        unreachable!()
    };
    assert!(
        evidence.contains("HTTP 301 Location http://example.org/status-code-301"),
        "{evidence}"
    );
}

#[tokio::test]
async fn a_pending_load_balancer_fails_programmed_and_traffic_goes_to_the_gateway_service_clusterip()
 {
    let cilium = Cilium {
        lb_address: false,
        ..Cilium::default()
    };
    let (client, _) = cluster(gateway_cluster(), gateway_hook(cilium));
    let filter = CheckFilter::new(
        &[],
        &[
            "gateway-api::gateway-programmed".into(),
            "gateway-api::path-prefix-routing".into(),
            "gateway-api::path-prefix-routing-from-outside".into(),
        ],
    )
    .unwrap();
    let exec = gateway_exec("10.96.40.2", false);
    let outside = ScriptedOutside::like(exec.clone(), NS);
    let run = run_suite_from(
        &client,
        exec,
        Some(outside.clone()),
        suites::gateway_api::NAME,
        &ctx_outside(2, None),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let names: Vec<&str> = run.checks.iter().map(|c| c.check).collect();
    assert_eq!(
        names,
        [
            "gateway-programmed",
            "path-prefix-routing",
            "path-prefix-routing-from-outside"
        ]
    );
    // From outside there is no ClusterIP to fall back on: the check says what is missing and
    // sends nothing.
    let CheckOutcome::Error { message } = outcome(&run, "path-prefix-routing-from-outside") else {
        panic!("{:?}", run.checks[2].outcome)
    };
    assert!(message.starts_with("an external address of Gateway harness-gateway-api-r1/harness-gw is missing: its status.addresses is empty (the LoadBalancer address of Service cilium-gateway-harness-gw is pending"), "{message}");
    assert!(outside.calls.lock().unwrap().is_empty());
    let CheckOutcome::Failed { message } = outcome(&run, "gateway-programmed") else {
        panic!("{:?}", run.checks[0].outcome)
    };
    // The Service is a LoadBalancer without an address and without LB IPAM's condition: the
    // advice is about the missing load balancer, from what was seen of the Service.
    assert!(message.starts_with("Gateway harness-gw: not programmed: Programmed=False (AddressNotAssigned: Gateway waiting for address); Service cilium-gateway-harness-gw is a LoadBalancer with no address and no LB IPAM condition"), "{message}");
    assert!(
        run.checks[0].transcript.render().starts_with("# timed out after 0.50s waiting for Gateway harness-gateway-api-r1/harness-gw to be Programmed"),
        "{}",
        run.checks[0].transcript.render()
    );
    let CheckOutcome::Passed { evidence } = outcome(&run, "path-prefix-routing") else {
        panic!("{:?}", run.checks[1].outcome)
    };
    assert!(evidence.ends_with("(via 10.96.40.2:80, the ClusterIP of Service cilium-gateway-harness-gw (Gateway status.addresses is empty: the LoadBalancer address is pending))"), "{evidence}");
    assert!(run.checks[1].transcript.render().starts_with(
        "# requests go to 10.96.40.2:80, the ClusterIP of Service cilium-gateway-harness-gw"
    ));
    // A failing check keeps nothing by default: the namespace goes.
    assert!(matches!(run.cleanup, Cleanup::Deleted { .. }));
}

#[tokio::test]
async fn a_segment_blind_path_prefix_fails_naming_the_request_and_the_rule() {
    let (client, _) = cluster(gateway_cluster(), gateway_hook(Cilium::default()));
    let run = run_suite_with(
        &client,
        gateway_exec("172.18.0.240", true),
        suites::gateway_api::NAME,
        &ctx(2, None),
        &only("gateway-api::path-prefix-routing"),
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Failed { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(
        message.starts_with("GET prefix.example.com/v2example: got HTTP 200 from echo-v2 (path /v2example), expected HTTP 200 from echo-v1: the request matched the wrong rule ["),
        "{message}"
    );
    assert!(
        message.contains("\nPathPrefix matches whole path segments"),
        "{message}"
    );
    assert!(
        !message.contains("GET prefix.example.com/v2:"),
        "passing requests stay out: {message}"
    );
}

#[tokio::test]
async fn an_unresolved_backend_and_a_missing_gatewayclass_fail_with_their_reasons() {
    let cilium = Cilium {
        unresolved: &["weights"],
        class: false,
        ..Cilium::default()
    };
    let (client, log) = cluster(gateway_cluster(), gateway_hook(cilium));
    let filter = CheckFilter::new(
        &[],
        &[
            "gateway-api::gatewayclass-accepted".into(),
            "gateway-api::httproute-accepted".into(),
        ],
    )
    .unwrap();
    let run = run_suite_with(
        &client,
        gateway_exec("172.18.0.240", false),
        suites::gateway_api::NAME,
        &ctx(2, None),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Failed { message } = outcome(&run, "gatewayclass-accepted") else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(
        message.starts_with("GatewayClass cilium does not exist"),
        "{message}"
    );
    let CheckOutcome::Failed { message } = outcome(&run, "httproute-accepted") else {
        panic!("{:?}", run.checks[1].outcome)
    };
    assert_eq!(
        message,
        "HTTPRoute weights: ResolvedRefs=False (BackendNotFound: services \"echo-v9\" not found): a backendRef names a Service that does not exist in the route's namespace"
    );
    // The wait that timed out names the conditions it last saw, not just that it timed out.
    let t = run.checks[1].transcript.render();
    assert!(
        t.contains("waiting for HTTPRoute harness-gateway-api-r1/weights to be Accepted with ResolvedRefs; last seen: parent harness-gw (controller io.cilium/gateway-controller): Accepted=True (Accepted: Accepted HTTPRoute); ResolvedRefs=False (BackendNotFound: services \"echo-v9\" not found)"),
        "{t}"
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|s| s.is("GET", &format!("{GW_PATH}/gatewayclasses/cilium")))
    );
}

#[tokio::test]
async fn without_gateway_api_in_the_values_the_suite_is_skipped_and_touches_nothing() {
    let (client, log) =
        common::serve(|s| panic!("no request expected, got {} {}", s.method, s.path));
    let mut c = ctx(2, None);
    c.features.gateway_api = false;
    let exec = gateway_exec("172.18.0.240", false);
    let run = run_suite_with(
        &client,
        exec.clone(),
        suites::gateway_api::NAME,
        &c,
        &all(),
        &fast_options("r1"),
    )
    .await;
    assert_eq!(run.checks.len(), 13);
    for ch in &run.checks {
        assert_eq!(
            ch.outcome,
            CheckOutcome::Skipped {
                reason: "gatewayAPI.enabled is not true in the values".into()
            }
        );
    }
    assert_eq!(run.cleanup, Cleanup::NothingCreated);
    assert!(log.lock().unwrap().is_empty());
    assert!(exec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_gateway_listener_counting_too_few_routes_fails_and_the_wait_names_it() {
    let cilium = Cilium {
        attached: 7,
        ..Cilium::default()
    };
    let (client, _) = cluster(gateway_cluster(), gateway_hook(cilium));
    let run = run_suite_with(
        &client,
        gateway_exec("172.18.0.240", false),
        suites::gateway_api::NAME,
        &ctx(2, None),
        &only("gateway-api::gateway-programmed"),
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Failed { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(
        message.starts_with("Gateway harness-gw: listener http has 7 attached route(s), expected at least the 8 HTTPRoutes the suite attached"),
        "{message}"
    );
    let t = run.checks[0].transcript.render();
    assert!(
        t.contains("; last seen: Accepted=True (Accepted: Gateway successfully scheduled); Programmed=True (Programmed: Gateway Programmed); 1 address(es); listener http: 7 attached route(s), Accepted=True (Accepted: Listener Accepted), Programmed=True (Programmed: Listener Programmed)"),
        "{t}"
    );
}

#[tokio::test]
async fn a_stalled_weighted_batch_fails_with_the_samples_taken_before_it() {
    let (client, _) = cluster(gateway_cluster(), gateway_hook(Cilium::default()));
    let run = run_suite_with(
        &client,
        gateway_exec_stalling("172.18.0.240", false, Some(4)),
        suites::gateway_api::NAME,
        &ctx(2, None),
        &only("gateway-api::weighted-backends"),
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Failed { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert_eq!(
        message,
        "60 of 200 requests got an answer from a backend; the batches stopped after 60 of 200 requests: batch 4 of 10: exec \"/bin/sh\" in harness-gateway-api-r1/client: did not finish within 230s (the exec bound); every request through a weighted route must reach one of its backends"
    );
    let t = run.checks[0].transcript.render();
    assert!(
        t.contains("# 60 of 200 weighted requests sent in batches of 20; stopped at batch 4 of 10"),
        "{t}"
    );
}
