//! The lb-ipam suite: its judges on real-shaped pool and Service fixtures, its pool object
//! against the CRD's JSON schema, and the whole suite against a fake API server that allocates
//! addresses the way Cilium's LB IPAM does.

mod common;

use common::{
    Cluster, Reply, ScriptedOutside, Seen, cluster, ctx, ctx_outside, fast_options, fixture,
    fixture_json, fixture_out, out, status,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use suites::kit::KeepNamespaces;
use suites::kit::{Executor, Verdict};
use suites::lb_ipam::blocks::{block_size, in_block, parse_block, requested_ip};
use suites::lb_ipam::judge::{self, Allocation, Exhaustion, PoolState, SvcState};
use suites::lb_ipam::l2::lease_seen;
use suites::lb_ipam::objects::pool_object;
use suites::lb_ipam::observe::{
    overlapping_blocks, pool_allocates, pool_conditions, selects, svc_state,
};
use suites::{CheckFilter, CheckOutcome, Cleanup, run_suite_from, run_suite_with};

const NS: &str = "harness-lb-ipam-r1";
const BLOCK: &str = "172.31.250.0/29";

fn svc(file: &str) -> SvcState {
    let s: k8s_openapi::api::core::v1::Service =
        serde_json::from_value(fixture_json(file)).unwrap();
    svc_state(&s)
}

fn pool(file: &str) -> PoolState {
    PoolState {
        name: "harness-lb-ipam-r1".into(),
        block: BLOCK.into(),
        conditions: pool_conditions(&fixture_json(file)),
    }
}

fn fail(v: Verdict) -> String {
    assert!(!v.is_pass(), "expected a failure, got {v:?}");
    v.message().to_string()
}

fn run_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            "talos-cilium-harness".to_string(),
        ),
        ("io.harness.run-id".to_string(), "r1".to_string()),
        ("io.harness.suite".to_string(), "lb-ipam".to_string()),
    ])
}

#[test]
fn a_reconciled_pool_passes_and_a_conflicting_one_names_the_overlap() {
    assert_eq!(
        judge::pool(&pool("ciliumloadbalancerippool-ready.json")),
        Verdict::Pass(
            "pool harness-lb-ipam-r1 (172.31.250.0/29): 8 total, 8 available, 0 used, no conflict"
                .into()
        )
    );
    let m = fail(judge::pool(&pool("ciliumloadbalancerippool-conflict.json")));
    assert!(m.contains("cilium.io/PoolConflict=True (cidr_overlap: Pool conflicts since CIDR '172.31.250.0/29' overlaps CIDR '172.31.250.0/28' from IP Pool 'harness-docker-subnet')"), "{m}");
    assert!(m.contains("RunOptions::lb_ipam_block"), "{m}");
    let mut p = pool("ciliumloadbalancerippool-ready.json");
    p.conditions.retain(|c| c.type_ != "cilium.io/IPsUsed");
    assert!(fail(judge::pool(&p)).contains("the operator has not reconciled it"));
    let mut p = pool("ciliumloadbalancerippool-ready.json");
    p.block = "172.31.250.0/30".into();
    assert!(fail(judge::pool(&p)).contains(
        "reports 8 addresses for 172.31.250.0/30 with allowFirstLastIPs=Yes, expected 4"
    ));
}

#[test]
fn allocations_are_judged_on_the_condition_and_the_ingress() {
    let ok = svc("service-lb-satisfied.json");
    assert_eq!(ok.ingress, ["172.31.250.0"]);
    assert_eq!(
        judge::allocation(&Allocation {
            block: BLOCK.into(),
            requested: None,
            service: ok.clone()
        }),
        Verdict::Pass("lb-basic got 172.31.250.0 from the test pool 172.31.250.0/29".into())
    );
    let elsewhere = Allocation {
        block: "10.9.0.0/29".into(),
        requested: None,
        service: ok.clone(),
    };
    assert_eq!(
        fail(judge::allocation(&elsewhere)),
        "lb-basic got 172.31.250.0, outside the test pool 10.9.0.0/29: another pool selects the suite's Services; give every other pool a serviceSelector that excludes io.harness.suite=lb-ipam"
    );
    let m = fail(judge::allocation(&Allocation {
        block: BLOCK.into(),
        requested: Some("172.31.250.7".into()),
        service: ok,
    }));
    assert_eq!(
        m,
        "lb-basic asked for 172.31.250.7 with lbipam.cilium.io/ips but got 172.31.250.0: LB IPAM ignored the annotation"
    );
    let pending = svc("service-lb-out-of-ips.json");
    let m = fail(judge::allocation(&Allocation {
        block: BLOCK.into(),
        requested: None,
        service: pending,
    }));
    assert!(m.starts_with("lb-fill-8: LB IPAM refused it: cilium.io/IPAMRequestSatisfied=False (out_of_ips: All enabled CiliumLoadBalancerIPPools that match this service ran out of allocatable IPs); every pool that selects it is full"), "{m}");
    let silent = SvcState {
        name: "lb-basic".into(),
        ingress: vec![],
        conditions: vec![],
    };
    assert!(
        fail(judge::allocation(&Allocation {
            block: BLOCK.into(),
            requested: None,
            service: silent
        }))
        .contains("LB IPAM never wrote cilium.io/IPAMRequestSatisfied")
    );
}

#[test]
fn sharing_needs_one_address_for_both() {
    let a = svc("service-lb-satisfied.json");
    let mut b = a.clone();
    b.name = "lb-share-b".into();
    assert!(judge::sharing(&vec![a.clone(), b.clone()]).is_pass());
    b.ingress = vec!["172.31.250.1".into()];
    assert!(fail(judge::sharing(&vec![a.clone(), b])).contains("got different addresses (lb-basic [172.31.250.0], lb-share-b [172.31.250.1]): sharing is not honoured"));
    assert!(fail(judge::sharing(&vec![a])).contains("expected two Services, observed 1"));
}

/// A satisfied filler holding `ip`.
fn filler(i: usize, ip: &str) -> SvcState {
    let mut s = svc("service-lb-satisfied.json");
    s.name = format!("lb-fill-{i}");
    s.ingress = vec![ip.into()];
    s
}

