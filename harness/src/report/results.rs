//! Results as a reader of a report sees them, whatever wrote the JUnit: per cell, each check
//! with one status and its first diagnostic line, and the phase timings. The cell is the
//! testcase's classname (the harness writes the cell id there; nextest and surefire write the
//! test binary or class), else its testsuite's name.

use quick_junit::{Report, TestCase, TestCaseStatus, TestRerun};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    Skipped,
    /// Passed, after failing: a rerun that passed (nextest, surefire), or a check that passed in
    /// one of the reports given and failed in another.
    Flaky,
}

impl Status {
    pub fn is_failure(self) -> bool {
        self == Status::Failed
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub cell: String,
    pub name: String,
    pub status: Status,
    pub time: Duration,
    /// The first diagnostic line of a failure or flake, or a skip's reason.
    pub note: Option<String>,
    /// A harness phase (`phase::install`) rather than a check: timed, not counted as a check.
    pub phase: bool,
}

impl CheckResult {
    pub fn key(&self) -> (&str, &str) {
        (&self.cell, &self.name)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    pub harness_version: Option<String>,
    pub harness_commit: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub id: String,
    /// Where the cell's diagnostics were collected (the `artifacts` property), if they were.
    pub artifacts: Option<String>,
}

/// Every check of one or more reports, in the order they first appear.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Results {
    pub checks: Vec<CheckResult>,
    pub cells: Vec<Cell>,
    pub provenance: Provenance,
}

fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// libtest (and nextest's captured output) puts a failure's text under `---- NAME ... ----`;
/// a panic's first line only says where, so the line after it is the diagnosis.
fn from_test_output(out: &str) -> Option<String> {
    let mut lines = out
        .lines()
        .map(str::trim)
        .skip_while(|l| !(l.starts_with("---- ") && l.ends_with(" ----")))
        .skip(1)
        .filter(|l| !l.is_empty());
    let first = lines.next()?;
    if first.starts_with("thread '") && first.contains("panicked at") {
        return lines.next().map(str::to_string).or(Some(first.to_string()));
    }
    Some(first.to_string())
}

fn case_note(case: &TestCase) -> Option<String> {
    match &case.status {
        TestCaseStatus::Success { flaky_runs } if !flaky_runs.is_empty() => {
            let why = rerun_note(&flaky_runs[0]);
            Some(format!(
                "passed after {} failed attempt(s); first failure: {}",
                flaky_runs.len(),
                why
            ))
        }
        TestCaseStatus::Success { .. } => None,
        TestCaseStatus::NonSuccess {
            message,
            description,
            ty,
            ..
        } => message
            .as_ref()
            .and_then(|m| first_line(m.as_str()))
            .or_else(|| description.as_ref().and_then(|d| first_line(d.as_str())))
            .or_else(|| {
                case.system_out
                    .as_ref()
                    .and_then(|o| from_test_output(o.as_str()))
            })
            .or_else(|| {
                case.system_err
                    .as_ref()
                    .and_then(|o| from_test_output(o.as_str()))
            })
            .or_else(|| ty.as_ref().map(|t| t.as_str().to_string()))
            .or_else(|| Some("no message".into())),
        TestCaseStatus::Skipped { message, .. } => {
            message.as_ref().and_then(|m| first_line(m.as_str()))
        }
    }
}

fn rerun_note(run: &TestRerun) -> String {
    run.message
        .as_ref()
        .and_then(|m| first_line(m.as_str()))
        .or_else(|| {
            run.stack_trace
                .as_ref()
                .and_then(|s| first_line(s.as_str()))
        })
        .or_else(|| {
            run.system_out
                .as_ref()
                .and_then(|o| from_test_output(o.as_str()))
        })
        .or_else(|| run.ty.as_ref().map(|t| t.as_str().to_string()))
        .unwrap_or_else(|| "no message".into())
}

fn status_of(case: &TestCase) -> Status {
    match &case.status {
        TestCaseStatus::Success { flaky_runs } if flaky_runs.is_empty() => Status::Passed,
        TestCaseStatus::Success { .. } => Status::Flaky,
        TestCaseStatus::NonSuccess { .. } => Status::Failed,
        TestCaseStatus::Skipped { .. } => Status::Skipped,
    }
}

/// Two results of one check from different reports, as one.
fn combine(first: &CheckResult, again: CheckResult) -> CheckResult {
    use Status::*;
    match (first.status, again.status) {
        (Failed, Passed | Flaky) | (Passed | Flaky, Failed) => {
            let failed = if first.status == Failed {
                first
            } else {
                &again
            };
            CheckResult {
                status: Flaky,
                note: Some(format!(
                    "passed in one report and failed in another: {}",
                    failed.note.as_deref().unwrap_or("no message")
                )),
                ..again.clone()
            }
        }
        (Skipped, s) if s != Skipped => again,
        _ => first.clone(),
    }
}

impl Results {
    pub fn from_reports<'a>(reports: impl IntoIterator<Item = &'a Report>) -> Results {
        let mut out = Results::default();
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        for report in reports {
            for suite in &report.test_suites {
                let prop = |name: &str| {
                    suite
                        .properties
                        .iter()
                        .find(|p| p.name.as_str() == name)
                        .map(|p| p.value.as_str().to_string())
                };
                if out.provenance.harness_version.is_none() {
                    out.provenance.harness_version = prop("harness.version");
                    out.provenance.harness_commit = prop("harness.commit");
                }
                let phases_suite = suite.name.as_str().ends_with("::phases");
                for case in &suite.test_cases {
                    let cell = case
                        .classname
                        .as_ref()
                        .map_or(suite.name.as_str(), |c| c.as_str())
                        .to_string();
                    match out.cells.iter_mut().find(|c| c.id == cell) {
                        Some(c) => {
                            if c.artifacts.is_none() {
                                c.artifacts = prop("artifacts");
                            }
                        }
                        None => out.cells.push(Cell {
                            id: cell.clone(),
                            artifacts: prop("artifacts"),
                        }),
                    }
                    let result = CheckResult {
                        cell: cell.clone(),
                        name: case.name.as_str().to_string(),
                        status: status_of(case),
                        time: case.time.unwrap_or_default(),
                        note: case_note(case),
                        phase: phases_suite && case.name.as_str().starts_with("phase::"),
                    };
                    let key = (cell, result.name.clone());
                    match index.get(&key) {
                        Some(&i) => out.checks[i] = combine(&out.checks[i], result),
                        None => {
                            index.insert(key, out.checks.len());
                            out.checks.push(result);
                        }
                    }
                }
            }
        }
        out
    }

