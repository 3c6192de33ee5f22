//! Keeping secrets out of everything the harness writes or prints (reports, artifacts, log
//! lines, error messages): transcripts may echo a kubeconfig, talosconfig or secrets bundle,
//! a server URL may carry `user:token@`, a header `Bearer <token>`; so PEM blocks, the values
//! of credential keys, URL user info and bearer tokens are blanked. One function, [`redact`],
//! applied at every exit.

use regex::Regex;
use std::sync::LazyLock;

const SECRET_KEYS: &[&str] = &[
    "client-key-data",
    "client-certificate-data",
    "certificate-authority-data",
    "token",
    "password",
    "crt",
    "key",
    "ca",
    "secret",
    "bootstraptoken",
    "secretboxencryptionsecret",
    "aescbcencryptionsecret",
    // ExecCredential status (JSON, camelCase) and OIDC auth-provider config.
    "clientkeydata",
    "clientcertificatedata",
    "access-token",
    "id-token",
    "refresh-token",
    "client-secret",
    "authorization",
];

/// `scheme://user:password@` (or `scheme://token@`) in any URL.
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\x22<>]+@").expect("a valid pattern")
});
/// An `Authorization: Bearer ...` or `Basic ...` value.
static AUTH_SCHEME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}").expect("a valid pattern")
});

const REDACTED: &str = "<redacted>";

/// `text` with every PEM block and every credential value replaced by `<redacted>`, in block
/// YAML (`key: value`), flow YAML (`{key: value, ...}`) and JSON (`"key":"value"`).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_pem = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with("-----BEGIN ") {
            in_pem = true;
            out.push_str(REDACTED);
            out.push('\n');
        }
        if in_pem {
            if trimmed.starts_with("-----END ") {
                in_pem = false;
            }
            continue;
        }
        out.push_str(&redact_line(line));
    }
    let out = URL_USERINFO.replace_all(&out, "${1}<redacted>@");
    AUTH_SCHEME
        .replace_all(&out, "${1}${2}<redacted>")
        .into_owned()
}

/// Redacts a JSON document in place, for recordings: every string as [`redact`] does, the
/// value of every key that names a credential (`"token": "..."` whatever its form), and the
/// `data` and `stringData` of a Secret.
pub fn redact_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let r = redact(s);
            if r != *s {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => {
            let secret = map.get("kind").and_then(Value::as_str) == Some("Secret");
            for (k, v) in map.iter_mut() {
                let lower = k.to_ascii_lowercase();
                let blank = SECRET_KEYS.contains(&lower.as_str())
                    || (secret && (k == "data" || k == "stringData"));
                if blank && !v.is_null() && !v.is_object() && !v.is_array() {
                    *v = Value::String(REDACTED.into());
                } else if blank && secret && v.is_object() {
                    for inner in v.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                        *inner = Value::String(REDACTED.into());
                    }
                } else {
                    redact_json(v);
                }
            }
        }
        _ => {}
    }
}

/// Where a secret key's value starts in `line`, searching from `from`: the byte after `key:`.
fn secret_value_start(line: &str, from: usize) -> Option<(usize, usize)> {
    let lower = line.to_ascii_lowercase();
    SECRET_KEYS
        .iter()
        .filter_map(|key| {
            let mut search = from;
            while let Some(pos) = lower[search..].find(key).map(|p| p + search) {
                search = pos + key.len();
                let before = lower[..pos].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    continue;
                }
                let rest = &lower[pos + key.len()..];
                let after_quote = rest.strip_prefix('"').unwrap_or(rest);
                let trimmed = after_quote.trim_start();
                if let Some(value) = trimmed.strip_prefix(':') {
                    let colon = lower.len() - value.len();
                    return Some((pos, colon));
                }
            }
            None
        })
        .min()
}

