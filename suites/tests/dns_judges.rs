//! The DNS judges on dig answers, EndpointSlices and resolv.conf files as the tools and the
//! API print them.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::time::Duration;
use suites::dns::dig::{self, DigResult, RData, RType};
use suites::dns::judge::{self, Expect, External, Headless, Lookup, PolicyNone};
use suites::dns::observe;
use suites::dns::resolv_conf::ResolvConf;
use suites::kit::Verdict;
use suites::kit::cilium::{CiliumFacts, Version};
use suites::kit::exec::ExecOutput;
use suites::kit::retry::{Series, Try};
use suites::kit::talos::NodeOs;

fn dig_fixture(name: &str, exit_code: i32) -> DigResult {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let (stdout, stderr) = text.split_once("--- stderr\n").unwrap_or((&text, ""));
    DigResult::parse(&ExecOutput {
        exit_code,
        stdout: stdout.into(),
        stderr: stderr.into(),
    })
}

fn lookup_of(name: &str, rtype: RType, expect: Expect, r: DigResult) -> Lookup {
    Lookup {
        name: name.into(),
        rtype,
        expect,
        series: Series {
            required: 3,
            deadline: Duration::from_secs(60),
            elapsed: Duration::from_secs(61),
            tries: vec![
                Try::Observed(r.clone()),
                Try::Observed(r.clone()),
                Try::Observed(r),
            ],
        },
    }
}

fn set(ips: &[&str]) -> Expect {
    Expect::Ips(ips.iter().map(|s| s.parse().unwrap()).collect())
}

#[test]
fn the_kubernetes_service_ip_passes() {
    let l = lookup_of(
        "kubernetes.default.svc.cluster.local",
        RType::A,
        set(&["10.96.0.1"]),
        dig_fixture("dig-a-kubernetes-default.txt", 0),
    );
    assert_eq!(
        judge::lookups(&vec![l]),
        Verdict::Pass("kubernetes.default.svc.cluster.local A: 10.96.0.1 (3 in a row)".into())
    );
}

#[test]
fn a_wrong_ip_is_named() {
    let l = lookup_of(
        "kubernetes.default.svc.cluster.local",
        RType::A,
        set(&["10.96.0.2"]),
        dig_fixture("dig-a-kubernetes-default.txt", 0),
    );
    let v = judge::lookup(&l);
    assert!(v.message().starts_with("answered 10.96.0.1, expected exactly 10.96.0.2 (missing: 10.96.0.2; unexpected: 10.96.0.1)"), "{}", v.message());
}

#[test]
fn nxdomain_and_timeout_say_which() {
    let n = judge::answer(&dig_fixture("dig-nxdomain.txt", 0), &set(&["10.96.12.40"]));
    assert!(
        n.message()
            .starts_with("NXDOMAIN: the DNS server says the name does not exist"),
        "{}",
        n.message()
    );
    let t = judge::answer(&dig_fixture("dig-timeout.txt", 9), &set(&["10.96.12.40"]));
    assert!(
        t.message().starts_with("no answer within 2s (dig exit 9"),
        "{}",
        t.message()
    );
    assert!(t.message().contains("hubble observe --port 53"));
}

