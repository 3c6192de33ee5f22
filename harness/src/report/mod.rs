//! Run results and their JUnit form: one testsuite per (cell, suite), one testcase per check,
//! plus a `phases` testsuite per cell carrying the time each phase took.

pub mod cmd;
pub mod junit;
pub mod merge;
pub mod provenance;
pub mod read;
pub mod redact;
pub mod results;
pub mod summary;
pub mod terminal;

use crate::matrix::Cell;
use std::time::Duration;

/// How one check, or one phase, ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    /// The cluster did not behave: the message says what was expected and what was seen.
    Failed {
        message: String,
        detail: String,
    },
    /// The harness could not observe (API error, timeout setting up the probe).
    Error {
        message: String,
        detail: String,
    },
    Skipped {
        reason: String,
    },
}

/// A stage of a cell's run, timed on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseName {
    Provision,
    Install,
    Suites,
    Collect,
    Destroy,
    /// A step of the upgrade gate.
    Gate(crate::run::GateStep),
}

impl PhaseName {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Provision => "provision",
            PhaseName::Install => "install",
            PhaseName::Suites => "suites",
            PhaseName::Collect => "collect",
            PhaseName::Destroy => "destroy",
            PhaseName::Gate(step) => step.as_str(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PhaseReport {
    pub name: PhaseName,
    pub duration: Duration,
    pub outcome: Outcome,
}

#[derive(Clone, Debug)]
pub struct CheckReport {
    /// `suite::check`.
    pub name: String,
    pub duration: Duration,
    pub outcome: Outcome,
    /// The probes' commands, exit codes, output and timings.
    pub transcript: String,
}

#[derive(Clone, Debug)]
pub struct SuiteReport {
    pub suite: String,
    pub checks: Vec<CheckReport>,
    /// Workload creation and readiness shared by the suite's checks.
    pub setup_transcript: String,
    /// Wall time of the whole suite, setup included (the engine measures it; zero when it did
    /// not run).
    pub duration: Duration,
    /// What the suite's checks saw, as plain data, when it ran against a cluster: what
    /// `--record` writes and `harness replay` judges again. `None` for a suite that did not run.
    pub observed: Option<Observed>,
}

/// A suite's run as its checks saw it: their observations and probes, and the run's context.
#[derive(Clone, Debug)]
pub struct Observed {
    pub run: suites::SuiteRun,
    pub context: suites::RunContext,
}

#[derive(Clone, Debug)]
pub struct CellReport {
    pub cell: Cell,
    pub seed: String,
    pub phases: Vec<PhaseReport>,
    pub suites: Vec<SuiteReport>,
}

#[derive(Clone, Debug)]
pub struct RunReport {
    pub run_id: String,
    /// Set when a signal cut the run short, e.g. "SIGINT".
    pub interrupted: Option<String>,
    pub cells: Vec<CellReport>,
    /// The harness build and what each cell ran on.
    pub provenance: provenance::Provenance,
}
