//! What a person watching a run sees while it happens: a line per phase (and per suite) per
//! cell as it starts and ends. CI and pipes get plain lines; an interactive terminal gets a live
//! spinner per running cell (indicatif) with the same lines printed above it.

use crate::report::{CellReport, Outcome};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

/// One thing that happened in a cell.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    Started {
        cell: &'a str,
        step: &'a str,
    },
    Finished {
        cell: &'a str,
        step: &'a str,
        took: Duration,
        outcome: &'a Outcome,
    },
    CellDone {
        report: &'a CellReport,
    },
}

/// Where the engine reports progress. Cells run concurrently on one task, so `&self`.
pub trait Progress {
    fn event(&self, event: Event<'_>);
}

/// No output (tests, benches).
impl Progress for () {
    fn event(&self, _: Event<'_>) {}
}

/// `1m 5s`, `3s`, `0s`: whole seconds, since a phase line is read, not measured from.
pub fn took(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// First non-empty line of a message, for one-line output.
pub fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Counts of a cell's checks: passed, failed (or could not observe), skipped.
pub fn counts(report: &CellReport) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for check in report.suites.iter().flat_map(|s| &s.checks) {
        match check.outcome {
            Outcome::Passed => c.0 += 1,
            Outcome::Failed { .. } | Outcome::Error { .. } => c.1 += 1,
            Outcome::Skipped { .. } => c.2 += 1,
        }
    }
    c
}

/// The line for an event, as both displays print it.
pub fn line(event: Event<'_>) -> String {
    match event {
        Event::Started { cell, step } => format!("{cell}: {step} started"),
        Event::Finished {
            cell,
            step,
            took: d,
            outcome,
        } => match outcome {
            Outcome::Passed => format!("{cell}: {step} passed in {}", took(d)),
            Outcome::Failed { message, .. } => {
                format!(
                    "{cell}: {step} failed in {}: {}",
                    took(d),
                    first_line(message)
                )
            }
            Outcome::Error { message, .. } => {
                format!(
                    "{cell}: {step} error in {}: {}",
                    took(d),
                    first_line(message)
                )
            }
            Outcome::Skipped { reason } => {
                format!("{cell}: {step} skipped: {}", first_line(reason))
            }
        },
        Event::CellDone { report } => {
            let (passed, failed, skipped) = counts(report);
            let total: Duration = report.phases.iter().map(|p| p.duration).sum();
            format!(
                "{}: done in {}: {passed} passed, {failed} failed, {skipped} skipped",
                report.cell.id(),
                took(total)
            )
        }
    }
}

/// Plain lines, one per event (CI logs, pipes, and the snapshot tests).
pub struct Lines<W: Write> {
    out: Mutex<W>,
}

impl<W: Write> Lines<W> {
    pub fn new(out: W) -> Self {
        Lines {
            out: Mutex::new(out),
        }
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().expect("not poisoned")
    }
}

impl<W: Write> Progress for Lines<W> {
    fn event(&self, event: Event<'_>) {
        let mut out = self.out.lock().expect("not poisoned");
        // Progress is a courtesy: a closed stderr must not stop the run.
        let _ = writeln!(out, "{}", line(event));
        let _ = out.flush();
    }
}

/// A spinner per running cell showing its current step, with finished steps printed above.
pub struct Live {
    bars: indicatif::MultiProgress,
    cells: Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            bars: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr(),
            ),
            cells: Mutex::new(Vec::new()),
        }
    }
}

impl Live {
    fn bar(&self, cell: &str) -> indicatif::ProgressBar {
        let mut cells = self.cells.lock().expect("not poisoned");
        if let Some((_, bar)) = cells.iter().find(|(c, _)| c == cell) {
            return bar.clone();
        }
        let bar = self.bars.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed:>4}] {prefix}: {msg}")
                .expect("a valid template"),
        );
        bar.set_prefix(cell.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        cells.push((cell.to_string(), bar.clone()));
        bar
    }
}

impl Progress for Live {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Started { cell, step } => self.bar(cell).set_message(format!("{step} ...")),
            Event::Finished { .. } => {
                let _ = self.bars.println(line(event));
            }
            Event::CellDone { report } => {
                let id = report.cell.id();
                let bar = self.bar(&id);
                bar.finish_and_clear();
                self.bars.remove(&bar);
                let _ = self.bars.println(line(event));
            }
        }
    }
}

/// Live on an interactive terminal, plain lines elsewhere (CI sets `CI`).
pub fn for_stderr() -> Box<dyn Progress> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
        Box::new(Live::default())
    } else {
        Box::new(Lines::new(std::io::stderr()))
    }
}
