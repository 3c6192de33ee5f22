//! The `helm` CLI (no Rust Helm SDK exists): building the install command and running it with a
//! bound. The harness does its own watch-based readiness wait, so helm does not `--wait`.

use std::path::{Path, PathBuf};
use std::time::Duration;
use talos_docker::child::DiesWithHarness;

/// Where the chart comes from: the Cilium repository, or a mirror / local path for offline users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartSource {
    Repo(String),
    /// A chart directory, `.tgz`, or `oci://` reference.
    Chart(String),
}

impl Default for ChartSource {
    fn default() -> Self {
        ChartSource::Repo("https://helm.cilium.io".into())
    }
}

/// What the cluster tells helm when it installs: `.Capabilities.KubeVersion` and the API
/// versions beyond the built-in ones (here, what the harness installs before Cilium).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterApis {
    pub kubernetes: String,
    /// `group/version` and `group/version/Kind` entries, as `helm --api-versions` takes them.
    pub api_versions: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct HelmInstall {
    pub helm: PathBuf,
    pub kubeconfig: PathBuf,
    pub chart: ChartSource,
    pub version: String,
    pub values: PathBuf,
    pub timeout: Duration,
}

impl HelmInstall {
    /// `helm upgrade --install` arguments, release `cilium` in kube-system.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["upgrade".into(), "--install".into(), "cilium".into()];
        match &self.chart {
            ChartSource::Repo(url) => args.extend(["cilium".into(), "--repo".into(), url.clone()]),
            ChartSource::Chart(c) => args.push(c.clone()),
        }
        args.extend([
            "--version".into(),
            self.version.clone(),
            "--namespace".into(),
            "kube-system".into(),
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--values".into(),
            self.values.display().to_string(),
            "--timeout".into(),
            format!("{}s", self.timeout.as_secs()),
        ]);
        args
    }

    /// `helm template` with the install's own argument list (only the verb differs, so every
    /// chart, version, values and namespace flag is the one `upgrade --install` gets), plus what
    /// the cluster will report: its Kubernetes version and the API versions the chart asks
    /// about (`.Capabilities.APIVersions.Has`, e.g. GatewayClass decides whether the chart
    /// creates the `cilium` GatewayClass).
    pub fn template_args(&self, cluster: &ClusterApis) -> Vec<String> {
        let mut args = vec!["template".to_string()];
        args.extend(self.args().into_iter().skip(2));
        args.extend(["--kube-version".into(), cluster.kubernetes.clone()]);
        for api in &cluster.api_versions {
            args.extend(["--api-versions".into(), api.clone()]);
        }
        args
    }

    pub async fn run(&self) -> Result<(), String> {
        run(&self.helm, &self.args(), &self.kubeconfig, self.timeout)
            .await
            .map(drop)
    }

    /// The manifests `helm template` renders for this install (no cluster is contacted).
    pub async fn template(&self, cluster: &ClusterApis) -> Result<String, String> {
        run(
            &self.helm,
            &self.template_args(cluster),
            &self.kubeconfig,
            self.timeout,
        )
        .await
    }
}

/// Runs helm within `timeout` (plus a margin) and returns its standard output.
async fn run(
    helm: &Path,
    args: &[String],
    kubeconfig: &Path,
    timeout: Duration,
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(helm);
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::null())
        .dies_with_harness();
    // helm enforces its own --timeout; the margin lets it report before being killed.
    let bound = timeout + Duration::from_secs(10);
    let out = tokio::time::timeout(bound, cmd.output())
        .await
        .map_err(|_| format!("helm did not finish within {bound:?} and was killed"))?
        .map_err(|e| format!("cannot run {}: {e}", helm.display()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    Err(format!(
        "helm {} exited with {}: {}",
        args.first().map(String::as_str).unwrap_or_default(),
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(chart: ChartSource) -> HelmInstall {
        HelmInstall {
            helm: "helm".into(),
            kubeconfig: "/run/x/kubeconfig".into(),
            chart,
            version: "1.18.4".into(),
            values: "/run/x/values.yaml".into(),
            timeout: Duration::from_secs(300),
        }
    }

    #[test]
    fn repo_install_arguments() {
        assert_eq!(
            install(ChartSource::default()).args().join(" "),
            "upgrade --install cilium cilium --repo https://helm.cilium.io --version 1.18.4 --namespace kube-system --kubeconfig /run/x/kubeconfig --values /run/x/values.yaml --timeout 300s"
        );
        let local = install(ChartSource::Chart("/charts/cilium-1.18.4.tgz".into())).args();
        assert_eq!(
            &local[..4],
            [
                "upgrade",
                "--install",
                "cilium",
                "/charts/cilium-1.18.4.tgz"
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_helm_reports_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("helm");
        std::fs::write(&fake, "#!/bin/sh\necho 'Error: INSTALLATION FAILED: tunnel was deprecated in v1.14' >&2\nexit 1\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut i = install(ChartSource::default());
        i.helm = fake;
        let err = i.run().await.unwrap_err();
        assert!(err.contains("tunnel was deprecated in v1.14"), "{err}");
    }
}
