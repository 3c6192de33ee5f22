//! Kubeconfig exec credential plugins (`users[].user.exec`), run the way a harness must run
//! them: never interactive, stdin closed, bounded in time, dying with the harness, and never
//! quoted. kube runs a plugin itself, synchronously and without a bound, and quotes its output
//! and stderr in its errors; so before kube sees a kubeconfig, every exec entry is rewritten to
//! `interactiveMode: Never` and to run through `harness exec-credential`, which runs the real
//! plugin under these rules and answers kube with the plugin's credential or nothing.

use kube::config::{ExecConfig, ExecInteractiveMode, Kubeconfig};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use talos_docker::child::DiesWithHarness;

/// How long one plugin run may take (a cloud CLI fetching a token answers in a few seconds).
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The hidden subcommand that runs a plugin; see [`run`].
pub const SUBCOMMAND: &str = "exec-credential";

static RUNNER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The `harness` binary that runs plugins for kube; set once by `main`. Without it (the library
/// in a test) plugins are still made non-interactive, but kube runs them unbounded.
pub fn set_runner(harness: PathBuf) {
    let _ = RUNNER.set(harness);
}

/// Every exec entry of `kc` made non-interactive and, when the runner is known, bounded.
pub fn prepare(kc: &mut Kubeconfig) {
    match RUNNER.get() {
        Some(harness) => bound_plugins(kc, harness, PLUGIN_TIMEOUT),
        None => {
            for named in &mut kc.auth_infos {
                if let Some(exec) = named.auth_info.as_mut().and_then(|a| a.exec.as_mut()) {
                    exec.interactive_mode = Some(ExecInteractiveMode::Never);
                }
            }
        }
    }
}

/// Rewrites every exec entry of `kc` to run non-interactively through `harness` (the binary at
/// `harness`), bounded by `timeout`. Entries already rewritten are left as they are.
pub fn bound_plugins(kc: &mut Kubeconfig, harness: &std::path::Path, timeout: Duration) {
    for named in &mut kc.auth_infos {
        let Some(exec) = named.auth_info.as_mut().and_then(|a| a.exec.as_mut()) else {
            continue;
        };
        exec.interactive_mode = Some(ExecInteractiveMode::Never);
        let Some(command) = exec.command.clone() else {
            continue;
        };
        if exec
            .args
            .as_ref()
            .and_then(|a| a.first())
            .map(String::as_str)
            == Some(SUBCOMMAND)
        {
            continue;
        }
        let mut args = vec![
            SUBCOMMAND.to_string(),
            "--timeout".to_string(),
            humantime::format_duration(timeout).to_string(),
            "--".to_string(),
            command,
        ];
        args.extend(exec.args.take().unwrap_or_default());
        exec.args = Some(args);
        exec.command = Some(harness.display().to_string());
    }
}

/// The plugin named in an exec entry, as messages show it: the program's file name only (its
/// arguments may hold a secret).
pub fn shown_program(exec: &ExecConfig) -> String {
    let command = match exec.args.as_deref() {
        Some([sub, _, _, _, real, ..]) if sub == SUBCOMMAND => real.as_str(),
        _ => exec.command.as_deref().unwrap_or("(none)"),
    };
    std::path::Path::new(command)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| command.to_string())
}

/// `harness exec-credential --timeout 15s -- PLUGIN ARGS...`.
#[derive(clap::Args, Debug)]
pub struct ExecCredentialArgs {
    /// Bound on the plugin's run.
    #[arg(long, default_value = "15s", value_parser = crate::cli::args::parse_duration)]
    pub timeout: Duration,
    /// The plugin and its arguments, as the kubeconfig names them.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub plugin: Vec<OsString>,
}

/// Why a plugin gave no credential, in words that quote none of its output.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PluginError {
    #[error(
        "the exec credential plugin '{program}' cannot be started: {why}; install it or fix users[].user.exec.command in the kubeconfig"
    )]
    Start { program: String, why: String },
    #[error(
        "the exec credential plugin '{program}' did not answer within {}s (it was run non-interactively, stdin closed) and was stopped; run it yourself to see what it waits for (a login prompt, a browser, the network)",
        timeout.as_secs()
    )]
    Timeout { program: String, timeout: Duration },
    #[error(
        "the exec credential plugin '{program}' failed ({status}); its output is not shown because it may hold credentials: run it yourself to see why"
    )]
    Failed { program: String, status: String },
    #[error(
        "the exec credential plugin '{program}' printed something that is not an ExecCredential with a status ({why}); its output is not shown because it may hold credentials"
    )]
    NotACredential { program: String, why: &'static str },
}

/// Runs the plugin once: non-interactive (`KUBERNETES_EXEC_INFO` says so, stdin is closed),
/// its stderr kept away from the terminal, stopped at `timeout`. Returns its stdout when that
/// is an ExecCredential with a status.
pub async fn run_plugin(plugin: &[OsString], timeout: Duration) -> Result<Vec<u8>, PluginError> {
    let (command, args) = plugin.split_first().expect("clap requires the plugin");
    let program = PathBuf::from(command)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| command.to_string_lossy().into_owned());
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args)
        .env("KUBERNETES_EXEC_INFO", non_interactive_info())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .dies_with_harness();
    let child = cmd.spawn().map_err(|e| PluginError::Start {
        program: program.clone(),
        why: e.kind().to_string(),
    })?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(PluginError::Failed {
                program,
                status: e.kind().to_string(),
            });
        }
        // Dropping the future kills the child (kill_on_drop).
        Err(_) => return Err(PluginError::Timeout { program, timeout }),
    };
    if !out.status.success() {
        return Err(PluginError::Failed {
            program,
            status: out.status.to_string(),
        });
    }
    check_credential(&out.stdout).map_err(|why| PluginError::NotACredential { program, why })?;
    Ok(out.stdout)
}