#[test]
fn exhaustion_passes_only_on_out_of_ips_after_the_free_addresses() {
    let (a, b) = (filler(0, "172.31.250.3"), filler(1, "172.31.250.4"));
    let refused = svc("service-lb-out-of-ips.json");
    let e = Exhaustion {
        pools: vec![("harness-lb-ipam-r1".into(), 2)],
        services: vec![a.clone(), b.clone(), refused.clone()],
    };
    let v = judge::exhaustion(&e);
    assert!(v.is_pass(), "{}", v.message());
    assert!(v.message().starts_with("after 2 Services took the 2 free addresses of harness-lb-ipam-r1 (2 free), lb-fill-8 stays pending: cilium.io/IPAMRequestSatisfied=False (out_of_ips"));

    let e = Exhaustion {
        pools: vec![("harness-lb-ipam-r1".into(), 2)],
        services: vec![a.clone(), b.clone(), filler(2, "172.31.250.5")],
    };
    assert!(fail(judge::exhaustion(&e)).starts_with("3 Services all got addresses although the pools (harness-lb-ipam-r1 (2 free)) reported 2 free"));

    // A Service no pool selects, as LB IPAM answers it (the Gateway's Service fixture).
    let no_pool = svc("service-cilium-gateway-harness-gw-no-pool.json");
    let e = Exhaustion {
        pools: vec![("p".into(), 1)],
        services: vec![a.clone(), no_pool],
    };
    assert!(fail(judge::exhaustion(&e)).contains("refused for the wrong reason"));

    let e = Exhaustion {
        pools: vec![("p".into(), 2)],
        services: vec![refused.clone(), a.clone(), refused.clone()],
    };
    assert!(
        fail(judge::exhaustion(&e))
            .contains("lb-fill-8 was refused while the pools (p (2 free)) still had room")
    );
    assert!(
        fail(judge::exhaustion(&Exhaustion {
            pools: vec![],
            services: vec![]
        }))
        .contains("nothing was proved")
    );
}

#[test]
fn exhaustion_needs_exactly_the_free_count_of_distinct_addresses() {
    let refused = svc("service-lb-out-of-ips.json");
    let (a, b) = (filler(0, "172.31.250.3"), filler(1, "172.31.250.4"));
    // Refused early: fewer Services got addresses than the pools reported free.
    let early = Exhaustion {
        pools: vec![("p".into(), 3)],
        services: vec![a.clone(), b.clone(), refused.clone()],
    };
    assert_eq!(
        fail(judge::exhaustion(&early)),
        "lb-fill-8 was refused (out_of_ips) after 2 Services got addresses, but the pools (p (3 free)) reported 3 free: IPsAvailable does not match what LB IPAM hands out"
    );
    // More got addresses than were free.
    let late = Exhaustion {
        pools: vec![("p".into(), 1)],
        services: vec![a.clone(), b.clone(), refused.clone()],
    };
    assert!(
        fail(judge::exhaustion(&late))
            .contains("after 2 Services got addresses, but the pools (p (1 free)) reported 1 free")
    );
    // Satisfied, the right number, but one address twice.
    let twice = Exhaustion {
        pools: vec![("p".into(), 2)],
        services: vec![a, filler(1, "172.31.250.3"), refused],
    };
    assert_eq!(
        fail(judge::exhaustion(&twice)),
        "lb-fill-0 and lb-fill-1 both got 172.31.250.3 without a sharing key: LB IPAM handed one address out twice"
    );
}

#[test]
fn pools_in_conflict_or_disabled_allocate_nothing() {
    let ready = fixture_json("ciliumloadbalancerippool-ready.json");
    assert!(pool_allocates(&ready));
    assert!(!pool_allocates(&fixture_json(
        "ciliumloadbalancerippool-conflict.json"
    )));
    let mut disabled = ready;
    disabled["spec"]["disabled"] = json!(true);
    assert!(!pool_allocates(&disabled));
}

#[test]
fn overlapping_blocks_are_found_in_cidrs_and_ranges() {
    let pool = |blocks: Value| json!({"spec": {"blocks": blocks}});
    assert_eq!(
        overlapping_blocks(
            &pool(json!([{"cidr": "10.5.0.240/28"}, {"cidr": "172.31.250.0/24"}])),
            BLOCK
        ),
        ["172.31.250.0/24"]
    );
    assert!(overlapping_blocks(&pool(json!([{"cidr": "172.31.250.8/29"}])), BLOCK).is_empty());
    assert_eq!(
        overlapping_blocks(
            &pool(json!([{"start": "172.31.249.250", "stop": "172.31.250.0"}])),
            BLOCK
        ),
        ["172.31.249.250-172.31.250.0"]
    );
    assert!(
        overlapping_blocks(
            &pool(json!([{"start": "172.31.250.8", "stop": "172.31.250.9"}])),
            BLOCK
        )
        .is_empty()
    );
    assert!(overlapping_blocks(&pool(json!([{"cidr": "fd00::/120"}])), BLOCK).is_empty());
    // v2alpha1's deprecated spec.cidrs, and a /12 that contains the block.
    assert_eq!(
        overlapping_blocks(
            &json!({"spec": {"cidrs": [{"cidr": "172.16.0.0/12"}]}}),
            BLOCK
        ),
        ["172.16.0.0/12"]
    );
}

#[test]
fn blocks_are_parsed_and_sized() {
    assert_eq!(parse_block(BLOCK).unwrap().1, 29);
    assert_eq!(block_size(29), 8);
    assert_eq!(requested_ip(BLOCK).unwrap(), "172.31.250.7");
    assert!(in_block("172.31.250.7", BLOCK) && !in_block("172.31.250.8", BLOCK));
    assert!(
        parse_block("172.31.250.1/29")
            .unwrap_err()
            .contains("host bits")
    );
    assert!(
        parse_block("172.31.0.0/16")
            .unwrap_err()
            .contains("small enough to exhaust")
    );
    assert!(parse_block("fd00::/120").is_err());
}

#[test]
fn selectors_decide_which_pools_can_serve_the_test_services() {
    let ours = pool_object("p", "cilium.io/v2", BLOCK, &run_labels(), None);
    assert!(selects(&ours, &run_labels()));
    let mut other_run = run_labels();
    other_run.insert("io.harness.run-id".into(), "r2".into());
    assert!(!selects(&ours, &other_run));
    assert!(selects(
        &json!({"spec": {"blocks": [{"cidr": "10.5.0.240/28"}]}}),
        &run_labels()
    ));
    // The harness's own pool excludes the suite's Services with an expression.
    let not_lb_ipam = json!({"spec": {"serviceSelector": {"matchExpressions": [
        {"key": "io.harness.suite", "operator": "NotIn", "values": ["lb-ipam"]}]}}});
    assert!(!selects(&not_lb_ipam, &run_labels()));
    assert!(selects(&not_lb_ipam, &BTreeMap::new()));
    let expr = |op: &str, values: Value| {
        json!({"spec": {"serviceSelector": {"matchExpressions": [
        {"key": "io.harness.suite", "operator": op, "values": values}]}}})
    };
    assert!(selects(
        &expr("In", json!(["dns", "lb-ipam"])),
        &run_labels()
    ));
    assert!(!selects(&expr("In", json!(["dns"])), &run_labels()));
    assert!(selects(&expr("Exists", json!([])), &run_labels()));
    assert!(!selects(&expr("DoesNotExist", json!([])), &run_labels()));
    assert!(!selects(&expr("In", json!(["lb-ipam"])), &BTreeMap::new()));
}

