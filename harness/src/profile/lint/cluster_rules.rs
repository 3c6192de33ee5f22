//! Every way Helm values can contradict the cluster they are installed on, fact by fact of the
//! [`ClusterDescription`]: how Cilium reaches the API (KubePrism), the API server endpoint, the
//! pod CIDR, how pod traffic crosses the nodes' network, its MTU, and the LoadBalancer pool.

use super::{Basis, Finding, Values};
use crate::cluster::{ClusterDescription, NodeLink, Origin, is_loopback};
use crate::version::CiliumVersion;
use serde_json::Value;
use talos_docker::Ipv4Net;

fn covers(outer: &Ipv4Net, inner: &Ipv4Net) -> bool {
    outer.prefix() <= inner.prefix() && outer.contains(inner.network())
}

/// "(assumed: ...)" when a fact was not given, so the user sees what the finding rests on.
fn assumed(origin: &Origin) -> String {
    match origin {
        Origin::Assumed(why) => format!(" (assumed: {why})"),
        _ => String::new(),
    }
}

fn port_of(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn rules(v: &Values, cilium: &CiliumVersion, cluster: &ClusterDescription) -> Vec<Finding> {
    let mut out = Vec::new();
    api_access(v, cluster, &mut out);
    pod_cidr(v, cluster, &mut out);
    crossing_nodes(v, cluster, &mut out);
    lb_pool(v, cluster, &mut out);
    spire_namespace(v, &mut out);
    let _ = cilium;
    out
}

/// The chart creates the SPIRE namespace without PodSecurity labels, and Talos enforces
/// baseline in every namespace without them, which refuses the SPIRE agent.
fn spire_namespace(v: &Values, out: &mut Vec<Finding>) {
    let existing = v
        .user("authentication.mutual.spire.install.existingNamespace")
        .is_some_and(|_| v.flag("authentication.mutual.spire.install.existingNamespace"));
    if v.flag("authentication.mutual.spire.enabled")
        && (v
            .user("authentication.mutual.spire.install.enabled")
            .is_none()
            || v.flag("authentication.mutual.spire.install.enabled"))
        && !existing
    {
        out.push(Finding::error(
            Basis::Cluster,
            "authentication.mutual.spire.install.existingNamespace",
            "the chart creates the SPIRE namespace without PodSecurity labels, and Talos enforces baseline there, which refuses the SPIRE agent (hostPID, hostNetwork, hostPath)",
            "set it to true and create the namespace labelled pod-security.kubernetes.io/enforce=privileged first (the harness does this for its runs)",
        ));
    }
}

/// KubePrism and the API server endpoint: where `k8sServiceHost`/`k8sServicePort` may point.
fn api_access(v: &Values, cluster: &ClusterDescription, out: &mut Vec<Finding>) {
    let want = &cluster.api_access.value;
    let note = assumed(&cluster.api_access.origin);
    let fix = format!(
        "set k8sServiceHost: {} and k8sServicePort: {}",
        want.host, want.port
    );
    let how = if want.kubeprism {
        format!(
            "on Talos, Cilium reaches the API server through KubePrism, the node-local API load balancer on {}:{}{note}",
            want.host, want.port
        )
    } else {
        format!(
            "Cilium must reach the API server at {}:{}{note}",
            want.host, want.port
        )
    };
    let host = v.text("k8sServiceHost");
    let port = v.get("k8sServicePort").and_then(port_of);
    let kpr = v.flag("kubeProxyReplacement");
    let Some(host) = host else {
        if kpr {
            out.push(Finding::error(
                Basis::Cluster,
                "k8sServiceHost",
                format!(
                    "kube-proxy replacement is on, so the cluster runs no kube-proxy and the agent cannot reach the API server through its Service IP; {how}"
                ),
                fix,
            ));
        }
        return;
    };
    let port_shown = port.map_or("<the API server's Service port>".into(), |p| p.to_string());
    if is_loopback(&host) {
        if want.kubeprism && port == Some(want.port) {
            return;
        }
        let key = if port.is_some() {
            "k8sServicePort"
        } else {
            "k8sServiceHost"
        };
        let what = if port == Some(cluster.api_server.value.port) {
            format!(
                "{host}:{port_shown}, the API server's own port, which only control planes have (on workers nothing listens there, so their agents never start)"
            )
        } else {
            format!("{host}:{port_shown}, where nothing listens on the nodes")
        };
        out.push(Finding::error(
            Basis::Cluster,
            key,
            format!("Cilium would reach the API at {what}; {how}"),
            fix,
        ));
        return;
    }
    if host == "auto" {
        out.push(Finding::error(
            Basis::Cluster,
            "k8sServiceHost",
            format!(
                "'auto' reads the API address from the cluster-info ConfigMap at install time, not the node-local endpoint; {how}"
            ),
            fix,
        ));
        return;
    }
    // A remote host: right only if it is the cluster's API server (or the chosen endpoint).
    if !want.kubeprism && host == want.host && port == Some(want.port) {
        return;
    }
    let server = &cluster.api_server.value;
    match &server.host {
        Some(h) if *h == host && port == Some(server.port) => {
            if want.kubeprism {
                out.push(Finding::warning(
                    Basis::Cluster,
                    "k8sServiceHost",
                    format!(
                        "{host}:{port_shown} is one API server, which bypasses KubePrism: agents lose the API while that control plane is down; {how}"
                    ),
                    fix,
                ));
            }
        }
        Some(h) => out.push(Finding::error(
            Basis::Cluster,
            "k8sServiceHost",
            format!(
                "{host}:{port_shown} is neither this cluster's API server ({h}:{}){} nor its KubePrism; {how}",
                server.port,
                assumed(&cluster.api_server.origin)
            ),
            fix,
        )),
        None if cluster.built_by_harness => out.push(Finding::error(
            Basis::Cluster,
            "k8sServiceHost",
            format!(
                "{host}:{port_shown} is a fixed address, but the harness picks each cluster's network at provisioning, so no fixed address reaches its API server; {how}"
            ),
            fix,
        )),
        None => out.push(Finding::warning(
            Basis::Cluster,
            "k8sServiceHost",
            format!(
                "cannot tell whether {host}:{port_shown} is this cluster's API server{}; {how}",
                assumed(&cluster.api_server.origin)
            ),
            "pass --api-server HOST:PORT, or use KubePrism (localhost:7445)",
        )),
    }
}

/// The pod CIDR: the range pods get addresses from, and the range native routing must cover.
fn pod_cidr(v: &Values, cluster: &ClusterDescription, out: &mut Vec<Finding>) {
    let cidr = cluster.pod_cidr.value;
    let note = assumed(&cluster.pod_cidr.origin);
    let mode = v.text("ipam.mode").unwrap_or_default();
    if mode == "cluster-pool" {
        let pools: Vec<String> = match v.get("ipam.operator.clusterPoolIPv4PodCIDRList") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            Some(Value::String(s)) => s
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        };
        let set_by_user = v.user("ipam.mode").is_some();
        let mode_shown = if set_by_user {
            "ipam.mode is cluster-pool".to_string()
        } else {
            "ipam.mode is unset, so the chart's default cluster-pool applies".to_string()
        };
        for pool in pools {
            let Ok(pool_net) = pool.parse::<Ipv4Net>() else {
                continue;
            };
            if covers(&cidr, &pool_net) {
                continue;
            }
            let mut clashes = Vec::new();
            if let Some(nodes) = cluster.nodes.value.cidr
                && nodes.overlaps(&pool_net)
            {
                clashes.push(format!("the node network {nodes}"));
            }
            let svc = cluster.service_cidr.value;
            if svc.overlaps(&pool_net) {
                clashes.push(format!("the Service CIDR {svc}"));
            }
            let problem = format!(
                "{mode_shown}: Cilium hands pods addresses from {pool}, not from the cluster's pod CIDR {cidr}{note}, which Talos assigns to the nodes{}",
                if clashes.is_empty() {
                    String::new()
                } else {
                    format!("; {pool} overlaps {}", clashes.join(" and "))
                }
            );
            let fix = format!(
                "set ipam.mode: kubernetes (Talos assigns each node a slice of {cidr}), or a clusterPoolIPv4PodCIDRList inside {cidr}"
            );
            out.push(if clashes.is_empty() {
                Finding::warning(Basis::Cluster, "ipam.mode", problem, fix)
            } else {
                Finding::error(Basis::Cluster, "ipam.mode", problem, fix)
            });
        }
    }
    let native = v.text("routingMode").as_deref() == Some("native");
    let masquerading = v.user("enableIPv4Masquerade") != Some(&Value::Bool(false))
        && !v.flag("ipMasqAgent.enabled")
        && v.flag("ipv4.enabled");
    // With masquerading set explicitly the chart refuses this itself (see `chart`).
    if native
        && masquerading
        && !v.flag("enableIPv4Masquerade")
        && v.text("ipv4NativeRoutingCIDR").is_none()
    {
        out.push(Finding::error(
            Basis::Cluster,
            "ipv4NativeRoutingCIDR",
            format!(
                "native routing must not masquerade traffic within the cluster's pod CIDR {cidr}{note}; unset, the agent masquerades by default and refuses to start (\"native routing cidr must be configured\")"
            ),
            format!("set ipv4NativeRoutingCIDR: {cidr}"),
        ));
    }
    if native && let Some(given) = v.text("ipv4NativeRoutingCIDR") {
        let fix = format!("set ipv4NativeRoutingCIDR: {cidr}");
        match given.parse::<Ipv4Net>() {
            Err(why) => out.push(Finding::error(
                Basis::Cluster,
                "ipv4NativeRoutingCIDR",
                format!("'{given}' is not an IPv4 CIDR ({why}), so it cannot cover the cluster's pod CIDR {cidr}{note}"),
                fix,
            )),
            Ok(native) if !covers(&native, &cidr) => out.push(Finding::error(
                Basis::Cluster,
                "ipv4NativeRoutingCIDR",
                format!(
                    "{native} does not cover the cluster's pod CIDR {cidr}{note}, so pod traffic between nodes is masqueraded and policies see node addresses"
                ),
                fix,
            )),
            Ok(_) => {}
        }
    }
}

