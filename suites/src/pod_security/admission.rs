//! What admission said about a created object: allowed (with its warnings) or refused, read
//! from the response's status code, `Warning` headers and `Status` body. Pure: the request
//! itself is sent by [`super::observe::create`].

use kube::core::Status;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// One line for a transcript.
    pub fn describe(&self) -> String {
        match self {
            Admission::Admitted { warnings } if warnings.is_empty() => "admitted".into(),
            Admission::Admitted { warnings } => {
                format!("admitted with warnings: {}", warnings.join(" | "))
            }
            Admission::Refused {
                code,
                reason,
                message,
            } => format!("refused {code} {reason}: {message}"),
        }
    }

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
        // etcd's timeout error, which the API server passes on as a 500 Status.
        let e = classify(500, vec![], br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","code":500}"#).unwrap_err();
        assert_eq!(e, "HTTP 500: etcdserver: request timed out");
    }
}