fn validator(file: &str) -> jsonschema::Validator {
    let text = upstream::testdata::read_to_string(&format!(
        "schemas/cilium-crds/jsonschema-crds-catalog/{file}"
    ));
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn the_pool_object_is_valid_for_the_crd_schemas() {
    for (version, file) in [
        ("cilium.io/v2", "ciliumloadbalancerippool_v2.json"),
        (
            "cilium.io/v2alpha1",
            "ciliumloadbalancerippool_v2alpha1.json",
        ),
    ] {
        let v = validator(file);
        let pool = pool_object(
            "harness-lb-ipam-r1",
            version,
            BLOCK,
            &run_labels(),
            Some((NS, "uid-1")),
        );
        let errors: Vec<String> = v.iter_errors(&pool).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{version}: {errors:?}");
        // The schema is strict enough to catch the old field name, so the check above can fail.
        let mut old = pool.clone();
        old["spec"]["cidrs"] = json!([{"cidr": BLOCK}]);
        assert!(!v.is_valid(&old), "{version} accepted spec.cidrs");
    }
}

/// A fake LB IPAM: the one pool the suite sent (its size from the block it asked for), requested
/// IPs, sharing keys, out_of_ips; `others` are listed but allocate nothing.
#[derive(Default)]
struct Ipam {
    pool: Option<Value>,
    /// The L2 pool (its name ends in `-l2`), listed but never counted: its Service asks for its
    /// address by annotation.
    l2_pool: Option<Value>,
    /// What `GET /apis/coordination.k8s.io/v1/leases` lists.
    leases: Vec<Value>,
    /// ip -> (sharing key, services)
    used: BTreeMap<String, (Option<String>, Vec<String>)>,
    pool_version_served: Vec<&'static str>,
    others: Vec<Value>,
    /// Services of these names get no status, as if the operator never answered them.
    ignored: Vec<&'static str>,
}

impl Ipam {
    /// Every address of the block of the pool the suite sent, in order.
    fn addresses(&self) -> Vec<String> {
        let Some(pool) = &self.pool else {
            return Vec::new();
        };
        let (net, len) = parse_block(pool["spec"]["blocks"][0]["cidr"].as_str().unwrap()).unwrap();
        (0..block_size(len) as u32)
            .map(|i| std::net::Ipv4Addr::from(u32::from(net) + i).to_string())
            .collect()
    }

    /// The pool's conditions as `operator/pkg/lbipam` writes them (the counts as Unknown/noreason
    /// with the number as message; PoolConflict False `resolved`), as in the pool fixtures.
    fn pool_with_status(&self) -> Value {
        let mut p = self.pool.clone().unwrap();
        let total = self.addresses().len();
        let used = self.used.len();
        let c = |t: &str, m: String| json!({"type": t, "status": "Unknown", "reason": "noreason", "message": m});
        p["status"] = json!({"conditions": [
            c("cilium.io/IPsTotal", total.to_string()),
            c("cilium.io/IPsAvailable", (total - used).to_string()),
            c("cilium.io/IPsUsed", used.to_string()),
            {"type": "cilium.io/PoolConflict", "status": "False", "reason": "resolved", "message": ""},
        ]});
        p
    }

    fn list(&self) -> Value {
        let items: Vec<Value> = self
            .others
            .iter()
            .cloned()
            .chain(self.pool.is_some().then(|| self.pool_with_status()))
            .chain(self.l2_pool.clone())
            .collect();
        json!({"apiVersion": "cilium.io/v2", "kind": "CiliumLoadBalancerIPPoolList",
               "metadata": {"resourceVersion": "11"}, "items": items})
    }

    /// What LB IPAM does with a Service (honouring lbipam.cilium.io/ips and sharing-key), with its
    /// conditions and messages as in service-lb-satisfied.json and service-lb-out-of-ips.json.
    fn allocate(&mut self, svc: &mut Value) {
        let name = svc["metadata"]["name"].as_str().unwrap().to_string();
        let ann = &svc["metadata"]["annotations"];
        let key = ann["lbipam.cilium.io/sharing-key"]
            .as_str()
            .map(String::from);
        let wanted = ann["lbipam.cilium.io/ips"].as_str().map(String::from);
        let shared = key.as_ref().and_then(|k| {
            self.used
                .iter()
                .find(|(_, (sk, _))| sk.as_ref() == Some(k))
                .map(|(ip, _)| ip.clone())
        });
        let ip = shared.or(wanted).or_else(|| {
            self.addresses()
                .into_iter()
                .find(|ip| !self.used.contains_key(ip))
        });
        let cond = match ip {
            Some(ip) => {
                self.used
                    .entry(ip.clone())
                    .or_insert((key, vec![]))
                    .1
                    .push(name);
                svc["status"]["loadBalancer"] = json!({"ingress": [{"ip": ip, "ipMode": "VIP"}]});
                json!({"type": "cilium.io/IPAMRequestSatisfied", "status": "True", "reason": "satisfied", "message": "", "lastTransitionTime": "2026-11-22T04:20:13Z"})
            }
            None => {
                json!({"type": "cilium.io/IPAMRequestSatisfied", "status": "False", "reason": "out_of_ips",
                           "message": "All enabled CiliumLoadBalancerIPPools that match this service ran out of allocatable IPs", "lastTransitionTime": "2026-11-22T04:20:31Z"})
            }
        };
        svc["status"]["conditions"] = json!([cond]);
    }

    /// Keeps a pool the suite created: the L2 one by its name, else the suite's own.
    fn store(&mut self, pool: &Value) {
        let name = pool["metadata"]["name"].as_str().unwrap();
        if name.ends_with("-l2") {
            self.l2_pool = Some(pool.clone());
        } else {
            self.pool = Some(pool.clone());
        }
    }

    fn release(&mut self, name: &str) {
        for (_, names) in self.used.values_mut() {
            names.retain(|n| n != name);
        }
        self.used.retain(|_, (_, names)| !names.is_empty());
    }
}

fn lb_cluster(ipam: Arc<std::sync::Mutex<Ipam>>) -> (kube::Client, common::Log) {
    lb_cluster_with(Cluster::new(&[("w1", "10.5.0.3")]), ipam)
}

fn lb_cluster_with(
    state: Cluster,
    ipam: Arc<std::sync::Mutex<Ipam>>,
) -> (kube::Client, common::Log) {
    cluster(state, move |s: &Seen, state: &mut Cluster| {
        let mut ipam = ipam.lock().unwrap();
        let parts: Vec<&str> = s.path.trim_matches('/').split('/').collect();
        match (s.method.as_str(), parts.as_slice()) {
            ("GET", ["api", "v1", "namespaces", name]) => {
                let mut ns = state.namespaces.get(*name)?.clone();
                ns["metadata"]["uid"] = json!("0b7c0f8e-1d6a-4c55-8f3e-2a9d8c1e7b42");
                Some(Reply::Json(200, ns))
            }
            ("POST", ["apis", "cilium.io", version, "ciliumloadbalancerippools"]) => {
                if !ipam.pool_version_served.contains(version) {
                    return Some(Reply::Json(
                        404,
                        status(
                            404,
                            "NotFound",
                            "the server could not find the requested resource",
                        ),
                    ));
                }
                ipam.store(&s.body);
                Some(Reply::Json(201, s.body.clone()))
            }
            ("GET", ["apis", "cilium.io", version, "ciliumloadbalancerippools"])
                if !s.is_watch() =>
            {
                if !ipam.pool_version_served.contains(version) {
                    return Some(Reply::Json(
                        404,
                        status(
                            404,
                            "NotFound",
                            "the server could not find the requested resource",
                        ),
                    ));
                }
                Some(Reply::Json(200, ipam.list()))
            }
            ("DELETE", ["apis", "cilium.io", _, "ciliumloadbalancerippools", name])
                if name.ends_with("-l2") =>
            {
                ipam.l2_pool
                    .take()
                    .map(|p| Reply::Json(200, p))
                    .or_else(|| {
                        Some(Reply::Json(
                            404,
                            status(404, "NotFound", "ciliumloadbalancerippools not found"),
                        ))
                    })
            }
            ("GET", ["apis", "coordination.k8s.io", "v1", "leases"]) => Some(Reply::Json(
                200,
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList",
                           "metadata": {"resourceVersion": "4013"}, "items": ipam.leases}),
            )),
            ("DELETE", ["apis", "cilium.io", _, "ciliumloadbalancerippools", name]) => {
                match ipam.pool.take() {
                    Some(p) if p["metadata"]["name"] == *name => Some(Reply::Json(200, p)),
                    other => {
                        ipam.pool = other;
                        Some(Reply::Json(
                            404,
                            status(404, "NotFound", "ciliumloadbalancerippools not found"),
                        ))
                    }
                }
            }
            ("POST", ["api", "v1", "namespaces", ns, "services"]) => {
                let mut svc = s.body.clone();
                svc["metadata"]["namespace"] = json!(ns);
                svc["metadata"]["resourceVersion"] = json!("3");
                if !ipam
                    .ignored
                    .contains(&svc["metadata"]["name"].as_str().unwrap())
                {
                    ipam.allocate(&mut svc);
                }
                let name = svc["metadata"]["name"].as_str().unwrap().to_string();
                state
                    .objects
                    .insert(("services".into(), ns.to_string(), name), svc.clone());
                Some(Reply::Json(201, svc))
            }
            ("DELETE", ["api", "v1", "namespaces", ns, "services", name]) => {
                ipam.release(name);
                let svc =
                    state
                        .objects
                        .remove(&("services".into(), ns.to_string(), name.to_string()))?;
                Some(Reply::Json(200, svc))
            }
            _ => None,
        }
    })
}

