//! The workload images, pinned in this one place by tag and digest.
//!
//! A tag says which release a person meant; the digest makes the pull reproducible and survives
//! a re-pushed tag. Each pin names the upstream file and commit it was copied from (compared with
//! upstream 2026-11, through mirrors of the repositories; not re-resolved against the registries,
//! which this machine cannot reach):
//! - `client`, `echo`: the map `ConnectivityCheckImagesTest` (renovate-managed) in
//!   `cilium-cli/defaults/defaults.go` of cilium/cilium, the images `cilium connectivity test`
//!   runs. Read as vendored by cilium/cilium-cli v0.19.7 (commit
//!   7ca7fc53c20275f5c10ef5f3557076691fd1d720, 2026-07-28), which pins cilium/cilium at
//!   2efb257c8533 (`v1.20.0-pre.4.0.20260728152500-2efb257c8533`); cilium/cilium-cli main
//!   (e694be34, 2026-08-21) pins the same. alpine-curl is unchanged there; json-mock moved from
//!   v1.3.9 to v1.4.1 (its `run.sh` still serves json-server on `$PORT`, cilium/json-mock
//!   v1.4.1 = 4d0eae6f2f58e61f7f43d336d0e7ca124468324d).
//! - `dns`: agnhost, the image the Kubernetes DNS e2e tests probe with (it ships bind-tools, so
//!   `dig`, and `pause`/`netexec` subcommands). Tag and digest as pinned in two unrelated public
//!   repositories; NOT verified against registry.k8s.io from this machine (no registry access).
//! - `gateway_echo`: `echo-basic`, the Gateway API conformance echo server (JSON naming the pod,
//!   namespace, path, host and headers of each request; port 3000 unless `HTTP_PORT` says
//!   otherwise). It moved from gcr.io/k8s-staging-gateway-api to registry.k8s.io: the pin is the
//!   one in kubernetes-sigs/gateway-api `conformance/base/manifests.yaml` at v1.6.1 (commit
//!   8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3), in use there since #4728 (b9c792ce, 2026-04-13).
//!   Its main branch has since moved on to `registry.k8s.io/gateway-api/conformance/echo-basic:v0.1.0`
//!   (#5095, 53a5258d, 2026-07-21), built from the new gateway-api-conformance-images
//!   repository and not in a release yet. Pinned by TAG ONLY: upstream pins no digest and none
//!   could be verified from here, and an unverified digest would be invented. Override with
//!   `HARNESS_IMAGE_GATEWAY_ECHO` (tag+digest) where reproducibility matters.
//!
//! The probes depend on what is inside the images (curl, iputils `ping -M`, `dig`, `/bin/sh`), so
//! an override must carry the same tools. Overrides exist for registry mirrors and air-gapped
//! clusters: `HARNESS_IMAGE_CLIENT`, `HARNESS_IMAGE_ECHO`, `HARNESS_IMAGE_DNS`,
//! `HARNESS_IMAGE_GATEWAY_ECHO` replace one image;
//! `HARNESS_IMAGE_REGISTRY` rewrites the registry host of every image, keeping path, tag and digest
//! (a pull-through mirror serves the same manifest, so the digest still holds).

use crate::kit::errors::KitError;
use std::fmt;

/// Used by `cilium connectivity test` as its client: curl, iputils (ping -M do), bind-tools.
/// Source: cilium/cilium `cilium-cli/defaults/defaults.go` @ 2efb257c8533
/// (`ConnectivityCheckAlpineCurlImage`, as vendored by cilium/cilium-cli v0.19.7).
pub const CLIENT: &str = "quay.io/cilium/alpine-curl:v1.10.0@sha256:913e8c9f3d960dde03882defa0edd3a919d529c2eb167caa7f54194528bde364";
/// Used by `cilium connectivity test` as echo-same-node/echo-other-node: json-server on $PORT.
/// Source: cilium/cilium `cilium-cli/defaults/defaults.go` @ 2efb257c8533
/// (`ConnectivityCheckJSONMockImage`, as vendored by cilium/cilium-cli v0.19.7; was v1.3.9).
pub const ECHO: &str = "quay.io/cilium/json-mock:v1.4.1@sha256:6a66df90808a39c02e7a9d58af7bf0e54d8f8b7d4bc528f48c891969a7049195";
/// Used by the Kubernetes DNS e2e tests. Digest not verified against the registry (see above).
pub const DNS: &str = "registry.k8s.io/e2e-test-images/agnhost:2.56@sha256:352a050380078cb2a1c246357a0dfa2fcf243ee416b92ff28b44a01d1b4b0294";