/// How pod traffic crosses between nodes, and the MTU of the nodes' link.
fn crossing_nodes(v: &Values, cluster: &ClusterDescription, out: &mut Vec<Finding>) {
    let nodes = &cluster.nodes.value;
    let note = assumed(&cluster.nodes.origin);
    let native = v.text("routingMode").as_deref() == Some("native");
    let direct = v.flag("autoDirectNodeRoutes");
    let bgp = v.flag("bgpControlPlane.enabled");
    if native && !direct {
        let fix = "set autoDirectNodeRoutes: true (every node is on the same L2 segment), or use routingMode: tunnel";
        match (nodes.link, cluster.built_by_harness) {
            (NodeLink::SharedL2, true) => out.push(Finding::error(
                Basis::Cluster,
                "autoDirectNodeRoutes",
                if bgp {
                    "native routing on the one docker bridge: nothing routes other nodes' pod CIDRs, and the harness runs no BGP peer for bgpControlPlane to teach".to_string()
                } else {
                    "native routing on the one docker bridge: nothing routes other nodes' pod CIDRs (the docker host, the only gateway, knows none), so pod traffic between nodes is dropped".to_string()
                },
                fix,
            )),
            (NodeLink::SharedL2, false) if !bgp => out.push(Finding::error(
                Basis::Cluster,
                "autoDirectNodeRoutes",
                format!("native routing with the nodes on one L2 segment{note}, but nothing installs routes to the other nodes' pod CIDRs"),
                fix,
            )),
            (NodeLink::Routed, _) if !bgp => out.push(Finding::warning(
                Basis::Cluster,
                "routingMode",
                "native routing across routers: the routers must know each node's pod CIDR (static routes or BGP); nothing in the values teaches them",
                "enable bgpControlPlane with a peering, or use routingMode: tunnel",
            )),
            (NodeLink::Unknown, _) if !bgp => out.push(Finding::warning(
                Basis::Cluster,
                "routingMode",
                format!("native routing: how pod traffic crosses between nodes depends on the node network, which is not known{note}"),
                "pass --node-link shared-l2 or routed to check it",
            )),
            _ => {}
        }
    }
    if native && direct && nodes.link == NodeLink::Routed {
        out.push(Finding::warning(
            Basis::Cluster,
            "autoDirectNodeRoutes",
            format!("direct node routes need every node on one L2 segment, but the nodes are routed{note}"),
            "use bgpControlPlane, or routingMode: tunnel",
        ));
    }
    if native
        && cluster.built_by_harness
        && v.get("enableIPv4Masquerade") == Some(&Value::Bool(false))
    {
        out.push(Finding::error(
            Basis::Cluster,
            "enableIPv4Masquerade",
            "pods leave the docker bridge with their own addresses, which the docker host cannot route back, so traffic to the outside world gets no answer",
            "remove enableIPv4Masquerade: false",
        ));
    }
    if let Some(link_mtu) = nodes.mtu
        && let Some(mtu) = v.user("MTU").and_then(Value::as_u64)
        && mtu > u64::from(link_mtu)
    {
        out.push(Finding::error(
            Basis::Cluster,
            "MTU",
            format!("{mtu} is larger than the nodes' link MTU {link_mtu}{note}: full-size packets between nodes are dropped"),
            format!("remove MTU (Cilium derives it from the link), or set at most {link_mtu}"),
        ));
    }
}

