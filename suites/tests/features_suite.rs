//! The features suite: its policies against the CRD schema, the agents' JSON read on the
//! fixtures, applicability from the values (BBR and legacy host routing), and whole runs
//! against a fake API server with scripted agents and a datapath that enforces the host policy
//! while it is applied.

mod common;

use common::{
    Cluster, Policies, Reply, ScriptedExec, agent_pod, api_writes, cluster, ctx, fast_options,
    fixture, fixture_json, fixture_out, out, policy_api, until_removed,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use suites::features::model::{parse_bandwidth, parse_services, parse_status};
use suites::features::objects;
use suites::network_policy::objects::Scope;
use suites::{Applicability, CheckFilter, CheckOutcome, Cleanup, run_suite_with};

const NS: &str = "harness-features-r1";
const UID: &str = "8e2f4a6c-0b1d-4e3f-9a5b-7c6d8e0f1a2b";

fn scope() -> Scope {
    Scope {
        namespace: NS.into(),
        remote_namespace: String::new(),
        namespace_uid: UID.into(),
        labels: BTreeMap::from([("io.harness.run-id".into(), "r1".into())]),
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

#[test]
fn the_suites_policies_and_the_endpoint_fixture_are_valid_for_their_crd_schemas() {
    let ccnp = schema("ciliumclusterwidenetworkpolicy_v2.json");
    let cnp = schema("ciliumnetworkpolicy_v2.json");
    let host = objects::host_firewall(&scope(), "w2");
    let errors: Vec<String> = ccnp
        .iter_errors(&host.body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        host.body["spec"]["nodeSelector"]["matchLabels"]["kubernetes.io/hostname"],
        "w2"
    );
    assert_eq!(host.body["metadata"]["ownerReferences"][0]["uid"], UID);
    let auth = objects::mutual_auth(&scope());
    let errors: Vec<String> = cnp.iter_errors(&auth.body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut bad = auth.body.clone();
    bad["spec"]["ingress"][0]["authentication"]["mode"] = json!("sometimes");
    assert!(
        !cnp.is_valid(&bad),
        "the schema checks the authentication mode"
    );
    let cep = schema("ciliumendpoint_v2.json");
    let errors: Vec<String> = cep
        .iter_errors(&fixture_json("ciliumendpoint-shaped.json"))
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn the_agents_json_is_read_as_the_api_model_has_it() {
    let st = parse_status(&fixture("cilium-dbg-status-kpr-bandwidth-bbr.json")).unwrap();
    assert_eq!(st.kube_proxy_replacement.as_deref(), Some("True"));
    assert!(st.bandwidth_enabled);
    assert_eq!(st.congestion_control.as_deref(), Some("bbr"));
    assert_eq!(st.bandwidth_devices, ["eth0"]);
    let svcs = parse_services(&fixture("cilium-dbg-service-list.json")).unwrap();
    assert_eq!(svcs[1].frontend, "10.96.12.11:8080");
    assert_eq!(svcs[1].backends, ["10.244.2.9:8080"]);
    assert_eq!(svcs[1].kind, "ClusterIP");
    assert_eq!(
        parse_bandwidth(&fixture("cilium-dbg-bpf-bandwidth-list.json")).unwrap(),
        [("1843, 0".to_string(), "1250000, 0".to_string())]
    );
    assert!(parse_status("[]").is_err());
    assert!(parse_services("{}").is_err());
}

fn all_on() -> suites::RunContext {
    let mut c = ctx(2, None);
    let f = &mut c.features;
    f.hubble = true;
    f.hubble_relay = true;
    f.hubble_ui = true;
    f.bandwidth_manager = true;
    f.bbr = true;
    f.host_firewall = true;
    f.mutual_auth_spire = true;
    f.host_legacy_routing = false;
    c
}

#[test]
fn each_check_applies_exactly_where_the_values_turn_its_feature_on() {
    let suite = suites::catalog::suite(suites::features::NAME);
    let on = all_on();
    for c in suite.checks {
        assert!(suite.check_applicability(c, &on).applies(), "{}", c.name);
    }
    let mut off = ctx(2, None);
    off.features.kube_proxy_replacement = false;
    for c in suite.checks {
        assert!(!suite.check_applicability(c, &off).applies(), "{}", c.name);
    }
    // The Talos-in-Docker overlay's legacy host routing takes BBR out, and says why.
    let mut docker = all_on();
    docker.features.host_legacy_routing = true;
    let bbr = suite.check("bbr-congestion-control").unwrap();
    let Applicability::Skipped(why) = suite.check_applicability(bbr, &docker) else {
        panic!("BBR applies with legacy host routing")
    };
    assert!(
        why.starts_with("bpf.hostLegacyRouting=true: BBR for pods needs BPF host routing"),
        "{why}"
    );
    let limit = suite.check("bandwidth-limit").unwrap();
    assert!(suite.check_applicability(limit, &docker).applies());
}

const RELAY: &str = "10.96.40.2";
const UI: &str = "10.96.33.21";

fn features_cluster() -> Cluster {
    let mut c = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    c.place("client", "w1", "10.244.1.5", true);
    c.place("echo", "w2", "10.244.2.9", true);
    c.place("shaped", "w2", "10.244.2.14", true);
    c.place("host-echo", "w2", "10.5.0.4", true);
    for (pod, node) in [("cilium-4xk8f", "w1"), ("cilium-9qz7m", "w2")] {
        c.objects.insert(
            ("pods".into(), "kube-system".into(), pod.into()),
            agent_pod(pod, node),
        );
    }
    for (name, ip) in [("hubble-relay", RELAY), ("hubble-ui", UI)] {
        c.objects.insert(
            ("services".into(), "kube-system".into(), name.into()),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "kube-system"},
                   "spec": {"clusterIP": ip, "ports": [{"port": 80, "protocol": "TCP"}]}}),
        );
    }
    c
}

fn api(policies: Policies) -> (kube::Client, common::Log) {
    cluster(features_cluster(), move |s, state| {
        if let Some(r) = policy_api(s, state, &policies, UID, None) {
            return Some(r);
        }
        match (s.method.as_str(), s.path.as_str()) {
            ("GET", "/api/v1/namespaces/kube-system/pods")
                if s.param("labelSelector").as_deref() == Some("k8s-app=kube-proxy") =>
            {
                Some(Reply::Json(
                    200,
                    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "9"}, "items": []}),
                ))
            }
            ("GET", p)
                if p == format!("/apis/cilium.io/v2/namespaces/{NS}/ciliumendpoints/shaped") =>
            {
                Some(Reply::Json(200, fixture_json("ciliumendpoint-shaped.json")))
            }
            _ => None,
        }
    })
}

