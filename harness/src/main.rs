//! The `harness` binary: parse, run the command on one async runtime, and decide the exit
//! status, here and nowhere else:
//!
//! | status  | meaning |
//! |---------|---------|
//! | 0       | everything ran and passed |
//! | 1       | a check failed |
//! | 2       | bad input or a missing part; nothing was created |
//! | 3       | the run could not be carried out (provisioning, install, a tool, the report, the Docker engine) |
//! | 130/143 | interrupted by SIGINT/SIGTERM, after removing what the run made |

use clap::Parser;
use harness::errors::Error;
use harness::run::Verdict;
use std::process::ExitCode;
use std::time::Duration;

fn exit_status(result: &Result<Verdict, Error>) -> u8 {
    match result {
        Ok(Verdict::Passed) => 0,
        Ok(Verdict::ChecksFailed) => 1,
        Err(Error::Refused(_)) => 2,
        Ok(Verdict::PhaseFailed) | Err(Error::Run(_)) => 3,
        Ok(Verdict::Interrupted(signal)) => signal.exit_status(),
    }
}

fn main() -> ExitCode {
    // clap exits 2 itself on a malformed command line, before anything else happens.
    let cli = harness::cli::Cli::parse();
    // kube runs kubeconfig exec plugins through this binary, bounded (see run::exec_plugin).
    if let Ok(exe) = std::env::current_exe() {
        harness::run::exec_plugin::set_runner(exe);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = runtime.block_on(harness::cli::run(cli));
    // Tasks still running (a signal watcher, a connection) have nothing left to do.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Err(e) = &result {
        // The one redaction, on the way out as everywhere else: no message shows a credential.
        eprintln!("error: {}", harness::report::redact::redact(&e.to_string()));
    }
    ExitCode::from(exit_status(&result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::errors::{InputError, Refused, RunError};
    use harness::run::Signal;

    /// The README's exit-status table says what this function does.
    #[test]
    fn the_readme_documents_the_exit_policy() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let cases: [(Result<Verdict, Error>, &str); 6] = [
            (Ok(Verdict::Passed), "| 0 | everything ran and passed |"),
            (Ok(Verdict::ChecksFailed), "| 1 | a check failed"),
            (
                Err(Refused(vec![InputError::Unsupported("x".into())]).into()),
                "| 2 | bad input or a missing part",
            ),
            (
                Err(RunError::Panicked("x".into()).into()),
                "| 3 | the run could not be carried out",
            ),
            (
                Ok(Verdict::PhaseFailed),
                "| 3 | the run could not be carried out",
            ),
            (
                Ok(Verdict::Interrupted(Signal::Term)),
                "| 130 / 143 | interrupted by SIGINT / SIGTERM",
            ),
        ];
        for (result, row) in cases {
            assert!(readme.contains(row), "README lacks {row}");
            let documented = row.trim_start_matches("| ").split(' ').next().unwrap();
            let status = exit_status(&result).to_string();
            assert!(
                documented == status || (documented == "130" && status == "143"),
                "{row} but exit_status says {status}"
            );
        }
        assert_eq!(exit_status(&Ok(Verdict::Interrupted(Signal::Int))), 130);
    }
}
