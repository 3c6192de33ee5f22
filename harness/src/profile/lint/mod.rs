//! Findings on Helm values and Cilium manifests before any cluster is made: removed keys the
//! chart refuses to render, values Cilium no longer accepts, and combinations that contradict
//! each other on Talos. Each finding names the key and the fix.

pub mod keys;
pub mod source;

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

/// What a finding rests on: what makes it true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// `helm template` refuses the values (the chart's `fail` or its values schema).
    Chart,
    /// The chart does not know the key, or its schema wants another type.
    Schema,
    /// The values contradict the cluster they are installed on.
    Cluster,
    /// The chart renders it, but Cilium ignores it or refuses it when it starts.
    Cilium,
    /// What upstream tests and supports together (the release facts), not the values alone.
    Compatibility,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub basis: Basis,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl Finding {
    pub fn new(
        severity: Severity,
        basis: Basis,
        key: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity,
            basis,
            key: key.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

fn finding(
    severity: Severity,
    key: &str,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        severity,
        basis: Basis::Chart,
        key: key.to_string(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Keys the chart's validation refuses because Cilium removed them: (key, removed in, fix).
const REMOVED_KEYS: &[(&str, (u64, u64), &str)] = &[
    (
        "tunnel",
        (1, 15),
        "use `routingMode: native` for `tunnel: disabled`, else `routingMode: tunnel` with `tunnelProtocol: vxlan|geneve`",
    ),
    ("enableK8sEventHandover", (1, 15), "remove it"),
    ("enableCnpStatusUpdates", (1, 15), "remove it"),
    ("endpointStatus", (1, 16), "remove it"),
    ("remoteNodeIdentity", (1, 16), "remove it"),
    ("containerRuntime.integration", (1, 16), "remove it"),
    ("etcd.managed", (1, 16), "remove it"),
    ("proxy.prometheus", (1, 16), "use envoy.prometheus"),
    (
        "encryption.keyFile",
        (1, 16),
        "move it under encryption.ipsec",
    ),
    (
        "encryption.mountPath",
        (1, 16),
        "move it under encryption.ipsec",
    ),
    (
        "encryption.secretName",
        (1, 16),
        "move it under encryption.ipsec",
    ),
    (
        "encryption.interface",
        (1, 16),
        "move it under encryption.ipsec",
    ),
    (
        "enableCiliumEndpointSlice",
        (1, 18),
        "use ciliumEndpointSlice.enabled",
    ),
    ("ciliumEndpointSlice.sliceMode", (1, 18), "remove it"),
];

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
    for (key, removed, fix) in REMOVED_KEYS {
        if is_set(values, key) && cilium.minor() >= *removed {
            out.push(finding(
                Error,
                key,
                format!(
                    "removed in Cilium {}.{}; the chart refuses to render it",
                    removed.0, removed.1
                ),
                *fix,
            ));
        }
    }

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
        if !kpr && !flag(values, "nodePort.enabled", false) {
            out.push(finding(
                Error,
                key,
                "Cilium's Gateway API and Ingress controllers need kube-proxy replacement (or nodePort.enabled), but kubeProxyReplacement is not true",
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

    if flag(values, "encryption.enabled", false) {
        match text(values, "encryption.type").as_deref() {
            None | Some("ipsec") | Some("wireguard") => {}
            Some("ztunnel") if cilium.minor() >= (1, 19) => {}
            Some(other) => out.push(finding(
                Error,
                "encryption.type",
                format!("'{other}' is not an encryption type of Cilium {cilium}"),
                "use wireguard or ipsec",
            )),
        }
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
        && !flag(values, "authentication.enabled", true)
    {
        out.push(finding(
            Error,
            "authentication.enabled",
            "SPIRE mutual authentication needs authentication.enabled=true; the chart refuses to render",
            "set authentication.enabled: true",
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
    match text(manifest, "apiVersion").as_deref() {
        Some("cilium.io/v2alpha1") if cilium.minor() >= (1, 19) => out.push(finding(
            Error,
            "apiVersion",
            format!("cilium.io/v2alpha1 pools are no longer served by Cilium {cilium}"),
            "use apiVersion: cilium.io/v2",
        )),
        Some("cilium.io/v2alpha1") if cilium.minor() >= (1, 18) => out.push(finding(
            Warning,
            "apiVersion",
            format!("cilium.io/v2alpha1 is deprecated in Cilium {cilium}"),
            "use apiVersion: cilium.io/v2",
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
        assert!(values(&v, &CiliumVersion::parse("1.17.10").unwrap()).is_empty());
        assert_eq!(values(&v, &v118())[0].key, "enableCiliumEndpointSlice");
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
        let f = lb_pool(&pool, &CiliumVersion::parse("1.19.8").unwrap());
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn old_lb_ipam_annotation_is_reported() {
        let svc = json!({"metadata": {"annotations": {"io.cilium/lb-ipam-ips": "192.168.1.201"}}});
        let f = service_annotations(&svc);
        assert_eq!(f[0].fix, "use lbipam.cilium.io/ips");
    }
}
