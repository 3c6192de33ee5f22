//! The pinned `talosctl`: secrets, machine configs, bootstrap and kubeconfig.
//!
//! Every argument list is built by [`Invocation`], in the form every supported talosctl minor
//! accepts (the tests check each against the grammar tables in `talos-docker/grammar/`, read
//! from talosctl's command definitions). From v1.11 `--talosconfig`, `--nodes` and
//! `--endpoints` exist only on the commands that talk to nodes and on `config`, not on `gen`, so
//! each call names the run's talosconfig after its command, and only where the command has the
//! flag. Every call also gets TALOSCONFIG/KUBECONFIG pointing into the run directory, so the
//! user's ~/.talos and ~/.kube are never read or written.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::child::DiesWithHarness;

use crate::errors::{Error, PreflightError};
use crate::run::RunDir;
use crate::spec::TalosVersion;
use crate::wait::{Probe, poll};

pub const TALOSCONFIG: &str = "talosconfig";
pub const KUBECONFIG: &str = "kubeconfig";
pub const SECRETS: &str = "secrets.yaml";
pub const CONTROLPLANE_CONFIG: &str = "controlplane.yaml";
pub const WORKER_CONFIG: &str = "worker.yaml";

/// Where the pinned talosctl for `version` is published.
pub fn install_url(version: &TalosVersion) -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("https://github.com/siderolabs/talos/releases/download/{version}/talosctl-{os}-{arch}")
}

/// The first version-looking word of `talosctl version --client [--short]` output: the short
/// form prints `Talos v1.11.5`, the long one `Tag: v1.11.5`.
pub fn parse_client_version(output: &str) -> Option<TalosVersion> {
    output.split_whitespace().find_map(|word| {
        let word = word.trim_matches(|c: char| c == ',' || c == '"' || c == '\'');
        let bare = word.strip_prefix('v').unwrap_or(word);
        if !bare.starts_with(|c: char| c.is_ascii_digit()) || bare.split('.').count() < 3 {
            return None;
        }
        TalosVersion::parse(word).ok()
    })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Output worth showing in an error: the tail, where talosctl puts the reason.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text.char_indices().rev().nth(1500).map_or(0, |(i, _)| i);
    text[start..].to_string()
}

/// Failures a booting node gives before apid or etcd can take the request.
fn is_transient(output: &str) -> bool {
    const MARKERS: [&str; 12] = [
        "connection refused",
        "connection reset",
        "Unavailable",
        "DeadlineExceeded",
        "deadline exceeded",
        "FailedPrecondition",
        "EOF",
        "no route to host",
        "i/o timeout",
        "transport is closing",
        "error reading server preface",
        "handshake",
    ];
    MARKERS.iter().any(|m| output.contains(m))
}

#[derive(Clone, Debug)]
pub struct Talosctl {
    path: PathBuf,
    version: TalosVersion,
}

