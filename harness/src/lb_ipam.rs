//! The LoadBalancer pool and L2 announcement policy a Talos-in-Docker cluster gets, as typed
//! objects in the apiVersions the cell's Cilium serves.

use crate::errors::InputError;
use crate::profile::overlay::Overlay;
use crate::version::CiliumVersion;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde::Serialize;

/// The label the lb-ipam suite puts on its Services. The harness pool leaves them alone so the
/// suite's own pool (allocation, sharing, exhaustion) is the only one that can serve them.
pub const SUITE_LABEL: (&str, &str) = ("io.harness.suite", "lb-ipam");

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ObjectMeta {
    pub name: String,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Block {
    pub cidr: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolSpec {
    pub blocks: Vec<Block>,
    pub service_selector: LabelSelector,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIpPool {
    pub api_version: String,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: PoolSpec,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct L2PolicySpec {
    pub load_balancer_i_ps: bool,
    pub interfaces: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct L2AnnouncementPolicy {
    pub api_version: String,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: L2PolicySpec,
}

/// Prefix length of the block the lb-ipam suite announces over L2 (l2-reachable-from-host).
pub const SUITE_L2_PREFIX: u8 = 29;

/// The block of the cluster's docker subnet the lb-ipam suite's announced pool uses: the /29
/// just below the harness pool, so it is on the bridge (the outside client reaches it over L2),
/// apart from the harness pool (no PoolConflict) and far from the node addresses, which Docker
/// hands out from the bottom of the subnet.
pub fn suite_l2_block(
    overlay: &Overlay,
    subnet: talos_docker::Ipv4Net,
) -> Result<talos_docker::Ipv4Net, InputError> {
    let pool = overlay.pool_block(subnet)?;
    let below = u32::from(pool.network())
        .checked_sub(1 << (32 - SUITE_L2_PREFIX))
        .map(std::net::Ipv4Addr::from)
        .filter(|a| subnet.contains(*a))
        .ok_or_else(|| {
            InputError::Unsupported(format!(
                "no /{SUITE_L2_PREFIX} below the LB pool {pool} fits in the docker subnet {subnet}"
            ))
        })?;
    Ok(talos_docker::Ipv4Net::new(below, SUITE_L2_PREFIX).expect("a block boundary"))
}

/// The harness's pool and policy for a cluster on `subnet`.
pub fn objects(
    overlay: &Overlay,
    subnet: talos_docker::Ipv4Net,
    cilium: &CiliumVersion,
) -> Result<(LoadBalancerIpPool, L2AnnouncementPolicy), InputError> {
    let block = overlay.pool_block(subnet)?;
    let release = cilium.release()?;
    let pool = LoadBalancerIpPool {
        api_version: release.lb_pool_api_version(),
        kind: "CiliumLoadBalancerIPPool",
        metadata: ObjectMeta {
            name: "harness-docker-subnet".into(),
        },
        spec: PoolSpec {
            blocks: vec![Block {
                cidr: block.to_string(),
            }],
            service_selector: LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: SUITE_LABEL.0.into(),
                    operator: "NotIn".into(),
                    values: Some(vec![SUITE_LABEL.1.into()]),
                }]),
                match_labels: None,
            },
        },
    };
    let policy = L2AnnouncementPolicy {
        api_version: release.l2_policy_api_version(),
        kind: "CiliumL2AnnouncementPolicy",
        metadata: ObjectMeta {
            name: "harness-docker-subnet".into(),
        },
        spec: L2PolicySpec {
            load_balancer_i_ps: true,
            interfaces: overlay.lb_pool.interfaces.clone(),
        },
    };
    Ok((pool, policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suites_l2_block_sits_just_below_the_harness_pool() {
        let o = Overlay::embedded();
        let subnet = "10.5.3.0/24".parse().unwrap();
        let block = suite_l2_block(&o, subnet).unwrap();
        assert_eq!(block.to_string(), "10.5.3.232/29");
        assert!(!block.overlaps(&o.pool_block(subnet).unwrap()));
    }

    #[test]
    fn l2_policy_field_is_spelled_as_the_crd_spells_it() {
        let (_, policy) = objects(
            &Overlay::embedded(),
            "10.5.0.0/24".parse().unwrap(),
            &CiliumVersion::parse("1.20.2").unwrap(),
        )
        .unwrap();
        let v = serde_json::to_value(policy).unwrap();
        assert_eq!(v["spec"]["loadBalancerIPs"], serde_json::json!(true));
    }

    #[test]
    fn the_harness_pool_leaves_the_lb_ipam_suites_services_alone() {
        let (pool, _) = objects(
            &Overlay::embedded(),
            "10.5.0.0/24".parse().unwrap(),
            &CiliumVersion::parse("1.20.2").unwrap(),
        )
        .unwrap();
        let v = serde_json::to_value(pool).unwrap();
        assert_eq!(
            v["spec"]["serviceSelector"],
            serde_json::json!({"matchExpressions": [{"key": "io.harness.suite", "operator": "NotIn", "values": ["lb-ipam"]}]})
        );
    }
}
