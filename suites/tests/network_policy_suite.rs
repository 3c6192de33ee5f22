//! The network-policy suite: its policies against the CRD schemas and Kubernetes' type, its
//! reply and flow parsing on the fixtures, and whole runs against a fake API server whose
//! scripted datapath enforces the policies currently applied, including the removal of every
//! policy when a check fails, errors or is interrupted.

mod common;

use common::{
    Cluster, Policies, Seen, agent_pod, api_writes, cluster, ctx, fast_options, fixture,
    fixture_json, out, policy_api, until_removed,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use suites::kit::hubble;
use suites::kit::policy::Kind;
use suites::kit::{ExecOutput, Executor, KitError, PodRef};
use suites::network_policy::objects::{self, Scope};
use suites::network_policy::observe::{curl_argv, parse_reply};
use suites::{CheckFilter, CheckOutcome, Cleanup, run_suite_with};

const NS: &str = "harness-network-policy-r1";
const REMOTE: &str = "harness-network-policy-r1-remote";
const UID: &str = "5d0e3c1a-9b8f-4e2d-a6c7-1f0b9e8d7c6a";

fn scope() -> Scope {
    Scope {
        namespace: NS.into(),
        remote_namespace: REMOTE.into(),
        namespace_uid: UID.into(),
        labels: BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".into(),
                "talos-cilium-harness".into(),
            ),
            ("io.harness.run-id".into(), "r1".into()),
            ("io.harness.suite".into(), "network-policy".into()),
        ]),
    }
}