fn no_exec() -> Arc<dyn Executor> {
    common::ScriptedExec::new(|_, argv| panic!("lb-ipam runs no command, got {argv:?}"))
}

#[tokio::test]
async fn the_suite_creates_its_pool_and_services_and_passes() {
    let ipam = Arc::new(std::sync::Mutex::new(Ipam {
        pool_version_served: vec!["v2"],
        ..Ipam::default()
    }));
    let (client, log) = lb_cluster(ipam.clone());
    let run = run_suite_with(
        &client,
        no_exec(),
        suites::lb_ipam::NAME,
        &ctx(1, None),
        &CheckFilter::new(&[], &[]).unwrap(),
        &fast_options("r1"),
    )
    .await;
    let outcomes: Vec<(&str, &CheckOutcome)> =
        run.checks.iter().map(|c| (c.check, &c.outcome)).collect();
    for (name, o) in &outcomes[..5] {
        assert!(
            matches!(o, CheckOutcome::Passed { .. }),
            "{name}: {o:?}\n{}",
            run.setup.render()
        );
    }
    assert_eq!(
        outcomes[5],
        (
            "l2-reachable-from-host",
            &CheckOutcome::Skipped {
                reason: "no outside client (--outside-client none): the run probes only from pods"
                    .into()
            }
        )
    );
    let CheckOutcome::Passed { evidence } = outcomes[4].1 else {
        unreachable!()
    };
    // basic, requested and the shared pair hold 3 of 8; 5 fillers take the rest, the 6th waits.
    assert!(evidence.starts_with("after 5 Services took the 5 free addresses of harness-lb-ipam-r1 (5 free), lb-fill-5 stays pending"), "{evidence}");

    let seen = log.lock().unwrap();
    let pool = seen
        .iter()
        .find(|s| s.is("POST", "/apis/cilium.io/v2/ciliumloadbalancerippools"))
        .unwrap();
    assert_eq!(pool.body["apiVersion"], "cilium.io/v2");
    assert_eq!(pool.body["metadata"]["name"], NS);
    assert_eq!(pool.body["spec"]["blocks"], json!([{"cidr": BLOCK}]));
    assert_eq!(pool.body["spec"]["allowFirstLastIPs"], "Yes");
    assert_eq!(
        pool.body["spec"]["serviceSelector"]["matchLabels"]["io.harness.run-id"],
        "r1"
    );
    assert_eq!(
        pool.body["spec"]["serviceSelector"]["matchLabels"]["io.harness.suite"],
        "lb-ipam"
    );
    assert_eq!(
        pool.body["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Namespace", "name": NS, "uid": "0b7c0f8e-1d6a-4c55-8f3e-2a9d8c1e7b42"}])
    );
    let errors: Vec<String> = validator("ciliumloadbalancerippool_v2.json")
        .iter_errors(&pool.body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    let services: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.is("POST", &format!("/api/v1/namespaces/{NS}/services")))
        .collect();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s.body["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "lb-basic",
            "lb-requested",
            "lb-share-a",
            "lb-share-b",
            "lb-fill-0",
            "lb-fill-1",
            "lb-fill-2",
            "lb-fill-3",
            "lb-fill-4",
            "lb-fill-5"
        ]
    );
    for s in &services {
        assert_eq!(s.body["spec"]["type"], "LoadBalancer");
        // What other pools must not select for service-gets-ip to mean something.
        assert_eq!(
            s.body["metadata"]["labels"],
            json!(run_labels()),
            "the pool selects on them"
        );
        assert!(s.body["spec"]["selector"].is_null());
    }
    assert_eq!(
        services[1].body["metadata"]["annotations"],
        json!({"lbipam.cilium.io/ips": "172.31.250.7"})
    );
    assert_eq!(
        services[2].body["metadata"]["annotations"],
        json!({"lbipam.cilium.io/sharing-key": "harness-shared"})
    );
    assert_eq!(
        services[3].body["metadata"]["annotations"],
        services[2].body["metadata"]["annotations"]
    );
    assert_ne!(
        services[2].body["spec"]["ports"][0]["port"],
        services[3].body["spec"]["ports"][0]["port"]
    );
    let deleted: Vec<&str> = seen
        .iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(deleted.len(), 8, "{deleted:?}");
    assert!(
        deleted[..6]
            .iter()
            .all(|p| p.contains("/services/lb-fill-"))
    );
    // The cluster-scoped pool goes by name, before the namespace.
    assert_eq!(
        deleted[6],
        format!("/apis/cilium.io/v2/ciliumloadbalancerippools/{NS}")
    );
    assert_eq!(deleted[7], format!("/api/v1/namespaces/{NS}"));
    assert_eq!(
        run.cleanup,
        Cleanup::Deleted {
            namespaces: vec![NS.into()]
        }
    );
    assert!(
        run.setup
            .render()
            .contains(&format!("teardown: pool {NS} deleted"))
    );
    let ipam = ipam.lock().unwrap();
    assert!(ipam.pool.is_none(), "the pool is gone");
    assert_eq!(ipam.used.len(), 3, "the fillers gave their addresses back");
}

