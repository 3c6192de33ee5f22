//! Versions of the things a cell pins, and what is known about which go together.

use crate::errors::InputError;
use crate::releases::{CiliumRelease, ReleaseTable, TalosRelease};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

fn parse(
    what: &'static str,
    given: &str,
    allow_v: bool,
    example: &'static str,
) -> Result<semver::Version, InputError> {
    let bad = |why: String| InputError::MalformedVersion {
        what,
        given: given.to_string(),
        why,
        example,
    };
    let body = match given.strip_prefix('v') {
        Some(rest) if allow_v => rest,
        Some(_) => return Err(bad("it must not start with 'v'".into())),
        None => given,
    };
    // Pre-release and build suffixes (v1.14.0-rc.1) may hold dots of their own.
    let core = body.split(['-', '+']).next().unwrap_or_default();
    if core.split('.').count() != 3 {
        return Err(bad("it needs major.minor.patch".into()));
    }
    semver::Version::parse(body).map_err(|e| bad(e.to_string()))
}

macro_rules! version_type {
    ($name:ident, $what:literal, $allow_v:expr, $example:literal, $prefix:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(semver::Version);

        impl $name {
            pub fn parse(given: &str) -> Result<Self, InputError> {
                parse($what, given, $allow_v, $example).map(Self)
            }
            pub fn minor(&self) -> (u64, u64) {
                (self.0.major, self.0.minor)
            }
            pub fn semver(&self) -> &semver::Version {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

version_type!(CiliumVersion, "Cilium", false, "1.20.2", "");
version_type!(TalosVersion, "Talos", true, "v1.14.0", "v");
version_type!(KubernetesVersion, "Kubernetes", true, "1.36.3", "");
version_type!(GatewayApiVersion, "Gateway API", true, "v1.6.1", "v");

impl TalosVersion {
    /// The release line's facts from the release table, or why this version cannot be used.
    pub fn release(&self) -> Result<&'static TalosRelease, InputError> {
        ReleaseTable::embedded().talos(self)
    }

    pub fn default_kubernetes(&self) -> Result<KubernetesVersion, InputError> {
        Ok(self.release()?.kubernetes.default.clone())
    }

    /// Why Talos cannot run this Kubernetes version, if it cannot.
    pub fn refuses(&self, k8s: &KubernetesVersion) -> Result<Option<String>, InputError> {
        let k = &self.release()?.kubernetes;
        Ok((!k.contains(k8s)).then(|| {
            format!(
                "Talos {self} supports Kubernetes {} to {}, not {k8s}",
                k.min, k.max
            )
        }))
    }

    /// The container image of this release.
    pub fn image(&self) -> String {
        format!("ghcr.io/siderolabs/talos:{self}")
    }
}

impl CiliumVersion {
    /// The release line's facts from the release table, or why this version cannot be used.
    pub fn release(&self) -> Result<&'static CiliumRelease, InputError> {
        ReleaseTable::embedded().cilium(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_versions_name_the_problem_and_an_example() {
        let e = CiliumVersion::parse("1.18").unwrap_err().to_string();
        assert_eq!(
            e,
            "Cilium version '1.18' is malformed: it needs major.minor.patch; write it like 1.20.2"
        );
        let e = CiliumVersion::parse("v1.18.4").unwrap_err().to_string();
        assert!(e.contains("must not start with 'v'"), "{e}");
        let e = TalosVersion::parse("v1.x.5").unwrap_err().to_string();
        assert!(e.starts_with("Talos version 'v1.x.5' is malformed"), "{e}");
    }

    #[test]
    fn talos_accepts_with_or_without_v_and_prints_with_v() {
        assert_eq!(
            TalosVersion::parse("1.11.5").unwrap().to_string(),
            "v1.11.5"
        );
        assert_eq!(
            TalosVersion::parse("v1.11.5").unwrap().image(),
            "ghcr.io/siderolabs/talos:v1.11.5"
        );
    }

    #[test]
    fn talos_kubernetes_support_window() {
        let t = TalosVersion::parse("v1.11.5").unwrap();
        assert_eq!(t.default_kubernetes().unwrap().to_string(), "1.34.1");
        assert!(
            t.refuses(&KubernetesVersion::parse("1.34.1").unwrap())
                .unwrap()
                .is_none()
        );
        assert_eq!(
            t.refuses(&KubernetesVersion::parse("1.35.0").unwrap())
                .unwrap()
                .as_deref(),
            Some("Talos v1.11.5 supports Kubernetes 1.29 to 1.34, not 1.35.0")
        );
        assert!(TalosVersion::parse("v1.15.0").unwrap().release().is_err());
        assert_eq!(
            TalosVersion::parse("v1.14.0")
                .unwrap()
                .default_kubernetes()
                .unwrap()
                .to_string(),
            "1.37.0"
        );
    }
}
