//! pins.yaml: the tool versions `tools install` takes by default and the sums known in advance.

use super::Platform;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use upstream::Sha256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    pub helm: HelmPin,
    pub talosctl: TalosctlPin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmPin {
    pub version: String,
    /// Per `<os>-<arch>`: the sum of the helm binary inside the release tarball.
    #[serde(default)]
    pub binary_sha256: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalosctlPin {
    /// Per version, per `<os>-<arch>`: the sum of the talosctl asset.
    #[serde(default)]
    pub sha256: BTreeMap<String, BTreeMap<String, String>>,
}

pub fn pins() -> &'static Pins {
    static PINS: OnceLock<Pins> = OnceLock::new();
    PINS.get_or_init(|| {
        serde_saphyr::from_str(include_str!("pins.yaml")).expect("pins.yaml is well-formed")
    })
}

impl Pins {
    pub fn helm_binary_sum(&self, version: &str, platform: &Platform) -> Option<Sha256> {
        (version == self.helm.version)
            .then(|| self.helm.binary_sha256.get(&platform.key()))
            .flatten()
            .map(|s| s.parse().expect("pins.yaml holds valid sums"))
    }

    pub fn talosctl_sum(&self, version: &str, platform: &Platform) -> Option<Sha256> {
        self.talosctl
            .sha256
            .get(version)?
            .get(&platform.key())
            .map(|s| s.parse().expect("pins.yaml holds valid sums"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_helm_is_the_one_the_render_tests_use() {
        let p = pins();
        let linux = Platform {
            os: "linux",
            arch: "amd64",
        };
        let ci = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/helm-pins.tsv"),
        )
        .unwrap();
        let row = ci
            .lines()
            .find(|l| l.starts_with(&format!("{}\t", p.helm.version)))
            .expect(".ci/helm-pins.tsv has the same helm release");
        let sum = row.split('\t').nth(3).unwrap();
        assert_eq!(
            p.helm_binary_sum(&p.helm.version, &linux)
                .unwrap()
                .to_string(),
            sum
        );
        assert_eq!(p.helm_binary_sum("v3.18.0", &linux), None);
    }
}
