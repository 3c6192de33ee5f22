//! Cilium manifests the harness knows: LoadBalancer IP pools, L2 announcement policies and the
//! LB IPAM annotations of Services, checked against the Cilium version (which API versions it
//! serves) and the cluster (the ranges a pool must stay clear of, the nodes' interface).

use super::{Basis, Finding};
use crate::cluster::ClusterDescription;
use crate::releases::{Minor, ReleaseTable, Served as CrdServed};
use crate::values::{get, text};
use crate::version::CiliumVersion;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;
use talos_docker::Ipv4Net;

/// Whether a Cilium minor serves an apiVersion of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiVersionStatus {
    Served,
    /// Served, and the CRD marks it deprecated.
    Deprecated,
    /// No longer served: the API server rejects it.
    Removed,
    /// Not served yet by this minor.
    NotYetServed,
}

/// A served-versions fact and where it was read.
pub struct ApiVersionFact {
    pub status: ApiVersionStatus,
    pub source: &'static str,
}

/// The one place that decides which apiVersions a Cilium minor serves for the kinds the lint
/// checks: Cilium's CRDs as the release table records them (`harness/data/releases.yaml`, with
/// its sources). `None` for a minor or kind the table does not know.
pub fn api_version_status(
    kind: &str,
    api_version: &str,
    cilium_minor: (u64, u64),
) -> Option<ApiVersionFact> {
    use ApiVersionStatus::*;
    if (kind, api_version) == ("Service", "v1") {
        return Some(ApiVersionFact {
            status: Served,
            source: "Kubernetes core/v1",
        });
    }
    // The table's CRD versions are Cilium's group only.
    api_version.strip_prefix("cilium.io/")?;
    let table = ReleaseTable::embedded();
    let minor = Minor::from(cilium_minor);
    let release = table.cilium.iter().find(|r| r.minor == minor)?;
    let status = match release.serves(kind, api_version) {
        CrdServed::UnknownKind => return None,
        CrdServed::Yes => Served,
        CrdServed::Deprecated { .. } => Deprecated,
        CrdServed::No { .. } => {
            let served_before = table.cilium.iter().any(|r| {
                r.minor < minor
                    && matches!(
                        r.serves(kind, api_version),
                        CrdServed::Yes | CrdServed::Deprecated { .. }
                    )
            });
            if served_before { Removed } else { NotYetServed }
        }
    };
    Some(ApiVersionFact {
        status,
        source: release.crds_source.as_str(),
    })
}

/// The kinds `harness lint` checks, with the apiVersion to move to.
pub const KINDS: &[(&str, &str)] = &[
    ("CiliumLoadBalancerIPPool", "cilium.io/v2"),
    ("CiliumL2AnnouncementPolicy", "cilium.io/v2alpha1"),
    ("Service", "v1"),
];

fn api_version(kind: &str, manifest: &Value, cilium: &CiliumVersion, out: &mut Vec<Finding>) {
    let Some(given) = text(manifest, "apiVersion") else {
        out.push(Finding::error(
            Basis::Cluster,
            "apiVersion",
            "missing; the API server refuses the object",
            "set apiVersion",
        ));
        return;
    };
    let preferred = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("", |(_, v)| *v);
    let minor = cilium.minor();
    match api_version_status(kind, &given, minor) {
        Some(f) => match f.status {
            ApiVersionStatus::Served => {}
            ApiVersionStatus::Deprecated => out.push(Finding::warning(
                Basis::Cilium,
                "apiVersion",
                format!("{given} {kind} is deprecated but still served by Cilium {cilium} (source: {})", f.source),
                format!("use apiVersion: {preferred}"),
            )),
            ApiVersionStatus::Removed => out.push(Finding::error(
                Basis::Cluster,
                "apiVersion",
                format!("{given} {kind} is no longer served by Cilium {cilium}; the API server refuses it (source: {})", f.source),
                format!("use apiVersion: {preferred}"),
            )),
            ApiVersionStatus::NotYetServed => out.push(Finding::error(
                Basis::Cluster,
                "apiVersion",
                format!("{given} {kind} is not served by Cilium {cilium} yet; the API server refuses it (source: {})", f.source),
                "use apiVersion: cilium.io/v2alpha1 (or a newer Cilium)",
            )),
        },
        None => out.push(Finding::warning(
            Basis::Cilium,
            "apiVersion",
            format!("whether Cilium {}.{} serves {given} {kind} is not known here", minor.0, minor.1),
            format!("check the CRD (kubectl get crd), or use apiVersion: {preferred}"),
        )),
    }
}