async fn run_lb(
    ipam: Ipam,
    checks: &[&str],
    opts: suites::RunOptions,
) -> (suites::SuiteRun, Arc<std::sync::Mutex<Ipam>>, common::Log) {
    let ipam = Arc::new(std::sync::Mutex::new(ipam));
    let (client, log) = lb_cluster(ipam.clone());
    let only: Vec<String> = checks.iter().map(|c| format!("lb-ipam::{c}")).collect();
    let run = run_suite_with(
        &client,
        no_exec(),
        suites::lb_ipam::NAME,
        &ctx(1, None),
        &CheckFilter::new(&[], &only).unwrap(),
        &opts,
    )
    .await;
    (run, ipam, log)
}

fn served() -> Ipam {
    Ipam {
        pool_version_served: vec!["v2"],
        ..Ipam::default()
    }
}

fn pool_deletes(log: &common::Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "DELETE" && s.path.contains("ciliumloadbalancerippools"))
        .map(|s| s.path.clone())
        .collect()
}

#[tokio::test]
async fn a_kept_namespace_keeps_the_pool_and_the_cleanup_says_so() {
    let mut opts = fast_options("r1");
    opts.keep = KeepNamespaces::Always;
    let (run, ipam, log) = run_lb(served(), &["pool-ready"], opts).await;
    assert!(
        matches!(run.checks[0].outcome, CheckOutcome::Passed { .. }),
        "{:?}",
        run.checks[0].outcome
    );
    assert!(pool_deletes(&log).is_empty());
    assert!(ipam.lock().unwrap().pool.is_some());
    let Cleanup::Kept { why, namespaces } = &run.cleanup else {
        panic!("{:?}", run.cleanup)
    };
    assert_eq!(namespaces, &[NS.to_string()]);
    assert_eq!(
        why,
        &format!(
            "kept on request; the cluster-scoped CiliumLoadBalancerIPPool {NS} (block {BLOCK}) is kept with it; delete it (`kubectl delete ciliumloadbalancerippools.cilium.io {NS}`) before the next run on an overlapping block, whose setup stops on the overlap"
        )
    );
    assert!(
        run.setup
            .render()
            .contains(&format!("teardown: pool {NS} (block {BLOCK}) kept"))
    );
}

#[tokio::test]
async fn an_existing_overlapping_pool_stops_setup_with_an_error_naming_it() {
    let mut ipam = served();
    let mut old = fixture_json("ciliumloadbalancerippool-ready.json");
    old["metadata"]["name"] = json!("harness-lb-ipam-old");
    old["spec"]["blocks"] = json!([{"cidr": "10.5.0.240/28"}, {"cidr": "172.31.250.0/28"}]);
    ipam.others.push(old);
    let (run, ipam, log) =
        run_lb(ipam, &["pool-ready", "service-gets-ip"], fast_options("r1")).await;
    for c in &run.checks {
        let CheckOutcome::Error { message } = &c.outcome else {
            panic!("{}: {:?}", c.check, c.outcome)
        };
        assert_eq!(
            message,
            &format!(
                "setup of the lb-ipam suite failed, so this check could not run: a free block for the suite's pool {NS} is missing: {BLOCK} overlaps the existing CiliumLoadBalancerIPPool harness-lb-ipam-old (172.31.250.0/28), so Cilium would report a PoolConflict; delete a pool left over by an earlier run (`kubectl delete ciliumloadbalancerippools.cilium.io <name>`) or choose another RunOptions::lb_ipam_block"
            )
        );
    }
    assert!(ipam.lock().unwrap().pool.is_none(), "no pool was created");
    assert!(
        !log.lock()
            .unwrap()
            .iter()
            .any(|s| s.method == "POST" && s.path.contains("ciliumloadbalancerippools"))
    );
    assert!(pool_deletes(&log).is_empty(), "the other pool is not ours");
    assert_eq!(
        run.cleanup,
        Cleanup::Deleted {
            namespaces: vec![NS.into()]
        }
    );
}