/// What kube would pass, with the interactive flag a harness run must carry, reusing the
/// apiVersion kube set from the kubeconfig when there is one.
fn non_interactive_info() -> String {
    let api_version = std::env::var("KUBERNETES_EXEC_INFO")
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("apiVersion").cloned())
        .unwrap_or_else(|| "client.authentication.k8s.io/v1".into());
    serde_json::json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": false},
    })
    .to_string()
}

/// The credential kube will read: JSON (or YAML, which client-go tolerates) with a status
/// holding a token or a client certificate and key.
fn check_credential(stdout: &[u8]) -> Result<(), &'static str> {
    let text = std::str::from_utf8(stdout).map_err(|_| "not UTF-8 text")?;
    let value: serde_json::Value = serde_json::from_str(text)
        .or_else(|_| crate::yaml::from_str(text).map_err(|_| ()))
        .map_err(|_| "neither JSON nor YAML")?;
    let status = value
        .get("status")
        .and_then(|s| s.as_object())
        .ok_or("no status")?;
    let has = |k: &str| status.get(k).is_some_and(|v| v.is_string());
    if has("token") || (has("clientCertificateData") && has("clientKeyData")) {
        Ok(())
    } else {
        Err("the status has no token and no client certificate and key")
    }
}

/// The subcommand: the plugin's credential on stdout, or one line on stderr and a failure.
pub async fn run(args: ExecCredentialArgs) -> Result<crate::run::Verdict, crate::errors::Error> {
    use std::io::Write;
    match run_plugin(&args.plugin, args.timeout).await {
        Ok(stdout) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&stdout)
                .and_then(|()| out.flush())
                .map_err(|source| crate::errors::RunError::Os {
                    what: "pass the credential on",
                    source,
                })?;
            Ok(crate::run::Verdict::Passed)
        }
        Err(e) => Err(crate::errors::RunError::Plugin(e.to_string()).into()),
    }
}

/// kube's own error for a plugin run through the subcommand: its stderr is the subcommand's
/// one line (`error: ...`), which quotes nothing of the plugin.
pub fn explain(e: &kube::client::AuthError) -> Option<String> {
    use kube::client::AuthError;
    match e {
        AuthError::AuthExecRun { out, .. } => {
            let text = String::from_utf8_lossy(&out.stderr);
            let line = text.lines().find(|l| !l.trim().is_empty())?;
            Some(line.trim().trim_start_matches("error: ").to_string())
        }
        AuthError::AuthExecStart(e) => Some(format!(
            "the exec credential plugin cannot be started: {}",
            e.kind()
        )),
        AuthError::AuthExecParse(_) | AuthError::ExecPluginFailed => Some(
            "the exec credential plugin printed no usable ExecCredential (not shown: it may hold credentials)"
                .to_string(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(script: &str) -> Vec<OsString> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn a_plugin_that_never_answers_is_stopped_at_the_bound() {
        let start = std::time::Instant::now();
        let e = run_plugin(&plugin("sleep 30"), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(e, PluginError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("within 0s"), "{e}");
    }

    #[tokio::test]
    async fn a_plugin_waiting_for_input_reads_end_of_file() {
        // A plugin that prompts reads stdin; it must get end-of-file, not the terminal.
        let e = run_plugin(
            &plugin("read answer || exit 7; echo got $answer"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e,
            PluginError::Failed {
                program: "sh".into(),
                status: "exit status: 7".into()
            }
        );
    }

    #[tokio::test]
    async fn the_plugin_is_told_it_may_not_prompt() {
        let out = run_plugin(
            &plugin(
                r#"case "$KUBERNETES_EXEC_INFO" in *'"interactive":false'*) echo '{"status":{"token":"t"}}';; *) exit 9;; esac"#,
            ),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(String::from_utf8_lossy(&out).contains("token"));
    }

    #[tokio::test]
    async fn output_and_stderr_are_never_quoted() {
        let e = run_plugin(
            &plugin("echo 'token: SECRET-MARKER not json {' ; echo SECRET-MARKER >&2"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, PluginError::NotACredential { .. }), "{e}");
        assert!(!e.to_string().contains("SECRET-MARKER"), "{e}");
        let e = run_plugin(
            &plugin("echo SECRET-MARKER >&2; exit 1"),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(!e.to_string().contains("SECRET-MARKER"), "{e}");
    }

    #[test]
    fn entries_are_rewritten_once_and_shown_by_program_name() {
        let mut kc: Kubeconfig = crate::yaml::from_str(
            "users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /opt/bin/aws\n      args: [eks, get-token, --token, SECRET]\n      interactiveMode: Always\n",
        )
        .unwrap();
        let harness = std::path::Path::new("/usr/bin/harness");
        bound_plugins(&mut kc, harness, Duration::from_secs(15));
        bound_plugins(&mut kc, harness, Duration::from_secs(15));
        let exec = kc.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap();
        assert_eq!(exec.command.as_deref(), Some("/usr/bin/harness"));
        assert_eq!(
            exec.args.as_deref().unwrap(),
            [
                "exec-credential",
                "--timeout",
                "15s",
                "--",
                "/opt/bin/aws",
                "eks",
                "get-token",
                "--token",
                "SECRET"
            ]
        );
        assert_eq!(exec.interactive_mode, Some(ExecInteractiveMode::Never));
        assert_eq!(shown_program(exec), "aws");
    }
}
