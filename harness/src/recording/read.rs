//! Reading a recording back into the run's report, each observation judged again by this
//! build's judges: what `harness replay` writes as JUnit.

use super::{
    API, CHECK, CellEntry, CheckEntry, FORMAT, MANIFEST, Manifest, OBSERVATION, OLDEST_FORMAT,
    PROBES, SETUP, SETUP_API, SUITE, SuiteEntry,
};
use crate::errors::InputError;
use crate::matrix::Cell;
use crate::report::provenance::Provenance;
use crate::report::{CellReport, CheckReport, PhaseReport, RunReport, SuiteReport};
use crate::run::tester::suite_report;
use crate::version::{CiliumVersion, KubernetesVersion, TalosVersion};
use serde::de::DeserializeOwned;
use std::path::Path;
use suites::catalog::{self, SuiteName};
use suites::kit::Transcript;
use suites::{CheckOutcome, CheckRun, SuiteRun};

fn problem(path: &Path, problem: impl Into<String>, fix: impl Into<String>) -> InputError {
    InputError::Recording {
        path: path.to_path_buf(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

const RECORD_AGAIN: &str = "record the run again with this harness (--record DIR)";

fn load<T: DeserializeOwned>(path: &Path) -> Result<T, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        problem(
            path,
            format!("cannot read it: {e}"),
            "pass a recording whole, as --record wrote it",
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        problem(
            path,
            format!("is not what this harness records: {e}"),
            RECORD_AGAIN,
        )
    })
}

/// `format 1`, or `formats 1 to 2` once an older one is still read.
fn formats_read() -> String {
    if OLDEST_FORMAT == FORMAT {
        format!("format {FORMAT}")
    } else {
        format!("formats {OLDEST_FORMAT} to {FORMAT}")
    }
}

/// The format version, before anything else is read, so a recording from another harness is
/// refused with the version that reads it rather than a field error.
fn check_format(path: &Path) -> Result<(), InputError> {
    let value: serde_json::Value = load(path)?;
    let harness = |v: &serde_json::Value| {
        format!(
            "harness {} (commit {})",
            v["harness"]["version"].as_str().unwrap_or("unknown"),
            v["harness"]["commit"].as_str().unwrap_or("unknown")
        )
    };
    match value.get("format").and_then(serde_json::Value::as_u64) {
        None => Err(problem(
            path,
            "has no format version, so it is not a recording this harness wrote",
            "pass the directory a `--record DIR` run wrote",
        )),
        Some(f) if f > u64::from(FORMAT) => Err(problem(
            path,
            format!(
                "is format {f}, newer than this harness reads ({}); it was recorded by {}",
                formats_read(),
                harness(&value)
            ),
            format!("replay it with {} or newer", harness(&value)),
        )),
        Some(f) if f < u64::from(OLDEST_FORMAT) => Err(problem(
            path,
            format!(
                "is format {f}, older than this harness reads ({}); it was recorded by {}",
                formats_read(),
                harness(&value)
            ),
            format!("replay it with {}, or {RECORD_AGAIN}", harness(&value)),
        )),
        Some(_) => Ok(()),
    }
}

/// The run a recording holds, judged again. Every problem is reported, none stops the others;
/// nothing is written.
pub fn read(dir: &Path) -> Result<RunReport, Vec<InputError>> {
    if !dir.is_dir() {
        return Err(vec![problem(
            dir,
            "is not a directory",
            "pass the directory given to --record",
        )]);
    }
    let manifest_path = dir.join(MANIFEST);
    if !manifest_path.is_file() {
        return Err(vec![problem(
            dir,
            format!("holds no {MANIFEST}, so it is not a recording"),
            "pass the directory given to --record",
        )]);
    }
    check_format(&manifest_path).map_err(|e| vec![e])?;
    let manifest: Manifest = load(&manifest_path).map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    let mut cells = Vec::new();
    for entry in &manifest.cells {
        match read_cell(dir, &manifest, entry) {
            Ok(c) => cells.push(c),
            Err(mut e) => problems.append(&mut e),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(RunReport {
        run_id: manifest.run_id.clone(),
        interrupted: manifest.interrupted.clone(),
        cells,
        provenance: Provenance {
            harness: manifest.harness.clone(),
            cells: manifest
                .cells
                .iter()
                .filter_map(|c| Some((c.id.clone(), c.provenance.clone()?)))
                .collect(),
            artifacts: manifest.artifacts.clone(),
        },
    })
}

fn read_cell(
    dir: &Path,
    manifest: &Manifest,
    entry: &CellEntry,
) -> Result<CellReport, Vec<InputError>> {
    let at = dir.join(MANIFEST);
    let version = |e: InputError| problem(&at, format!("cell {}: {e}", entry.id), RECORD_AGAIN);
    let cell = (|| {
        Ok::<_, InputError>(Cell {
            profile: entry.profile.clone(),
            cilium: CiliumVersion::parse(&entry.cilium).map_err(version)?,
            talos: TalosVersion::parse(&entry.talos).map_err(version)?,
            kubernetes: KubernetesVersion::parse(&entry.kubernetes).map_err(version)?,
        })
    })()
    .map_err(|e| vec![e])?;
    if cell.id() != entry.id {
        return Err(vec![problem(
            &at,
            format!(
                "cell {} is named {} by its versions; the folder and the versions disagree",
                entry.id,
                cell.id()
            ),
            RECORD_AGAIN,
        )]);
    }
    let mut problems = Vec::new();
    let mut suites = Vec::new();
    for folder in &entry.suites {
        match read_suite(&dir.join(&entry.id).join(folder), manifest) {
            Ok(s) => suites.push(s),
            Err(mut e) => problems.append(&mut e),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CellReport {
        cell,
        seed: entry.seed.clone(),
        phases: entry
            .phases
            .iter()
            .map(|p| PhaseReport {
                name: p.phase,
                duration: p.duration,
                outcome: p.outcome.clone(),
            })
            .collect(),
        suites,
    })
}

fn read_suite(dir: &Path, manifest: &Manifest) -> Result<SuiteReport, Vec<InputError>> {
    let entry: SuiteEntry = load(&dir.join(SUITE)).map_err(|e| vec![e])?;
    let Some(observed) = entry.observed else {
        return Ok(SuiteReport {
            suite: entry.name,
            checks: entry
                .reported
                .into_iter()
                .map(|c| CheckReport {
                    name: c.name,
                    duration: c.duration,
                    outcome: c.outcome,
                    transcript: String::new(),
                })
                .collect(),
            setup_transcript: String::new(),
            duration: entry.duration,
            observed: None,
        });
    };
    let Some(suite) = SuiteName::parse(&observed.suite) else {
        return Err(vec![problem(
            &dir.join(SUITE),
            format!("suite {} is not one this harness has", observed.suite),
            format!(
                "replay it with harness {} (commit {}), which recorded it",
                manifest.harness.version, manifest.harness.commit
            ),
        )]);
    };
    let mut problems = Vec::new();
    let mut checks = Vec::new();
    for folder in &observed.checks {
        match read_check(&dir.join(folder), suite, manifest) {
            Ok(c) => checks.push(c),
            Err(e) => problems.push(e),
        }
    }
    let setup = load::<Transcript>(&dir.join(SETUP)).map_err(|e| problems.push(e));
    let setup_api = optional(&dir.join(SETUP_API)).map_err(|e| problems.push(e));
    if !problems.is_empty() {
        return Err(problems);
    }
    let run = SuiteRun {
        suite,
        namespace: observed.namespace,
        setup: setup.unwrap_or_default(),
        setup_duration: observed.setup_duration,
        checks,
        cleanup: observed.cleanup,
        setup_api: setup_api.unwrap_or_default(),
    };
    let mut report = suite_report(run, observed.context);
    report.suite = entry.name;
    report.duration = entry.duration;
    Ok(report)
}

fn read_check(dir: &Path, suite: SuiteName, manifest: &Manifest) -> Result<CheckRun, InputError> {
    let entry: CheckEntry = load(&dir.join(CHECK))?;
    let decl = catalog::suite(suite).check(&entry.check).ok_or_else(|| {
        problem(
            &dir.join(CHECK),
            format!("{suite}::{} is not a check this harness has", entry.check),
            format!(
                "replay it with harness {} (commit {}), which recorded it",
                manifest.harness.version, manifest.harness.commit
            ),
        )
    })?;
    let observation_path = dir.join(OBSERVATION);
    let observation: Option<serde_json::Value> = if observation_path.is_file() {
        Some(load(&observation_path)?)
    } else {
        None
    };
    let outcome = match (&observation, &entry.outcome) {
        (Some(o), _) => decl.judge_recorded(o).map(CheckOutcome::from).map_err(|e| {
            problem(
                &observation_path,
                e,
                format!(
                    "the judge changed since harness {} (commit {}) recorded it: replay it with that harness, or {RECORD_AGAIN}",
                    manifest.harness.version, manifest.harness.commit
                ),
            )
        })?,
        (None, CheckOutcome::Passed { .. } | CheckOutcome::Failed { .. }) => {
            return Err(problem(
                &dir.join(CHECK),
                format!(
                    "{suite}::{} was judged, but {OBSERVATION} is missing, so it cannot be judged again",
                    entry.check
                ),
                "restore the file from the recording as --record wrote it",
            ));
        }
        (None, recorded) => recorded.clone(),
    };
    Ok(CheckRun {
        suite,
        check: decl.name,
        outcome,
        duration: entry.duration,
        transcript: load(&dir.join(PROBES))?,
        observation,
        api: optional(&dir.join(API))?,
    })
}

/// A file a recording holds only when there was something to put in it.
fn optional<T: DeserializeOwned + Default>(path: &Path) -> Result<T, InputError> {
    if path.is_file() {
        load(path)
    } else {
        Ok(T::default())
    }
}
