//! Profiles: one documented Cilium configuration each, named after the seed it came from.

pub mod catalog;
pub mod features;
pub mod lint;
pub mod namespaces;
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

/// Which Gateway API CRDs go in before Cilium, for one cell.
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

/// A profile's Gateway API CRDs: the channel, and the release when the seed pins one. Without a
/// pin each cell installs the release its Cilium minor is built against (release table).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GatewayApiChoice {
    /// The seed's release; it holds on cells of the seed's own Cilium minor (or on every cell
    /// when the profile pins no Cilium).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub channel: Channel,
}

/// `gateway_api: none` or the CRDs to install.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum GatewayApi {
    None(NoneMarker),
    Crds(GatewayApiChoice),
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NoneMarker {
    None,
}

impl GatewayApi {
    pub fn choice(&self) -> Option<&GatewayApiChoice> {
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
    /// The Cilium chart version the seed pins, when it pins one; the matrix token `seed` stands
    /// for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cilium_version: Option<String>,
    pub gateway_api: GatewayApi,
    /// Opt-in profiles stay out of the default matrix (e.g. SPIRE installs extra servers).
    #[serde(default)]
    pub opt_in: bool,
    #[serde(default)]
    pub deviations: Vec<Deviation>,
    /// Helm values, exactly as `helm -f` would take them.
    pub values: Value,
}