fn schema(file: &str) -> jsonschema::Validator {
    let path = format!(
        "{}/../../shared/schemas/cilium-crds/jsonschema-crds-catalog/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let s: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&s).unwrap()
}

fn errors(v: &jsonschema::Validator, o: &Value) -> Vec<String> {
    v.iter_errors(o)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Every policy the suite applies is valid for its CRD's schema (Cilium 1.18) or, for
/// Kubernetes NetworkPolicies, reads back unchanged through k8s-openapi's type.
#[test]
fn every_policy_is_valid_for_its_schema() {
    let cnp = schema("ciliumnetworkpolicy_v2.json");
    let ccnp = schema("ciliumclusterwidenetworkpolicy_v2.json");
    let policies = objects::all(&scope(), "one.one.one.one");
    assert_eq!(policies.len(), 10);
    for p in &policies {
        match p.kind {
            Kind::CiliumNetworkPolicy => {
                assert!(
                    errors(&cnp, &p.body).is_empty(),
                    "{}: {:?}",
                    p.name,
                    errors(&cnp, &p.body)
                );
                assert!(
                    !cnp.is_valid(&json!({"spec": p.body["spec"]})),
                    "metadata is required"
                );
            }
            Kind::CiliumClusterwideNetworkPolicy => {
                assert!(
                    errors(&ccnp, &p.body).is_empty(),
                    "{}: {:?}",
                    p.name,
                    errors(&ccnp, &p.body)
                );
                assert_eq!(p.body["metadata"]["ownerReferences"][0]["uid"], UID);
                assert!(p.namespace.is_none());
            }
            Kind::NetworkPolicy => {
                let typed: k8s_openapi::api::networking::v1::NetworkPolicy =
                    serde_json::from_value(p.body.clone()).unwrap();
                let mut back = serde_json::to_value(&typed).unwrap();
                back["apiVersion"] = json!("networking.k8s.io/v1");
                back["kind"] = json!("NetworkPolicy");
                assert_eq!(back, p.body, "{}", p.name);
            }
        }
        assert_eq!(p.body["kind"], p.kind.as_str());
        assert_eq!(p.body["metadata"]["name"], p.name);
    }
    // The schema does check: a rule of the wrong type is refused.
    let mut bad = objects::l4_port(&scope()).body;
    bad["spec"]["ingress"] = json!({"fromEndpoints": []});
    assert!(!cnp.is_valid(&bad));
    // The policy-status fixtures are CRD-valid objects too.
    for f in [
        "ciliumnetworkpolicy-valid.json",
        "ciliumnetworkpolicy-invalid-mutual-auth.json",
    ] {
        assert!(errors(&cnp, &fixture_json(f)).is_empty(), "{f}");
    }
}

#[test]
fn replies_keep_envoys_body_and_the_status_line() {
    let r = parse_reply(&common::fixture_out("curl-envoy-403-access-denied.txt", 0).unwrap());
    assert_eq!((r.http_code, r.body.trim()), (403, "Access denied"));
    assert_eq!(r.remote.as_deref(), Some("10.244.2.7:8080"));
    let r = parse_reply(&common::fixture_out("curl-timeout-28.txt", 28).unwrap());
    assert_eq!((r.http_code, r.body.as_str(), r.remote), (0, "", None));
    let a = curl_argv("https://10.96.0.1:443/version", "GET", true);
    assert_eq!(
        a.join(" "),
        "curl --silent --show-error --connect-timeout 2 --max-time 10 --request GET --write-out \\n%{http_code} %{remote_ip}:%{remote_port} --insecure https://10.96.0.1:443/version"
    );
}

#[test]
fn flows_are_read_from_jsonpb_lines() {
    let f = hubble::parse(&fixture("hubble-observe-dropped-policy-deny.jsonl")).unwrap();
    assert_eq!(f.len(), 1);
    assert!(f[0].is_policy_drop());
    assert_eq!(
        f[0].describe(),
        "DROPPED POLICY_DENY harness-network-policy-r1/client-other (10.244.1.9):44916 -> harness-network-policy-r1/server (10.244.2.7):8080 TCP denied by CiliumNetworkPolicy deny-client-other on default/w2 at 2026-11-30T07:12:18.510175415Z"
    );
    let f = hubble::parse(&fixture(
        "hubble-observe-dropped-ct-map-insertion-failed.jsonl",
    ))
    .unwrap();
    assert!(!f[0].is_policy_drop());
    assert_eq!(
        hubble::observe_argv(&hubble::Query {
            from_pod: Some(format!("{NS}/client")),
            to_pod: None,
            verdict: Some("DROPPED"),
            server: None,
        })
        .join(" "),
        "hubble observe --output jsonpb --last 200 --verdict DROPPED --from-pod harness-network-policy-r1/client"
    );
}

/// The policies the fake API server holds, by name; the datapath reads them.
type Active = Policies;

fn pod_ip(name: &str) -> &'static str {
    match name {
        "server" => "10.244.2.7",
        "server-b" => "10.244.2.8",
        "client" => "10.244.1.5",
        "client-other" => "10.244.1.9",
        "client-remote" => "10.244.1.11",
        _ => "10.244.9.9",
    }
}

fn np_cluster() -> Cluster {
    let mut c = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    for (p, node) in [
        ("server", "w2"),
        ("server-b", "w2"),
        ("client", "w1"),
        ("client-other", "w1"),
        ("client-remote", "w1"),
    ] {
        c.place(p, node, pod_ip(p), true);
    }
    for (pod, node) in [("cilium-4xk8f", "w1"), ("cilium-9qz7m", "w2")] {
        c.objects.insert(
            ("pods".into(), "kube-system".into(), pod.into()),
            agent_pod(pod, node),
        );
    }
    c
}

/// Serves the namespaces' uids and the policy APIs; with `refuse`, creating that policy fails.
fn api(active: Active, refuse: Option<&'static str>) -> (kube::Client, common::Log) {
    cluster(np_cluster(), move |s: &Seen, state: &mut Cluster| {
        policy_api(s, state, &active, UID, refuse)
    })
}

fn posted(log: &common::Log, name: &str) -> Value {
    log.lock()
        .unwrap()
        .iter()
        .find(|s| s.method == "POST" && s.body["metadata"]["name"] == name)
        .unwrap()
        .body
        .clone()
}

/// A GetFlowsResponse line like the fixture's, for a drop that happens now.
fn drop_flow(from: &str, to_ip: &str, port: u32) -> String {
    let now = k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
        .unwrap()
        .to_string();
    let mut v: Value =
        serde_json::from_str(fixture("hubble-observe-dropped-policy-denied.jsonl").trim()).unwrap();
    let f = &mut v["flow"];
    f["time"] = json!(now);
    f["source"]["pod_name"] = json!(from);
    f["IP"]["source"] = json!(pod_ip(from));
    f["IP"]["destination"] = json!(to_ip);
    f["l4"]["TCP"]["destination_port"] = json!(port);
    v.to_string()
}

/// The datapath: what curl gets, given the policies in force (`enforce` false: none take effect).
fn datapath(active: Active, enforce: bool) -> Arc<common::ScriptedExec> {
    common::ScriptedExec::new(move |pod, argv| {
        let active = active.lock().unwrap();
        let on = |n: &str| enforce && active.keys().any(|k| k.ends_with(n));
        match argv[0].as_str() {
            "curl" => {
                let url = argv.last().unwrap().as_str();
                let method = argv
                    .iter()
                    .skip_while(|a| *a != "--request")
                    .nth(1)
                    .unwrap();
                let from = pod.name.as_str();
                let to_server = url.contains("10.244.2.7:") || url.contains("//server.");
                let ok = |remote: &str| out(0, &format!("[]\n200 {remote}"), "");
                let dropped = || common::fixture_out("curl-timeout-28.txt", 28);
                let external = url.starts_with("https://one.one.one.one");
                let api = url.starts_with("https://10.96.0.1:443");
                let refused = (on("deny-all-ingress") && to_server && from != "client")
                    || (on("allow-port-8080") && url.contains(":8081"))
                    || (on("-clusterwide") && to_server && from != "client-remote")
                    || (on("entity-kube-apiserver") && !api)
                    || (on("entity-cluster") && external)
                    || (on("entity-world") && !external)
                    || (on("allow-one-name") && !external && !url.contains("//server."))
                    || (on("deny-client-other") && from == "client-other");
                if on("allow-get-public")
                    && to_server
                    && !(method == "GET" && url.ends_with("/public"))
                {
                    return common::fixture_out("curl-envoy-403-access-denied.txt", 0);
                }
                if refused {
                    return dropped();
                }
                if api {
                    return ok("10.5.0.2:6443");
                }
                if external {
                    return ok("1.1.1.1:443");
                }
                ok("10.244.2.7:8080")
            }
            "hubble" => {
                let arg = |flag: &str| argv.iter().skip_while(|a| *a != flag).nth(1).cloned();
                let from = arg("--from-pod").unwrap();
                let from = from.rsplit('/').next().unwrap();
                let to = arg("--to-pod").map(|p| pod_ip(p.rsplit('/').next().unwrap()).to_string());
                let lines: Vec<String> = [8080, 8081, 443]
                    .iter()
                    .map(|port| drop_flow(from, to.as_deref().unwrap_or("1.1.1.1"), *port))
                    .collect();
                out(0, &lines.join("\n"), "")
            }
            other => panic!("unexpected command {other}"),
        }
    })
}

fn hubble_ctx() -> suites::RunContext {
    let mut c = ctx(2, Some("one.one.one.one"));
    c.features.hubble = true;
    c
}

fn all() -> CheckFilter {
    CheckFilter::new(&[], &[]).unwrap()
}

#[tokio::test]
async fn every_check_passes_where_policies_are_enforced_and_each_policy_goes_afterwards() {
    let active: Active = Arc::default();
    let (client, log) = api(active.clone(), None);
    let exec = datapath(active.clone(), true);
    let run = run_suite_with(
        &client,
        exec.clone(),
        suites::network_policy::NAME,
        &hubble_ctx(),
        &all(),
        &fast_options("r1"),
    )
    .await;
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
    assert_eq!(run.checks.len(), 7);
    assert!(
        active.lock().unwrap().is_empty(),
        "left behind: {:?}",
        active.lock().unwrap().keys()
    );
    assert_eq!(
        run.cleanup,
        Cleanup::Deleted {
            namespaces: vec![NS.into(), REMOTE.into()]
        }
    );
    let reqs = api_writes(&log);
    let cnp = format!("/apis/cilium.io/v2/namespaces/{NS}/ciliumnetworkpolicies");
    let np = format!("/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies");
    let ccnp = "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies";
    assert_eq!(
        reqs,
        [
            format!("POST {np}"),
            format!("POST {np}"),
            format!("DELETE {np}/allow-client-to-server"),
            format!("DELETE {np}/deny-all-ingress"),
            format!("POST {cnp}"),
            format!("DELETE {cnp}/allow-port-8080"),
            format!("POST {cnp}"),
            format!("DELETE {cnp}/allow-get-public"),
            format!("POST {ccnp}"),
            format!("DELETE {ccnp}/{NS}-clusterwide"),
            format!("POST {cnp}"),
            format!("DELETE {cnp}/entity-kube-apiserver"),
            format!("POST {cnp}"),
            format!("DELETE {cnp}/entity-cluster"),
            format!("POST {cnp}"),
            format!("DELETE {cnp}/entity-world"),
            format!("POST {cnp}"),
            format!("DELETE {cnp}/allow-one-name"),
            format!("POST {cnp}"),
            format!("DELETE {cnp}/deny-client-other"),
        ]
    );
    let by = |n: &str| run.checks.iter().find(|c| c.check == n).unwrap();
    let CheckOutcome::Passed { evidence } = &by("deny-wins").outcome else {
        unreachable!()
    };
    assert!(evidence.contains("client-other -> server (10.244.2.7:8080) GET / under CiliumNetworkPolicy harness-network-policy-r1/deny-client-other: dropped"), "{evidence}");
    assert!(
        evidence.contains(
            "Hubble: DROPPED POLICY_DENIED harness-network-policy-r1/client-other (10.244.1.9)"
        ),
        "{evidence}"
    );
    let t = by("l7-http").transcript.render();
    assert!(
        t.contains("applied CiliumNetworkPolicy harness-network-policy-r1/allow-get-public"),
        "{t}"
    );
    assert!(
        t.contains("removed CiliumNetworkPolicy harness-network-policy-r1/allow-get-public"),
        "{t}"
    );
    // Hubble was asked on both nodes for a cross-node drop, and the FQDN rule names the external target.
    let calls = exec.calls.lock().unwrap();
    assert!(
        calls
            .iter()
            .any(|(p, a)| p == "kube-system/cilium-9qz7m" && a[0] == "hubble")
    );
    assert!(
        calls
            .iter()
            .any(|(p, a)| p == "kube-system/cilium-4xk8f" && a[0] == "hubble")
    );
    let fqdn = posted(&log, "allow-one-name");
    assert_eq!(
        fqdn["spec"]["egress"][1]["toFQDNs"][0]["matchName"],
        "one.one.one.one"
    );
}

#[tokio::test]
async fn policies_that_do_not_take_effect_fail_their_checks_and_are_removed_all_the_same() {
    let active: Active = Arc::default();
    let (client, log) = api(active.clone(), None);
    let mut c = ctx(2, None);
    c.features.hubble = false;
    let run = run_suite_with(
        &client,
        datapath(active.clone(), false),
        suites::network_policy::NAME,
        &c,
        &all(),
        &fast_options("r1"),
    )
    .await;
    for c in &run.checks {
        let CheckOutcome::Failed { message } = &c.outcome else {
            panic!("{}: {:?}", c.name(), c.outcome)
        };
        assert!(
            message.contains("not refused: HTTP 200"),
            "{}: {message}",
            c.name()
        );
    }
    assert!(active.lock().unwrap().is_empty());
    let deletes = api_writes(&log)
        .iter()
        .filter(|r| r.starts_with("DELETE"))
        .count();
    // Without an external target the world entity is not probed: 9 policies.
    assert_eq!(deletes, 9);
    // Without egress the FQDN rule names the server's headless Service.
    let fqdn = posted(&log, "allow-one-name");
    assert_eq!(
        fqdn["spec"]["egress"][1]["toFQDNs"][0]["matchName"],
        "server.harness-network-policy-r1.svc.cluster.local"
    );
}

#[tokio::test]
async fn a_check_that_errors_half_way_removes_what_it_applied() {
    let active: Active = Arc::default();
    let (client, log) = api(active.clone(), Some("allow-client-to-server"));
    let filter = CheckFilter::new(&[], &["network-policy::default-deny-ingress".into()]).unwrap();
    let run = run_suite_with(
        &client,
        datapath(active.clone(), true),
        suites::network_policy::NAME,
        &ctx(2, None),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Error { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(
        message.contains("create NetworkPolicy harness-network-policy-r1/allow-client-to-server"),
        "{message}"
    );
    until_removed(&active).await;
    assert!(api_writes(&log).contains(&format!(
        "DELETE /apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies/deny-all-ingress"
    )));
}

/// An executor that never answers a curl to the server's second port: a probe stuck mid-check.
struct Stuck(Arc<common::ScriptedExec>);

impl Executor for Stuck {
    fn exec<'a>(
        &'a self,
        pod: &'a PodRef,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        if argv.last().is_some_and(|u| u.contains(":8081")) {
            return Box::pin(futures::future::pending());
        }
        self.0.exec(pod, argv)
    }
}

#[tokio::test]
async fn an_interrupted_run_removes_the_policy_in_force() {
    let active: Active = Arc::default();
    let (client, _log) = api(active.clone(), None);
    let exec = Arc::new(Stuck(datapath(active.clone(), true)));
    let filter = CheckFilter::new(&[], &["network-policy::l4-port".into()]).unwrap();
    let task = tokio::spawn(async move {
        run_suite_with(
            &client,
            exec,
            suites::network_policy::NAME,
            &ctx(2, None),
            &filter,
            &fast_options("r1"),
        )
        .await
    });
    for _ in 0..200 {
        if active.lock().unwrap().contains_key("allow-port-8080") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        active.lock().unwrap().contains_key("allow-port-8080"),
        "the check never applied its policy"
    );
    // What the engine does on SIGINT: it drops the suite's future.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    until_removed(&active).await;
}
