//! Whole suites run against a fake API server (tower-test mock) and a scripted executor: the
//! request sequence, the outcomes, the transcripts and the cleanup.

mod common;

use common::{
    Cluster, Reply, ScriptedExec, ScriptedOutside, cluster, ctx, ctx_outside, fast_options,
    fixture, fixture_json, fixture_out, out, serve, status,
};
use serde_json::json;
use std::sync::Arc;
use suites::kit::KeepNamespaces;
use suites::{CheckFilter, CheckOutcome, Cleanup, RunContext, run_suite_from, run_suite_with};

fn all() -> CheckFilter {
    CheckFilter::new(&[], &[]).unwrap()
}

fn outcomes(run: &suites::SuiteRun) -> Vec<(String, CheckOutcome)> {
    run.checks
        .iter()
        .map(|c| (c.name(), c.outcome.clone()))
        .collect()
}

fn connectivity_cluster() -> Cluster {
    let mut c = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    c.place("client", "w1", "10.244.1.3", true);
    c.place("echo-same-node", "w1", "10.244.1.7", true);
    c.place("host-netns", "w1", "10.5.0.3", true);
    c.place("client-other-node", "w2", "10.244.2.5", true);
    c.place("echo-other-node", "w2", "10.244.2.9", true);
    c
}

/// A datapath where everything answers, except URLs listed in `dropped`.
fn datapath(dropped: &'static [&'static str]) -> Arc<ScriptedExec> {
    ScriptedExec::new(move |_pod, argv| match argv[0].as_str() {
        "curl" => {
            let url = argv.last().unwrap();
            if dropped.contains(&url.as_str()) {
                return fixture_out("curl-timeout-28.txt", 28);
            }
            let host = url.split("://").nth(1).unwrap().trim_end_matches('/');
            let remote = if host.contains(':') {
                host.to_string()
            } else {
                format!("{host}:443")
            };
            out(0, &format!("200 {remote}"), "")
        }
        "ping" => fixture_out("ping-ok.txt", 0),
        "cat" if argv[1] == "/sys/class/net/eth0/mtu" => out(0, "1500\n", ""),
        other => panic!("unexpected command {other}"),
    })
}