fn slices() -> Vec<EndpointSlice> {
    let path = format!(
        "{}/tests/fixtures/endpointslicelist-dns-headless.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let list: k8s_openapi::List<EndpointSlice> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    list.items
}

#[test]
fn endpoint_slices_keep_readiness() {
    let e = observe::endpoints(&slices());
    let ready: Vec<String> = e
        .iter()
        .filter(|e| e.ready)
        .map(|e| e.ip.to_string())
        .collect();
    let not: Vec<String> = e
        .iter()
        .filter(|e| !e.ready)
        .map(|e| e.ip.to_string())
        .collect();
    assert_eq!(ready, ["10.244.1.21", "10.244.2.17"]);
    assert_eq!(not, ["10.244.1.22"]);
}

#[test]
fn headless_returns_exactly_the_ready_pods() {
    let headless = |fixture: &str| Headless {
        not_ready: vec!["10.244.1.22".parse().unwrap()],
        lookup: lookup_of(
            "dns-headless.harness-dns-r1.svc.cluster.local",
            RType::A,
            set(&["10.244.1.21", "10.244.2.17"]),
            dig_fixture(fixture, 0),
        ),
        endpoints: observe::endpoints(&slices()),
    };
    assert!(judge::headless(&headless("dig-a-headless.txt")).is_pass());
    let v = judge::headless(&headless("dig-a-headless-with-not-ready.txt"));
    assert!(
        v.message().starts_with(
            "the headless Service publishes not-ready pod 10.244.1.22: DNS must return only Ready endpoints (publishNotReadyAddresses must stay false); the EndpointSlices are right, so CoreDNS answers differently"
        ),
        "{}",
        v.message()
    );
}

#[test]
fn headless_blames_the_endpoints_when_they_are_wrong() {
    let mut wrong = slices();
    // The controller never published the second backend.
    wrong[0]
        .endpoints
        .retain(|e| e.addresses != ["10.244.2.17"]);
    let h = Headless {
        not_ready: vec![],
        lookup: lookup_of(
            "dns-headless.harness-dns-r1.svc.cluster.local",
            RType::A,
            set(&["10.244.1.21", "10.244.2.17"]),
            dig_fixture("dig-a-kubernetes-default.txt", 0),
        ),
        endpoints: observe::endpoints(&wrong),
    };
    let m = judge::headless(&h);
    assert!(
        m.message().contains("the EndpointSlices list 10.244.1.21 as ready, the Ready pods are 10.244.1.21, 10.244.2.17"),
        "{}",
        m.message()
    );
}

#[test]
fn srv_needs_the_named_port_and_target() {
    let r = dig_fixture("dig-srv-named-port.txt", 0);
    let good = Expect::Srv {
        port: 8080,
        target: "dns-svc.harness-dns-r1.svc.cluster.local.".into(),
    };
    assert!(judge::answer(&r, &good).is_pass());
    let wrong_port = Expect::Srv {
        port: 80,
        target: "dns-svc.harness-dns-r1.svc.cluster.local.".into(),
    };
    assert!(
        judge::answer(&r, &wrong_port)
            .message()
            .contains("expected SRV port 80")
    );
}

#[test]
fn externalname_must_be_a_cname_to_its_target() {
    let r = dig_fixture("dig-cname-externalname.txt", 0);
    assert!(judge::answer(&r, &Expect::Cname("foo.example.com.".into())).is_pass());
    assert!(!judge::answer(&r, &Expect::Cname("bar.example.com.".into())).is_pass());
}

/// Cilium configuration keys as the 1.18 chart renders them into cilium-config
/// (templates/cilium-configmap.yaml): BPF host routing is on with kube-proxy replacement and BPF
/// masquerading unless `enable-host-legacy-routing` is "true".
const BPF_HOST_ROUTING: &[(&str, &str)] = &[
    ("kube-proxy-replacement", "true"),
    ("enable-bpf-masquerade", "true"),
];

fn talos(version: &str) -> NodeOs {
    NodeOs {
        os_images: [format!("Talos (v{version})")].into(),
    }
}

fn external(
    lookup: Lookup,
    talos_host_dns: bool,
    node_os: NodeOs,
    cilium: CiliumFacts,
) -> External {
    External {
        lookup,
        control: lookup_of(
            "kubernetes.default.svc.cluster.local",
            RType::A,
            set(&["10.96.0.1"]),
            dig_fixture("dig-a-kubernetes-default.txt", 0),
        ),
        talos_host_dns,
        node_os,
        cilium,
    }
}

fn servfail() -> Lookup {
    lookup_of(
        "cilium.io.",
        RType::A,
        Expect::AnyIp,
        dig_fixture("dig-a-external-servfail.txt", 0),
    )
}

fn cilium(version: &str, config: &[(&str, &str)]) -> CiliumFacts {
    CiliumFacts {
        image: Some(format!("quay.io/cilium/cilium:v{version}")),
        version: Version::parse(version),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn an_external_failure_with_the_breakage_signature_names_it_and_its_fix() {
    let v = judge::external(&external(
        servfail(),
        false,
        talos("1.11.5"),
        cilium("1.18.4", BPF_HOST_ROUTING),
    ));
    let m = v.message();
    assert!(!v.is_pass());
    assert!(
        m.starts_with("cilium.io. did not resolve from a pod: SERVFAIL"),
        "{m}"
    );
    for needle in [
        "Talos 1.11.5",
        "169.254.116.108",
        "Cilium 1.18.4 routes host traffic in BPF",
        "siderolabs/talos#10002",
        "cilium/cilium#36737",
        "bpf.hostLegacyRouting=true",
    ] {
        assert!(m.contains(needle), "missing {needle}: {m}");
    }
}

#[test]
fn talos_1_7_forwards_through_the_host_dns_service() {
    let with = judge::external(&external(
        servfail(),
        true,
        talos("1.7.6"),
        cilium("1.15.6", BPF_HOST_ROUTING),
    ));
    assert!(with.message().contains("Service kube-system/host-dns"));
    assert!(
        with.message().contains("only some setups broke"),
        "{}",
        with.message()
    );
    assert!(with.message().contains("bpf.hostLegacyRouting=true"));
    let without = judge::external(&external(
        servfail(),
        false,
        talos("1.7.6"),
        cilium("1.15.6", BPF_HOST_ROUTING),
    ));
    assert!(
        without
            .message()
            .contains("not the Talos host DNS breakage"),
        "{}",
        without.message()
    );
}

#[test]
fn an_external_failure_without_the_signature_does_not_blame_the_known_breakage() {
    let legacy: Vec<(&str, &str)> =
        [BPF_HOST_ROUTING, &[("enable-host-legacy-routing", "true")]].concat();
    for (why, e) in [
        (
            "not Talos",
            external(
                servfail(),
                false,
                NodeOs {
                    os_images: ["Debian GNU/Linux 12 (bookworm)".to_string()].into(),
                },
                cilium("1.18.4", BPF_HOST_ROUTING),
            ),
        ),
        (
            "enable-host-legacy-routing=true",
            external(
                servfail(),
                false,
                talos("1.11.5"),
                cilium("1.18.4", &legacy),
            ),
        ),
        (
            "kube-proxy-replacement false",
            external(
                servfail(),
                false,
                talos("1.11.5"),
                cilium("1.18.4", &[("kube-proxy-replacement", "false")]),
            ),
        ),
        (
            "enable-bpf-masquerade not true",
            external(
                servfail(),
                false,
                talos("1.11.5"),
                cilium("1.18.4", &[("kube-proxy-replacement", "true")]),
            ),
        ),
    ] {
        let v = judge::external(&e);
        let m = v.message();
        assert!(!v.is_pass());
        assert!(m.contains(why), "missing {why}: {m}");
        assert!(m.contains("not the Talos host DNS breakage"), "{m}");
        assert!(!m.contains("bpf.hostLegacyRouting=true"), "{m}");
    }
}

#[test]
fn an_external_failure_when_cluster_names_fail_too_points_at_cluster_dns() {
    let mut e = external(
        servfail(),
        false,
        talos("1.11.5"),
        cilium("1.18.4", BPF_HOST_ROUTING),
    );
    e.control = lookup_of(
        "kubernetes.default.svc.cluster.local",
        RType::A,
        set(&["10.96.0.1"]),
        dig_fixture("dig-timeout.txt", 9),
    );
    let m = judge::external(&e).message().to_string();
    assert!(m.contains("cluster DNS itself is broken"), "{m}");
    assert!(!m.contains("cilium/cilium#36737"), "{m}");
}

#[test]
fn an_external_cname_chain_with_addresses_passes() {
    let l = lookup_of(
        "www.cilium.io.",
        RType::A,
        Expect::AnyIp,
        dig_fixture("dig-a-external-cname-chain.txt", 0),
    );
    assert!(
        judge::external(&external(l, false, talos("1.11.5"), CiliumFacts::default())).is_pass()
    );
}

#[test]
fn dns_policy_none_compares_resolv_conf_with_the_dns_config() {
    let path = format!(
        "{}/tests/fixtures/resolv-conf-dns-policy-none.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let actual = ResolvConf::parse(&std::fs::read_to_string(path).unwrap());
    let configured = ResolvConf {
        nameservers: vec!["10.96.0.10".into()],
        search: vec![
            "harness-search.svc.cluster.local".into(),
            "harness-dns-r1.svc.cluster.local".into(),
        ],
        options: vec!["ndots:2".into()],
    };
    let lk = lookup_of(
        "dns-svc",
        RType::A,
        set(&["10.96.12.40"]),
        DigResult::Answer {
            rcode: "NOERROR".into(),
            records: vec![dig::Record {
                name: "dns-svc.harness-dns-r1.svc.cluster.local.".into(),
                rtype: "A".into(),
                data: RData::Ip("10.96.12.40".parse().unwrap()),
            }],
        },
    );
    let ok = PolicyNone {
        configured: configured.clone(),
        actual: actual.clone(),
        lookup: lk.clone(),
    };
    assert!(
        judge::policy_none(&ok).is_pass(),
        "{:?}",
        judge::policy_none(&ok)
    );
    let cluster_first = ResolvConf::parse(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/resolv-conf-cluster-first.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    );
    let ignored = PolicyNone {
        configured,
        actual: cluster_first,
        lookup: lk,
    };
    let m = judge::policy_none(&ignored);
    assert!(
        m.message().contains(
            "search is [harness-dns-r1.svc.cluster.local svc.cluster.local cluster.local]"
        ),
        "{}",
        m.message()
    );
    assert!(m.message().contains("option ndots:2 is missing"));
}