/// The relay's flow for the client's connection, stamped now.
fn relay_flow() -> String {
    let now = k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
        .unwrap()
        .to_string();
    let mut v: Value =
        serde_json::from_str(fixture("hubble-observe-forwarded-relay.jsonl").trim()).unwrap();
    v["flow"]["time"] = json!(now);
    v.to_string()
}

/// The host firewall's drop of the client's connection to the node, stamped now.
fn host_drop() -> String {
    let now = k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(1))
        .unwrap()
        .to_string();
    let mut v: Value =
        serde_json::from_str(fixture("hubble-observe-dropped-policy-deny.jsonl").trim()).unwrap();
    let f = &mut v["flow"];
    f["time"] = json!(now);
    f["source"] = json!({"namespace": NS, "pod_name": "client"});
    f["destination"] = json!({});
    f["IP"]["source"] = json!("10.244.1.5");
    f["IP"]["destination"] = json!("10.5.0.4");
    f["l4"]["TCP"]["destination_port"] = json!(39080);
    v.to_string()
}

/// Agents that answer from the fixtures; a datapath that drops the host port while a host
/// policy is applied (`enforce`).
fn agents_and_datapath(policies: Policies, enforce: bool) -> Arc<ScriptedExec> {
    ScriptedExec::new(move |_pod, argv| {
        let cmd = argv.join(" ");
        match argv[0].as_str() {
            "cilium-dbg" if cmd == "cilium-dbg status -o json" => {
                out(0, &fixture("cilium-dbg-status-kpr-bandwidth-bbr.json"), "")
            }
            "cilium-dbg" if cmd == "cilium-dbg service list -o json" => {
                out(0, &fixture("cilium-dbg-service-list.json"), "")
            }
            "cilium-dbg" if cmd == "cilium-dbg bpf bandwidth list -o json" => {
                out(0, &fixture("cilium-dbg-bpf-bandwidth-list.json"), "")
            }
            "hubble" if cmd.contains(&format!("--server {RELAY}:80")) => out(0, &relay_flow(), ""),
            "hubble" => out(0, &host_drop(), ""),
            "curl" => {
                let url = argv.last().unwrap();
                let host_policy = enforce
                    && policies
                        .lock()
                        .unwrap()
                        .keys()
                        .any(|k| k.ends_with("-host-port"));
                if url.starts_with(&format!("http://{UI}:80/")) {
                    fixture_out("curl-hubble-ui-page.txt", 0)
                } else if url.contains("10.5.0.4:39080") && host_policy {
                    fixture_out("curl-timeout-28.txt", 28)
                } else {
                    out(0, "[]\n200 10.244.2.9:8080", "")
                }
            }
            _ => panic!("unexpected command {cmd}"),
        }
    })
}

