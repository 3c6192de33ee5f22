//! SIGINT and SIGTERM become a value every command that creates something watches. The first
//! signal stops the current phase; what the run made is then removed and the report written,
//! and the command exits 130 or 143. A second signal abandons that clean-up (the report is still
//! written, and it says how to remove what is left of this run); a third exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Int,
    Term,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }

    /// The shell's convention, 128 + the signal number.
    pub fn exit_status(self) -> u8 {
        match self {
            Signal::Int => 130,
            Signal::Term => 143,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the run has been told so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stop {
    #[default]
    Running,
    /// Stop the current phase, remove what was made, write the report.
    Graceful(Signal),
    /// A second signal: give up the clean-up, write the report, exit.
    Abandon(Signal),
}

impl Stop {
    /// The first signal received, if any.
    pub fn signal(self) -> Option<Signal> {
        match self {
            Stop::Running => None,
            Stop::Graceful(s) | Stop::Abandon(s) => Some(s),
        }
    }
}

pub type Interrupt = watch::Receiver<Stop>;

/// A receiver that never fires, for runs driven by tests.
pub fn never() -> (watch::Sender<Stop>, Interrupt) {
    watch::channel(Stop::Running)
}

/// Waits until `rx` reaches at least `Graceful` (or `Abandon` when `abandon_only`), returning
/// the first signal. Never returns if the sender is gone without a signal.
pub async fn wait(rx: &mut Interrupt, abandon_only: bool) -> Signal {
    loop {
        let now = *rx.borrow_and_update();
        match now {
            Stop::Abandon(s) => return s,
            Stop::Graceful(s) if !abandon_only => return s,
            _ => {}
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Installs the handlers. `run_id` goes into the advice printed on a second signal.
pub fn install(run_id: &str, leftovers_hint: String) -> std::io::Result<Interrupt> {
    let (tx, rx) = watch::channel(Stop::Running);
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let run_id = run_id.to_string();
    tokio::spawn(async move {
        let first = next(&mut int, &mut term).await;
        let _ = tx.send(Stop::Graceful(first));
        eprintln!("{}", first_note(first, &run_id));
        next(&mut int, &mut term).await;
        let _ = tx.send(Stop::Abandon(first));
        eprintln!("{}", second_note(&run_id, &leftovers_hint));
        next(&mut int, &mut term).await;
        // The only exit outside `main`: a person insisting three times gets the process back now.
        std::process::exit(i32::from(first.exit_status()));
    });
    Ok(rx)
}

/// What a person reads on the first signal.
pub fn first_note(signal: Signal, run_id: &str) -> String {
    format!(
        "{signal}: stopping run {run_id} and removing what it made (signal again to skip the clean-up)"
    )
}

/// What a person reads on the second signal: the report still comes, and how to clean up.
pub fn second_note(run_id: &str, leftovers: &str) -> String {
    format!(
        "second signal: skipping the clean-up of run {run_id}; writing the report. Remove what is left with `{leftovers}` (signal again to exit at once)"
    )
}

async fn next(
    int: &mut tokio::signal::unix::Signal,
    term: &mut tokio::signal::unix::Signal,
) -> Signal {
    tokio::select! {
        _ = int.recv() => Signal::Int,
        _ = term.recv() => Signal::Term,
    }
}