    pub fn get(&self, cell: &str, name: &str) -> Option<&CheckResult> {
        self.checks
            .iter()
            .find(|c| c.cell == cell && c.name == name)
    }

    pub fn of_cell<'a>(&'a self, cell: &'a str) -> impl Iterator<Item = &'a CheckResult> + 'a {
        self.checks.iter().filter(move |c| c.cell == cell)
    }
}

/// What changed from a baseline report to the current one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Failing now, and passing, skipped, flaky or absent in the baseline.
    pub new_failures: Vec<CheckResult>,
    /// Failing in the baseline, passing now.
    pub fixed: Vec<CheckResult>,
    pub still_failing: Vec<CheckResult>,
    /// Skipped now, run in the baseline.
    pub newly_skipped: Vec<CheckResult>,
    /// Flaky now.
    pub flaky: Vec<CheckResult>,
    /// In the baseline, absent now (a shard that left no report, a check removed, or nextest
    /// leaving out a test it skipped).
    pub not_run: Vec<CheckResult>,
}

impl Diff {
    pub fn between(baseline: &Results, current: &Results) -> Diff {
        let base: HashMap<(&str, &str), Status> = baseline
            .checks
            .iter()
            .map(|c| (c.key(), c.status))
            .collect();
        let now_keys: HashMap<(&str, &str), ()> =
            current.checks.iter().map(|c| (c.key(), ())).collect();
        let mut d = Diff::default();
        for now in &current.checks {
            match (base.get(&now.key()).copied(), now.status) {
                (Some(Status::Failed), Status::Failed) => d.still_failing.push(now.clone()),
                (_, Status::Failed) => d.new_failures.push(now.clone()),
                (Some(Status::Failed), Status::Passed) => d.fixed.push(now.clone()),
                (_, Status::Flaky) => d.flaky.push(now.clone()),
                (Some(b), Status::Skipped) if b != Status::Skipped => {
                    d.newly_skipped.push(now.clone())
                }
                _ => {}
            }
        }
        for before in &baseline.checks {
            if !now_keys.contains_key(&before.key()) {
                d.not_run.push(before.clone());
            }
        }
        d
    }
}
