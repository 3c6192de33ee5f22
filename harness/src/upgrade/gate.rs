//! The gate's verdict over a cell's report: a regression is a check that passed before and
//! fails after (or after the downgrade), an interrupted connection, or a readiness bound
//! exceeded. A check that already failed before is reported, not counted. When the gate could
//! not be carried out (a phase failed, an interrupt, or a baseline in which nothing passed) it
//! says so in those words. The verdicts become the `gate` testsuite of the report.

use crate::report::{CellReport, CheckReport, Outcome, PhaseName, SuiteReport};
use crate::run::{GateStep, Verdict};
use std::collections::BTreeMap;
use std::time::Duration;

/// Suite-round labels: the phase each round of suites belongs to.
pub const BEFORE: &str = "before";
pub const AFTER: &str = "after";
pub const AFTER_DOWNGRADE: &str = "after-downgrade";

/// The `gate` testsuite's name.
pub const SUITE: &str = "gate";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateVerdict {
    Passed,
    /// At least one regression; the cases say which.
    Regressed,
    /// The gate could not judge: the reason, in words a person reads.
    NotCarriedOut(String),
}

impl GateVerdict {
    pub fn exit_verdict(&self) -> Verdict {
        match self {
            GateVerdict::Passed => Verdict::Passed,
            GateVerdict::Regressed => Verdict::ChecksFailed,
            GateVerdict::NotCarriedOut(_) => Verdict::PhaseFailed,
        }
    }
}

fn case(name: impl Into<String>, outcome: Outcome) -> CheckReport {
    CheckReport {
        name: name.into(),
        duration: Duration::ZERO,
        outcome,
        transcript: String::new(),
    }
}

fn failed(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Failed { .. } | Outcome::Error { .. })
}

fn message(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed { message, .. } | Outcome::Error { message, .. } => message,
        Outcome::Skipped { reason } => reason,
    }
}

/// Every check of the round labelled `label`, by name.
fn round<'a>(cell: &'a CellReport, label: &str) -> BTreeMap<&'a str, &'a Outcome> {
    let suffix = format!("@{label}");
    cell.suites
        .iter()
        .filter(|s| s.suite.ends_with(&suffix))
        .flat_map(|s| &s.checks)
        .map(|c| (c.name.as_str(), &c.outcome))
        .collect()
}

/// The gate's cases and verdict for one cell. `later` lists the rounds judged against the
/// baseline (`after`, and `after-downgrade` when the gate went back).
pub fn judge(cell: &CellReport, later: &[&str]) -> (SuiteReport, GateVerdict) {
    let mut cases = Vec::new();
    let mut not_carried_out: Option<String> = None;

    for p in &cell.phases {
        if p.name == PhaseName::Collect {
            continue;
        }
        match &p.outcome {
            Outcome::Error { message, .. } if not_carried_out.is_none() => {
                not_carried_out = Some(format!("the {} phase failed: {message}", p.name.as_str()));
            }
            Outcome::Skipped { reason }
                if reason.starts_with("interrupted") && not_carried_out.is_none() =>
            {
                not_carried_out = Some(format!("the {} phase was {reason}", p.name.as_str()));
            }
            _ => {}
        }
    }

    let baseline = round(cell, BEFORE);
    let ran: Vec<&&Outcome> = baseline
        .values()
        .filter(|o| !matches!(o, Outcome::Skipped { .. }))
        .collect();
    if not_carried_out.is_none() && !ran.is_empty() && ran.iter().all(|o| failed(o)) {
        not_carried_out = Some(format!(
            "the baseline is broken: none of the {} checks that ran before the upgrade passed, so nothing can be judged; fix the starting point first",
            ran.len()
        ));
    } else if not_carried_out.is_none() && ran.is_empty() {
        not_carried_out = Some(
            "no check ran before the upgrade, so there is no baseline to judge against".into(),
        );
    }

    let mut regressed = false;
    for label in later {
        let now = round(cell, label);
        for (name, was) in &baseline {
            let Some(is) = now.get(name) else {
                continue;
            };
            let id = format!("{name}@{label}");
            let outcome = match (failed(was), failed(is)) {
                (false, true) if matches!(was, Outcome::Passed) => {
                    regressed = true;
                    Outcome::Failed {
                        message: format!(
                            "regression: passed before the upgrade, fails {label}: {}",
                            message(is)
                        ),
                        detail: String::new(),
                    }
                }
                (true, true) => Outcome::Skipped {
                    reason: format!(
                        "already failing before the upgrade (reported, not counted): {}",
                        message(was)
                    ),
                },
                (true, false) if matches!(is, Outcome::Passed) => Outcome::Passed,
                _ if matches!(is, Outcome::Skipped { .. }) => Outcome::Skipped {
                    reason: format!("not run {label}: {}", message(is)),
                },
                _ if matches!(was, Outcome::Skipped { .. }) => Outcome::Skipped {
                    reason: format!("not run before the upgrade: {}", message(was)),
                },
                _ => Outcome::Passed,
            };
            cases.push(case(id, outcome));
        }
    }

    for p in &cell.phases {
        let PhaseName::Gate(step) = p.name else {
            continue;
        };
        let Some(name) = step.verdict_case() else {
            continue;
        };
        let outcome = match &p.outcome {
            Outcome::Failed { message, detail } => {
                regressed = true;
                Outcome::Failed {
                    message: format!("regression: {message}"),
                    detail: detail.clone(),
                }
            }
            other => other.clone(),
        };
        cases.push(case(format!("{SUITE}::{name}"), outcome));
    }

    let verdict = match (not_carried_out, regressed) {
        (Some(why), _) => {
            cases.insert(
                0,
                case(
                    format!("{SUITE}::carried-out"),
                    Outcome::Error {
                        message: format!("the gate could not be carried out: {why}"),
                        detail: String::new(),
                    },
                ),
            );
            GateVerdict::NotCarriedOut(why)
        }
        (None, true) => GateVerdict::Regressed,
        (None, false) => GateVerdict::Passed,
    };
    (
        SuiteReport {
            suite: SUITE.to_string(),
            checks: cases,
            setup_transcript: String::new(),
            duration: Duration::ZERO,
            observed: None,
        },
        verdict,
    )
}

/// The steps a gate cell runs, for `Step::Gate`: what each judges.
impl GateStep {
    /// The gate case a step's outcome becomes, if it is a verdict (not an action).
    pub fn verdict_case(self) -> Option<&'static str> {
        match self {
            GateStep::Readiness => Some("readiness@upgrade"),
            GateStep::JudgeDisruption => Some("disruption@upgrade"),
            GateStep::DowngradeReadiness => Some("readiness@downgrade"),
            GateStep::JudgeDisruptionAfterDowngrade => Some("disruption@downgrade"),
            GateStep::StartDisruption | GateStep::Upgrade | GateStep::Downgrade => None,
        }
    }
}
