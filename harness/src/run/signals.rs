//! SIGINT and SIGTERM become a value the run watches, so the current phase stops, the cluster is
//! destroyed and the report is written before the process exits with 130 or 143. A second
//! signal during that clean-up exits at once (`harness gc --run-id` removes what is left).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

pub fn install() -> std::io::Result<watch::Receiver<Option<&'static str>>> {
    let (tx, rx) = watch::channel(None);
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        let sig = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        let _ = tx.send(Some(sig));
        eprintln!("{sig}: stopping and removing what this run made (signal again to exit at once)");
        let status = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        eprintln!("second signal: exiting without clean-up; remove leftovers with `harness gc`");
        std::process::exit(status);
    });
    Ok(rx)
}
