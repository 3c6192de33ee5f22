//! Profiles: one documented Cilium configuration each, named after the seed it came from.

pub mod catalog;
pub mod features;
pub mod lint;
pub mod overlay;
pub mod talos_patch;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use catalog::Catalog;

/// Where a profile came from: the user's document and the section in it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub seed: String,
    pub section: String,
}

/// The Gateway API CRD release channel.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Standard,
    Experimental,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Standard => "standard",
            Channel::Experimental => "experimental",
        }
    }
}

/// Which Gateway API CRDs go in before Cilium.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GatewayApiCrds {
    pub version: String,
    pub channel: Channel,
}

impl GatewayApiCrds {
    /// The release asset `kubectl apply --server-side -f` takes.
    pub fn url(&self) -> String {
        format!(
            "https://github.com/kubernetes-sigs/gateway-api/releases/download/{}/{}-install.yaml",
            self.version,
            self.channel.as_str()
        )
    }
}

/// `gateway_api: none` or a CRD reference.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum GatewayApi {
    None(NoneMarker),
    Crds(GatewayApiCrds),
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NoneMarker {
    None,
}

impl GatewayApi {
    pub fn crds(&self) -> Option<&GatewayApiCrds> {
        match self {
            GatewayApi::None(_) => None,
            GatewayApi::Crds(c) => Some(c),
        }
    }
}

/// Where the profile departs from the seed's literal text, and why.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    pub key: String,
    pub seed: String,
    pub used: String,
    pub why: String,
}

/// A profile as written in `profiles/<name>.yaml`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub source: Source,
    /// The Cilium chart version the seed pins; a matrix may override it.
    pub cilium_version: String,
    pub gateway_api: GatewayApi,
    /// Opt-in profiles stay out of the default matrix (e.g. SPIRE installs extra servers).
    #[serde(default)]
    pub opt_in: bool,
    #[serde(default)]
    pub deviations: Vec<Deviation>,
    /// Helm values, exactly as `helm -f` would take them.
    pub values: Value,
}
