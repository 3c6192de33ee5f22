//! The one way the harness builds a Kubernetes client: from a kubeconfig (or a `:`-separated
//! list of them, merged as kubectl does) and an optional context, proven by asking the API
//! server its version within a bound. Exec credential plugins run non-interactively and
//! bounded (see [`super::exec_plugin`]); no message quotes a credential.

use crate::report::redact::redact;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the API server may take to answer the first request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a cluster's credentials are.
#[derive(Clone, Debug)]
pub struct KubeAccess {
    /// One path, or several joined like `$KUBECONFIG` (`a:b`); earlier files win.
    pub kubeconfig: PathBuf,
    pub context: Option<String>,
}

/// Why no client could be made, as a sentence naming the kubeconfig (never its credentials).
#[derive(Debug, thiserror::Error)]
#[error("kubeconfig {}: {why}", kubeconfig.display())]
pub struct KubeError {
    pub kubeconfig: PathBuf,
    pub why: String,
}

impl KubeAccess {
    pub fn new(kubeconfig: impl Into<PathBuf>) -> Self {
        KubeAccess {
            kubeconfig: kubeconfig.into(),
            context: None,
        }
    }

    fn error(&self, why: impl std::fmt::Display) -> KubeError {
        KubeError {
            kubeconfig: self.kubeconfig.clone(),
            why: why.to_string(),
        }
    }

    fn read(&self) -> Result<Kubeconfig, KubeError> {
        let mut merged: Option<Kubeconfig> = None;
        for path in std::env::split_paths(&self.kubeconfig) {
            if path.as_os_str().is_empty() {
                continue;
            }
            if !path.exists() {
                return Err(self.error(if path == self.kubeconfig {
                    "there is no such file".to_string()
                } else {
                    format!("{} (in the list) does not exist", path.display())
                }));
            }
            // Read through the harness's YAML limits first: kube's own parse errors quote the
            // text around the problem, which in a kubeconfig is often a credential.
            let text = crate::yaml::read(&path).map_err(|e| self.error(e))?;
            crate::yaml::from_multiple::<serde_json::Value>(&text).map_err(|e| {
                self.error(crate::errors::InputError::yaml(
                    &path.display().to_string(),
                    &e,
                ))
            })?;
            let one =
                Kubeconfig::read_from(&path).map_err(|e| self.error(redact(&e.to_string())))?;
            merged = Some(match merged {
                None => one,
                Some(m) => m.merge(one).map_err(|e| self.error(e))?,
            });
        }
        merged.ok_or_else(|| self.error("no file named"))
    }

    /// The client configuration the kubeconfig gives, its exec plugins made non-interactive
    /// and bounded; nothing is sent yet.
    pub async fn config(&self) -> Result<kube::Config, KubeError> {
        let mut kc = self.read()?;
        super::exec_plugin::prepare(&mut kc);
        let opts = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| self.error(redact(&e.to_string())))
    }

    /// A client; nothing is sent yet, but an exec plugin has run once (kube runs it when the
    /// client is built).
    pub async fn client(&self) -> Result<(Client, String), KubeError> {
        let config = self.config().await?;
        let server = shown_url(&config.cluster_url);
        // kube runs the plugin synchronously here: off the runtime's threads, and bounded even
        // when this binary is not the runner that bounds the plugin itself.
        let bound = super::exec_plugin::PLUGIN_TIMEOUT + Duration::from_secs(5);
        let built = tokio::time::timeout(
            bound,
            tokio::task::spawn_blocking(move || Client::try_from(config)),
        )
        .await
        .map_err(|_| {
            self.error(format!(
                "building the client did not finish within {}s (an exec credential plugin that does not answer?)",
                bound.as_secs()
            ))
        })?
        .map_err(|e| self.error(format!("building the client failed: {e}")))?;
        let client = built.map_err(|e| self.error(describe(&e)))?;
        Ok((client, server))
    }

    /// A client the API server has answered, and a line saying which server it is.
    pub async fn connect(&self, timeout: Duration) -> Result<(Client, String), KubeError> {
        let (client, server) = self.client().await?;
        match tokio::time::timeout(timeout, client.apiserver_version()).await {
            Ok(Ok(v)) => Ok((client, format!("{server} (Kubernetes {})", v.git_version))),
            Ok(Err(e)) => Err(self.error(format!(
                "the API server at {server} refused: {}",
                describe(&e)
            ))),
            Err(_) => Err(self.error(format!(
                "the API server at {server} did not answer within {}s",
                timeout.as_secs()
            ))),
        }
    }
}

/// A kube error in words: an exec plugin's failure as the plugin runner put it; anything else
/// with its causes (kube's own text for a refused connection is `ServiceError: client error
/// (Connect)`, the cause says `Connection refused`), redacted, since kube's texts can quote a
/// plugin's output.
pub fn describe(e: &kube::Error) -> String {
    let auth = match e {
        kube::Error::Auth(a) => Some(a),
        kube::Error::Service(s) => s.downcast_ref::<kube::client::AuthError>(),
        _ => None,
    };
    if let Some(text) = auth.and_then(super::exec_plugin::explain) {
        return text;
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    redact(&text)
}

/// The server URL without any `user:password@` part.
pub fn shown_url(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{host}{port}{}",
        uri.scheme_str().unwrap_or("https"),
        uri.path()
    )
}

/// `$KUBECONFIG`, else `~/.kube/config`.
pub fn default_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("KUBECONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube/config")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_not_shown() {
        let uri: http::Uri = "https://admin:s3cret@10.5.0.2:6443/".parse().unwrap();
        assert_eq!(shown_url(&uri), "https://10.5.0.2:6443/");
    }
}
