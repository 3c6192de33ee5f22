//! Creating an object and keeping what admission said about it: allowed or refused, and the
//! warnings.
//!
//! kube 4.2's typed `Api::create` returns the object and drops the response headers, and the
//! PodSecurity `warn` mode speaks only through `Warning` headers (RFC 7234 form:
//! `299 - "would violate PodSecurity \"restricted:latest\": ..."`). So this builds the same
//! request kube would (`kube::core::Request::create`, with `dryRun=All` when asked) and sends it
//! with `Client::send`, which returns the raw response with its headers. Dry-run runs admission in
//! full without persisting anything, so most PodSecurity checks never create a pod.

use crate::kit::errors::{KitError, describe_kube_error};
use kube::api::PostParams;
use kube::client::Body;
use kube::core::{Resource, Status};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted {
        warnings: Vec<String>,
    },
    Refused {
        code: u16,
        reason: String,
        message: String,
    },
}

impl Admission {
    pub fn pod_security_warnings(&self) -> Vec<&str> {
        match self {
            Admission::Admitted { warnings } => warnings
                .iter()
                .filter(|w| w.contains("PodSecurity"))
                .map(String::as_str)
                .collect(),
            Admission::Refused { .. } => Vec::new(),
        }
    }
}

/// The text of one `Warning` header value: `<code> <agent> "<text>"`, with `\"` and `\\`
/// escapes in the text.
pub fn parse_warning(value: &str) -> Option<String> {
    let mut parts = value.trim().splitn(3, ' ');
    let code = parts.next()?;
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let _agent = parts.next()?;
    let quoted = parts.next()?.trim();
    let inner = quoted.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return Some(text),
            c => text.push(c),
        }
    }
    None
}

/// Reads an admission answer from the response's status, warnings and body.
pub fn classify(status: u16, warnings: Vec<String>, body: &[u8]) -> Result<Admission, String> {
    if (200..300).contains(&status) {
        return Ok(Admission::Admitted { warnings });
    }
    let parsed: Option<Status> = serde_json::from_slice(body).ok();
    match (status, parsed) {
        // 400/403/422 are admission answers a person can act on; anything else is the
        // harness failing to ask (auth, server errors).
        (400 | 403 | 422, Some(s)) => Ok(Admission::Refused {
            code: status,
            reason: s.reason,
            message: s.message,
        }),
        (code, s) => Err(format!(
            "HTTP {code}: {}",
            s.map(|s| s.message)
                .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
        )),
    }
}

/// POSTs `obj` into `ns` (dry-run if asked) and reports what admission did.
pub async fn create<K>(
    client: &kube::Client,
    ns: &str,
    obj: &K,
    dry_run: bool,
) -> Result<Admission, KitError>
where
    K: Resource<DynamicType = ()> + Serialize,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let action = format!(
        "{}create {} {ns}/{name}",
        if dry_run { "dry-run " } else { "" },
        K::kind(&())
    );
    let body = serde_json::to_vec(obj).map_err(|e| KitError::Parse {
        what: format!("{} {name} as JSON", K::kind(&())),
        detail: e.to_string(),
    })?;
    let pp = PostParams {
        dry_run,
        field_manager: Some("talos-cilium-harness".into()),
    };
    let req = kube::core::Request::new(K::url_path(&(), Some(ns)))
        .create(&pp, body)
        .map_err(|e| KitError::Api {
            action: action.clone(),
            detail: e.to_string(),
        })?;
    let resp = client
        .send(req.map(Body::from))
        .await
        .map_err(|e| KitError::Api {
            action: action.clone(),
            detail: describe_kube_error(&e),
        })?;
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all(http::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| parse_warning(v).unwrap_or_else(|| v.to_string()))
        .collect();
    let bytes = resp
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| KitError::Api {
            action: action.clone(),
            detail: describe_kube_error(&e),
        })?;
    classify(status, warnings, &bytes).map_err(|detail| KitError::Api { action, detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn warning_header_text_is_unquoted() {
        let raw = fixture("warning-header-restricted.txt");
        let w = parse_warning(raw.trim()).unwrap();
        assert!(w.starts_with("would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false)"), "{w}");
        assert!(w.ends_with("seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"), "{w}");
    }

    #[test]
    fn malformed_warnings_are_not_invented() {
        assert_eq!(parse_warning("hello"), None);
        assert_eq!(parse_warning("299 - \"unterminated"), None);
    }

    #[test]
    fn a_403_status_is_a_refusal_with_the_servers_message() {
        let a = classify(
            403,
            vec![],
            fixture("status-403-baseline-net-raw.json").as_bytes(),
        )
        .unwrap();
        let Admission::Refused {
            code,
            reason,
            message,
        } = a
        else {
            panic!()
        };
        assert_eq!((code, reason.as_str()), (403, "Forbidden"));
        assert_eq!(
            message,
            "pods \"psa-net-raw\" is forbidden: violates PodSecurity \"baseline:latest\": non-default capabilities (container \"c\" must not include \"NET_RAW\" in securityContext.capabilities.add)"
        );
    }

    #[test]
    fn a_201_is_admitted_with_its_warnings() {
        let a = classify(
            201,
            vec!["would violate PodSecurity \"restricted:latest\": x".into()],
            b"{}",
        )
        .unwrap();
        assert_eq!(a.pod_security_warnings().len(), 1);
    }

    #[test]
    fn server_errors_are_not_admission_answers() {
        let e = classify(500, vec![], br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","code":500}"#).unwrap_err();
        assert_eq!(e, "HTTP 500: etcdserver: request timed out");
    }
}