#[tokio::test]
async fn fillers_and_the_pool_are_deleted_when_exhaustion_errors() {
    let ipam = Ipam {
        ignored: vec!["lb-fill-2"],
        ..served()
    };
    let (run, ipam, log) = run_lb(ipam, &["pool-exhausted-pending"], fast_options("r1")).await;
    let CheckOutcome::Error { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(
        message.starts_with(&format!(
            "timed out after 0.50s waiting for LB IPAM to answer service {NS}/lb-fill-2"
        )),
        "{message}"
    );
    let deleted: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        deleted,
        [
            format!("/api/v1/namespaces/{NS}/services/lb-fill-0"),
            format!("/api/v1/namespaces/{NS}/services/lb-fill-1"),
            format!("/api/v1/namespaces/{NS}/services/lb-fill-2"),
            format!("/apis/cilium.io/v2/ciliumloadbalancerippools/{NS}"),
            format!("/api/v1/namespaces/{NS}"),
        ]
    );
    let ipam = ipam.lock().unwrap();
    assert!(ipam.used.is_empty(), "{:?}", ipam.used);
    assert!(ipam.pool.is_none());
}

#[tokio::test]
async fn the_pool_size_follows_the_block_the_suite_asked_for() {
    let mut opts = fast_options("r1");
    opts.lb_ipam_block = "172.31.250.8/30".into();
    let (run, _ipam, log) = run_lb(served(), &[], opts).await;
    let evidence: Vec<String> = run.checks[..5]
        .iter()
        .map(|c| match &c.outcome {
            CheckOutcome::Passed { evidence } => evidence.clone(),
            o => panic!("{}: {o:?}", c.check),
        })
        .collect();
    assert_eq!(
        evidence[0],
        format!("pool {NS} (172.31.250.8/30): 4 total, 4 available, 0 used, no conflict")
    );
    assert_eq!(
        evidence[2],
        "lb-requested got the requested 172.31.250.11 (lbipam.cilium.io/ips)"
    );
    // basic, requested and the shared pair hold 3 of 4; one filler takes the last.
    assert!(
        evidence[4].starts_with(&format!(
            "after 1 Services took the 1 free addresses of {NS} (1 free), lb-fill-1 stays pending"
        )),
        "{}",
        evidence[4]
    );
    let seen = log.lock().unwrap();
    let pool = seen
        .iter()
        .find(|s| s.is("POST", "/apis/cilium.io/v2/ciliumloadbalancerippools"))
        .unwrap();
    assert_eq!(
        pool.body["spec"]["blocks"],
        json!([{"cidr": "172.31.250.8/30"}])
    );
}

#[tokio::test]
async fn pools_that_cannot_allocate_or_exclude_the_suite_are_not_counted() {
    let mut ipam = served();
    let mut conflict = fixture_json("ciliumloadbalancerippool-conflict.json");
    conflict["metadata"]["name"] = json!("conflicting");
    conflict["spec"] = json!({"blocks": [{"cidr": "10.5.0.0/24"}]});
    let mut disabled = fixture_json("ciliumloadbalancerippool-ready.json");
    disabled["metadata"]["name"] = json!("disabled");
    disabled["spec"] = json!({"blocks": [{"cidr": "10.5.1.0/24"}], "disabled": true});
    let mut harness = fixture_json("ciliumloadbalancerippool-ready.json");
    harness["metadata"]["name"] = json!("harness-docker-subnet");
    harness["spec"] = json!({"blocks": [{"cidr": "10.5.0.240/28"}], "serviceSelector": {"matchExpressions": [
        {"key": "io.harness.suite", "operator": "NotIn", "values": ["lb-ipam"]}]}});
    ipam.others = vec![conflict, disabled, harness];
    let (run, _ipam, _log) = run_lb(ipam, &["pool-exhausted-pending"], fast_options("r1")).await;
    let CheckOutcome::Passed { evidence } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(
        evidence.starts_with(&format!(
            "after 8 Services took the 8 free addresses of {NS} (8 free), lb-fill-8 stays pending"
        )),
        "{evidence}"
    );
    let notes = run.checks[0].transcript.render();
    assert!(
        notes.contains("pool conflicting selects the test Services but is disabled or in conflict"),
        "{notes}"
    );
    assert!(
        notes.contains("pool disabled selects the test Services but is disabled or in conflict"),
        "{notes}"
    );
}

#[tokio::test]
async fn an_older_cilium_gets_the_v2alpha1_pool() {
    let ipam = Arc::new(std::sync::Mutex::new(Ipam {
        pool_version_served: vec!["v2alpha1"],
        ..Ipam::default()
    }));
    let (client, log) = lb_cluster(ipam);
    let filter = CheckFilter::new(&[], &["lb-ipam::pool-ready".to_string()]).unwrap();
    let run = run_suite_with(
        &client,
        no_exec(),
        suites::lb_ipam::NAME,
        &ctx(1, None),
        &filter,
        &fast_options("r1"),
    )
    .await;
    assert!(
        matches!(run.checks[0].outcome, CheckOutcome::Passed { .. }),
        "{:?}",
        run.checks[0].outcome
    );
    assert!(
        run.setup
            .render()
            .contains("ciliumloadbalancerippools.cilium.io/v2 is not served")
    );
    let seen = log.lock().unwrap();
    let pool = seen
        .iter()
        .find(|s| s.is("POST", "/apis/cilium.io/v2alpha1/ciliumloadbalancerippools"))
        .unwrap();
    assert_eq!(pool.body["apiVersion"], "cilium.io/v2alpha1");
}

