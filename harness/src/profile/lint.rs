//! Findings on Helm values and Cilium manifests before any cluster is made: removed keys the
//! chart refuses to render, values Cilium no longer accepts, and combinations that contradict
//! each other on Talos. Each finding names the key and the fix.

use crate::releases::{Minor, ReleaseTable, Served};
use crate::values::{flag, get, text};
use crate::version::CiliumVersion;
use serde::Serialize;
use serde_json::Value;
use std::net::Ipv4Addr;
use talos_docker::Ipv4Net;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The chart refuses to render, Cilium refuses to start, or the run cannot mean anything.
    Error,
    /// It works, but not as the values suggest.
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

fn finding(
    severity: Severity,
    key: &str,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        severity,
        key: key.to_string(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// The pod CIDR Talos gives a cluster unless its config says otherwise.
pub fn talos_pod_cidr() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 244, 0, 0), 16).expect("a network address")
}

fn covers(outer: &Ipv4Net, inner: &Ipv4Net) -> bool {
    outer.prefix() <= inner.prefix() && outer.contains(inner.network())
}

fn is_set(values: &Value, key: &str) -> bool {
    get(values, key).is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
}

/// Lint merged Helm values for one Cilium version.
pub fn values(values: &Value, cilium: &CiliumVersion) -> Vec<Finding> {
    use Severity::*;
    let mut out = Vec::new();
    let table = ReleaseTable::embedded();
    let minor = Minor::from(cilium.minor());
    for removed in table.removed_by(minor) {
        let key = removed.key.as_str();
        if removed.refused && is_set(values, key) {
            out.push(finding(
                Error,
                key,
                format!(
                    "removed in Cilium {}; the chart refuses to render it",
                    removed.removed_in
                ),
                &removed.fix,
            ));
        } else if !removed.refused && get(values, key).is_some_and(|v| !v.is_null()) {
            out.push(finding(
                Error,
                key,
                format!(
                    "removed in Cilium {}; the {minor} chart ignores it, so it has no effect",
                    removed.removed_in
                ),
                &removed.fix,
            ));
        }
    }
    // The chart's own default where it changed between minors (release table).
    let chart_default = |key: &str, fallback: bool| {
        table
            .chart_default(key, minor)
            .and_then(Value::as_bool)
            .unwrap_or(fallback)
    };
    let has_node_port_key = !table.removed_by(minor).any(|r| r.key == "nodePort.enabled");

    let kpr_text = text(values, "kubeProxyReplacement");
    match kpr_text.as_deref() {
        Some("strict") | Some("partial") | Some("probe") | Some("disabled") => {
            let v = kpr_text.as_deref().unwrap_or_default();
            let to = if v == "strict" { "true" } else { "false" };
            out.push(finding(
                Error,
                "kubeProxyReplacement",
                format!("'{v}' was removed in Cilium 1.16 (cilium/cilium#31286); only true or false remain"),
                format!("set kubeProxyReplacement: {to}"),
            ));
        }
        Some("true") | Some("false") | None => {}
        Some(other) => out.push(finding(
            Error,
            "kubeProxyReplacement",
            format!("'{other}' is not a valid value"),
            "set kubeProxyReplacement: true or false",
        )),
    }
    let kpr = flag(values, "kubeProxyReplacement", false);

    if kpr && text(values, "k8sServiceHost").is_none_or(|h| h.is_empty()) {
        out.push(finding(
            Error,
            "k8sServiceHost",
            "kube-proxy replacement is on, so Talos runs no kube-proxy and the agent cannot reach the API server through its Service IP",
            "set k8sServiceHost: localhost and k8sServicePort: 7445 (Talos KubePrism)",
        ));
    }

    let l7 = flag(values, "l7Proxy", true);
    for key in ["gatewayAPI.enabled", "ingressController.enabled"] {
        if !flag(values, key, false) {
            continue;
        }
        let node_port = has_node_port_key && flag(values, "nodePort.enabled", false);
        if !(kpr || node_port) {
            out.push(finding(
                Error,
                key,
                "Cilium's Gateway API and Ingress controllers need kube-proxy replacement (or nodePort.enabled before Cilium 1.19), but kubeProxyReplacement is not true",
                "set kubeProxyReplacement: true (with k8sServiceHost: localhost, k8sServicePort: 7445)",
            ));
        }
        if !l7 {
            out.push(finding(
                Error,
                key,
                "needs the L7 proxy, but l7Proxy is false; the chart refuses to render",
                "remove l7Proxy: false",
            ));
        }
    }

    if flag(values, "l2announcements.enabled", false) && !kpr {
        out.push(finding(
            Error,
            "l2announcements.enabled",
            "L2 announcements need kube-proxy replacement",
            "set kubeProxyReplacement: true, or drop l2announcements",
        ));
    }

    let hubble = flag(values, "hubble.enabled", true);
    let relay = flag(values, "hubble.relay.enabled", false);
    if relay && !hubble {
        out.push(finding(
            Error,
            "hubble.relay.enabled",
            "Hubble Relay needs hubble.enabled=true; the chart refuses to render",
            "set hubble.enabled: true",
        ));
    }
    if flag(values, "hubble.ui.enabled", false)
        && !flag(values, "hubble.ui.standalone.enabled", false)
        && !relay
    {
        out.push(finding(
            Error,
            "hubble.ui.enabled",
            "Hubble UI needs Hubble Relay; the chart refuses to render",
            "set hubble.relay.enabled: true",
        ));
    }

    match text(values, "routingMode").as_deref() {
        None | Some("") | Some("tunnel") => {}
        Some("native") => match text(values, "ipv4NativeRoutingCIDR").map(|c| c.parse::<Ipv4Net>()) {
            None => out.push(finding(
                Error,
                "ipv4NativeRoutingCIDR",
                "native routing with masquerading (the default) needs the CIDR that is routed without masquerading; the agent refuses to start",
                "set ipv4NativeRoutingCIDR: 10.244.0.0/16 (the Talos pod CIDR)",
            )),
            Some(Err(why)) => out.push(finding(
                Error,
                "ipv4NativeRoutingCIDR",
                format!("is not an IPv4 CIDR: {why}"),
                "set ipv4NativeRoutingCIDR: 10.244.0.0/16 (the Talos pod CIDR)",
            )),
            Some(Ok(cidr)) if !covers(&cidr, &talos_pod_cidr()) => out.push(finding(
                Error,
                "ipv4NativeRoutingCIDR",
                format!(
                    "{cidr} does not cover the cluster's pod CIDR {}, so pod traffic between nodes would be masqueraded",
                    talos_pod_cidr()
                ),
                "set ipv4NativeRoutingCIDR: 10.244.0.0/16",
            )),
            Some(Ok(_)) => {}
        },
        Some(other) => out.push(finding(
            Error,
            "routingMode",
            format!("'{other}' is not a routing mode"),
            "use native or tunnel",
        )),
    }
    if let Some(p) = text(values, "tunnelProtocol").filter(|p| !p.is_empty()) {
        if p != "vxlan" && p != "geneve" {
            out.push(finding(
                Error,
                "tunnelProtocol",
                format!("'{p}' is not a tunnel protocol"),
                "use vxlan or geneve",
            ));
        } else if text(values, "routingMode").as_deref() == Some("native") {
            out.push(finding(
                Warning,
                "tunnelProtocol",
                "ignored: routingMode is native",
                "remove tunnelProtocol, or use routingMode: tunnel",
            ));
        }
    }

    if flag(values, "bandwidthManager.bbr", false)
        && !flag(values, "bandwidthManager.enabled", false)
    {
        out.push(finding(
            Error,
            "bandwidthManager.bbr",
            "BBR is part of the bandwidth manager, which is off",
            "set bandwidthManager.enabled: true",
        ));
    }

    if flag(values, "encryption.enabled", false)
        && let Some(kind) = text(values, "encryption.type")
        && let Ok(release) = cilium.release()
        && !release.encryption_types.contains(&kind)
    {
        out.push(finding(
            Error,
            "encryption.type",
            format!("'{kind}' is not an encryption type of Cilium {cilium}"),
            format!("use one of {}", release.encryption_types.join(", ")),
        ));
    }
    if flag(values, "encryption.nodeEncryption", false)
        && text(values, "encryption.type").as_deref() != Some("wireguard")
    {
        out.push(finding(
            Warning,
            "encryption.nodeEncryption",
            "only takes effect with encryption.type wireguard",
            "set encryption.type: wireguard, or remove nodeEncryption",
        ));
    }

    if flag(values, "authentication.mutual.spire.enabled", false)
        && !flag(
            values,
            "authentication.enabled",
            chart_default("authentication.enabled", true),
        )
    {
        let why = if get(values, "authentication.enabled").is_none() {
            format!(
                "SPIRE mutual authentication needs authentication.enabled=true, which the {minor} chart no longer sets by default; the chart refuses to render"
            )
        } else {
            "SPIRE mutual authentication needs authentication.enabled=true; the chart refuses to render".to_string()
        };
        out.push(finding(
            Error,
            "authentication.enabled",
            why,
            "set authentication.enabled: true",
        ));
    }

    if flag(values, "authentication.mutual.spire.enabled", false)
        && flag(values, "authentication.mutual.spire.install.enabled", true)
        && !flag(
            values,
            "authentication.mutual.spire.install.existingNamespace",
            false,
        )
    {
        out.push(finding(
            Error,
            "authentication.mutual.spire.install.existingNamespace",
            "the chart creates the SPIRE namespace without PodSecurity labels, and Talos enforces baseline there, which refuses the SPIRE agent (hostPID, hostNetwork, hostPath)",
            "set it to true and create the namespace labelled pod-security.kubernetes.io/enforce=privileged first (the harness does this for its runs)",
        ));
    }

    if let Some(id) = get(values, "cluster.id")
        && id.as_u64().is_none_or(|n| n > 511)
    {
        out.push(finding(
            Error,
            "cluster.id",
            format!("{id} is not a cluster id (0 to 255, or 511 with maxConnectedClusters)"),
            "use an integer from 1 to 255",
        ));
    }
    if let Some(name) = text(values, "cluster.name") {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !ok {
            out.push(finding(
                Error,
                "cluster.name",
                format!("'{name}' is not a valid cluster name"),
                "use at most 32 lower-case letters, digits and '-'",
            ));
        }
    }

    out.sort_by(|a, b| (a.severity, &a.key).cmp(&(b.severity, &b.key)));
    out
}

