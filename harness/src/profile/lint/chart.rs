//! What the Cilium chart refuses to render: the `fail` calls of its templates
//! (`templates/validate.yaml`, `templates/cilium-configmap.yaml`) that values written for Talos
//! or for older Cilium run into. Each rule mirrors its template's condition, with the chart's
//! defaults of the minor filled in, so that `helm template` and the lint agree.

use super::keys::KeyTable;
use super::{Basis, Finding, Values, truthy};
use crate::version::CiliumVersion;
use serde_json::Value;

/// What to write instead of a key the chart refuses as removed (the chart's table lists the
/// keys and its messages); anything else is simply removed.
const REPLACEMENTS: &[(&str, &str)] = &[
    (
        "tunnel",
        "use `routingMode: native` for `tunnel: disabled`, else `routingMode: tunnel` with `tunnelProtocol: vxlan|geneve`",
    ),
    ("proxy.prometheus.enabled", "use envoy.prometheus.enabled"),
    ("proxy.prometheus.port", "use envoy.prometheus.port"),
    ("encryption.keyFile", "move it under encryption.ipsec"),
    ("encryption.mountPath", "move it under encryption.ipsec"),
    ("encryption.secretName", "move it under encryption.ipsec"),
    ("encryption.interface", "move it under encryption.ipsec"),
    (
        "enableCiliumEndpointSlice",
        "use ciliumEndpointSlice.enabled",
    ),
];

