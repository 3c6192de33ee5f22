//! Recordings: every observation a run's checks made, as plain files, so the judges can be run
//! again without a cluster (`harness replay`) and a user's run becomes a regression fixture.
//!
//! `harness e2e --record DIR` and `harness check --record DIR` write, next to the JUnit report
//! and after every cell like it:
//!
//! ```text
//! DIR/recording.json                     format, source, harness build, run id, and per cell its
//!                                        versions, features, provenance, phases and suite folders
//! DIR/<cell>/<suite>/suite.json          the suite's namespace, context (features, nodes,
//!                                        external target), setup time, clean-up, check folders
//! DIR/<cell>/<suite>/setup.json          the setup's probes and notes
//! DIR/<cell>/<suite>/setup-api.json      the API server's answers setup and tear-down read
//! DIR/<cell>/<suite>/<check>/check.json  the check's judge, time and recorded outcome
//! DIR/<cell>/<suite>/<check>/observation.json  what the judge was given (API objects read,
//!                                        parsed probe output), when the check got that far
//! DIR/<cell>/<suite>/<check>/probes.json each probe: label, argv, start, duration, exit code,
//!                                        stdout, stderr (or why there was no exit code)
//! DIR/<cell>/<suite>/<check>/api.json    each answer of the API server the check read: method,
//!                                        path, status, start, duration, body (watches and exec
//!                                        streams excepted); for reading, not judged
//! ```
//!
//! Every string is redacted as the JUnit report is (PEM blocks, credential keys), and the
//! value of any key that names a credential is blanked. [`FORMAT`] versions the layout; a reader
//! refuses a version it does not know, saying which harness reads it.

pub mod read;
pub mod write;

use crate::report::provenance::{CellProvenance, HarnessBuild};
use crate::report::{Outcome, PhaseName};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use suites::kit::as_text;

pub use read::read;
pub use write::Recorder;

/// The layout version this harness writes and reads.
pub const FORMAT: u32 = 1;
/// The oldest layout this harness still reads.
pub const OLDEST_FORMAT: u32 = 1;

pub const MANIFEST: &str = "recording.json";
const SUITE: &str = "suite.json";
const SETUP: &str = "setup.json";
const CHECK: &str = "check.json";
const OBSERVATION: &str = "observation.json";
const PROBES: &str = "probes.json";
const API: &str = "api.json";
const SETUP_API: &str = "setup-api.json";

/// `recording.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// Where the recording comes from: the run that wrote it, or how a fixture was built.
    pub source: String,
    /// The harness that recorded it; the report's `harness.*` properties.
    pub harness: HarnessBuild,
    pub run_id: String,
    /// The signal that cut the run short, e.g. `SIGINT`.
    pub interrupted: Option<String>,
    /// Where the run put diagnostics of failed cells (named in the report).
    pub artifacts: Option<PathBuf>,
    pub cells: Vec<CellEntry>,
}

/// One cell of the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellEntry {
    /// The folder holding its suites, and its JUnit classname.
    pub id: String,
    pub profile: String,
    pub cilium: String,
    pub talos: String,
    pub kubernetes: String,
    pub seed: String,
    /// The features the plan derived from the cell's values.
    pub features: Option<suites::Features>,
    pub provenance: Option<CellProvenance>,
    pub phases: Vec<PhaseEntry>,
    /// Each suite's folder under `<id>/`, in run order (`<suite>` or `<suite>@<round>`).
    pub suites: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseEntry {
    pub phase: PhaseName,
    #[serde(with = "as_text::duration")]
    pub duration: Duration,
    pub outcome: Outcome,
}

/// `<cell>/<suite>/suite.json`: a suite that ran (`observed`), or one the engine reported
/// without running it (each check's outcome as reported, e.g. skipped after a failed install).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteEntry {
    /// As the report names it: `<suite>` or `<suite>@<round>`.
    pub name: String,
    /// Wall time of the whole suite, setup included.
    #[serde(with = "as_text::duration")]
    pub duration: Duration,
    pub observed: Option<ObservedSuite>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reported: Vec<ReportedCheck>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservedSuite {
    /// The suite's catalog name.
    pub suite: String,
    pub namespace: Option<String>,
    /// What the suite was run with: features, schedulable nodes, external target.
    pub context: suites::RunContext,
    #[serde(with = "as_text::duration")]
    pub setup_duration: Duration,
    pub cleanup: suites::Cleanup,
    /// Each check's folder, in run order.
    pub checks: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedCheck {
    /// `suite::check`.
    pub name: String,
    #[serde(with = "as_text::duration")]
    pub duration: Duration,
    pub outcome: Outcome,
}

/// `<cell>/<suite>/<check>/check.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckEntry {
    pub check: String,
    /// The judge's path in its suite (`judge::http`), for a person reading the recording.
    pub judge: Option<String>,
    #[serde(with = "as_text::duration")]
    pub duration: Duration,
    /// How the check ended when recorded. Replay judges `observation.json` again and uses this
    /// only for outcomes no judge gave (the kit could not observe, or the check was skipped).
    pub outcome: suites::CheckOutcome,
}