/// Lint a CiliumLoadBalancerIPPool manifest written for an older Cilium.
pub fn lb_pool(manifest: &Value, cilium: &CiliumVersion) -> Vec<Finding> {
    use Severity::*;
    let mut out = Vec::new();
    let served = match (cilium.release(), text(manifest, "apiVersion")) {
        (Ok(release), Some(api_version)) => Some((
            release.serves("CiliumLoadBalancerIPPool", &api_version),
            api_version,
        )),
        _ => None,
    };
    match served {
        Some((Served::Deprecated { preferred }, given)) => out.push(finding(
            Warning,
            "apiVersion",
            format!("{given} is deprecated in Cilium {cilium} (still served)"),
            format!("use apiVersion: {preferred}"),
        )),
        Some((Served::No { preferred }, given)) => out.push(finding(
            Error,
            "apiVersion",
            format!("{given} is not served by Cilium {cilium}"),
            format!("use apiVersion: {preferred}"),
        )),
        _ => {}
    }
    if get(manifest, "spec.cidrs").is_some() {
        out.push(finding(
            Error,
            "spec.cidrs",
            "`cidrs` was renamed `blocks` in Cilium 1.15 and is not part of cilium.io/v2",
            "rename spec.cidrs to spec.blocks (same entries: {cidr: ...} or {start, stop})",
        ));
    }
    out
}