#[tokio::test]
async fn connectivity_passes_on_a_two_node_cluster_that_answers() {
    let (client, log) = cluster(connectivity_cluster(), |_, _| None);
    let exec = datapath(&[]);
    let outside = ScriptedOutside::like(exec.clone(), "outside");
    let run = run_suite_from(
        &client,
        exec.clone(),
        Some(outside.clone()),
        suites::connectivity::NAME,
        &RunContext {
            external_target: Some("one.one.one.one".into()),
            ..ctx_outside(2, None)
        },
        &all(),
        &fast_options("r1"),
    )
    .await;

    for (name, o) in outcomes(&run) {
        assert!(
            matches!(o, CheckOutcome::Passed { .. }),
            "{name}: {o:?}\nsetup:\n{}",
            run.setup.render()
        );
    }
    assert_eq!(run.checks.len(), 12);
    assert_eq!(run.checks[0].name(), "connectivity::pod-to-pod-same-node");
    // NodePort from outside: the same-node echo's NodePort on every node, from the outside
    // client only (never by exec in a pod).
    let from_outside: Vec<String> = outside
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|argv| argv.last().unwrap().clone())
        .collect();
    assert_eq!(
        from_outside,
        [
            "http://10.5.0.3:30081/",
            "http://10.5.0.3:30081/",
            "http://10.5.0.3:30081/",
            "http://10.5.0.4:30081/",
            "http://10.5.0.4:30081/",
            "http://10.5.0.4:30081/",
        ]
    );
    let nodeport = run
        .checks
        .iter()
        .find(|c| c.check == "nodeport-from-outside")
        .unwrap();
    let t = nodeport.transcript.render();
    assert!(
        t.starts_with("connectivity/nodeport-from-outside:curl: outside h1-outside (10.5.0.9) -> echo-same-node nodeport on w1 (10.5.0.3:30081)\n  #1 "),
        "{t}"
    );
    assert!(
        matches!(&nodeport.outcome, CheckOutcome::Passed { evidence } if evidence.contains("outside h1-outside -> echo-same-node nodeport on w2 (10.5.0.4:30081)")),
        "{:?}",
        nodeport.outcome
    );
    assert_eq!(run.namespace.as_deref(), Some("harness-connectivity-r1"));
    assert_eq!(
        run.cleanup,
        Cleanup::Deleted {
            namespaces: vec!["harness-connectivity-r1".into()]
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
    assert_eq!(
        posted,
        [
            "/api/v1/namespaces harness-connectivity-r1",
            "/api/v1/namespaces/harness-connectivity-r1/pods client",
            "/api/v1/namespaces/harness-connectivity-r1/pods echo-same-node",
            "/api/v1/namespaces/harness-connectivity-r1/pods host-netns",
            "/api/v1/namespaces/harness-connectivity-r1/pods client-other-node",
            "/api/v1/namespaces/harness-connectivity-r1/pods echo-other-node",
            "/api/v1/namespaces/harness-connectivity-r1/services echo-same-node",
            "/api/v1/namespaces/harness-connectivity-r1/services echo-other-node",
        ]
    );
    let svc = seen.iter().find(|s| s.path.ends_with("/services")).unwrap();
    assert_eq!(svc.body["spec"]["type"], "NodePort");
    assert_eq!(svc.body["spec"]["ports"][0]["name"], "http");
    assert!(
        seen.last()
            .unwrap()
            .is("DELETE", "/api/v1/namespaces/harness-connectivity-r1")
    );

    // The probes went where the checks say: hairpin from the echo pod, host-to-pod from the host.
    let calls = exec.calls.lock().unwrap();
    assert!(calls.iter().any(
        |(pod, argv)| pod == "harness-connectivity-r1/echo-same-node"
            && argv.last().unwrap() == "http://10.96.12.11:8080/"
    ));
    assert!(
        calls
            .iter()
            .any(|(pod, argv)| pod == "harness-connectivity-r1/host-netns"
                && argv.last().unwrap() == "http://10.244.2.9:8080/")
    );
    assert!(
        calls
            .iter()
            .any(|(_, argv)| argv.join(" ") == "ping -c 1 -W 2 -M do -s 1472 10.244.2.9")
    );
    assert!(
        calls
            .iter()
            .any(|(_, argv)| argv.last().unwrap() == "https://one.one.one.one/")
    );
    // NodePort remote goes through the other node's IP.
    assert!(
        calls
            .iter()
            .any(|(_, argv)| argv.last().unwrap().starts_with("http://10.5.0.4:"))
    );

    let t = run.checks[0].transcript.render();
    assert!(
        t.starts_with("connectivity/pod-to-pod-same-node:curl: harness-connectivity-r1/client (10.244.1.3) -> echo-same-node (10.244.1.7:8080)\n  #1 "),
        "{t}"
    );
    // Three attempts in a row make a pass; the two repeats fold into one line.
    assert_eq!(t.matches("exit 0").count(), 1, "{t}");
    assert!(
        t.contains(
            "\n  #2-#3 same command and result as the attempt above (2 more, the last started "
        ),
        "{t}"
    );
}

#[tokio::test]
async fn a_cross_node_drop_fails_its_checks_and_keeps_the_namespace_on_failure() {
    let (client, log) = cluster(connectivity_cluster(), |_, _| None);
    let mut opts = fast_options("r1");
    opts.keep = KeepNamespaces::OnFailure;
    let run = run_suite_with(
        &client,
        datapath(&["http://10.244.2.9:8080/"]),
        suites::connectivity::NAME,
        &ctx(2, None),
        &all(),
        &opts,
    )
    .await;

    let by_name = |n: &str| run.checks.iter().find(|c| c.check == n).unwrap();
    let other = by_name("pod-to-pod-other-node");
    let CheckOutcome::Failed { message } = &other.outcome else {
        panic!("{:?}", other.outcome)
    };
    assert!(
        message.starts_with("client -> echo-other-node (10.244.2.9:8080): timeout (curl exit 28)"),
        "{message}"
    );
    assert!(
        !message.contains("client-other-node ->"),
        "the passing leg stays out of the message: {message}"
    );
    assert!(other.transcript.render().contains("connectivity/pod-to-pod-other-node:curl: harness-connectivity-r1/client (10.244.1.3) -> echo-other-node (10.244.2.9:8080)\n"));
    assert!(other.transcript.render().contains("exit 28"));
    assert!(matches!(
        by_name("host-to-pod").outcome,
        CheckOutcome::Failed { .. }
    ));
    assert!(matches!(
        by_name("pod-to-pod-same-node").outcome,
        CheckOutcome::Passed { .. }
    ));
    // No external target: pod-to-world is skipped with the reason, not run.
    assert_eq!(
        by_name("pod-to-world").outcome,
        CheckOutcome::Skipped {
            reason: "egress disabled (--no-external-target): the run has no route to the internet"
                .into()
        }
    );
    assert!(matches!(run.cleanup, Cleanup::Kept { .. }));
    assert!(!log.lock().unwrap().iter().any(|s| s.method == "DELETE"));
}

#[tokio::test]
async fn a_single_node_cluster_skips_cross_node_checks_and_deploys_no_other_node_pods() {
    let (client, log) = cluster(connectivity_cluster(), |_, _| None);
    let run = run_suite_with(
        &client,
        datapath(&[]),
        suites::connectivity::NAME,
        &ctx(1, None),
        &all(),
        &fast_options("r1"),
    )
    .await;
    let skipped: Vec<String> = run
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, CheckOutcome::Skipped { .. }))
        .map(|c| c.check.to_string())
        .collect();
    assert_eq!(
        skipped,
        [
            "pod-to-pod-other-node",
            "pod-to-service-other-node",
            "pod-to-nodeport-remote",
            "nodeport-from-outside",
            "pod-to-world",
            "pod-to-pod-no-frag"
        ]
    );
    assert!(
        run.checks
            .iter()
            .filter(|c| !skipped.contains(&c.check.to_string()))
            .all(|c| matches!(c.outcome, CheckOutcome::Passed { .. }))
    );
    let pods = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/pods"))
        .count();
    assert_eq!(pods, 3);
}