impl Talosctl {
    /// `given`, else `talosctl` on PATH; its minor version must match the image's.
    pub async fn locate(
        given: Option<&Path>,
        wanted: &TalosVersion,
        timeout: Duration,
    ) -> Result<Talosctl, PreflightError> {
        let url = install_url(wanted);
        let path = match given {
            Some(p) if is_executable(p) => p.to_path_buf(),
            Some(p) => {
                return Err(PreflightError::TalosctlMissing {
                    searched: format!("{} is not an executable file", p.display()),
                    version: wanted.to_string(),
                    url,
                });
            }
            None => find_on_path("talosctl").ok_or_else(|| PreflightError::TalosctlMissing {
                searched: "not on PATH".to_string(),
                version: wanted.to_string(),
                url: url.clone(),
            })?,
        };
        let unusable = |reason: String| PreflightError::TalosctlUnusable {
            path: path.clone(),
            reason,
            wanted: wanted.to_string(),
            url: url.clone(),
        };
        let run = Command::new(&path)
            .args(&Invocation::client_version().args)
            .stdin(Stdio::null())
            .dies_with_harness()
            .output();
        let output = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(unusable(e.to_string())),
            Err(_) => return Err(unusable(format!("no answer within {timeout:?}"))),
        };
        if !output.status.success() {
            return Err(unusable(format!(
                "`version --client --short` failed ({}): {}",
                output.status,
                tail(&output.stderr)
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let found = parse_client_version(&text)
            .ok_or_else(|| unusable(format!("no version in its output '{}'", text.trim())))?;
        if !found.same_minor(wanted) {
            return Err(PreflightError::TalosctlWrongVersion {
                path,
                found: found.to_string(),
                wanted: wanted.to_string(),
                url,
            });
        }
        Ok(Talosctl {
            path,
            version: found,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> &TalosVersion {
        &self.version
    }

    /// One call, bounded by `timeout`; killed if the caller goes away.
    async fn run(&self, dir: &RunDir, call: &Invocation, timeout: Duration) -> Result<(), Error> {
        self.run_output(dir, call, timeout).await.map(drop)
    }

    /// `upgrade-k8s --to <to>` on the run's cluster; returns what it printed (its progress, one
    /// line per component and node), for the transcript.
    pub async fn upgrade_k8s(
        &self,
        dir: &RunDir,
        to: &str,
        timeout: Duration,
    ) -> Result<String, Error> {
        self.run_output(dir, &Invocation::upgrade_k8s(dir, to), timeout)
            .await
    }

    /// [`Self::run`], keeping stdout and stderr (in that order) of a call that succeeded.
    async fn run_output(
        &self,
        dir: &RunDir,
        call: &Invocation,
        timeout: Duration,
    ) -> Result<String, Error> {
        let step = call.step;
        tracing::debug!(talosctl = %self.path.display(), args = ?call.args, "running talosctl {step}");
        let run = Command::new(&self.path)
            .args(&call.args)
            .current_dir(dir.path())
            .env("TALOSCONFIG", dir.file(TALOSCONFIG))
            .env("KUBECONFIG", dir.file(KUBECONFIG))
            .stdin(Stdio::null())
            .dies_with_harness()
            .output();
        let output = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(o)) => o,
            Ok(Err(source)) => {
                return Err(Error::TalosctlSpawn {
                    step,
                    path: self.path.clone(),
                    source,
                });
            }
            Err(_) => {
                return Err(Error::WaitTimeout {
                    what: format!("talosctl {step}"),
                    timeout,
                    last_seen: "it was still running".into(),
                });
            }
        };
        if output.status.success() {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            return Ok(text);
        }
        let mut text = tail(&output.stderr);
        if text.is_empty() {
            text = tail(&output.stdout);
        }
        Err(Error::Talosctl {
            step,
            status: output.status.to_string(),
            output: text,
        })
    }

    pub async fn gen_secrets(&self, dir: &RunDir, timeout: Duration) -> Result<(), Error> {
        self.run(dir, &Invocation::gen_secrets(dir), timeout).await
    }

    pub async fn gen_config(&self, dir: &RunDir, c: &GenConfig<'_>) -> Result<(), Error> {
        self.run(dir, &Invocation::gen_config(dir, c), c.timeout)
            .await
    }

    pub async fn set_endpoint(
        &self,
        dir: &RunDir,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        self.run(dir, &Invocation::config_endpoint(dir, endpoint), timeout)
            .await
    }

    pub async fn set_node(&self, dir: &RunDir, node: &str, timeout: Duration) -> Result<(), Error> {
        self.run(dir, &Invocation::config_node(dir, node), timeout)
            .await
    }

    /// Retries while the node is still booting; "already bootstrapped" counts as done, since an
    /// earlier attempt may have succeeded without its answer arriving.
    pub async fn bootstrap(
        &self,
        dir: &RunDir,
        node: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        let what = "talosctl bootstrap to be accepted by the first control plane";
        let call = Invocation::bootstrap(dir, node);
        poll(what, timeout, Duration::from_secs(2), || async {
            match self.run(dir, &call, timeout).await {
                Ok(()) => Ok(Probe::Ready(())),
                Err(Error::Talosctl { output, .. }) if output.contains("AlreadyExists") => {
                    Ok(Probe::Ready(()))
                }
                Err(Error::Talosctl { output, .. }) if is_transient(&output) => {
                    Ok(Probe::NotYet(output))
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Writes `<run dir>/kubeconfig` (never merged into another file), retrying while the
    /// control plane is not serving it yet.
    pub async fn kubeconfig(
        &self,
        dir: &RunDir,
        node: &str,
        timeout: Duration,
    ) -> Result<(), Error> {
        let what = "talosctl kubeconfig to fetch the admin kubeconfig";
        let call = Invocation::kubeconfig(dir, node);
        poll(what, timeout, Duration::from_secs(2), || async {
            match self.run(dir, &call, timeout).await {
                Ok(()) => Ok(Probe::Ready(())),
                Err(Error::Talosctl { output, .. })
                    if is_transient(&output) || output.contains("NotFound") =>
                {
                    Ok(Probe::NotYet(output))
                }
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// One talosctl call: the step it performs (named in errors) and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub step: &'static str,
    pub args: Vec<OsString>,
}

impl Invocation {
    fn new(step: &'static str, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        Invocation {
            step,
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// Its arguments as text, for logs and tests.
    pub fn to_strings(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// `version --client --short`: prints `Client:` and `Talos <tag>`, contacts no node.
    pub fn client_version() -> Self {
        Invocation::new("version", ["version", "--client", "--short"])
    }

    /// `gen secrets` has no `--talosconfig` from v1.11 on: it only writes the bundle.
    pub fn gen_secrets(dir: &RunDir) -> Self {
        let out: OsString = dir.file(SECRETS).into();
        Invocation::new(
            "gen secrets",
            [
                OsString::from("gen"),
                "secrets".into(),
                "--output-file".into(),
                out,
            ],
        )
    }

    /// Writes controlplane.yaml, worker.yaml and talosconfig into the run directory (`--output`
    /// with all three output types names a directory; `--output-dir` is a hidden legacy flag).
    pub fn gen_config(dir: &RunDir, c: &GenConfig<'_>) -> Self {
        let mut args: Vec<OsString> = vec![
            "gen".into(),
            "config".into(),
            c.cluster.into(),
            c.endpoint.into(),
            "--with-secrets".into(),
            dir.file(SECRETS).into(),
            "--additional-sans".into(),
            "127.0.0.1".into(),
        ];
        // The API server's certificate must name where a remote engine's ports are reached.
        let at = crate::docker::published_address();
        if at.reach != "127.0.0.1" {
            args.extend(["--additional-sans".into(), at.reach.into()]);
        }
        args.extend(["--talos-version".into(), c.talos_version.minor_tag().into()]);
        if let Some(k8s) = c.kubernetes_version {
            let bare = k8s.strip_prefix('v').unwrap_or(k8s);
            args.extend(["--kubernetes-version".into(), bare.into()]);
        }
        for (flag, file) in c.patches {
            let mut at = OsString::from("@");
            at.push(file);
            args.extend([OsString::from(*flag), at]);
        }
        args.extend(["--output".into(), dir.path().into()]);
        Invocation {
            step: "gen config",
            args,
        }
    }

    /// Points the run's talosconfig at the published apid port.
    pub fn config_endpoint(dir: &RunDir, endpoint: &str) -> Self {
        Invocation::new(
            "config endpoint",
            [
                OsString::from("config"),
                "endpoint".into(),
                endpoint.into(),
                "--talosconfig".into(),
                dir.file(TALOSCONFIG).into(),
            ],
        )
    }

    /// Makes the first control plane the talosconfig's default node, for people who use the
    /// kept run directory by hand.
    pub fn config_node(dir: &RunDir, node: &str) -> Self {
        Invocation::new(
            "config node",
            [
                OsString::from("config"),
                "node".into(),
                node.into(),
                "--talosconfig".into(),
                dir.file(TALOSCONFIG).into(),
            ],
        )
    }

    /// Names the node explicitly: bootstrap refuses more than one.
    pub fn bootstrap(dir: &RunDir, node: &str) -> Self {
        Invocation::new(
            "bootstrap",
            [
                OsString::from("bootstrap"),
                "--talosconfig".into(),
                dir.file(TALOSCONFIG).into(),
                "--nodes".into(),
                node.into(),
            ],
        )
    }

    /// `--merge=false` with a path writes that file instead of merging into ~/.kube/config;
    /// `--force` lets a retry overwrite what an earlier attempt wrote.
    pub fn kubeconfig(dir: &RunDir, node: &str) -> Self {
        Invocation::new(
            "kubeconfig",
            [
                OsString::from("kubeconfig"),
                dir.file(KUBECONFIG).into(),
                "--force".into(),
                "--merge=false".into(),
                "--talosconfig".into(),
                dir.file(TALOSCONFIG).into(),
                "--nodes".into(),
                node.into(),
            ],
        )
    }

    /// `upgrade-k8s` refuses more than one node (`helpers.FailIfMultiNodes`): it talks to the
    /// talosconfig's default node, the first control plane that `config node` set.
    pub fn upgrade_k8s(dir: &RunDir, to: &str) -> Self {
        Invocation {
            step: "upgrade-k8s",
            args: upgrade_k8s_args(&dir.file(TALOSCONFIG), to)
                .into_iter()
                .map(OsString::from)
                .collect(),
        }
    }

    /// Every call of a provisioning run, in order, with the values it would use: the check of
    /// the argument lists against every talosctl minor starts here.
    pub fn provisioning(
        dir: &RunDir,
        config: &GenConfig<'_>,
        talos_endpoint: &str,
        first_control_plane: &str,
    ) -> Vec<Invocation> {
        vec![
            Invocation::client_version(),
            Invocation::gen_secrets(dir),
            Invocation::gen_config(dir, config),
            Invocation::config_endpoint(dir, talos_endpoint),
            Invocation::config_node(dir, first_control_plane),
            Invocation::bootstrap(dir, first_control_plane),
            Invocation::kubeconfig(dir, first_control_plane),
        ]
    }
}

/// The arguments of `talosctl upgrade-k8s` to Kubernetes `to` (bare, e.g. `1.37.0`), for the
/// run and for a dry run's listing alike.
pub fn upgrade_k8s_args(talosconfig: &Path, to: &str) -> Vec<String> {
    vec![
        "upgrade-k8s".into(),
        "--talosconfig".into(),
        talosconfig.display().to_string(),
        "--to".into(),
        to.strip_prefix('v').unwrap_or(to).into(),
    ]
}

/// The inputs of `talosctl gen config`.
pub struct GenConfig<'a> {
    pub cluster: &'a str,
    /// `https://<first control plane IP>:6443`.
    pub endpoint: &'a str,
    pub talos_version: &'a TalosVersion,
    pub kubernetes_version: Option<&'a str>,
    /// (flag, file) pairs, e.g. `("--config-patch-worker", "/run/dir/p.yaml")`; the flags come
    /// from [`crate::PatchTarget::flag`].
    pub patches: &'a [(&'static str, PathBuf)],
    pub timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_every_output_shape() {
        let v = |s| parse_client_version(s).map(|v| v.to_string());
        // `version --client --short`: `Client:` then version.Short() ("Talos " + tag), untabbed
        // (pkg/machinery/version/version.go, PrintShortVersion).
        assert_eq!(v("Client:\nTalos v1.11.5\n").as_deref(), Some("v1.11.5"));
        assert_eq!(
            v("Client:\n\tTag:         v1.14.0-rc.1\n\tSHA: 1a2b3c\n\tGo version: go1.24.3\n")
                .as_deref(),
            Some("v1.14.0-rc.1")
        );
        assert_eq!(v("talosctl 1.12.3").as_deref(), Some("v1.12.3"));
        assert_eq!(v("Client:\n\tSHA: abc\n\tGo version: go1.24.3"), None);
        assert_eq!(v(""), None);
    }

    #[test]
    fn install_url_names_the_exact_release() {
        let url = install_url(&TalosVersion::parse("v1.11.5").unwrap());
        assert!(
            url.starts_with(
                "https://github.com/siderolabs/talos/releases/download/v1.11.5/talosctl-"
            ),
            "{url}"
        );
    }

    #[test]
    fn booting_nodes_are_retried_and_real_refusals_are_not() {
        assert!(is_transient(
            "rpc error: code = Unavailable desc = connection error: dial tcp 127.0.0.1:50000: connect: connection refused"
        ));
        assert!(!is_transient(
            "rpc error: code = PermissionDenied desc = not authorized"
        ));
    }

    #[tokio::test]
    async fn a_missing_or_mismatched_talosctl_says_how_to_install_the_pinned_one() {
        let wanted = TalosVersion::parse("v1.11.5").unwrap();
        let t = Duration::from_secs(10);
        let err = Talosctl::locate(Some(Path::new("/nonexistent/talosctl")), &wanted, t)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/talosctl"), "{err}");
        assert!(err.contains("releases/download/v1.11.5/talosctl-"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("talosctl");
        std::fs::write(&fake, "#!/bin/sh\necho 'Client:'\necho 'Talos v1.10.7'\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = Talosctl::locate(Some(&fake), &wanted, t)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is talosctl v1.10.7"), "{err}");
        assert!(err.contains("Talos image is v1.11.5"), "{err}");

        std::fs::write(&fake, "#!/bin/sh\necho 'Client:'\necho 'Talos v1.11.2'\n").unwrap();
        let ok = Talosctl::locate(Some(&fake), &wanted, t).await.unwrap();
        assert_eq!(ok.version().to_string(), "v1.11.2");
    }
}