/// The string forms `kubeProxyReplacement` had before Cilium 1.16 made it a boolean.
const OLD_KPR: &[(&str, &str)] = &[
    ("strict", "true"),
    ("partial", "false"),
    ("probe", "false"),
    ("disabled", "false"),
];

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `pod_cidr` is the cluster's, for the fix of a missing native-routing CIDR.
pub fn rules(v: &Values, cilium: &CiliumVersion, pod_cidr: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let chart =
        |key: &str, problem: String, fix: &str| Finding::error(Basis::Chart, key, problem, fix);

    if let Some(table) = KeyTable::for_minor(cilium.minor()) {
        for (key, refusal) in &table.refused {
            // The chart tests these with `if` / `dig`: set and not empty, or (through
            // `toString`) set at all.
            let refused = v
                .user(key)
                .is_some_and(|x| refusal.any_value || truthy(Some(x)));
            if !refused {
                continue;
            }
            let said = refusal
                .message
                .split(" For details")
                .next()
                .unwrap_or(&refusal.message)
                .trim_end_matches('.');
            let fix = REPLACEMENTS
                .iter()
                .find(|(k, _)| k == key)
                .map_or("remove it", |(_, f)| f);
            out.push(chart(
                key,
                format!("the chart refuses to render it: \"{said}\""),
                fix,
            ));
        }
    }

    // templates/cilium-configmap.yaml: anything but true or false stops the render.
    if let Some(kpr) = v.user("kubeProxyReplacement") {
        let s = text_of(kpr);
        let yaml11 = matches!(
            s.as_str(),
            "yes"
                | "Yes"
                | "YES"
                | "on"
                | "On"
                | "ON"
                | "y"
                | "Y"
                | "no"
                | "No"
                | "NO"
                | "off"
                | "Off"
                | "OFF"
                | "n"
                | "N"
        );
        if !(s == "true" || s == "false" || s.is_empty() || yaml11 && kpr.is_string()) {
            let (problem, fix) = match OLD_KPR.iter().find(|(old, _)| *old == s) {
                Some((old, new)) => (
                    format!(
                        "'{old}' was removed in Cilium 1.16 (cilium/cilium#31286); the chart accepts only true or false and refuses to render"
                    ),
                    format!("set kubeProxyReplacement: {new}"),
                ),
                None => (
                    format!("'{s}' is not true or false; the chart refuses to render"),
                    "set kubeProxyReplacement: true or false".to_string(),
                ),
            };
            out.push(chart("kubeProxyReplacement", problem, &fix));
        }
    }

    if v.user("k8sServiceHostRef.name").is_some()
        && v.user("k8sServiceHostRef.key").is_some()
        && v.text("k8sServiceHost").is_some()
    {
        out.push(chart(
            "k8sServiceHostRef",
            "set together with k8sServiceHost; the chart refuses both".into(),
            "keep k8sServiceHost (on Talos: localhost, KubePrism) and remove k8sServiceHostRef",
        ));
    }

    if v.flag("hubble.ui.enabled")
        && !v.flag("hubble.ui.standalone.enabled")
        && !v.flag("hubble.relay.enabled")
    {
        out.push(chart(
            "hubble.ui.enabled",
            "Hubble UI needs Hubble Relay; the chart refuses to render".into(),
            "set hubble.relay.enabled: true",
        ));
    }
    if v.flag("hubble.relay.enabled") && !v.flag("hubble.enabled") {
        out.push(chart(
            "hubble.relay.enabled",
            "Hubble Relay needs hubble.enabled=true; the chart refuses to render".into(),
            "set hubble.enabled: true",
        ));
    }

    let envoy_users = ["ingressController.enabled", "gatewayAPI.enabled"];
    let l7_backend = v.text("loadBalancer.l7.backend").as_deref() == Some("envoy");
    if (envoy_users.iter().any(|k| v.flag(k)) || l7_backend)
        && v.get("l7Proxy").is_some()
        && !v.flag("l7Proxy")
    {
        let key = envoy_users
            .iter()
            .find(|k| v.flag(k))
            .copied()
            .unwrap_or("loadBalancer.l7.backend");
        out.push(chart(
            key,
            "needs the L7 proxy, but l7Proxy is false; the chart refuses to render".into(),
            "remove l7Proxy: false",
        ));
    }
    for (enabled, policy) in [
        ("gatewayAPI.enabled", "gatewayAPI.externalTrafficPolicy"),
        (
            "ingressController.enabled",
            "ingressController.service.externalTrafficPolicy",
        ),
    ] {
        let service_needs_it = enabled == "gatewayAPI.enabled"
            || matches!(
                v.text("ingressController.service.type").as_deref(),
                Some("LoadBalancer" | "NodePort")
            );
        if v.flag(enabled) && service_needs_it {
            let p = v.text(policy);
            if !matches!(p.as_deref(), Some("Cluster" | "Local")) {
                out.push(chart(
                    policy,
                    format!(
                        "is {}; the chart refuses anything but Cluster or Local",
                        p.map_or("unset".into(), |p| format!("'{p}'"))
                    ),
                    &format!("set {policy}: Cluster"),
                ));
            }
        }
    }

    if v.flag("authentication.mutual.spire.enabled") && !v.flag("authentication.enabled") {
        let default = if v.user("authentication.enabled").is_none() {
            format!(
                " (the Cilium {}.{} default)",
                cilium.minor().0,
                cilium.minor().1
            )
        } else {
            String::new()
        };
        out.push(chart(
            "authentication.enabled",
            format!(
                "SPIRE mutual authentication needs authentication.enabled=true, which is false here{default}; the chart refuses to render"
            ),
            "set authentication.enabled: true",
        ));
    }

    if v.flag("ciliumEndpointSlice.enabled")
        && v.get("disableEndpointCRD") == Some(&Value::Bool(true))
    {
        out.push(chart(
            "disableEndpointCRD",
            "CiliumEndpointSlices need the CiliumEndpoint CRD; the chart refuses to render".into(),
            "remove disableEndpointCRD: true",
        ));
    }

    // templates/validate.yaml: the cluster name.
    if let Some(name) = v.get("cluster.name").map(text_of) {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            out.push(chart(
                "cluster.name",
                format!("'{name}' is not a valid cluster name; the chart refuses to render"),
                "use at most 32 lower-case letters, digits and '-', starting and ending with a letter or digit",
            ));
        } else if name == "default"
            && v.get("cluster.id")
                .and_then(Value::as_f64)
                .is_some_and(|id| id != 0.0)
        {
            out.push(chart(
                "cluster.name",
                "is the default 'default' while cluster.id is not 0; the chart refuses to render"
                    .into(),
                "name the cluster (cluster.name), or leave cluster.id at 0",
            ));
        }
    }
    if let Some(max) = v
        .user("clustermesh.maxConnectedClusters")
        .and_then(Value::as_i64)
        && max != 255
        && max != 511
    {
        out.push(chart(
            "clustermesh.maxConnectedClusters",
            format!("{max} is neither 255 nor 511; the chart refuses to render"),
            "set it to 255 or 511",
        ));
    }

    // templates/cilium-configmap.yaml: native routing with IPv4 masquerading needs the CIDR
    // that is routed natively. The chart only sees masquerading when it is set explicitly (its
    // default is null); the unset case is the cluster rule's.
    if v.text("routingMode").as_deref() == Some("native")
        && v.flag("ipv4.enabled")
        && v.flag("enableIPv4Masquerade")
        && !v.flag("ipMasqAgent.enabled")
        && !matches!(v.text("ipam.mode").as_deref(), Some("eni" | "alibabacloud"))
        && !truthy(v.get("ipv4NativeRoutingCIDR"))
    {
        out.push(chart(
            "ipv4NativeRoutingCIDR",
            "native routing with IPv4 masquerading (the default) needs the CIDR that is routed without masquerading; the chart refuses to render".into(),
            &format!("set ipv4NativeRoutingCIDR: {pod_cidr} (the cluster's pod CIDR)"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{keys, lint, talos};
    use super::super::{Basis, Severity};
    use serde_json::json;

    #[test]
    fn seed_000_tunnel_disabled_is_refused_with_the_native_routing_fix() {
        let f = lint(talos(json!({"tunnel": "disabled"})), "1.18.4");
        assert_eq!(keys(&f), vec![("tunnel", Severity::Error)]);
        assert!(f[0].fix.contains("routingMode: native"));
    }

    #[test]
    fn seed_001_strict_is_refused_with_true() {
        let f = lint(talos(json!({"kubeProxyReplacement": "strict"})), "1.18.4");
        assert_eq!(keys(&f), vec![("kubeProxyReplacement", Severity::Error)]);
        assert_eq!(f[0].fix, "set kubeProxyReplacement: true");
        assert_eq!(f[0].basis, Basis::Chart);
    }

    #[test]
    fn hubble_ui_needs_relay_and_relay_needs_hubble() {
        let f = lint(
            talos(json!({"hubble": {"ui": {"enabled": true}}})),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("hubble.ui.enabled", Severity::Error)]);
        let f = lint(
            talos(json!({"hubble": {"enabled": false, "relay": {"enabled": true}}})),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("hubble.relay.enabled", Severity::Error)]);
    }

    #[test]
    fn l7_proxy_off_breaks_gateway_api() {
        let f = lint(
            talos(json!({"gatewayAPI": {"enabled": true}, "l7Proxy": false})),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("gatewayAPI.enabled", Severity::Error)]);
    }

    #[test]
    fn removed_keys_depend_on_the_cilium_version() {
        let v = talos(json!({"enableCiliumEndpointSlice": true}));
        let f = lint(v.clone(), "1.17.10");
        assert!(f.iter().all(|f| f.severity != Severity::Error), "{f:?}");
        assert_eq!(lint(v, "1.18.4")[0].key, "enableCiliumEndpointSlice");
    }

    #[test]
    fn cluster_identity_is_checked_as_the_chart_does() {
        let f = lint(
            talos(json!({"cluster": {"name": "Infra", "id": 1}})),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("cluster.name", Severity::Error)]);
        let f = lint(talos(json!({"cluster": {"id": 1}})), "1.19.6");
        assert_eq!(keys(&f), vec![("cluster.name", Severity::Error)]);
        assert!(f[0].problem.contains("'default'"));
    }

    #[test]
    fn native_routing_without_a_cidr_is_refused() {
        let f = lint(
            talos(
                json!({"routingMode": "native", "autoDirectNodeRoutes": true, "enableIPv4Masquerade": true}),
            ),
            "1.18.4",
        );
        assert_eq!(keys(&f), vec![("ipv4NativeRoutingCIDR", Severity::Error)]);
        assert_eq!(f[0].basis, Basis::Chart);
        assert_eq!(
            f[0].fix,
            "set ipv4NativeRoutingCIDR: 10.244.0.0/16 (the cluster's pod CIDR)"
        );
    }
}