/// The Gateway API conformance echo server. Tag only: its digest could not be verified (see above).
/// Source: kubernetes-sigs/gateway-api `conformance/base/manifests.yaml` @ v1.6.1 (8bb74df0);
/// was gcr.io/k8s-staging-gateway-api/echo-basic:v20240412-v1.0.0-394-g40c666fd (v1.3.0 - v1.4.1).
pub const GATEWAY_ECHO: &str = "registry.k8s.io/gateway-api/echo-basic:v1.5.1";

pub const ENV_CLIENT: &str = "HARNESS_IMAGE_CLIENT";
pub const ENV_ECHO: &str = "HARNESS_IMAGE_ECHO";
pub const ENV_DNS: &str = "HARNESS_IMAGE_DNS";
pub const ENV_GATEWAY_ECHO: &str = "HARNESS_IMAGE_GATEWAY_ECHO";
pub const ENV_REGISTRY: &str = "HARNESS_IMAGE_REGISTRY";

/// An image reference split into the parts a mirror rewrite and a pin check need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (with port), e.g. `quay.io`; Docker Hub when the reference names none.
    pub registry: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty image reference".into());
        }
        if s.chars().any(char::is_whitespace) {
            return Err("an image reference has no spaces".into());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| format!("digest {d:?} is not sha256:<hex>"))?;
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!(
                        "digest {d:?} is not sha256 followed by 64 hex digits"
                    ));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/', so a registry port is not a tag.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if tag.as_deref() == Some("") {
            return Err("empty tag".into());
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        if path.is_empty() {
            return Err("no repository path".into());
        }
        Ok(ImageRef {
            registry,
            path,
            tag,
            digest,
        })
    }

    /// The same image served by another registry host, e.g. a pull-through mirror.
    pub fn with_registry(&self, registry: &str) -> ImageRef {
        ImageRef {
            registry: registry.trim_end_matches('/').to_string(),
            ..self.clone()
        }
    }

    pub fn is_pinned_by_digest(&self) -> bool {
        self.digest.is_some()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The images the suites' workloads use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Probe clients and the host-network pod: curl, ping, dig, sh.
    pub client: ImageRef,
    /// HTTP echo servers (port 8080, named `http`).
    pub echo: ImageRef,
    /// DNS prober and DNS backends.
    pub dns: ImageRef,
    /// Gateway API backends (echo-basic, port 3000).
    pub gateway_echo: ImageRef,
}

impl Images {
    pub fn pinned() -> Images {
        Images {
            client: ImageRef::parse(CLIENT).expect("pinned client image parses (tested)"),
            echo: ImageRef::parse(ECHO).expect("pinned echo image parses (tested)"),
            dns: ImageRef::parse(DNS).expect("pinned dns image parses (tested)"),
            gateway_echo: ImageRef::parse(GATEWAY_ECHO)
                .expect("pinned gateway echo image parses (tested)"),
        }
    }

    /// Every image served by another registry host, for a `--image-registry` style flag.
    pub fn with_registry(&self, registry: &str) -> Images {
        Images {
            client: self.client.with_registry(registry),
            echo: self.echo.with_registry(registry),
            dns: self.dns.with_registry(registry),
            gateway_echo: self.gateway_echo.with_registry(registry),
        }
    }