/// The LoadBalancer pool the harness creates and announces over L2.
fn lb_pool(v: &Values, cluster: &ClusterDescription, out: &mut Vec<Finding>) {
    if cluster.lb_pool.is_none() {
        return;
    }
    if v.user("l2announcements.enabled")
        .is_some_and(|x| x == &Value::Bool(false))
        && v.flag("kubeProxyReplacement")
    {
        out.push(Finding::warning(
            Basis::Cluster,
            "l2announcements.enabled",
            "the harness announces its LoadBalancer pool on the docker bridge over L2; turned off, LoadBalancer IPs do not answer from the docker host and the harness creates no pool",
            "remove l2announcements.enabled: false",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{harness_cluster, keys, lint, talos, v};
    use super::super::{Basis, Severity, values};
    use crate::cluster::{ClusterDescription, GivenFacts, NodeLink};
    use serde_json::json;

    #[test]
    fn spire_on_talos_needs_a_labelled_namespace() {
        let spire = talos(
            json!({"authentication": {"enabled": true, "mutual": {"spire": {"enabled": true}}}}),
        );
        let f = lint(spire.clone(), "1.20.0");
        assert_eq!(
            keys(&f),
            vec![(
                "authentication.mutual.spire.install.existingNamespace",
                Severity::Error
            )]
        );
        assert!(f[0].problem.contains("baseline"), "{}", f[0].problem);
        let mut labelled = spire;
        crate::values::set(
            &mut labelled,
            "authentication.mutual.spire.install.existingNamespace",
            json!(true),
        );
        assert_eq!(lint(labelled, "1.20.0"), vec![]);
    }

    #[test]
    fn a_k3s_api_endpoint_is_refused_with_kubeprism() {
        // The report: values migrated from k3s.
        let f = lint(
            talos(json!({"k8sServiceHost": "127.0.0.1", "k8sServicePort": 6443})),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("k8sServicePort", Severity::Error)]);
        assert_eq!(f[0].basis, Basis::Cluster);
        assert!(f[0].problem.contains("KubePrism"), "{}", f[0].problem);
        assert!(f[0].problem.contains("localhost:7445"), "{}", f[0].problem);
        assert!(
            f[0].problem.contains("only control planes have"),
            "{}",
            f[0].problem
        );
        assert_eq!(
            f[0].fix,
            "set k8sServiceHost: localhost and k8sServicePort: 7445"
        );
    }

    #[test]
    fn kube_proxy_replacement_needs_an_api_address() {
        let f = lint(
            json!({"ipam": {"mode": "kubernetes"}, "kubeProxyReplacement": true}),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("k8sServiceHost", Severity::Error)]);
    }

    #[test]
    fn a_fixed_address_cannot_reach_a_harness_cluster() {
        let f = lint(
            talos(json!({"k8sServiceHost": "10.5.0.2", "k8sServicePort": 6443})),
            "1.19.6",
        );
        assert_eq!(keys(&f), vec![("k8sServiceHost", Severity::Error)]);
        assert!(
            f[0].problem
                .contains("picks each cluster's network at provisioning")
        );
    }

    #[test]
    fn the_pod_cidr_rule_uses_the_clusters_pod_cidr() {
        let native = json!({"routingMode": "native", "autoDirectNodeRoutes": true, "ipv4NativeRoutingCIDR": "10.244.0.0/16"});
        assert_eq!(lint(talos(native.clone()), "1.18.4"), vec![]);
        // Another cluster with another pod CIDR: the same values contradict it.
        let other = ClusterDescription::given(&GivenFacts {
            pod_cidr: Some("10.42.0.0/16".parse().unwrap()),
            node_link: Some(NodeLink::SharedL2),
            ..Default::default()
        });
        let f = values(&talos(native), &v("1.18.4"), &other);
        assert_eq!(keys(&f), vec![("ipv4NativeRoutingCIDR", Severity::Error)]);
        assert!(f[0].problem.contains("10.42.0.0/16"), "{}", f[0].problem);
        assert_eq!(f[0].fix, "set ipv4NativeRoutingCIDR: 10.42.0.0/16");
        // ... and its own pod CIDR passes.
        let ok = json!({"routingMode": "native", "autoDirectNodeRoutes": true, "ipv4NativeRoutingCIDR": "10.42.0.0/16"});
        assert_eq!(values(&talos(ok), &v("1.18.4"), &other), vec![]);
    }

    #[test]
    fn native_routing_needs_a_cidr_covering_the_pod_cidr() {
        let f = lint(
            talos(json!({"routingMode": "native", "autoDirectNodeRoutes": true})),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("ipv4NativeRoutingCIDR", Severity::Error)]);
        assert_eq!(f[0].basis, Basis::Cluster);
        let f = lint(
            talos(
                json!({"routingMode": "native", "autoDirectNodeRoutes": true, "ipv4NativeRoutingCIDR": "10.246.0.0/16"}),
            ),
            "1.18.4",
        );
        assert!(f[0].problem.contains("does not cover"), "{}", f[0].problem);
        let f = lint(
            talos(
                json!({"routingMode": "native", "autoDirectNodeRoutes": true, "ipv4NativeRoutingCIDR": "10.0.0.0/8"}),
            ),
            "1.18.4",
        );
        assert_eq!(f, vec![]);
    }

    #[test]
    fn native_routing_on_one_bridge_needs_direct_routes() {
        let f = lint(
            talos(json!({"routingMode": "native", "ipv4NativeRoutingCIDR": "10.244.0.0/16"})),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("autoDirectNodeRoutes", Severity::Error)]);
        assert!(f[0].problem.contains("docker bridge"));
    }

    #[test]
    fn the_default_cluster_pool_overlaps_the_docker_networks() {
        let f = lint(
            json!({"kubeProxyReplacement": true, "k8sServiceHost": "localhost", "k8sServicePort": 7445}),
            "1.19.6",
        );
        assert_eq!(keys(&f), vec![("ipam.mode", Severity::Error)]);
        assert!(f[0].problem.contains("10.0.0.0/8"), "{}", f[0].problem);
        assert!(f[0].problem.contains("10.5.0.0/16"), "{}", f[0].problem);
    }

    #[test]
    fn an_mtu_above_the_bridge_is_refused() {
        let f = lint(talos(json!({"MTU": 9000})), "1.18.4");
        assert_eq!(keys(&f), vec![("MTU", Severity::Error)]);
    }

    #[test]
    fn assumed_facts_are_named_in_the_finding() {
        let other = ClusterDescription::given(&GivenFacts::default());
        let f = values(
            &talos(json!({"k8sServicePort": 6443})),
            &v("1.18.4"),
            &other,
        );
        assert!(
            f[0].problem.contains("(assumed: Talos's KubePrism"),
            "{}",
            f[0].problem
        );
        let _ = harness_cluster();
    }
}