#[tokio::test]
async fn every_feature_proves_itself_on_a_cluster_that_has_it() {
    let policies: Policies = Arc::default();
    let (client, log) = api(policies.clone());
    let exec = agents_and_datapath(policies.clone(), true);
    let c = all_on();
    let run = run_suite_with(
        &client,
        exec.clone(),
        suites::features::NAME,
        &c,
        &CheckFilter::new(&[], &[]).unwrap(),
        &fast_options("r1"),
    )
    .await;
    for ch in &run.checks {
        assert!(
            matches!(ch.outcome, CheckOutcome::Passed { .. }),
            "{}: {:?}\n{}\nsetup:\n{}",
            ch.name(),
            ch.outcome,
            ch.transcript.render(),
            run.setup.render()
        );
    }
    assert_eq!(run.checks.len(), 7);
    until_removed(&policies).await;
    assert_eq!(
        run.cleanup,
        Cleanup::Deleted {
            namespaces: vec![NS.into()]
        }
    );
    assert_eq!(
        api_writes(&log),
        [
            "POST /apis/cilium.io/v2/ciliumclusterwidenetworkpolicies".to_string(),
            format!("DELETE /apis/cilium.io/v2/ciliumclusterwidenetworkpolicies/{NS}-host-port"),
            format!("POST /apis/cilium.io/v2/namespaces/{NS}/ciliumnetworkpolicies"),
            format!(
                "DELETE /apis/cilium.io/v2/namespaces/{NS}/ciliumnetworkpolicies/require-mutual-auth"
            ),
        ]
    );
    let by = |n: &str| run.checks.iter().find(|c| c.check == n).unwrap();
    let CheckOutcome::Passed { evidence } = &by("hubble-relay-flows").outcome else {
        unreachable!()
    };
    assert!(
        evidence.starts_with(&format!(
            "Hubble Relay at {RELAY}:80 served FORWARDED {NS}/client (10.244.1.5)"
        )),
        "{evidence}"
    );
    let CheckOutcome::Passed { evidence } = &by("host-firewall-port").outcome else {
        unreachable!()
    };
    assert!(evidence.contains("Hubble: DROPPED POLICY_DENY harness-features-r1/client (10.244.1.5):44916 -> 10.5.0.4:39080"), "{evidence}");
    let CheckOutcome::Passed { evidence } = &by("bandwidth-limit").outcome else {
        unreachable!()
    };
    assert!(
        evidence.contains(
            "enforces 10000000 bit/s egress for harness-features-r1/shaped (endpoint 1843)"
        ),
        "{evidence}"
    );
    // The shaped pod carries the annotation the bandwidth manager reads.
    let shaped = log
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.method == "POST" && s.body["metadata"]["name"] == "shaped")
        .unwrap()
        .body
        .clone();
    assert_eq!(
        shaped["metadata"]["annotations"]["kubernetes.io/egress-bandwidth"],
        "10M"
    );
    let host = log
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.method == "POST" && s.body["metadata"]["name"] == "host-echo")
        .unwrap()
        .body
        .clone();
    assert_eq!(host["spec"]["hostNetwork"], true);
    // The agents asked were the ones on the nodes of the pods concerned.
    let calls = exec.calls.lock().unwrap();
    assert!(calls.iter().any(|(p, a)| p == "kube-system/cilium-9qz7m"
        && a.join(" ") == "cilium-dbg bpf bandwidth list -o json"));
    assert!(
        calls
            .iter()
            .any(|(p, a)| p == "kube-system/cilium-4xk8f" && a[0] == "hubble")
    );
}

#[tokio::test]
async fn a_host_policy_that_does_not_hold_fails_and_is_removed_all_the_same() {
    let policies: Policies = Arc::default();
    let (client, _log) = api(policies.clone());
    let filter = CheckFilter::new(&[], &["features::host-firewall-port".into()]).unwrap();
    let run = run_suite_with(
        &client,
        agents_and_datapath(policies.clone(), false),
        suites::features::NAME,
        &all_on(),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Failed { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(message.contains("client -> node w2 (10.5.0.4:39080) GET / under CiliumClusterwideNetworkPolicy harness-features-r1-host-port: not refused: HTTP 200"), "{message}");
    until_removed(&policies).await;
}