fn overlap_findings(
    block_key: &str,
    block: &Ipv4Net,
    cluster: &ClusterDescription,
    out: &mut Vec<Finding>,
) {
    let mut clashes = vec![
        ("the pod CIDR", Some(cluster.pod_cidr.value)),
        ("the Service CIDR", Some(cluster.service_cidr.value)),
    ];
    if cluster.built_by_harness {
        clashes.push((
            "the docker networks harness clusters are given (nodes and the harness's own pool)",
            cluster.nodes.value.cidr,
        ));
    }
    for (what, range) in clashes {
        if let Some(r) = range
            && r.overlaps(block)
        {
            out.push(Finding::error(
                Basis::Cluster,
                block_key,
                format!("{block} overlaps {what} {r}: Cilium hands these addresses to Services while the cluster uses them"),
                "use a block outside the pod, Service and node ranges",
            ));
        }
    }
    if cluster.built_by_harness && out.is_empty() {
        out.push(Finding::warning(
            Basis::Cluster,
            block_key,
            format!("{block} is outside the cluster's docker subnet: L2 announcements answer on the bridge only, so these IPs do not answer from the docker host"),
            "use the harness's pool (the top /28 of the subnet) or rely on in-cluster access",
        ));
    }
}

/// A CiliumLoadBalancerIPPool.
pub fn lb_pool(
    manifest: &Value,
    cilium: &CiliumVersion,
    cluster: &ClusterDescription,
) -> Vec<Finding> {
    let mut out = Vec::new();
    api_version("CiliumLoadBalancerIPPool", manifest, cilium, &mut out);
    if get(manifest, "spec.cidrs").is_some() {
        out.push(Finding::error(
            Basis::Schema,
            "spec.cidrs",
            "`cidrs` was renamed `blocks` in Cilium 1.15 and removed in 1.16 (cilium/cilium#33151); the API server drops it, leaving a pool without addresses",
            "rename spec.cidrs to spec.blocks (same entries: {cidr: ...} or {start, stop})",
        ));
    }
    if let Some(blocks) = get(manifest, "spec.blocks").and_then(Value::as_array) {
        for (i, b) in blocks.iter().enumerate() {
            let key = format!("spec.blocks.{i}.cidr");
            let Some(cidr) = b.get("cidr").and_then(Value::as_str) else {
                continue;
            };
            match cidr.parse::<Ipv4Net>() {
                Ok(net) => {
                    let mut these = Vec::new();
                    overlap_findings(&key, &net, cluster, &mut these);
                    out.extend(these);
                }
                Err(why) if !cidr.contains(':') => out.push(Finding::error(
                    Basis::Cluster,
                    &key,
                    format!("'{cidr}' is not a CIDR: {why}"),
                    "write it as a network address with a prefix, e.g. 192.168.1.200/29",
                )),
                Err(_) => {}
            }
        }
    }
    out
}

/// A CiliumL2AnnouncementPolicy.
pub fn l2_policy(
    manifest: &Value,
    cilium: &CiliumVersion,
    cluster: &ClusterDescription,
) -> Vec<Finding> {
    let mut out = Vec::new();
    api_version("CiliumL2AnnouncementPolicy", manifest, cilium, &mut out);
    let announces = |k: &str| get(manifest, k).and_then(Value::as_bool).unwrap_or(false);
    if !announces("spec.loadBalancerIPs") && !announces("spec.externalIPs") {
        out.push(Finding::warning(
            Basis::Cilium,
            "spec",
            "announces neither loadBalancerIPs nor externalIPs (both default to false), so it answers for nothing",
            "set spec.loadBalancerIPs: true",
        ));
    }
    let patterns: Vec<&str> = get(manifest, "spec.interfaces")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut compiled = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        match Regex::new(p) {
            Ok(r) => compiled.push(r),
            Err(e) => out.push(Finding::warning(
                Basis::Cilium,
                &format!("spec.interfaces.{i}"),
                format!("'{p}' is not a regular expression: {e}"),
                "write a Go regular expression, e.g. ^eth[0-9]+",
            )),
        }
    }
    if let Some(iface) = &cluster.nodes.value.interface
        && !patterns.is_empty()
        && !compiled.is_empty()
        && !compiled.iter().any(|r| r.is_match(iface))
    {
        out.push(Finding::error(
            Basis::Cluster,
            "spec.interfaces",
            format!("no pattern matches the nodes' interface {iface}, so nothing is announced on this cluster"),
            format!("add a pattern matching {iface}, e.g. ^eth[0-9]+"),
        ));
    }
    out
}

