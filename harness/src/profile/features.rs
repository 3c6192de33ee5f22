//! Deriving a cluster's [`Features`] from Helm values, using the chart's defaults for unset keys.

use crate::values::{flag, text};
use serde_json::Value;
use suites::{Features, Routing};

pub fn derive(values: &Value) -> Features {
    let kube_proxy_replacement = flag(values, "kubeProxyReplacement", false);
    let encryption = flag(values, "encryption.enabled", false);
    let wireguard = encryption && text(values, "encryption.type").as_deref() == Some("wireguard");
    let hubble = flag(values, "hubble.enabled", true);
    let bandwidth_manager = flag(values, "bandwidthManager.enabled", false);
    let routing = match (
        text(values, "routingMode").as_deref(),
        text(values, "tunnelProtocol").as_deref(),
    ) {
        (Some("native"), _) => Routing::Native,
        (_, Some("geneve")) => Routing::Geneve,
        _ => Routing::Vxlan,
    };
    Features {
        kube_proxy_replacement,
        gateway_api: flag(values, "gatewayAPI.enabled", false),
        wireguard,
        node_encryption: wireguard && flag(values, "encryption.nodeEncryption", false),
        hubble,
        hubble_relay: hubble && flag(values, "hubble.relay.enabled", false),
        hubble_ui: hubble && flag(values, "hubble.ui.enabled", false),
        l2_announcements: flag(values, "l2announcements.enabled", false),
        l7_proxy: flag(values, "l7Proxy", true),
        host_firewall: flag(values, "hostFirewall.enabled", false),
        bandwidth_manager,
        bbr: bandwidth_manager && flag(values, "bandwidthManager.bbr", false),
        mutual_auth_spire: flag(values, "authentication.mutual.spire.enabled", false),
        // The chart's default mode is `default`; only `never` turns enforcement off.
        policy_enforcement: text(values, "policyEnforcementMode").as_deref() != Some("never"),
        host_legacy_routing: flag(values, "bpf.hostLegacyRouting", false),
        routing,
    }
}

/// What the Docker host must offer, since Talos nodes in containers share its kernel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HostRequirement {
    pub kernel_module: &'static str,
    pub why: &'static str,
}

pub fn host_requirements(f: &Features) -> Vec<HostRequirement> {
    let mut out = Vec::new();
    if f.wireguard {
        out.push(HostRequirement {
            kernel_module: "wireguard",
            why: "WireGuard encryption; nodes in containers cannot load modules",
        });
    }
    if f.bbr {
        out.push(HostRequirement {
            kernel_module: "tcp_bbr",
            why: "bandwidth manager with BBR (host kernel 5.18 or later)",
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chart_defaults_apply_to_unset_keys() {
        let f = derive(&json!({}));
        assert!(!f.kube_proxy_replacement);
        assert!(f.hubble, "hubble.enabled defaults to true in the chart");
        assert!(f.l7_proxy, "l7Proxy defaults to true in the chart");
        assert!(
            f.policy_enforcement,
            "policyEnforcementMode defaults to default"
        );
        assert!(!f.host_legacy_routing);
        assert!(!derive(&json!({"policyEnforcementMode": "never"})).policy_enforcement);
        assert!(derive(&json!({"policyEnforcementMode": "always"})).policy_enforcement);
        assert!(derive(&json!({"bpf": {"hostLegacyRouting": true}})).host_legacy_routing);
        assert_eq!(f.routing, Routing::Vxlan);
    }

    #[test]
    fn wireguard_needs_enabled_and_type() {
        assert!(
            !derive(&json!({"encryption": {"enabled": true}})).wireguard,
            "type defaults to ipsec"
        );
        let f = derive(
            &json!({"encryption": {"enabled": true, "type": "wireguard", "nodeEncryption": false}}),
        );
        assert!(f.wireguard && !f.node_encryption);
        assert_eq!(host_requirements(&f)[0].kernel_module, "wireguard");
    }

    #[test]
    fn string_true_counts_and_routing_follows_mode() {
        let f = derive(&json!({"kubeProxyReplacement": "true", "routingMode": "native"}));
        assert!(f.kube_proxy_replacement);
        assert_eq!(f.routing, Routing::Native);
        assert_eq!(
            derive(&json!({"tunnelProtocol": "geneve"})).routing,
            Routing::Geneve
        );
    }
}
