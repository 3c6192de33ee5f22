//! DNS observations: dig answers, EndpointSlices and resolv.conf files from the fixtures, and
//! the Talos and Cilium facts the external lookup is read against.

use crate::common::{fixture, fixture_json, fixture_out};
use crate::{Scenario, case, series, thrice};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use suites::dns::dig::{DigResult, RType};
use suites::dns::judge::{Expect, External, Headless, Lookup, PolicyNone};
use suites::dns::observe;
use suites::dns::resolv_conf::ResolvConf;
use suites::kit::cilium::{CiliumFacts, Version};
use suites::kit::talos::NodeOs;

fn dig(name: &str, exit_code: i32) -> DigResult {
    DigResult::parse(&fixture_out(name, exit_code).unwrap())
}

fn ips(ips: &[&str]) -> Expect {
    Expect::Ips(ips.iter().map(|s| s.parse().unwrap()).collect())
}

fn lookup(
    name: &str,
    rtype: RType,
    expect: Expect,
    answers: suites::kit::Series<DigResult>,
) -> Lookup {
    Lookup {
        name: name.into(),
        rtype,
        expect,
        series: answers,
    }
}

fn kubernetes_default() -> Lookup {
    lookup(
        "kubernetes.default.svc.cluster.local",
        RType::A,
        ips(&["10.96.0.1"]),
        thrice(dig("dig-a-kubernetes-default.txt", 0)),
    )
}

fn slices() -> Vec<EndpointSlice> {
    let list: k8s_openapi::List<EndpointSlice> =
        serde_json::from_value(fixture_json("endpointslicelist-dns-headless.json")).unwrap();
    list.items
}

fn headless(answer: &str, endpoints: Vec<EndpointSlice>) -> Headless {
    Headless {
        not_ready: vec!["10.244.1.22".parse().unwrap()],
        lookup: lookup(
            "dns-headless.harness-dns-r1.svc.cluster.local",
            RType::A,
            ips(&["10.244.1.21", "10.244.2.17"]),
            thrice(dig(answer, 0)),
        ),
        endpoints: observe::endpoints(&endpoints),
    }
}

fn policy_none(actual: &str) -> PolicyNone {
    PolicyNone {
        configured: ResolvConf {
            nameservers: vec!["10.96.0.10".into()],
            search: vec![
                "harness-search.svc.cluster.local".into(),
                "harness-dns-r1.svc.cluster.local".into(),
            ],
            options: vec!["ndots:2".into()],
        },
        actual: ResolvConf::parse(&fixture(actual)),
        lookup: kubernetes_default(),
    }
}

fn talos(version: &str) -> NodeOs {
    NodeOs {
        os_images: [format!("Talos (v{version})")].into(),
    }
}

/// cilium-config keys as the 1.18 chart renders them (templates/cilium-configmap.yaml).
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

const BPF_HOST_ROUTING: &[(&str, &str)] = &[
    ("kube-proxy-replacement", "true"),
    ("enable-bpf-masquerade", "true"),
];

fn external(answer: &str, node_os: NodeOs, cilium: CiliumFacts) -> External {
    External {
        lookup: lookup(
            "cilium.io.",
            RType::A,
            Expect::AnyIp,
            thrice(dig(answer, 0)),
        ),
        control: kubernetes_default(),
        talos_host_dns: false,
        node_os,
        cilium,
    }
}

