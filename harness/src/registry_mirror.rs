//! `--registry-mirror [REGISTRY=]URL`: nodes pull through a local registry (a pull-through cache
//! such as `make cache` starts) instead of each reaching the upstream registry every run. Written
//! in the form the cell's Talos release takes (release table): `.machine.registries.mirrors` up
//! to 1.11, one `RegistryMirrorConfig` document per registry from 1.12.

use crate::errors::InputError;
use crate::releases::{Form, TalosRelease};
use serde_json::{Value, json};
use std::time::Duration;
use talos_docker::{ConfigPatch, PatchSource, PatchTarget};

/// How long the mirror may take to answer `GET /v2/` before the run is refused.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// One registry's mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// The registry host the images name (`quay.io`, `docker.io`), or `*` for every registry.
    pub registry: String,
    /// Where the nodes pull from instead: `http(s)://host[:port][/path]`.
    pub url: String,
}

impl Mirror {
    /// `URL` (every registry) or `REGISTRY=URL`.
    pub fn parse(given: &str) -> Result<Mirror, InputError> {
        let bad = |why: &str| {
            InputError::problem(
                format!("--registry-mirror '{given}' {why}"),
                "write it like --registry-mirror http://10.5.0.1:5000 (every registry) or --registry-mirror quay.io=http://10.5.0.1:5001",
            )
        };
        let (registry, url) = match given.split_once('=') {
            Some((r, u)) => (r.trim(), u.trim()),
            None => ("*", given.trim()),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| bad("is not an http(s) URL"))?;
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("has no host"));
        }
        let registry_ok = registry == "*"
            || (!registry.is_empty()
                && registry
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')));
        if !registry_ok {
            return Err(bad("names no registry host before '='"));
        }
        Ok(Mirror {
            registry: registry.to_string(),
            url: url.trim_end_matches('/').to_string(),
        })
    }
}

/// The config documents for `mirrors` in this Talos release's form (empty when there are none).
pub fn documents(mirrors: &[Mirror], talos: &TalosRelease) -> Vec<Value> {
    if mirrors.is_empty() {
        return Vec::new();
    }
    match &talos.config.registry_mirrors {
        Form::V1alpha1(path) => {
            let table: serde_json::Map<String, Value> = mirrors
                .iter()
                .map(|m| (m.registry.clone(), json!({"endpoints": [m.url]})))
                .collect();
            let mut root = json!({});
            crate::values::set(&mut root, path, Value::Object(table));
            vec![root]
        }
        Form::Document(kind) => mirrors
            .iter()
            .map(|m| {
                json!({
                    "apiVersion": "v1alpha1",
                    "kind": kind,
                    "name": m.registry,
                    "endpoints": [{"url": m.url}],
                })
            })
            .collect(),
    }
}

/// The mirrors as one `talosctl gen config --config-patch` for every node.
pub fn patch(mirrors: &[Mirror], talos: &TalosRelease) -> Option<ConfigPatch> {
    let docs = documents(mirrors, talos);
    (!docs.is_empty()).then(|| ConfigPatch {
        target: PatchTarget::All,
        source: PatchSource::Inline(crate::profile::talos_patch::yaml(&docs)),
    })
}

/// The mirror answers the registry API (`GET /v2/` is 200), so a wrong port or a stopped cache
/// is refused before any node tries to pull through it.
pub async fn answers(mirror: &Mirror) -> Result<(), InputError> {
    let url = format!("{}/v2/", mirror.url);
    let probe = url.clone();
    let result = tokio::task::spawn_blocking(move || {
        upstream::download::Client::new(ANSWER_TIMEOUT)
            .and_then(|c| c.text(&probe, 64 * 1024))
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    result.map(|_| ()).map_err(|e| {
        InputError::problem(
            format!(
                "the registry mirror for {} does not answer {url} within {}s: {e}",
                mirror.registry,
                ANSWER_TIMEOUT.as_secs()
            ),
            "start it (`make cache`) or fix --registry-mirror",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::releases::{Minor, ReleaseTable};

    fn talos(minor: u64) -> &'static TalosRelease {
        ReleaseTable::embedded()
            .talos
            .iter()
            .find(|t| t.minor == Minor(1, minor))
            .unwrap()
    }

    #[test]
    fn a_bare_url_mirrors_every_registry_and_a_name_one() {
        assert_eq!(
            Mirror::parse("http://10.5.0.1:5000/").unwrap(),
            Mirror {
                registry: "*".into(),
                url: "http://10.5.0.1:5000".into()
            }
        );
        assert_eq!(
            Mirror::parse("quay.io=https://cache.local:5001")
                .unwrap()
                .registry,
            "quay.io"
        );
        for bad in [
            "10.5.0.1:5000",
            "quay.io=",
            "=http://x",
            "http://",
            "a b=http://x",
        ] {
            let e = Mirror::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--registry-mirror"), "{bad}: {e}");
        }
    }

    #[test]
    fn each_release_gets_its_own_form() {
        let m = [
            Mirror::parse("http://10.5.0.1:5000").unwrap(),
            Mirror::parse("quay.io=http://10.5.0.1:5001").unwrap(),
        ];
        assert_eq!(
            documents(&m, talos(11)),
            vec![json!({"machine": {"registries": {"mirrors": {
                "*": {"endpoints": ["http://10.5.0.1:5000"]},
                "quay.io": {"endpoints": ["http://10.5.0.1:5001"]}
            }}}})]
        );
        let docs = documents(&m, talos(12));
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1],
            json!({"apiVersion": "v1alpha1", "kind": "RegistryMirrorConfig", "name": "quay.io",
                   "endpoints": [{"url": "http://10.5.0.1:5001"}]})
        );
        assert!(documents(&[], talos(14)).is_empty());
        assert!(patch(&[], talos(14)).is_none());
    }
}