/// A Service's LB IPAM annotations.
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
            Finding::warning(
                Basis::Cilium,
                &format!("metadata.annotations.{old}"),
                "an old alias of the LB IPAM annotation",
                format!("use {new}"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Severity;
    use super::super::tests::{harness_cluster, keys, v};
    use super::*;
    use serde_json::json;

    fn seed_001_pool() -> Value {
        // Seed 001, "LoadBalancer IP Pool".
        json!({"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumLoadBalancerIPPool",
            "metadata": {"name": "pool-1"}, "spec": {"cidrs": [{"cidr": "192.168.1.200/29"}]}})
    }

    #[test]
    fn seed_001_pool_with_cidrs_is_reported_with_blocks() {
        let f = lb_pool(&seed_001_pool(), &v("1.18.4"), &harness_cluster());
        assert_eq!(
            keys(&f),
            vec![
                ("apiVersion", Severity::Warning),
                ("spec.cidrs", Severity::Error)
            ]
        );
        assert!(f[1].fix.contains("spec.blocks"));
    }

    #[test]
    fn v2alpha1_pools_are_deprecated_but_served_through_1_20() {
        // The release table: v2alpha1 pools are served and deprecated on 1.18, 1.19 and 1.20.
        for version in ["1.18.4", "1.19.6", "1.20.0"] {
            let f = lb_pool(&seed_001_pool(), &v(version), &harness_cluster());
            assert_eq!(f[0].key, "apiVersion", "{version}");
            assert_eq!(f[0].severity, Severity::Warning, "{version}");
            assert!(f[0].problem.contains("still served"), "{}", f[0].problem);
            assert_eq!(f[0].fix, "use apiVersion: cilium.io/v2");
        }
        // A version the CRD never served is refused.
        let mut pool = seed_001_pool();
        pool["apiVersion"] = json!("cilium.io/v1");
        let f = lb_pool(&pool, &v("1.20.0"), &harness_cluster());
        assert_eq!(
            (f[0].key.as_str(), f[0].severity),
            ("apiVersion", Severity::Error)
        );
        // A minor the table does not know is said to be unknown, not guessed.
        let f = lb_pool(&seed_001_pool(), &v("1.17.10"), &harness_cluster());
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].problem.contains("not known here"), "{}", f[0].problem);
    }

    #[test]
    fn every_api_version_fact_cites_the_release_table() {
        let table = ReleaseTable::embedded();
        for (kind, version) in [
            ("CiliumLoadBalancerIPPool", "cilium.io/v2alpha1"),
            ("CiliumLoadBalancerIPPool", "cilium.io/v2"),
            ("CiliumL2AnnouncementPolicy", "cilium.io/v2alpha1"),
        ] {
            for r in &table.cilium {
                let minor = (r.minor.0, r.minor.1);
                let f = api_version_status(kind, version, minor).expect("known");
                assert_eq!(f.source, r.crds_source, "{kind} {version} {minor:?}");
                assert_ne!(f.status, ApiVersionStatus::Removed, "{kind} {version}");
            }
        }
        assert!(api_version_status("CiliumLoadBalancerIPPool", "cilium.io/v2", (1, 99)).is_none());
    }

    #[test]
    fn pools_must_stay_clear_of_the_clusters_ranges() {
        let pool = |cidr: &str| {
            json!({"apiVersion": "cilium.io/v2", "kind": "CiliumLoadBalancerIPPool",
            "metadata": {"name": "p"}, "spec": {"blocks": [{"cidr": cidr}]}})
        };
        let f = lb_pool(&pool("10.244.5.0/24"), &v("1.19.6"), &harness_cluster());
        assert_eq!(keys(&f), vec![("spec.blocks.0.cidr", Severity::Error)]);
        assert!(f[0].problem.contains("pod CIDR"));
        let f = lb_pool(&pool("10.5.3.0/28"), &v("1.19.6"), &harness_cluster());
        assert_eq!(keys(&f), vec![("spec.blocks.0.cidr", Severity::Error)]);
        let f = lb_pool(&pool("172.31.250.0/29"), &v("1.19.6"), &harness_cluster());
        assert_eq!(keys(&f), vec![("spec.blocks.0.cidr", Severity::Warning)]);
    }

    #[test]
    fn an_l2_policy_must_match_the_nodes_interface() {
        let policy = |iface: &str| {
            json!({"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumL2AnnouncementPolicy",
            "metadata": {"name": "l2"}, "spec": {"loadBalancerIPs": true, "interfaces": [iface]}})
        };
        assert_eq!(
            l2_policy(&policy("^eth[0-9]+"), &v("1.20.0"), &harness_cluster()),
            vec![]
        );
        let f = l2_policy(&policy("^enp.*"), &v("1.19.6"), &harness_cluster());
        assert_eq!(keys(&f), vec![("spec.interfaces", Severity::Error)]);
    }

    #[test]
    fn old_lb_ipam_annotation_is_reported() {
        let svc = json!({"metadata": {"annotations": {"io.cilium/lb-ipam-ips": "192.168.1.201"}}});
        let f = service_annotations(&svc);
        assert_eq!(f[0].fix, "use lbipam.cilium.io/ips");
    }
}