pub fn scenarios() -> Vec<Scenario> {
    let mut legacy = BPF_HOST_ROUTING.to_vec();
    legacy.push(("enable-host-legacy-routing", "true"));
    let mut control_fails = external(
        "dig-a-external-servfail.txt",
        talos("1.11.5"),
        cilium("1.18.4", BPF_HOST_ROUTING),
    );
    control_fails.control.series = thrice(dig("dig-timeout.txt", 9));
    vec![
        case(
            "kubernetes-default-fqdn",
            "the API Service IP, three times",
            &vec![kubernetes_default()],
        ),
        case(
            "service-a-record",
            "NXDOMAIN for the Service",
            &vec![lookup(
                "dns-svc.harness-dns-r1.svc.cluster.local",
                RType::A,
                ips(&["10.96.12.40"]),
                thrice(dig("dig-nxdomain.txt", 0)),
            )],
        ),
        case(
            "service-a-record",
            "the wrong address",
            &vec![lookup(
                "dns-svc.harness-dns-r1.svc.cluster.local",
                RType::A,
                ips(&["10.96.12.40"]),
                thrice(dig("dig-a-kubernetes-default.txt", 0)),
            )],
        ),
        case(
            "search-path-partial-names",
            "the cluster DNS does not answer",
            &vec![lookup(
                "kubernetes.default",
                RType::A,
                ips(&["10.96.0.1"]),
                thrice(dig("dig-timeout.txt", 9)),
            )],
        ),
        case(
            "srv-named-port",
            "SRV names port 8080 and the Service",
            &vec![lookup(
                "_http._tcp.dns-svc.harness-dns-r1.svc.cluster.local",
                RType::Srv,
                Expect::Srv {
                    port: 8080,
                    target: "dns-svc.harness-dns-r1.svc.cluster.local.".into(),
                },
                thrice(dig("dig-srv-named-port.txt", 0)),
            )],
        ),
        case(
            "srv-named-port",
            "SRV names another port",
            &vec![lookup(
                "_http._tcp.dns-svc.harness-dns-r1.svc.cluster.local",
                RType::Srv,
                Expect::Srv {
                    port: 80,
                    target: "dns-svc.harness-dns-r1.svc.cluster.local.".into(),
                },
                thrice(dig("dig-srv-named-port.txt", 0)),
            )],
        ),
        case(
            "externalname-cname",
            "a CNAME to the externalName",
            &vec![lookup(
                "dns-external.harness-dns-r1.svc.cluster.local",
                RType::Cname,
                Expect::Cname("foo.example.com.".into()),
                thrice(dig("dig-cname-externalname.txt", 0)),
            )],
        ),
        case(
            "pod-a-record",
            "an answer that flaps",
            &vec![lookup(
                "10-244-1-30.harness-dns-r1.pod.cluster.local",
                RType::A,
                ips(&["10.96.0.1"]),
                series(&[
                    dig("dig-a-kubernetes-default.txt", 0),
                    dig("dig-nxdomain.txt", 0),
                    dig("dig-a-kubernetes-default.txt", 0),
                ]),
            )],
        ),
        case(
            "headless-service-pod-ips",
            "exactly the ready pods",
            &headless("dig-a-headless.txt", slices()),
        ),
        case(
            "headless-service-pod-ips",
            "a not-ready pod is published",
            &headless("dig-a-headless-with-not-ready.txt", slices()),
        ),
        case(
            "headless-service-pod-ips",
            "the EndpointSlices miss a ready pod",
            &{
                let mut wrong = slices();
                wrong[0]
                    .endpoints
                    .retain(|e| e.addresses != ["10.244.2.17"]);
                headless("dig-a-kubernetes-default.txt", wrong)
            },
        ),
        case(
            "dns-policy-none",
            "resolv.conf is the dnsConfig",
            &policy_none("resolv-conf-dns-policy-none.txt"),
        ),
        case(
            "dns-policy-none",
            "the kubelet wrote the ClusterFirst file",
            &policy_none("resolv-conf-cluster-first.txt"),
        ),
        case(
            "external-name",
            "a CNAME chain with addresses",
            &external(
                "dig-a-external-cname-chain.txt",
                talos("1.11.5"),
                cilium("1.18.4", BPF_HOST_ROUTING),
            ),
        ),
        case(
            "external-name",
            "SERVFAIL on Talos 1.11 with BPF host routing",
            &external(
                "dig-a-external-servfail.txt",
                talos("1.11.5"),
                cilium("1.18.4", BPF_HOST_ROUTING),
            ),
        ),
        case(
            "external-name",
            "SERVFAIL on Talos 1.7 through the host-dns Service, Cilium 1.15",
            &External {
                talos_host_dns: true,
                ..external(
                    "dig-a-external-servfail.txt",
                    talos("1.7.6"),
                    cilium("1.15.6", BPF_HOST_ROUTING),
                )
            },
        ),
        case(
            "external-name",
            "SERVFAIL with host legacy routing on",
            &external(
                "dig-a-external-servfail.txt",
                talos("1.11.5"),
                cilium("1.18.4", &legacy),
            ),
        ),
        case(
            "external-name",
            "SERVFAIL on nodes that do not run Talos",
            &external(
                "dig-a-external-servfail.txt",
                NodeOs {
                    os_images: ["Debian GNU/Linux 12 (bookworm)".to_string()].into(),
                },
                cilium("1.18.4", BPF_HOST_ROUTING),
            ),
        ),
        case(
            "external-name",
            "SERVFAIL and cilium-config unreadable",
            &external(
                "dig-a-external-servfail.txt",
                talos("1.11.5"),
                CiliumFacts::default(),
            ),
        ),
        case("external-name", "cluster names fail too", &control_fails),
    ]
}