#[tokio::test]
async fn a_pod_that_never_schedules_is_a_setup_error_naming_the_reason_for_every_check() {
    let mut c = connectivity_cluster();
    c.placement.remove("echo-other-node");
    let (client, _) = cluster(c, |_, _| None);
    let run = run_suite_with(
        &client,
        datapath(&[]),
        suites::connectivity::NAME,
        &ctx(2, None),
        &all(),
        &fast_options("r1"),
    )
    .await;
    let errors: Vec<&String> = run
        .checks
        .iter()
        .filter_map(|c| match &c.outcome {
            CheckOutcome::Error { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors.len(),
        10,
        "every check that was to run: {:?}",
        outcomes(&run)
    );
    assert!(
        errors[0].starts_with("setup of the connectivity suite failed, so this check could not run: timed out after 0.50s waiting for pod harness-connectivity-r1/echo-other-node to be Ready; last seen: Pending; PodScheduled=False (Unschedulable:"),
        "{}",
        errors[0]
    );
    assert_eq!(
        run.cleanup,
        Cleanup::Deleted {
            namespaces: vec!["harness-connectivity-r1".into()]
        }
    );
}

#[tokio::test]
async fn a_refused_namespace_is_an_error_for_every_check_and_nothing_is_left() {
    let (client, log) = serve(|_| {
        Reply::Json(
            403,
            status(
                403,
                "Forbidden",
                "namespaces is forbidden: User \"ci\" cannot create resource \"namespaces\" in API group \"\" at the cluster scope",
            ),
        )
    });
    let run = run_suite_with(
        &client,
        datapath(&[]),
        suites::dns::NAME,
        &ctx(2, None),
        &all(),
        &fast_options("r1"),
    )
    .await;
    assert_eq!(run.checks.len(), 10);
    for c in &run.checks[..9] {
        let CheckOutcome::Error { message } = &c.outcome else {
            panic!("{:?}", c.outcome)
        };
        assert!(message.starts_with("setup of the dns suite failed, so this check could not run: create namespace harness-dns-r1: namespaces is forbidden"), "{message}");
        assert!(message.ends_with("(403 Forbidden)"), "{message}");
    }
    assert!(
        matches!(run.checks[9].outcome, CheckOutcome::Skipped { .. }),
        "external-name has no target"
    );
    assert_eq!(run.cleanup, Cleanup::NothingCreated);
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn north_south_checks_without_an_outside_client_are_skipped_saying_why_and_touch_nothing() {
    let (client, log) = serve(|s| panic!("no request expected, got {} {}", s.method, s.path));
    let exec = datapath(&[]);
    let north_south = CheckFilter::new(
        &[],
        &[
            "connectivity::nodeport-from-outside".into(),
            "gateway-api::*-from-outside".into(),
            "lb-ipam::l2-reachable-from-host".into(),
        ],
    )
    .unwrap();
    let none = "no outside client (--outside-client none): the run probes only from pods";
    let no_block = "no LB pool reachable from the outside client (host): name a free block of its L2 segment with --lb-l2-block";
    let host_without_block = RunContext {
        outside: Some(suites::OutsideClient {
            origin: suites::OutsideOrigin::Host,
            l2_block: None,
        }),
        ..ctx(3, None)
    };
    let cases = [
        (suites::connectivity::NAME, ctx(3, None), vec![none]),
        (suites::gateway_api::NAME, ctx(3, None), vec![none; 3]),
        (suites::lb_ipam::NAME, ctx(3, None), vec![none]),
        (suites::lb_ipam::NAME, host_without_block, vec![no_block]),
    ];
    for (suite, context, reasons) in cases {
        let run = run_suite_with(
            &client,
            exec.clone(),
            suite,
            &context,
            &north_south,
            &fast_options("r1"),
        )
        .await;
        let got: Vec<CheckOutcome> = run.checks.iter().map(|c| c.outcome.clone()).collect();
        let want: Vec<CheckOutcome> = reasons
            .iter()
            .map(|r| CheckOutcome::Skipped {
                reason: r.to_string(),
            })
            .collect();
        assert_eq!(got, want, "{suite}");
        assert_eq!(run.cleanup, Cleanup::NothingCreated);
    }
    assert!(log.lock().unwrap().is_empty());
    assert!(exec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_filter_runs_only_what_it_selects() {
    let (client, log) = cluster(connectivity_cluster(), |_, _| None);
    let filter = CheckFilter::new(
        &[],
        &[
            "connectivity::pod-to-pod-*".into(),
            "!connectivity::pod-to-pod-no-frag".into(),
        ],
    )
    .unwrap();
    let run = run_suite_with(
        &client,
        datapath(&[]),
        suites::connectivity::NAME,
        &ctx(2, None),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let names: Vec<&str> = run.checks.iter().map(|c| c.check).collect();
    assert_eq!(names, ["pod-to-pod-same-node", "pod-to-pod-other-node"]);
    // Only the workloads those checks probe are deployed: no host-network pod.
    let pods: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/pods"))
        .map(|s| s.body["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        pods,
        [
            "client",
            "echo-same-node",
            "client-other-node",
            "echo-other-node"
        ]
    );
}

// ---- DNS ----

fn dig_text(rcode: &str, answers: &[String]) -> String {
    let mut t = format!(
        ";; Got answer:\n;; ->>HEADER<<- opcode: QUERY, status: {rcode}, id: 4242\n;; flags: qr aa rd; QUERY: 1, ANSWER: {}, AUTHORITY: 0, ADDITIONAL: 1\n\n;; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 1232\n",
        answers.len()
    );
    if !answers.is_empty() {
        t.push_str(";; ANSWER SECTION:\n");
        for a in answers {
            t.push_str(a);
            t.push('\n');
        }
    }
    t
}

/// CoreDNS as the DNS e2e tests expect it, for namespace harness-dns-r1.
fn coredns(name: &str, rtype: &str, search: bool) -> String {
    let ns = "harness-dns-r1";
    let svc_ip = "10.96.12.11";
    let a = |n: &str, ips: &[&str]| {
        ips.iter()
            .map(|ip| format!("{n}. 30 IN A {ip}"))
            .collect::<Vec<_>>()
    };
    let fqdn = if search && !name.ends_with('.') {
        match name {
            "kubernetes.default" => "kubernetes.default.svc.cluster.local".to_string(),
            n if n.matches('.').count() < 4 => {
                let svc = n.split('.').next().unwrap();
                format!("{svc}.{ns}.svc.cluster.local")
            }
            n => n.to_string(),
        }
    } else {
        name.trim_end_matches('.').to_string()
    };
    let answers = match (fqdn.as_str(), rtype) {
        ("kubernetes.default.svc.cluster.local", "A") => a(&fqdn, &["10.96.0.1"]),
        (n, "A") if n == format!("dns-svc.{ns}.svc.cluster.local") => a(n, &[svc_ip]),
        (n, "A") if n == format!("dns-headless.{ns}.svc.cluster.local") => {
            a(n, &["10.244.2.17", "10.244.1.21"])
        }
        (n, "A") if n == format!("dns-backend-0.dns-headless.{ns}.svc.cluster.local") => {
            a(n, &["10.244.1.21"])
        }
        (n, "A") if n == format!("dns-backend-1.dns-headless.{ns}.svc.cluster.local") => {
            a(n, &["10.244.2.17"])
        }
        (n, "A") if n == format!("10-244-1-30.{ns}.pod.cluster.local") => a(n, &["10.244.1.30"]),
        (n, "SRV") if n == format!("_http._tcp.dns-svc.{ns}.svc.cluster.local") => {
            vec![format!(
                "{n}. 30 IN SRV 0 100 8080 dns-svc.{ns}.svc.cluster.local."
            )]
        }
        (n, "CNAME") if n == format!("dns-external.{ns}.svc.cluster.local") => {
            vec![format!("{n}. 30 IN CNAME foo.example.com.")]
        }
        ("one.one.one.one", "A") => a("one.one.one.one", &["1.1.1.1", "1.0.0.1"]),
        _ => return dig_text("NXDOMAIN", &[]),
    };
    dig_text("NOERROR", &answers)
}

fn dns_cluster() -> Cluster {
    let mut c = Cluster::new(&[("w1", "10.5.0.3"), ("w2", "10.5.0.4")]);
    c.place("dns-client", "w1", "10.244.1.30", true);
    c.place("dns-backend-0", "w1", "10.244.1.21", true);
    c.place("dns-backend-1", "w2", "10.244.2.17", true);
    c.place("dns-backend-unready", "w1", "10.244.1.22", false);
    c.place("dns-custom", "w2", "10.244.2.40", true);
    c
}

fn dns_hook(s: &common::Seen, _: &mut Cluster) -> Option<Reply> {
    (s.path == "/apis/discovery.k8s.io/v1/namespaces/harness-dns-r1/endpointslices").then(|| {
        assert_eq!(
            s.param("labelSelector").as_deref(),
            Some("kubernetes.io/service-name=dns-headless")
        );
        Reply::Json(200, fixture_json("endpointslicelist-dns-headless.json"))
    })
}

fn dns_exec(external: &'static str) -> Arc<ScriptedExec> {
    ScriptedExec::new(move |pod, argv| match argv[0].as_str() {
        "cat" if pod.name == "dns-custom" => {
            out(0, &fixture("resolv-conf-dns-policy-none.txt"), "")
        }
        "cat" => out(0, &fixture("resolv-conf-cluster-first.txt"), ""),
        "dig" => {
            let n = argv.len();
            let (name, rtype) = (&argv[n - 2], &argv[n - 1]);
            if name.trim_end_matches('.') == "one.one.one.one" && external == "servfail" {
                return fixture_out("dig-a-external-servfail.txt", 0);
            }
            out(
                0,
                &coredns(name, rtype, argv.contains(&"+search".to_string())),
                "",
            )
        }
        other => panic!("unexpected command {other}"),
    })
}

#[tokio::test]
async fn dns_passes_against_coredns_answers_and_builds_its_services() {
    let (client, log) = cluster(dns_cluster(), dns_hook);
    let exec = dns_exec("ok");
    let run = run_suite_with(
        &client,
        exec.clone(),
        suites::dns::NAME,
        &ctx(2, Some("one.one.one.one")),
        &all(),
        &fast_options("r1"),
    )
    .await;
    for (name, o) in outcomes(&run) {
        assert!(
            matches!(o, CheckOutcome::Passed { .. }),
            "{name}: {o:?}\nsetup:\n{}",
            run.setup.render()
        );
    }
    let seen = log.lock().unwrap();
    let svc = |n: &str| {
        seen.iter()
            .find(|s| s.path.ends_with("/services") && s.body["metadata"]["name"] == n)
            .unwrap()
            .body["spec"]
            .clone()
    };
    assert_eq!(svc("dns-headless")["clusterIP"], "None");
    assert_eq!(svc("dns-headless")["ports"][0]["name"], "http");
    assert_eq!(
        svc("dns-external"),
        json!({"type": "ExternalName", "externalName": "foo.example.com"})
    );
    let custom = seen
        .iter()
        .find(|s| s.body["metadata"]["name"] == "dns-custom")
        .unwrap();
    assert_eq!(custom.body["spec"]["dnsPolicy"], "None");
    assert_eq!(
        custom.body["spec"]["dnsConfig"],
        json!({"nameservers": ["10.96.0.10"], "searches": ["harness-search.svc.cluster.local", "harness-dns-r1.svc.cluster.local"], "options": [{"name": "ndots", "value": "2"}]})
    );
    let backend = seen
        .iter()
        .find(|s| s.body["metadata"]["name"] == "dns-backend-0")
        .unwrap();
    assert_eq!(backend.body["spec"]["hostname"], "dns-backend-0");
    assert_eq!(backend.body["spec"]["subdomain"], "dns-headless");
    assert_eq!(
        backend.body["spec"]["containers"][0]["image"],
        suites::kit::images::DNS
    );
    let calls = exec.calls.lock().unwrap();
    assert!(calls.iter().any(|(_, a)| a.join(" ") == "dig +time=2 +tries=1 +nocmd +noall +comments +answer _http._tcp.dns-svc.harness-dns-r1.svc.cluster.local SRV"));
    assert!(calls.iter().any(
        |(p, a)| p == "harness-dns-r1/dns-custom" && a.join(" ").ends_with("+search dns-svc A")
    ));
}

#[tokio::test]
async fn an_external_lookup_failure_points_at_the_talos_host_dns_breakage() {
    let (client, _) = cluster(dns_cluster(), dns_hook);
    let filter = CheckFilter::new(&[], &["dns::external-name".into()]).unwrap();
    let run = run_suite_with(
        &client,
        dns_exec("servfail"),
        suites::dns::NAME,
        &ctx(2, Some("one.one.one.one")),
        &filter,
        &fast_options("r1"),
    )
    .await;
    let CheckOutcome::Failed { message } = &run.checks[0].outcome else {
        panic!("{:?}", run.checks[0].outcome)
    };
    assert!(
        message.starts_with("one.one.one.one. did not resolve from a pod: SERVFAIL"),
        "{message}"
    );
    assert!(message.contains("bpf.hostLegacyRouting=true"));
    assert!(message.contains("cilium/cilium#36737"));
}

// ---- PodSecurity ----

fn psa_hook(s: &common::Seen, _: &mut Cluster) -> Option<Reply> {
    let ns = s.path.split('/').nth(4).unwrap_or("");
    let name = s.body["metadata"]["name"].as_str().unwrap_or("");
    let header = |f: &str| fixture(f).trim().to_string();
    if s.method == "POST" && s.path.ends_with("/pods") {
        assert!(
            s.dry_run(),
            "pod-security must not create pods: {} {name}",
            s.path
        );
        let created = || {
            let mut b = s.body.clone();
            b["metadata"]["namespace"] = json!(ns);
            b
        };
        return Some(match (ns.rsplit('-').next().unwrap(), name) {
            ("baseline", "psa-net-raw") | ("default", "psa-net-raw") => {
                Reply::Json(403, fixture_json("status-403-baseline-net-raw.json"))
            }
            ("baseline", "psa-host-network") => {
                Reply::Json(403, fixture_json("status-403-baseline-host-network.json"))
            }
            ("baseline", "psa-host-port") => {
                Reply::Json(403, fixture_json("status-403-baseline-host-port.json"))
            }
            ("baseline", "psa-privileged") => {
                Reply::Json(403, fixture_json("status-403-baseline-privileged.json"))
            }
            ("restricted", "psa-restricted") => Reply::Json(201, created()),
            ("warn", "psa-warned") | ("default", "psa-baseline-ok") => Reply::Warned(
                201,
                vec![header("warning-header-restricted.txt")],
                created(),
            ),
            ("r1", "psa-harness-client") | ("r1", "psa-harness-host-netns") => {
                Reply::Json(201, created())
            }
            other => panic!("unexpected pod {other:?}"),
        });
    }
    if s.method == "POST" && s.path.ends_with("/deployments") {
        assert!(
            !s.dry_run(),
            "the Deployment is created for real so its ReplicaSet acts"
        );
        return Some(Reply::Warned(
            201,
            vec![header("warning-header-baseline-deployment.txt")],
            s.body.clone(),
        ));
    }
    if s.path.ends_with("/replicasets") {
        assert_eq!(
            s.param("labelSelector").as_deref(),
            Some("app.kubernetes.io/name=psa-deployment")
        );
        return Some(if s.is_watch() {
            Reply::Hang
        } else {
            Reply::Json(
                200,
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {"resourceVersion": "11"},
                                    "items": [fixture_json("replicaset-failedcreate-baseline.json")]}),
            )
        });
    }
    if s.path.ends_with("/events") {
        assert_eq!(
            s.param("fieldSelector").as_deref(),
            Some(
                "involvedObject.kind=ReplicaSet,involvedObject.name=psa-deployment-6d9f7c5b8d,reason=FailedCreate"
            )
        );
        return Some(Reply::Json(
            200,
            fixture_json("eventlist-failedcreate-baseline.json"),
        ));
    }
    None
}

#[tokio::test]
async fn pod_security_passes_against_talos_like_admission_and_creates_no_pods() {
    let (client, log) = cluster(Cluster::new(&[("w1", "10.5.0.3")]), psa_hook);
    let run = run_suite_with(
        &client,
        datapath(&[]),
        suites::pod_security::NAME,
        &ctx(1, None),
        &all(),
        &fast_options("r1"),
    )
    .await;
    for (name, o) in outcomes(&run) {
        assert!(matches!(o, CheckOutcome::Passed { .. }), "{name}: {o:?}");
    }
    assert_eq!(run.checks.len(), 10);
    let seen = log.lock().unwrap();
    let namespaces: Vec<(String, serde_json::Value)> = seen
        .iter()
        .filter(|s| s.is("POST", "/api/v1/namespaces"))
        .map(|s| {
            (
                s.body["metadata"]["name"].as_str().unwrap().to_string(),
                s.body["metadata"]["labels"].clone(),
            )
        })
        .collect();
    let names: Vec<&str> = namespaces.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "harness-pod-security-r1",
            "harness-pod-security-r1-baseline",
            "harness-pod-security-r1-restricted",
            "harness-pod-security-r1-warn",
            "harness-pod-security-r1-default"
        ]
    );
    assert_eq!(
        namespaces[1].1["pod-security.kubernetes.io/enforce"],
        "baseline"
    );
    assert_eq!(
        namespaces[2].1["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert_eq!(
        namespaces[3].1["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    assert_eq!(
        namespaces[3].1["pod-security.kubernetes.io/warn"],
        "restricted"
    );
    assert!(
        namespaces[4]
            .1
            .get("pod-security.kubernetes.io/enforce")
            .is_none()
    );
    assert_eq!(namespaces[4].1["io.harness.run-id"], "r1");
    let deleted = seen.iter().filter(|s| s.method == "DELETE").count();
    assert_eq!(deleted, 5);

    let warn = run
        .checks
        .iter()
        .find(|c| c.check == "warn-level-warning-header")
        .unwrap();
    let CheckOutcome::Passed { evidence } = &warn.outcome else {
        unreachable!()
    };
    assert!(evidence.starts_with("admitted with Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"), "{evidence}");
}
