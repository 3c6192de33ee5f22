//! Writing a [`RunReport`] as JUnit XML with quick-junit, atomically.

use super::provenance::{self, Provenance};
use super::redact::redact;
use super::{CellReport, Outcome, PhaseName, RunReport};
use crate::errors::InputError;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn status(outcome: &Outcome) -> TestCaseStatus {
    match outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Failed { message, detail } | Outcome::Error { message, detail } => {
            let kind = if matches!(outcome, Outcome::Failed { .. }) {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(redact(message));
            if !detail.is_empty() {
                s.set_description(redact(detail));
            }
            s
        }
        Outcome::Skipped { reason } => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(reason.as_str());
            s
        }
    }
}

fn properties(
    cell: &CellReport,
    provenance: &Provenance,
    interrupted: Option<&str>,
) -> Vec<Property> {
    let mut props = vec![
        Property::new("profile", cell.cell.profile.as_str()),
        Property::new("cilium.version", cell.cell.cilium.to_string()),
        Property::new("talos.version", cell.cell.talos.to_string()),
        Property::new("kubernetes.version", cell.cell.kubernetes.to_string()),
        Property::new("seed", cell.seed.as_str()),
    ];
    for p in &cell.phases {
        props.push(Property::new(
            format!("phase.{}.seconds", p.name.as_str()),
            format!("{:.3}", p.duration.as_secs_f64()),
        ));
    }
    for suite in cell.suites.iter().filter(|s| !s.duration.is_zero()) {
        props.push(Property::new(
            format!("suite.{}.seconds", suite.suite),
            format!("{:.3}", suite.duration.as_secs_f64()),
        ));
    }
    if let Some(signal) = interrupted {
        props.push(Property::new("interrupted", signal));
    }
    let id = cell.cell.id();
    // Only where collecting ran and succeeded, so the path names something that exists.
    let collected = cell
        .phases
        .iter()
        .any(|p| p.name == PhaseName::Collect && p.outcome == Outcome::Passed);
    props.extend(provenance::properties(
        &provenance.harness,
        provenance.cells.get(&id),
        &cell.cell.cilium.to_string(),
        provenance
            .artifacts
            .as_ref()
            .filter(|_| collected)
            .map(|dir| dir.join(&id)),
    ));
    props
}

/// Build the quick-junit report.
pub fn to_junit(run: &RunReport) -> Report {
    let mut report = Report::new(format!("talos-cilium-harness {}", run.run_id));
    for cell in &run.cells {
        let id = cell.cell.id();
        let props = properties(cell, &run.provenance, run.interrupted.as_deref());

        let mut phases = TestSuite::new(format!("{id}::phases"));
        phases.add_properties(props.clone());
        let mut total = Duration::ZERO;
        for p in &cell.phases {
            let mut case = TestCase::new(format!("phase::{}", p.name.as_str()), status(&p.outcome));
            case.set_classname(id.as_str()).set_time(p.duration);
            total += p.duration;
            phases.add_test_case(case);
        }
        phases.set_time(total);
        report.add_test_suite(phases);

        for suite in &cell.suites {
            let mut ts = TestSuite::new(format!("{id}::{}", suite.suite));
            ts.add_properties(props.clone());
            let mut total = Duration::ZERO;
            for check in &suite.checks {
                let mut case = TestCase::new(check.name.as_str(), status(&check.outcome));
                case.set_classname(id.as_str()).set_time(check.duration);
                if !check.transcript.is_empty() {
                    case.set_system_out(redact(&check.transcript));
                }
                total += check.duration;
                ts.add_test_case(case);
            }
            // The suite's wall time includes its shared setup; the checks' sum is the fallback.
            ts.set_time(if suite.duration.is_zero() {
                total
            } else {
                suite.duration
            });
            if !suite.setup_transcript.is_empty() {
                ts.set_system_out(redact(&suite.setup_transcript));
            }
            report.add_test_suite(ts);
        }
    }
    report
}

/// The serialised report, minus the one attribute quick-junit writes that the Jenkins JUnit
/// schema does not allow: `skipped` on the root `<testsuites>` (each `<testsuite>` keeps its own).
pub fn to_xml(report: &Report) -> Result<Vec<u8>, InputError> {
    use quick_xml::events::{BytesStart, Event};
    let mut raw = Vec::new();
    report
        .serialize(&mut raw)
        .map_err(|e| InputError::Report(format!("cannot serialise the JUnit report: {e}")))?;
    let bad =
        |e: quick_xml::Error| InputError::Report(format!("cannot rewrite the JUnit report: {e}"));
    let mut reader = quick_xml::Reader::from_reader(raw.as_slice());
    let mut writer = quick_xml::Writer::new(Vec::with_capacity(raw.len()));
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(bad)?;
        match event {
            Event::Eof => break,
            Event::Start(e) if e.name().as_ref() == b"testsuites" => {
                let mut root = BytesStart::new("testsuites");
                for attr in e.attributes().flatten() {
                    if attr.key.as_ref() != b"skipped" {
                        root.push_attribute(attr);
                    }
                }
                writer
                    .write_event(Event::Start(root))
                    .map_err(|e| bad(e.into()))?;
            }
            other => writer.write_event(other).map_err(|e| bad(e.into()))?,
        }
        buf.clear();
    }
    Ok(writer.into_inner())
}

/// Write `report` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file, even if the run dies while writing.
pub fn write_atomically(report: &Report, path: &Path) -> Result<(), InputError> {
    write_file_atomically(&to_xml(report)?, path)
}

/// Write `bytes` to `path` through a temporary file and a rename, mode 0644.
pub fn write_file_atomically(bytes: &[u8], path: &Path) -> Result<(), InputError> {
    let io = |source| InputError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".report-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.flush().map_err(io)?;
    // tempfile creates 0600; a report is for sharing (credentials are redacted, not hidden).
    set_report_mode(tmp.as_file()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(unix)]
fn set_report_mode(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_report_mode(_: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

pub fn write(run: &RunReport, path: &Path) -> Result<(), InputError> {
    write_atomically(&to_junit(run), path)
}