#[tokio::test]
async fn a_silent_operator_times_out_naming_the_service_and_its_conditions() {
    let ipam = Arc::new(std::sync::Mutex::new(Ipam {
        pool_version_served: vec!["v2"],
        ..Ipam::default()
    }));
    // Services are stored without status: no operator answers.
    let (client, _log) = cluster(
        Cluster::new(&[("w1", "10.5.0.3")]),
        move |s: &Seen, state: &mut Cluster| {
            let ipam = ipam.clone();
            let mut ipam = ipam.lock().unwrap();
            let parts: Vec<&str> = s.path.trim_matches('/').split('/').collect();
            match (s.method.as_str(), parts.as_slice()) {
                ("GET", ["api", "v1", "namespaces", name]) => {
                    let mut ns = state.namespaces.get(*name)?.clone();
                    ns["metadata"]["uid"] = json!("u1");
                    Some(Reply::Json(200, ns))
                }
                ("POST", ["apis", "cilium.io", "v2", "ciliumloadbalancerippools"]) => {
                    ipam.store(&s.body);
                    Some(Reply::Json(201, s.body.clone()))
                }
                ("GET", ["apis", "cilium.io", "v2", "ciliumloadbalancerippools"])
                    if !s.is_watch() =>
                {
                    Some(Reply::Json(200, ipam.list()))
                }
                _ => None,
            }
        },
    );
    let filter = CheckFilter::new(&[], &["lb-ipam::service-gets-ip".to_string()]).unwrap();
    let run = run_suite_with(
        &client,
        no_exec(),
        suites::lb_ipam::NAME,
        &ctx(1, None),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Error { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert_eq!(
        message,
        &format!(
            "timed out after 0.50s waiting for LB IPAM to answer service {NS}/lb-basic (cilium.io/IPAMRequestSatisfied); last seen: ingress []; no conditions"
        )
    );
}

const L2_BLOCK: &str = "10.5.0.232/29";

fn l2_svc() -> SvcState {
    svc("service-lb-l2-satisfied.json")
}

fn lease() -> judge::LeaseSeen {
    lease_seen(&serde_json::from_value(fixture_json("lease-cilium-l2announce-lb-l2.json")).unwrap())
}

fn nodes() -> Vec<suites::kit::topology::NodeInfo> {
    [("w1", "10.5.0.3"), ("w2", "10.5.0.4")]
        .iter()
        .map(|(n, ip)| suites::kit::topology::NodeInfo {
            name: n.to_string(),
            internal_ip: ip.to_string(),
        })
        .collect()
}

fn curl_series(file: &str, code: i32) -> suites::kit::Series<suites::kit::probe::curl::CurlResult> {
    let r = suites::kit::probe::curl::CurlResult::parse(&fixture_out(file, code).unwrap());
    suites::kit::Series {
        required: 3,
        deadline: std::time::Duration::from_secs(60),
        elapsed: std::time::Duration::from_secs(2),
        tries: vec![suites::kit::Try::Observed(r); 3],
    }
}

fn reach(http: &str, code: i32, neigh: &str, lease: Option<judge::LeaseSeen>) -> judge::L2Reach {
    judge::L2Reach {
        block: L2_BLOCK.into(),
        service: l2_svc(),
        http: Some(curl_series(http, code)),
        lease_name: "cilium-l2announce-harness-lb-ipam-r1-lb-l2".into(),
        lease,
        neighbours: Ok(suites::kit::probe::neigh::parse(&fixture(neigh))),
        nodes: nodes(),
    }
}

#[test]
fn the_lease_fixture_is_a_lease_held_by_the_announcing_node() {
    let l = lease();
    assert_eq!(l.name, "cilium-l2announce-harness-lb-ipam-r1-lb-l2");
    assert_eq!(l.namespace, "kube-system");
    assert_eq!(l.holder.as_deref(), Some("w1"));
    assert_eq!(l.renew_time.as_deref(), Some("2026-11-22T04:21:32.301877Z"));
    assert_eq!(suites::lb_ipam::objects::l2_lease_name(NS, "lb-l2"), l.name);
}

#[test]
fn l2_reach_passes_naming_the_holder_and_the_mac_that_answered() {
    let v = judge::l2_reach(&reach(
        "curl-ok-200.txt",
        0,
        "ip-neigh-l2-answered.txt",
        Some(lease()),
    ));
    assert!(v.is_pass(), "{v:?}");
    assert!(
        v.message().starts_with(
            "10.5.0.239 (service lb-l2) answers from outside the cluster over L2: HTTP 200"
        ),
        "{}",
        v.message()
    );
    assert!(v.message().contains("announced by node w1 (Lease kube-system/cilium-l2announce-harness-lb-ipam-r1-lb-l2, renewed 2026-11-22T04:21:32.301877Z)"), "{}", v.message());
    assert!(
        v.message()
            .ends_with("ARP for 10.5.0.239 answered by 02:42:0a:05:00:03 (node w1)"),
        "{}",
        v.message()
    );
}

#[test]
fn l2_reach_failures_name_the_lease_the_arp_answer_and_the_service_status() {
    // Nobody announces: no lease, ARP unanswered.
    let m = fail(judge::l2_reach(&reach(
        "curl-timeout-28.txt",
        28,
        "ip-neigh-l2-failed.txt",
        None,
    )));
    assert!(m.starts_with("10.5.0.239 (service lb-l2) does not answer from outside the cluster: timeout (curl exit 28)"), "{m}");
    assert!(m.contains("; no Lease cilium-l2announce-harness-lb-ipam-r1-lb-l2 exists; ARP for 10.5.0.239 not answered (neighbour state FAILED); service status: ingress [10.5.0.239]; cilium.io/IPAMRequestSatisfied=True (satisfied: ); no agent holds the announcement lease"), "{m}");
    // The holder never answered ARP.
    let m = fail(judge::l2_reach(&reach(
        "curl-timeout-28.txt",
        28,
        "ip-neigh-l2-failed.txt",
        Some(lease()),
    )));
    assert!(m.contains("announced by node w1"), "{m}");
    assert!(m.ends_with("the lease holder w1 did not answer ARP: check that the policy's interfaces match the node's interface on the outside client's network, and `cilium-dbg statedb l2-announce` on w1"), "{m}");
    // ARP answered by another node than the lease holder: a stale announcement.
    let mut moved = lease();
    moved.holder = Some("w2".into());
    let m = fail(judge::l2_reach(&reach(
        "curl-refused-7.txt",
        7,
        "ip-neigh-l2-answered.txt",
        Some(moved),
    )));
    assert!(
        m.contains("ARP for 10.5.0.239 answered by 02:42:0a:05:00:03 (node w1)"),
        "{m}"
    );
    assert!(m.ends_with("ARP was answered by node w1, but the lease is held by w2: a stale announcement; check the agent on w1"), "{m}");
    // No address from the L2 block: allocation is the broken layer, and nothing was sent.
    let mut pending = reach("curl-ok-200.txt", 0, "ip-neigh-l2-answered.txt", None);
    pending.service = svc("service-lb-out-of-ips.json");
    pending.http = None;
    assert!(fail(judge::l2_reach(&pending)).starts_with("service lb-fill-8 got no LoadBalancer address from the L2 block 10.5.0.232/29: LB IPAM refused it"));
    let mut elsewhere = reach("curl-ok-200.txt", 0, "ip-neigh-l2-answered.txt", None);
    elsewhere.block = "10.5.1.232/29".into();
    assert!(fail(judge::l2_reach(&elsewhere)).contains("outside the L2 block 10.5.1.232/29"));
}

/// The L2 check's cluster: the lb-ipam fake with the echo pod placed on w1 and, when
/// `announced`, the Lease Cilium's announcer would hold.
fn l2_cluster(announced: bool) -> (kube::Client, common::Log, Arc<std::sync::Mutex<Ipam>>) {
    let ipam = Arc::new(std::sync::Mutex::new(Ipam {
        pool_version_served: vec!["v2"],
        leases: if announced {
            vec![fixture_json("lease-cilium-l2announce-lb-l2.json")]
        } else {
            vec![]
        },
        ..Ipam::default()
    }));
    let (client, log) = l2_fake(ipam.clone());
    (client, log, ipam)
}

fn l2_fake(ipam: Arc<std::sync::Mutex<Ipam>>) -> (kube::Client, common::Log) {
    let mut c = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    c.place("lb-l2-echo", "w1", "10.244.1.30", true);
    let (client, log) = lb_cluster_with(c, ipam);
    (client, log)
}

/// The outside client on the docker network: curl to the L2 address answers (or times out),
/// ping reaches the nodes, and the ARP table is the fixture's.
fn outside_on_l2(answers: bool) -> Arc<ScriptedOutside> {
    ScriptedOutside::new(move |argv| match argv[0].as_str() {
        "curl" if answers => out(0, "200 10.5.0.239:80", ""),
        "curl" => fixture_out("curl-timeout-28.txt", 28),
        "ping" => fixture_out("ping-ok.txt", 0),
        "ip" => out(
            0,
            &fixture(if answers {
                "ip-neigh-l2-answered.txt"
            } else {
                "ip-neigh-l2-failed.txt"
            }),
            "",
        ),
        other => panic!("unexpected command {other}"),
    })
}

/// l2-reachable-from-host alone, with this outside client and the L2 block.
async fn run_l2(client: &kube::Client, outside: Arc<ScriptedOutside>) -> suites::SuiteRun {
    run_suite_from(
        client,
        no_exec(),
        Some(outside),
        suites::lb_ipam::NAME,
        &ctx_outside(2, Some(L2_BLOCK)),
        &CheckFilter::new(&[], &["lb-ipam::l2-reachable-from-host".into()]).unwrap(),
        &fast_options("r1"),
    )
    .await
}

#[tokio::test]
async fn l2_reachable_from_host_creates_its_pool_service_and_echo_and_passes_from_outside() {
    let (client, log, ipam) = l2_cluster(true);
    let outside = outside_on_l2(true);
    let run = run_l2(&client, outside.clone()).await;
    let c = &run.checks[0];
    let CheckOutcome::Passed { evidence } = &c.outcome else {
        panic!(
            "{:?}\n{}\n{}",
            c.outcome,
            c.transcript.render(),
            run.setup.render()
        )
    };
    assert!(evidence.contains("announced by node w1"), "{evidence}");
    assert!(
        evidence.ends_with("ARP for 10.5.0.239 answered by 02:42:0a:05:00:03 (node w1)"),
        "{evidence}"
    );
    let t = c.transcript.render();
    assert!(t.contains("lb-ipam/l2-reachable-from-host:curl: outside h1-outside (10.5.0.9) -> lb-l2 (10.5.0.239:80)\n"), "{t}");
    assert!(
        t.contains(
            "lb-ipam/l2-reachable-from-host:neigh: outside h1-outside (10.5.0.9) -> its ARP table\n"
        ),
        "{t}"
    );
    let calls: Vec<String> = outside
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.join(" "))
        .collect();
    assert!(
        calls.contains(&"ping -c 1 -W 1 10.5.0.4".to_string()),
        "{calls:?}"
    );
    assert_eq!(calls.last().unwrap(), "ip -4 neigh show");

    let seen = log.lock().unwrap();
    let l2_pool = seen
        .iter()
        .find(|s| {
            s.is("POST", "/apis/cilium.io/v2/ciliumloadbalancerippools")
                && s.body["metadata"]["name"] == format!("{NS}-l2")
        })
        .unwrap();
    assert_eq!(l2_pool.body["spec"]["blocks"], json!([{"cidr": L2_BLOCK}]));
    assert_eq!(
        l2_pool.body["spec"]["serviceSelector"]["matchLabels"]["io.harness.lb-ipam/l2"],
        "announced"
    );
    let errors: Vec<String> = validator("ciliumloadbalancerippool_v2.json")
        .iter_errors(&l2_pool.body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let svc = seen
        .iter()
        .find(|s| s.is("POST", &format!("/api/v1/namespaces/{NS}/services")))
        .unwrap();
    assert_eq!(svc.body["metadata"]["name"], "lb-l2");
    assert_eq!(
        svc.body["metadata"]["annotations"]["lbipam.cilium.io/ips"],
        "10.5.0.239"
    );
    assert_eq!(
        svc.body["spec"]["selector"]["app.kubernetes.io/name"],
        "lb-l2-echo"
    );
    assert_eq!(svc.body["spec"]["ports"][0]["targetPort"], "http");
    assert!(
        seen.iter()
            .any(|s| s.is("POST", &format!("/api/v1/namespaces/{NS}/pods"))
                && s.body["metadata"]["name"] == "lb-l2-echo")
    );
    // Both pools are deleted by name when the suite ends.
    assert!(seen.iter().any(|s| s.is(
        "DELETE",
        &format!("/apis/cilium.io/v2/ciliumloadbalancerippools/{NS}-l2")
    )));
    assert!(ipam.lock().unwrap().l2_pool.is_none());
    assert!(ipam.lock().unwrap().pool.is_none());
}

#[tokio::test]
async fn l2_reachable_from_host_fails_naming_the_missing_lease_and_the_unanswered_arp() {
    let (client, _log, _) = l2_cluster(false);
    let run = run_l2(&client, outside_on_l2(false)).await;
    let CheckOutcome::Failed { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(message.starts_with("10.5.0.239 (service lb-l2) does not answer from outside the cluster: timeout (curl exit 28)"), "{message}");
    assert!(message.contains("no Lease cilium-l2announce-harness-lb-ipam-r1-lb-l2 exists; ARP for 10.5.0.239 not answered (neighbour state FAILED); service status: ingress [10.5.0.239]"), "{message}");
}

#[tokio::test]
async fn an_l2_block_overlapping_another_pool_stops_setup_before_the_l2_pool_exists() {
    let ipam = Arc::new(std::sync::Mutex::new(Ipam {
        pool_version_served: vec!["v2"],
        others: vec![pool_object(
            "harness-docker-subnet",
            "cilium.io/v2",
            "10.5.0.224/27",
            &BTreeMap::new(),
            None,
        )],
        ..Ipam::default()
    }));
    let (client, log) = l2_fake(ipam);
    let run = run_l2(&client, outside_on_l2(true)).await;
    let CheckOutcome::Error { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(message.contains("10.5.0.232/29 overlaps the existing CiliumLoadBalancerIPPool harness-docker-subnet (10.5.0.224/27); name a free block of the outside client's segment with --lb-l2-block"), "{message}");
    let seen = log.lock().unwrap();
    assert!(
        !seen
            .iter()
            .any(|s| s.method == "POST" && s.body["metadata"]["name"] == format!("{NS}-l2"))
    );
}
