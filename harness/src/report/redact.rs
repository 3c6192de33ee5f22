//! Keeping secrets out of reports: transcripts may echo a kubeconfig, talosconfig or secrets
//! bundle, so PEM blocks and the values of credential keys are blanked before writing.

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
];

const REDACTED: &str = "<redacted>";

/// `text` with every PEM block and every `key: value` credential replaced by `<redacted>`.
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
        let key_part = trimmed.trim_start_matches("- ");
        if let Some((key, value)) = key_part.split_once(':') {
            let k = key.trim().trim_matches('"').to_ascii_lowercase();
            if SECRET_KEYS.contains(&k.as_str()) && !value.trim().is_empty() {
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push_str(indent);
                out.push_str(key.trim_end());
                out.push_str(": ");
                out.push_str(REDACTED);
                if line.ends_with('\n') {
                    out.push('\n');
                }
                continue;
            }
        }
        out.push_str(line);
    }
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
}
