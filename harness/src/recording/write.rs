//! Writing a run as a recording, redacted, after every cell like the JUnit report.

use super::{
    API, CHECK, CellEntry, CheckEntry, FORMAT, MANIFEST, Manifest, OBSERVATION, ObservedSuite,
    PROBES, PhaseEntry, ReportedCheck, SETUP, SETUP_API, SUITE, SuiteEntry,
};
use crate::errors::InputError;
use crate::plan::Plan;
use crate::report::junit::write_file_atomically;
use crate::report::provenance::HarnessBuild;
use crate::report::redact::redact_json;
use crate::report::{CellReport, RunReport, SuiteReport};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where a run records itself, and what the recording is (its `source`).
#[derive(Clone, Debug)]
pub struct Recorder {
    pub dir: PathBuf,
    pub source: String,
}

impl Recorder {
    /// A recording of this harness's run of `command` (`check`, `e2e`).
    pub fn of_run(dir: PathBuf, command: &str) -> Recorder {
        Recorder {
            dir,
            source: source(&HarnessBuild::current(), command),
        }
    }

    /// Refuses a path that is a file or a directory holding anything: a recording is never mixed
    /// with another run's files. Creates nothing.
    pub fn check_dir(flag: &str, dir: &Path) -> Result<(), InputError> {
        if dir.is_dir() {
            let empty = std::fs::read_dir(dir)
                .map(|mut d| d.next().is_none())
                .map_err(|source| InputError::Read {
                    path: dir.to_path_buf(),
                    source,
                })?;
            if !empty {
                return Err(InputError::problem(
                    format!("{flag} {}: is not empty", dir.display()),
                    "pass a new or empty directory; a recording is never mixed with another run's files",
                ));
            }
        }
        crate::preflight::output_dir(flag, dir)
    }

    /// Writes (or rewrites) the whole recording of `report`.
    pub fn write(&self, plan: &Plan, report: &RunReport) -> Result<(), InputError> {
        let manifest = Manifest {
            format: FORMAT,
            source: self.source.clone(),
            harness: report.provenance.harness.clone(),
            run_id: report.run_id.clone(),
            interrupted: report.interrupted.clone(),
            artifacts: report.provenance.artifacts.clone(),
            cells: report
                .cells
                .iter()
                .map(|c| cell_entry(plan, report, c))
                .collect(),
        };
        for (cell, entry) in report.cells.iter().zip(&manifest.cells) {
            let cell_dir = self.dir.join(&entry.id);
            for (suite, folder) in cell.suites.iter().zip(&entry.suites) {
                write_suite(&cell_dir.join(folder), suite)?;
            }
        }
        // Last, so a reader that finds the manifest finds every file it names.
        write_json(&self.dir.join(MANIFEST), &manifest)
    }
}

/// The recording's provenance line.
pub fn source(harness: &HarnessBuild, command: &str) -> String {
    format!(
        "recorded by harness {} (commit {}) from `harness {command}`",
        harness.version, harness.commit
    )
}

fn cell_entry(plan: &Plan, report: &RunReport, cell: &CellReport) -> CellEntry {
    let id = cell.cell.id();
    CellEntry {
        features: plan
            .cells
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.features.clone()),
        provenance: report.provenance.cells.get(&id).cloned(),
        profile: cell.cell.profile.clone(),
        cilium: cell.cell.cilium.to_string(),
        talos: cell.cell.talos.to_string(),
        kubernetes: cell.cell.kubernetes.to_string(),
        seed: cell.seed.clone(),
        phases: cell
            .phases
            .iter()
            .map(|p| PhaseEntry {
                phase: p.name,
                duration: p.duration,
                outcome: p.outcome.clone(),
            })
            .collect(),
        suites: cell.suites.iter().map(|s| s.suite.clone()).collect(),
        id,
    }
}

fn write_suite(dir: &Path, suite: &SuiteReport) -> Result<(), InputError> {
    let Some(observed) = &suite.observed else {
        let entry = SuiteEntry {
            name: suite.suite.clone(),
            duration: suite.duration,
            observed: None,
            reported: suite
                .checks
                .iter()
                .map(|c| ReportedCheck {
                    name: c.name.clone(),
                    duration: c.duration,
                    outcome: c.outcome.clone(),
                })
                .collect(),
        };
        return write_json(&dir.join(SUITE), &entry);
    };
    let run = &observed.run;
    let decl = suites::catalog::suite(run.suite);
    for check in &run.checks {
        let at = dir.join(check.check);
        write_json(
            &at.join(CHECK),
            &CheckEntry {
                check: check.check.to_string(),
                judge: decl
                    .check(check.check)
                    .and_then(|c| c.judge_name())
                    .map(str::to_string),
                duration: check.duration,
                outcome: check.outcome.clone(),
            },
        )?;
        if let Some(o) = &check.observation {
            write_json(&at.join(OBSERVATION), o)?;
        }
        write_json(&at.join(PROBES), &check.transcript)?;
        if !check.api.is_empty() {
            write_json(&at.join(API), &check.api)?;
        }
    }
    write_json(&dir.join(SETUP), &run.setup)?;
    if !run.setup_api.is_empty() {
        write_json(&dir.join(SETUP_API), &run.setup_api)?;
    }
    let entry = SuiteEntry {
        name: suite.suite.clone(),
        duration: suite.duration,
        observed: Some(ObservedSuite {
            suite: run.suite.to_string(),
            namespace: run.namespace.clone(),
            context: observed.context.clone(),
            setup_duration: run.setup_duration,
            cleanup: run.cleanup.clone(),
            checks: run.checks.iter().map(|c| c.check.to_string()).collect(),
        }),
        reported: Vec::new(),
    };
    write_json(&dir.join(SUITE), &entry)
}

/// Pretty JSON with every credential redacted, written through a rename.
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), InputError> {
    let bad = |e: serde_json::Error| InputError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let mut v = serde_json::to_value(value).map_err(bad)?;
    redact_json(&mut v);
    let mut text = serde_json::to_string_pretty(&v).map_err(bad)?;
    text.push('\n');
    write_file_atomically(text.as_bytes(), path)
}
