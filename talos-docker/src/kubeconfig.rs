//! The kubeconfig `talosctl kubeconfig` writes points at the control plane's address on the
//! cluster network; from the host the API server is reachable only through the published port.

use kube::config::Kubeconfig;

use crate::errors::Error;
use crate::run::RunDir;

/// Points every cluster entry of `<run dir>/<name>` at `server` and returns the old servers.
pub fn rewrite_server(dir: &RunDir, name: &str, server: &str) -> Result<Vec<String>, Error> {
    let path = dir.file(name);
    let invalid = |why: String| Error::Kubeconfig {
        path: path.clone(),
        why,
    };
    let mut config = Kubeconfig::read_from(&path).map_err(|e| invalid(e.to_string()))?;
    let mut old = Vec::new();
    for named in &mut config.clusters {
        if let Some(cluster) = named.cluster.as_mut() {
            old.extend(cluster.server.replace(server.to_string()));
        }
    }
    if old.is_empty() {
        return Err(invalid("it names no cluster server".into()));
    }
    let yaml = serde_saphyr::to_string(&config).map_err(|e| invalid(e.to_string()))?;
    dir.write(name, yaml.as_bytes())?;
    Ok(old)
}

/// The first cluster server a kubeconfig names.
#[cfg(test)]
pub fn server_of(path: &std::path::Path) -> Option<String> {
    let config = Kubeconfig::read_from(path).ok()?;
    config.clusters.into_iter().find_map(|c| c.cluster?.server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunId;

    #[test]
    fn server_is_rewritten_and_credentials_kept() {
        let state = tempfile::tempdir().unwrap();
        let dir = RunDir::create(state.path(), &RunId::parse("k").unwrap(), "c").unwrap();
        dir.write(
            "kubeconfig",
            b"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.5.0.2:6443\n    certificate-authority-data: Q0E=\ncontexts:\n- name: admin@c\n  context: {cluster: c, user: admin@c}\ncurrent-context: admin@c\nusers:\n- name: admin@c\n  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}\n",
        )
        .unwrap();
        let old = rewrite_server(&dir, "kubeconfig", "https://127.0.0.1:40001").unwrap();
        assert_eq!(old, ["https://10.5.0.2:6443"]);
        let path = dir.file("kubeconfig");
        assert_eq!(server_of(&path).as_deref(), Some("https://127.0.0.1:40001"));
        let back = Kubeconfig::read_from(&path).unwrap();
        assert_eq!(back.current_context.as_deref(), Some("admin@c"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("client-key-data: S0VZ"), "{text}");
        assert_eq!(
            back.clusters[0]
                .cluster
                .as_ref()
                .unwrap()
                .certificate_authority_data
                .as_deref(),
            Some("Q0E=")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_kubeconfig_without_servers_is_an_error() {
        let state = tempfile::tempdir().unwrap();
        let dir = RunDir::create(state.path(), &RunId::parse("k").unwrap(), "c").unwrap();
        dir.write(
            "kubeconfig",
            b"apiVersion: v1\nkind: Config\nclusters: []\n",
        )
        .unwrap();
        let err = rewrite_server(&dir, "kubeconfig", "https://127.0.0.1:1").unwrap_err();
        assert!(err.to_string().contains("names no cluster server"), "{err}");
    }
}