fn redact_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut from = 0;
    while let Some((_, value_at)) = secret_value_start(line, from) {
        let value = &line[value_at..];
        let lead = value.len() - value.trim_start_matches([' ', '\t']).len();
        let body = &value[lead..];
        let len = if let Some(quoted) = body.strip_prefix('"') {
            quoted.find('"').map_or(body.len(), |end| end + 2)
        } else {
            body.find([',', '}', '\n']).unwrap_or(body.len())
        };
        out.push_str(&line[from..value_at + lead]);
        if body[..len].trim().is_empty() {
            // `key:` opening a block: nothing to hide here; later keys are searched after it.
            from = value_at + lead;
            continue;
        }
        out.push_str(REDACTED);
        from = value_at + lead + len;
    }
    out.push_str(&line[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_and_credentials_are_blanked() {
        let text = "users:\n- name: admin\n  user:\n    client-key-data: LS0tLS1CRUdJTi\n    token: abc.def\nready: true\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----\nafter\n";
        let out = redact(text);
        assert!(!out.contains("LS0tLS1CRUdJTi"));
        assert!(!out.contains("abc.def"));
        assert!(!out.contains("MHcCAQEEIB"));
        assert!(out.contains("    client-key-data: <redacted>\n"));
        assert!(out.contains("ready: true\n"));
        assert!(out.contains("<redacted>\nafter\n"));
    }

    #[test]
    fn ordinary_transcripts_pass_unchanged() {
        let text = "$ curl --silent --fail http://10.244.1.5:8080/\nexit 0 after 12ms\n{\"pod\": \"echo-same-node\"}\n";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn flow_mappings_and_json_are_blanked_too() {
        let flow =
            "users: [{name: admin, user: {client-certificate-data: AAA, client-key-data: BBB}}]\n";
        let out = redact(flow);
        assert!(!out.contains("AAA") && !out.contains("BBB"), "{out}");
        assert_eq!(
            out,
            "users: [{name: admin, user: {client-certificate-data: <redacted>, client-key-data: <redacted>}}]\n"
        );
        let json = "{\"token\":\"s3cr3t\",\"kind\":\"Config\",\"client-key-data\": \"QQ==\"}";
        assert_eq!(
            redact(json),
            "{\"token\":<redacted>,\"kind\":\"Config\",\"client-key-data\": <redacted>}"
        );
    }

    #[test]
    fn json_documents_lose_every_credential_whatever_its_form() {
        let mut v = serde_json::json!({
            "token": "tok-1",
            "nested": [{"password": 42, "client-key-data": "QUJD"}],
            "kind": "Secret",
            "data": {"tls.key": "S0VZ", "anything": "VkFM"},
            "stdout": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nok\n",
            "headers": "Authorization: Bearer abc.def\nAccept: */*",
            "public-key": "kept=",
            "keys": ["kept"],
        });
        redact_json(&mut v);
        let text = v.to_string();
        for secret in ["tok-1", "42", "QUJD", "S0VZ", "VkFM", "MIIEow", "abc.def"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("kept="), "{text}");
        assert_eq!(v["headers"], "Authorization: <redacted>\nAccept: */*");
        assert_eq!(v["stdout"], "<redacted>\nok\n");
    }

    #[test]
    fn url_user_info_and_bearer_tokens_are_blanked() {
        assert_eq!(
            redact("GET https://admin:s3cr3t@10.5.0.2:6443/version failed"),
            "GET https://<redacted>@10.5.0.2:6443/version failed"
        );
        assert_eq!(
            redact("proxy http://tok3n@proxy:3128 and mail a@b.example"),
            "proxy http://<redacted>@proxy:3128 and mail a@b.example"
        );
        assert_eq!(
            redact("Authorization: Bearer eyJhbGciOi.abc.def"),
            "Authorization: <redacted>"
        );
        assert_eq!(
            redact("sent header bearer eyJhbGciOi.abc.def"),
            "sent header bearer <redacted>"
        );
        let exec = r#"{"kind":"ExecCredential","status":{"clientCertificateData":"CERT","clientKeyData":"KEY"}}"#;
        let out = redact(exec);
        assert!(!out.contains("CERT") && !out.contains("KEY\""), "{out}");
        let oidc = "auth-provider: {config: {id-token: abc, refresh-token: def}}";
        assert!(!redact(oidc).contains("abc") && !redact(oidc).contains("def"));
    }

    #[test]
    fn keys_inside_other_words_are_left_alone() {
        let text = "capacity: 3\nmonkey: banana\nkeyless: true\n";
        assert_eq!(redact(text), text);
    }
}
