//! Versions of the things a cell pins, and what is known about which go together.

use crate::errors::InputError;
use serde::{Serialize, Serializer};
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
    if body.split('.').count() != 3 {
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
    };
}

version_type!(CiliumVersion, "Cilium", false, "1.18.4", "");
version_type!(TalosVersion, "Talos", true, "v1.11.5", "v");
version_type!(KubernetesVersion, "Kubernetes", true, "1.34.1", "");
version_type!(GatewayApiVersion, "Gateway API", true, "v1.3.0", "v");

/// What a Talos minor release supports, from the Talos support matrix.
pub struct TalosRelease {
    pub minor: (u64, u64),
    pub default_kubernetes: &'static str,
    pub kubernetes: ((u64, u64), (u64, u64)),
}

pub const TALOS_RELEASES: &[TalosRelease] = &[
    TalosRelease {
        minor: (1, 10),
        default_kubernetes: "1.33.0",
        kubernetes: ((1, 28), (1, 33)),
    },
    TalosRelease {
        minor: (1, 11),
        default_kubernetes: "1.34.1",
        kubernetes: ((1, 29), (1, 34)),
    },
    TalosRelease {
        minor: (1, 12),
        default_kubernetes: "1.35.4",
        kubernetes: ((1, 30), (1, 35)),
    },
    TalosRelease {
        minor: (1, 13),
        default_kubernetes: "1.36.3",
        kubernetes: ((1, 31), (1, 36)),
    },
];

impl TalosVersion {
    /// The release line's facts, or why this version cannot be used.
    pub fn release(&self) -> Result<&'static TalosRelease, InputError> {
        TALOS_RELEASES
            .iter()
            .find(|r| r.minor == self.minor())
            .ok_or_else(|| {
                InputError::Unsupported(format!(
                    "Talos {self} is not supported: the harness knows Talos v1.10 to v1.13 (from v1.14 the \
                     CNI and kube-proxy settings move to separate config documents); pick e.g. v1.11.5"
                ))
            })
    }

    pub fn default_kubernetes(&self) -> Result<KubernetesVersion, InputError> {
        KubernetesVersion::parse(self.release()?.default_kubernetes)
    }

    /// Why Talos cannot run this Kubernetes version, if it cannot.
    pub fn refuses(&self, k8s: &KubernetesVersion) -> Result<Option<String>, InputError> {
        let r = self.release()?;
        let (lo, hi) = r.kubernetes;
        let m = k8s.minor();
        Ok((m < lo || m > hi).then(|| {
            format!(
                "Talos {self} supports Kubernetes {}.{} to {}.{}, not {k8s}",
                lo.0, lo.1, hi.0, hi.1
            )
        }))
    }

    /// The container image of this release.
    pub fn image(&self) -> String {
        format!("ghcr.io/siderolabs/talos:{self}")
    }
}

/// What a Cilium minor release expects of the cluster.
pub struct CiliumRelease {
    pub minor: (u64, u64),
    /// The Gateway API release Cilium is built and tested against.
    pub gateway_api: &'static str,
    /// The LB IPAM pool's served, non-deprecated apiVersion.
    pub lb_pool_api_version: &'static str,
    /// The Kubernetes minors upstream e2e-tests this release on.
    pub kubernetes_tested: ((u64, u64), (u64, u64)),
}

pub const CILIUM_RELEASES: &[CiliumRelease] = &[
    CiliumRelease {
        minor: (1, 17),
        gateway_api: "v1.2.1",
        lb_pool_api_version: "cilium.io/v2alpha1",
        kubernetes_tested: ((1, 29), (1, 32)),
    },
    CiliumRelease {
        minor: (1, 18),
        gateway_api: "v1.3.0",
        lb_pool_api_version: "cilium.io/v2",
        kubernetes_tested: ((1, 30), (1, 33)),
    },
    CiliumRelease {
        minor: (1, 19),
        gateway_api: "v1.4.1",
        lb_pool_api_version: "cilium.io/v2",
        kubernetes_tested: ((1, 31), (1, 34)),
    },
];

impl CiliumVersion {
    pub fn release(&self) -> Result<&'static CiliumRelease, InputError> {
        CILIUM_RELEASES
            .iter()
            .find(|r| r.minor == self.minor())
            .ok_or_else(|| {
                InputError::Unsupported(format!(
                    "Cilium {self} is not supported: the harness knows Cilium 1.17 to 1.19; pick e.g. 1.18.4"
                ))
            })
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
            "Cilium version '1.18' is malformed: it needs major.minor.patch; write it like 1.18.4"
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
        assert!(TalosVersion::parse("v1.14.0").unwrap().release().is_err());
    }
}