    /// The pins with the process environment's overrides applied.
    pub fn from_env() -> Result<Images, KitError> {
        Images::with_overrides(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// The pins with overrides looked up by variable name; a whole-image override wins over the
    /// registry rewrite because a person who names an image means exactly that image.
    pub fn with_overrides(lookup: impl Fn(&str) -> Option<String>) -> Result<Images, KitError> {
        let pinned = Images::pinned();
        let registry = lookup(ENV_REGISTRY);
        if let Some(r) = &registry
            && (r.contains('@') || r.chars().any(char::is_whitespace) || r.trim().is_empty())
        {
            return Err(KitError::Image {
                var: ENV_REGISTRY.into(),
                value: r.clone(),
                reason:
                    "expected a registry host with optional port and path, e.g. mirror.local:5000"
                        .into(),
            });
        }
        let pick = |var: &str, pin: ImageRef| -> Result<ImageRef, KitError> {
            match lookup(var) {
                Some(v) => {
                    let img = ImageRef::parse(&v).map_err(|reason| KitError::Image {
                        var: var.into(),
                        value: v.clone(),
                        reason,
                    })?;
                    if img.tag.is_none() && img.digest.is_none() {
                        return Err(KitError::Image {
                            var: var.into(),
                            value: v,
                            reason: format!(
                                "no tag and no digest, so every node could pull something different; pin it like {pin}"
                            ),
                        });
                    }
                    Ok(img)
                }
                None => Ok(match &registry {
                    Some(r) => pin.with_registry(r),
                    None => pin,
                }),
            }
        };
        Ok(Images {
            client: pick(ENV_CLIENT, pinned.client)?,
            echo: pick(ENV_ECHO, pinned.echo)?,
            dns: pick(ENV_DNS, pinned.dns)?,
            gateway_echo: pick(ENV_GATEWAY_ECHO, pinned.gateway_echo)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn every_pin_has_a_tag_and_a_digest() {
        let i = Images::pinned();
        for img in [&i.client, &i.echo, &i.dns] {
            assert!(img.tag.is_some(), "{img}");
            assert!(img.is_pinned_by_digest(), "{img}");
        }
        assert_eq!(i.client.to_string(), CLIENT);
        assert_eq!(i.echo.to_string(), ECHO);
        assert_eq!(i.dns.to_string(), DNS);
        // The one pin without a verified digest (see the module docs): a tag at least.
        assert!(i.gateway_echo.tag.is_some());
        assert_eq!(i.gateway_echo.to_string(), GATEWAY_ECHO);
    }

    #[test]
    fn the_gateway_echo_image_has_its_own_override() {
        let i = Images::with_overrides(env(&[(
            ENV_GATEWAY_ECHO,
            "mirror.local/gateway-api/echo-basic:v1",
        )]))
        .unwrap();
        assert_eq!(
            i.gateway_echo.to_string(),
            "mirror.local/gateway-api/echo-basic:v1"
        );
        assert_eq!(i.echo.to_string(), ECHO);
    }

    #[test]
    fn parse_tells_registry_port_from_tag() {
        let r = ImageRef::parse("mirror.local:5000/cilium/alpine-curl:v1.10.0").unwrap();
        assert_eq!(r.registry, "mirror.local:5000");
        assert_eq!(r.path, "cilium/alpine-curl");
        assert_eq!(r.tag.as_deref(), Some("v1.10.0"));
        assert_eq!(r.digest, None);
        let hub = ImageRef::parse("coredns/coredns:1.12.2").unwrap();
        assert_eq!(hub.registry, "docker.io");
        assert_eq!(hub.to_string(), "docker.io/coredns/coredns:1.12.2");
    }

    #[test]
    fn parse_refuses_a_malformed_digest() {
        let e = ImageRef::parse("quay.io/cilium/alpine-curl@sha256:abc").unwrap_err();
        assert!(e.contains("64 hex digits"), "{e}");
    }

    #[test]
    fn registry_rewrite_keeps_path_tag_and_digest() {
        let i = Images::with_overrides(env(&[(ENV_REGISTRY, "mirror.local:5000")])).unwrap();
        assert_eq!(
            i.client.to_string(),
            "mirror.local:5000/cilium/alpine-curl:v1.10.0@sha256:913e8c9f3d960dde03882defa0edd3a919d529c2eb167caa7f54194528bde364"
        );
        assert_eq!(i.dns.registry, "mirror.local:5000");
        assert_eq!(i.dns.path, "e2e-test-images/agnhost");
    }

    #[test]
    fn a_named_image_wins_over_the_registry_rewrite() {
        let i = Images::with_overrides(env(&[
            (ENV_REGISTRY, "mirror.local"),
            (ENV_ECHO, "mirror.local/echo/json-mock:v1.4.1"),
        ]))
        .unwrap();
        assert_eq!(i.echo.to_string(), "mirror.local/echo/json-mock:v1.4.1");
        assert_eq!(i.client.registry, "mirror.local");
    }

    #[test]
    fn an_unpinned_override_is_refused_with_the_pin_to_copy() {
        let e = Images::with_overrides(env(&[(ENV_CLIENT, "alpine")])).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "image HARNESS_IMAGE_CLIENT=\"alpine\" cannot be used: no tag and no digest"
            ),
            "{msg}"
        );
        assert!(msg.contains(CLIENT), "{msg}");
    }
}