/// Lint a Service manifest's LB IPAM annotations.
pub fn service_annotations(manifest: &Value) -> Vec<Finding> {
    const RENAMED: &[(&str, &str)] = &[
        ("io.cilium/lb-ipam-ips", "lbipam.cilium.io/ips"),
        (
            "io.cilium/lb-ipam-sharing-key",
            "lbipam.cilium.io/sharing-key",
        ),
        (
            "io.cilium/lb-ipam-sharing-cross-namespace",
            "lbipam.cilium.io/sharing-cross-namespace",
        ),
    ];
    let Some(annotations) = get(manifest, "metadata.annotations").and_then(Value::as_object) else {
        return Vec::new();
    };
    RENAMED
        .iter()
        .filter(|(old, _)| annotations.contains_key(*old))
        .map(|(old, new)| {
            finding(
                Severity::Warning,
                &format!("metadata.annotations.{old}"),
                "an old alias of the LB IPAM annotation",
                format!("use {new}"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v118() -> CiliumVersion {
        CiliumVersion::parse("1.18.4").unwrap()
    }

    fn v119() -> CiliumVersion {
        CiliumVersion::parse("1.19.8").unwrap()
    }

    fn v120() -> CiliumVersion {
        CiliumVersion::parse("1.20.2").unwrap()
    }

    fn talos(extra: Value) -> Value {
        let mut base = json!({"kubeProxyReplacement": true, "k8sServiceHost": "localhost", "k8sServicePort": 7445});
        crate::values::merge(&mut base, &extra);
        base
    }

    fn keys(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|f| (f.key.as_str(), f.severity)).collect()
    }

    #[test]
    fn clean_talos_values_have_no_findings() {
        assert!(values(&talos(json!({})), &v118()).is_empty());
    }

    #[test]
    fn seed_000_tunnel_disabled_is_refused_with_the_native_routing_fix() {
        let f = values(&talos(json!({"tunnel": "disabled"})), &v118());
        assert_eq!(keys(&f), vec![("tunnel", Severity::Error)]);
        assert!(f[0].fix.contains("routingMode: native"));
    }

    #[test]
    fn seed_001_strict_is_refused_with_true() {
        let f = values(&talos(json!({"kubeProxyReplacement": "strict"})), &v118());
        assert_eq!(f[0].key, "kubeProxyReplacement");
        assert_eq!(f[0].fix, "set kubeProxyReplacement: true");
    }

    #[test]
    fn gateway_api_without_kube_proxy_replacement_names_the_key() {
        let f = values(&json!({"gatewayAPI": {"enabled": true}}), &v118());
        assert_eq!(keys(&f), vec![("gatewayAPI.enabled", Severity::Error)]);
        assert!(f[0].fix.contains("kubeProxyReplacement: true"));
    }

    #[test]
    fn kube_proxy_replacement_needs_kubeprism_on_talos() {
        let f = values(&json!({"kubeProxyReplacement": true}), &v118());
        assert_eq!(keys(&f), vec![("k8sServiceHost", Severity::Error)]);
    }

    #[test]
    fn native_routing_needs_a_cidr_covering_the_pod_cidr() {
        let f = values(&talos(json!({"routingMode": "native"})), &v118());
        assert_eq!(keys(&f), vec![("ipv4NativeRoutingCIDR", Severity::Error)]);
        let f = values(
            &talos(json!({"routingMode": "native", "ipv4NativeRoutingCIDR": "10.246.0.0/16"})),
            &v118(),
        );
        assert!(f[0].problem.contains("does not cover"));
        let f = values(
            &talos(json!({"routingMode": "native", "ipv4NativeRoutingCIDR": "10.0.0.0/8"})),
            &v118(),
        );
        assert!(f.is_empty());
    }

    #[test]
    fn hubble_ui_needs_relay_and_relay_needs_hubble() {
        let f = values(
            &talos(json!({"hubble": {"ui": {"enabled": true}}})),
            &v118(),
        );
        assert_eq!(keys(&f), vec![("hubble.ui.enabled", Severity::Error)]);
        let f = values(
            &talos(json!({"hubble": {"enabled": false, "relay": {"enabled": true}}})),
            &v118(),
        );
        assert_eq!(keys(&f), vec![("hubble.relay.enabled", Severity::Error)]);
    }

    #[test]
    fn bbr_needs_the_bandwidth_manager_and_l7_off_breaks_gateway() {
        let f = values(&talos(json!({"bandwidthManager": {"bbr": true}})), &v118());
        assert_eq!(keys(&f), vec![("bandwidthManager.bbr", Severity::Error)]);
        let f = values(
            &talos(json!({"gatewayAPI": {"enabled": true}, "l7Proxy": false})),
            &v118(),
        );
        assert_eq!(keys(&f), vec![("gatewayAPI.enabled", Severity::Error)]);
    }

    #[test]
    fn removed_keys_depend_on_the_cilium_version() {
        let v = talos(json!({"enableCiliumEndpointSlice": true}));
        assert_eq!(values(&v, &v118())[0].key, "enableCiliumEndpointSlice");
        let strict = talos(json!({"encryption": {"strictMode": {"enabled": true}}}));
        assert!(
            values(&strict, &v119()).is_empty(),
            "deprecated, still read by 1.19"
        );
        let f = values(&strict, &v120());
        assert_eq!(
            keys(&f),
            vec![("encryption.strictMode.enabled", Severity::Error)]
        );
        assert!(
            f[0].problem.contains("the 1.20 chart ignores it"),
            "{}",
            f[0].problem
        );
        assert_eq!(f[0].fix, "use encryption.strictMode.egress.enabled");
    }

    #[test]
    fn encryption_types_follow_the_chart_of_each_minor() {
        let z = talos(json!({"encryption": {"enabled": true, "type": "ztunnel"}}));
        let f = values(&z, &v118());
        assert_eq!(keys(&f), vec![("encryption.type", Severity::Error)]);
        assert_eq!(f[0].fix, "use one of ipsec, wireguard");
        assert!(values(&z, &v119()).is_empty());
    }

    #[test]
    fn spire_on_talos_needs_a_labelled_namespace() {
        let spire = talos(
            json!({"authentication": {"enabled": true, "mutual": {"spire": {"enabled": true}}}}),
        );
        let f = values(&spire, &v120());
        assert_eq!(
            keys(&f),
            vec![(
                "authentication.mutual.spire.install.existingNamespace",
                Severity::Error
            )]
        );
        assert!(f[0].problem.contains("baseline"), "{}", f[0].problem);
    }

    #[test]
    fn spire_needs_authentication_set_explicitly_from_1_19() {
        let spire = talos(
            json!({"authentication": {"mutual": {"spire": {"enabled": true,
            "install": {"existingNamespace": true}}}}}),
        );
        assert!(
            values(&spire, &v118()).is_empty(),
            "1.18 enables authentication by default"
        );
        let f = values(&spire, &v119());
        assert_eq!(keys(&f), vec![("authentication.enabled", Severity::Error)]);
        assert!(
            f[0].problem.contains("no longer sets by default"),
            "{}",
            f[0].problem
        );
        let mut explicit = spire.clone();
        crate::values::set(&mut explicit, "authentication.enabled", json!(true));
        assert!(values(&explicit, &v120()).is_empty());
    }

    #[test]
    fn node_port_stands_in_for_kube_proxy_replacement_only_before_1_19() {
        let v = json!({"gatewayAPI": {"enabled": true}, "nodePort": {"enabled": true}});
        assert!(values(&v, &v118()).is_empty());
        let f = values(&v, &v119());
        assert_eq!(
            keys(&f),
            vec![
                ("gatewayAPI.enabled", Severity::Error),
                ("nodePort.enabled", Severity::Error)
            ]
        );
    }

    #[test]
    fn cluster_identity_is_checked() {
        let f = values(
            &talos(json!({"cluster": {"name": "Infra", "id": 1000}})),
            &v118(),
        );
        assert_eq!(
            keys(&f),
            vec![
                ("cluster.id", Severity::Error),
                ("cluster.name", Severity::Error)
            ]
        );
    }

    #[test]
    fn seed_001_pool_with_cidrs_is_reported_with_blocks() {
        let pool = json!({"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumLoadBalancerIPPool",
            "metadata": {"name": "pool-1"}, "spec": {"cidrs": [{"cidr": "192.168.1.200/29"}]}});
        let f = lb_pool(&pool, &v118());
        assert_eq!(
            keys(&f),
            vec![
                ("apiVersion", Severity::Warning),
                ("spec.cidrs", Severity::Error)
            ]
        );
        assert!(f[1].fix.contains("spec.blocks"));
        // Deprecated but still served on 1.19 and 1.20 (release table), so a warning only.
        for v in [v119(), v120()] {
            let f = lb_pool(&pool, &v);
            assert_eq!(f[0].key, "apiVersion");
            assert_eq!(f[0].severity, Severity::Warning);
            assert_eq!(f[0].fix, "use apiVersion: cilium.io/v2");
        }
        let gone = json!({"apiVersion": "cilium.io/v1", "kind": "CiliumLoadBalancerIPPool",
            "metadata": {"name": "p"}, "spec": {"blocks": []}});
        assert_eq!(
            keys(&lb_pool(&gone, &v120())),
            vec![("apiVersion", Severity::Error)]
        );
    }

    #[test]
    fn old_lb_ipam_annotation_is_reported() {
        let svc = json!({"metadata": {"annotations": {"io.cilium/lb-ipam-ips": "192.168.1.201"}}});
        let f = service_annotations(&svc);
        assert_eq!(f[0].fix, "use lbipam.cilium.io/ips");
    }
}
