//! The end-of-run summary on the terminal: a row per cell (checks passed, failed, skipped, its
//! duration and phase timings), then each failure with its first diagnostic line, so a failed
//! run says why without opening the JUnit file.

use super::{Outcome, PhaseName, RunReport};
use crate::run::progress::{counts, first_line, took};
use std::fmt::Write;
use std::time::Duration;

fn phases(cell: &super::CellReport) -> String {
    let mut parts = Vec::new();
    for p in &cell.phases {
        let mut part = format!("{} {}", p.name.as_str(), took(p.duration));
        if p.name == PhaseName::Suites {
            let ran: Vec<String> = cell
                .suites
                .iter()
                .filter(|s| !s.duration.is_zero())
                .map(|s| format!("{} {}", s.suite, took(s.duration)))
                .collect();
            if !ran.is_empty() {
                part.push_str(&format!(" ({})", ran.join(", ")));
            }
        }
        parts.push(part);
    }
    parts.join(", ")
}

pub fn summary(run: &RunReport) -> String {
    let rows: Vec<[String; 6]> = run
        .cells
        .iter()
        .map(|c| {
            let (passed, failed, skipped) = counts(c);
            let total: Duration = c.phases.iter().map(|p| p.duration).sum();
            [
                c.cell.id(),
                passed.to_string(),
                failed.to_string(),
                skipped.to_string(),
                took(total),
                phases(c),
            ]
        })
        .collect();
    let header = ["cell", "passed", "failed", "skipped", "duration", "phases"];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, v) in width.iter_mut().zip(row) {
            *w = (*w).max(v.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: [&str; 6]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4],
        );
    };
    line(&mut out, header);
    for row in &rows {
        line(&mut out, row.each_ref().map(String::as_str));
    }
    let mut failures = Vec::new();
    for c in &run.cells {
        let id = c.cell.id();
        // The suites phase only says that checks failed; the checks below say which and why.
        for p in c.phases.iter().filter(|p| p.name != PhaseName::Suites) {
            if let Outcome::Failed { message, .. } | Outcome::Error { message, .. } = &p.outcome {
                failures.push(format!(
                    "{id} phase::{}: {}",
                    p.name.as_str(),
                    first_line(message)
                ));
            }
        }
        for check in c.suites.iter().flat_map(|s| &s.checks) {
            if let Outcome::Failed { message, .. } | Outcome::Error { message, .. } = &check.outcome
            {
                failures.push(format!("{id} {}: {}", check.name, first_line(message)));
            }
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures ({}):", failures.len());
        for f in failures {
            let _ = writeln!(out, "  {}", super::redact::redact(&f));
        }
    }
    if let Some(signal) = &run.interrupted {
        let _ = writeln!(
            out,
            "\ninterrupted by {signal}: what did not run is reported as skipped"
        );
    }
    out
}
