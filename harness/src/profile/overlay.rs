//! The Talos-in-Docker overlay: settings a docker-hosted cluster needs whatever the profile,
//! and the LoadBalancer pool placed inside the cluster's docker subnet.

use crate::errors::InputError;
use crate::values;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::Ipv4Addr;
use suites::Features;
use talos_docker::Ipv4Net;

pub const EMBEDDED: &str = include_str!("../../../profiles/overlays/talos-in-docker.yaml");

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    KubeProxyReplacement,
    MutualAuthSpire,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    #[serde(default)]
    pub requires: Option<Requirement>,
    pub why: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LbPool {
    pub prefix_length: u8,
    pub interfaces: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    pub settings: Vec<Setting>,
    pub lb_pool: LbPool,
}

impl Overlay {
    pub fn embedded() -> Self {
        serde_saphyr::from_str(EMBEDDED).unwrap_or_else(|e| {
            panic!(
                "embedded overlay is invalid: {}",
                InputError::yaml("overlay", &e)
            )
        })
    }

    /// The settings that apply given the profile's features; the rest with why they do not.
    pub fn applicable(&self, features: &Features) -> Vec<&Setting> {
        self.settings
            .iter()
            .filter(|s| match s.requires {
                None => true,
                Some(Requirement::KubeProxyReplacement) => features.kube_proxy_replacement,
                Some(Requirement::MutualAuthSpire) => features.mutual_auth_spire,
            })
            .collect()
    }

    /// The overlay as a Helm values layer.
    pub fn values(&self, features: &Features) -> Value {
        let mut out = Value::Object(Default::default());
        for s in self.applicable(features) {
            values::set(&mut out, &s.key, s.value.clone());
        }
        out
    }

    /// The LB pool block: the last `prefix_length` block of the docker subnet.
    pub fn pool_block(&self, subnet: Ipv4Net) -> Result<Ipv4Net, InputError> {
        let len = self.lb_pool.prefix_length;
        if len <= subnet.prefix() || len > 30 {
            return Err(InputError::Unsupported(format!(
                "an LB pool of /{len} does not fit in the docker subnet {subnet}"
            )));
        }
        let last = subnet
            .nth(u32::try_from(subnet.size() - 1).unwrap_or(u32::MAX))
            .expect("in range");
        let block = u32::from(last) & (u32::MAX << (32 - len));
        Ok(Ipv4Net::new(Ipv4Addr::from(block), len).expect("a block boundary"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn features(kpr: bool) -> Features {
        crate::profile::features::derive(&json!({"kubeProxyReplacement": kpr}))
    }

    #[test]
    fn every_setting_says_why() {
        for s in Overlay::embedded().settings {
            assert!(s.why.len() > 20, "{} needs a reason", s.key);
        }
    }

    #[test]
    fn l2_settings_need_kube_proxy_replacement() {
        let o = Overlay::embedded();
        let with = o.values(&features(true));
        assert_eq!(
            values::get(&with, "l2announcements.enabled"),
            Some(&json!(true))
        );
        assert_eq!(
            values::get(&with, "bpf.hostLegacyRouting"),
            Some(&json!(true))
        );
        let without = o.values(&features(false));
        assert_eq!(values::get(&without, "l2announcements.enabled"), None);
        assert_eq!(
            values::get(&without, "bpf.hostLegacyRouting"),
            Some(&json!(true))
        );
    }

    #[test]
    fn spire_settings_apply_only_with_spire() {
        let o = Overlay::embedded();
        let spire = crate::profile::features::derive(
            &json!({"authentication": {"mutual": {"spire": {"enabled": true}}}}),
        );
        let with = o.values(&spire);
        assert_eq!(
            values::get(
                &with,
                "authentication.mutual.spire.install.server.dataStorage.enabled"
            ),
            Some(&json!(false))
        );
        assert_eq!(
            values::get(&o.values(&features(true)), "authentication"),
            None
        );
    }

    #[test]
    fn pool_sits_at_the_top_of_the_subnet() {
        let o = Overlay::embedded();
        assert_eq!(
            o.pool_block("10.5.3.0/24".parse().unwrap()).unwrap(),
            "10.5.3.240/28".parse().unwrap()
        );
        assert!(o.pool_block("10.5.3.0/29".parse().unwrap()).is_err());
    }
}
