//! SIGINT and SIGTERM become a value the run watches, so the current phase stops, the cluster is
//! destroyed and the report is written before the process exits with 130 or 143.

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
        // Keep the sender alive so receivers do not see the channel close.
        std::future::pending::<()>().await;
    });
    Ok(rx)
}
