//! Settings the chart renders but Cilium ignores or refuses when it starts. They are warnings:
//! the chart does not show them and no cluster runs here to show them either, so each one says
//! what Cilium does and where that is documented.

use super::{Basis, Finding, Values};
use crate::version::CiliumVersion;
use serde_json::Value;

pub fn rules(v: &Values, cilium: &CiliumVersion) -> Vec<Finding> {
    let mut out = Vec::new();
    let warn =
        |key: &str, problem: &str, fix: &str| Finding::warning(Basis::Cilium, key, problem, fix);
    let kpr = v.flag("kubeProxyReplacement");

    for key in ["gatewayAPI.enabled", "ingressController.enabled"] {
        // Before 1.19 NodePort could be enabled on its own (`nodePort.enabled`).
        let node_port = cilium.minor() < (1, 19) && v.flag("nodePort.enabled");
        if v.flag(key) && !kpr && !node_port {
            out.push(warn(
                key,
                "Cilium's Gateway API and Ingress controllers need kube-proxy replacement (docs: network/servicemesh gateway-api prerequisites); without it the Gateway gets no working service",
                "set kubeProxyReplacement: true (on Talos with k8sServiceHost: localhost, k8sServicePort: 7445)",
            ));
        }
    }

    if v.flag("l2announcements.enabled") && !kpr {
        out.push(warn(
            "l2announcements.enabled",
            "L2 announcements need kube-proxy replacement (docs: network/l2-announcements prerequisites)",
            "set kubeProxyReplacement: true, or drop l2announcements",
        ));
    }

    let routing = v.text("routingMode");
    match routing.as_deref() {
        None | Some("tunnel") | Some("native") => {}
        Some(other) => out.push(warn(
            "routingMode",
            &format!("'{other}' is not a routing mode; the agent refuses to start"),
            "use native or tunnel",
        )),
    }
    let native = routing.as_deref() == Some("native");
    if let Some(p) = v
        .user("tunnelProtocol")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        if p != "vxlan" && p != "geneve" {
            out.push(warn(
                "tunnelProtocol",
                &format!("'{p}' is not a tunnel protocol; the agent refuses to start"),
                "use vxlan or geneve",
            ));
        } else if native {
            out.push(warn(
                "tunnelProtocol",
                "ignored: routingMode is native",
                "remove tunnelProtocol, or use routingMode: tunnel",
            ));
        }
    }
    if v.flag("autoDirectNodeRoutes") && !native {
        out.push(warn(
            "autoDirectNodeRoutes",
            "direct node routes only apply to native routing; with tunnelling the agent refuses to start (\"auto-direct-node-routes cannot be used with tunneling\")",
            "remove autoDirectNodeRoutes, or set routingMode: native",
        ));
    }

    if v.flag("bandwidthManager.bbr") && !v.flag("bandwidthManager.enabled") {
        out.push(warn(
            "bandwidthManager.bbr",
            "BBR is part of the bandwidth manager, which is off",
            "set bandwidthManager.enabled: true",
        ));
    }

    // The types each minor's agent takes come from the release table.
    if v.flag("encryption.enabled")
        && let Some(kind) = v.text("encryption.type")
        && let Ok(release) = cilium.release()
        && !release.encryption_types.contains(&kind)
    {
        out.push(warn(
            "encryption.type",
            &format!(
                "'{kind}' is not an encryption type of Cilium {cilium}; the agent refuses to start"
            ),
            &format!("use one of {}", release.encryption_types.join(", ")),
        ));
    }
    if v.flag("encryption.nodeEncryption")
        && v.text("encryption.type").as_deref() != Some("wireguard")
    {
        out.push(warn(
            "encryption.nodeEncryption",
            "only takes effect with encryption.type wireguard",
            "set encryption.type: wireguard, or remove nodeEncryption",
        ));
    }

    if let Some(id) = v.user("cluster.id") {
        let max = if v
            .get("clustermesh.maxConnectedClusters")
            .and_then(Value::as_u64)
            == Some(511)
        {
            511
        } else {
            255
        };
        if id.as_u64().is_none_or(|n| n > max) {
            out.push(warn(
                "cluster.id",
                &format!("{id} is not a cluster id of 0 to {max}; the agent refuses to start"),
                "use an integer from 1 to 255 (511 with clustermesh.maxConnectedClusters: 511)",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::super::tests::{keys, lint, talos};
    use serde_json::json;

    #[test]
    fn gateway_api_without_kube_proxy_replacement_is_a_warning_naming_the_key() {
        let f = lint(
            json!({"ipam": {"mode": "kubernetes"}, "gatewayAPI": {"enabled": true}}),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("gatewayAPI.enabled", Severity::Warning)]);
        assert!(f[0].fix.contains("kubeProxyReplacement: true"));
    }

    #[test]
    fn bbr_needs_the_bandwidth_manager() {
        let f = lint(talos(json!({"bandwidthManager": {"bbr": true}})), "1.18.4");
        assert_eq!(keys(&f), vec![("bandwidthManager.bbr", Severity::Warning)]);
    }

    #[test]
    fn encryption_types_follow_the_release_table() {
        let z = talos(json!({"encryption": {"enabled": true, "type": "ztunnel"}}));
        let f = lint(z.clone(), "1.18.4");
        assert_eq!(keys(&f), vec![("encryption.type", Severity::Warning)]);
        assert_eq!(f[0].fix, "use one of ipsec, wireguard");
        assert_eq!(keys(&lint(z, "1.19.6")), vec![]);
    }

    #[test]
    fn direct_routes_with_tunnelling() {
        let f = lint(talos(json!({"autoDirectNodeRoutes": true})), "1.19.6");
        assert_eq!(keys(&f), vec![("autoDirectNodeRoutes", Severity::Warning)]);
    }
}
