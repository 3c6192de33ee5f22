//! The run engine: every command that tests a cluster (`e2e`, `check`, and later the upgrade
//! gate) is this engine over a [`Deployer`]. Per cell it provisions, runs the caller's steps
//! (install, one or more rounds of suites), collects diagnostics on failure, and tears down or
//! keeps, timing each phase; an interrupt stops the current phase, the cluster is still torn
//! down and the report says what did not run. The deployer and the [`Tester`] are traits, so the
//! orchestration is tested without Docker or a cluster.

pub mod deployer;
pub mod exec_plugin;
pub mod existing;
pub mod kube;
pub mod outside;
pub mod progress;
pub mod signals;
pub mod sweep;
pub mod talos_docker;
pub mod tester;

pub use deployer::{Deployer, Tester};
pub use progress::Progress;
pub use signals::{Interrupt, Signal, Stop};

use crate::plan::{CellPlan, Plan, SuitePlan};
use crate::report::{
    CellReport, CheckReport, Outcome, PhaseName, PhaseReport, RunReport, SuiteReport,
};
use futures::StreamExt;
use std::future::Future;
use std::time::Duration;
// Tokio's clock, so the benches can run the scheduler on paused time.
use tokio::time::Instant;

/// A step between provisioning and tear-down. Callers list the steps they want, in order:
/// `check` runs `[Suites]`, `e2e` runs `[Install, Suites]`, and an upgrade gate can run the
/// suites before and after its own step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Install,
    /// Every planned suite, once. `label` tells rounds apart when a cell runs them more than
    /// once: the round's suites are reported as `<suite>@<label>`.
    Suites {
        label: Option<&'static str>,
    },
    /// A step of the upgrade gate, carried out by the deployer ([`Deployer::gate`]). An error
    /// stops the steps after it; a failed verdict (an interrupted connection, a readiness bound
    /// exceeded) is reported and the run goes on.
    Gate(GateStep),
}

/// The upgrade gate's steps between its rounds of suites (see `crate::upgrade`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateStep {
    /// Start the connection-disruption workload and record what the judges compare with.
    StartDisruption,
    /// Move Talos, Kubernetes and Cilium to B, in that order.
    Upgrade,
    /// Everything Cilium runs, and every node, ready within the bound.
    Readiness,
    /// Connections, agent restarts, drops and agent log errors across the upgrade.
    JudgeDisruption,
    /// Cilium back to A.
    Downgrade,
    DowngradeReadiness,
    JudgeDisruptionAfterDowngrade,
}

impl GateStep {
    pub fn as_str(self) -> &'static str {
        match self {
            GateStep::StartDisruption => "disruption-start",
            GateStep::Upgrade => "upgrade",
            GateStep::Readiness => "readiness",
            GateStep::JudgeDisruption => "disruption",
            GateStep::Downgrade => "downgrade",
            GateStep::DowngradeReadiness => "downgrade-readiness",
            GateStep::JudgeDisruptionAfterDowngrade => "downgrade-disruption",
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub run_id: String,
    /// Keep a failed cell's cluster (an interrupt removes it anyway).
    pub keep_on_failure: bool,
    /// Cells run at once. Every cell has its own cluster, so they do not share state.
    pub jobs: usize,
    /// Suites run at once inside a cell, among those that share nothing cluster-wide.
    pub suite_jobs: usize,
    /// Copied into the report: the harness build and what each cell ran on.
    pub provenance: crate::report::provenance::Provenance,
}

/// How a run that was carried out ended; `main` turns it into the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// At least one check failed (or could not observe).
    ChecksFailed,
    /// A phase (provision, install, tear-down) failed: the run was not fully carried out.
    PhaseFailed,
    Interrupted(Signal),
}

/// Diagnostics are a courtesy: they must not hold up the tear-down that follows.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Engine<'a, D, T> {
    pub deployer: &'a D,
    pub tester: &'a T,
    pub steps: &'a [Step],
    pub opts: EngineOptions,
    /// Where each phase's start and end are shown as they happen.
    pub progress: &'a dyn Progress,
}

/// The run's report, the lines to show the person (kept clusters, diagnostics), its verdict.
pub struct RunOutcome {
    pub report: RunReport,
    pub notes: Vec<String>,
    pub verdict: Verdict,
}

struct CellOutcome {
    report: CellReport,
    notes: Vec<String>,
}

/// Every planned suite as a report in which nothing ran: inapplicable checks keep their own
/// reason, the rest get `reason`.
pub fn skipped_suites<'a>(
    suites: impl IntoIterator<Item = &'a SuitePlan>,
    label: Option<&str>,
    reason: &str,
) -> Vec<SuiteReport> {
    suites
        .into_iter()
        .map(|s| skipped_suite(s, label, reason))
        .collect()
}

fn skipped_suite(suite: &SuitePlan, label: Option<&str>, reason: &str) -> SuiteReport {
    SuiteReport {
        suite: suite_name(suite, label),
        checks: suite
            .checks
            .iter()
            .map(|c| CheckReport {
                name: c.name.clone(),
                duration: Duration::ZERO,
                outcome: Outcome::Skipped {
                    reason: match &c.applicability {
                        suites::Applicability::Skipped(why) => why.clone(),
                        suites::Applicability::Applies => reason.to_string(),
                    },
                },
                transcript: String::new(),
            })
            .collect(),
        setup_transcript: String::new(),
        duration: std::time::Duration::ZERO,
        observed: None,
    }
}

fn suite_name(suite: &SuitePlan, label: Option<&str>) -> String {
    match label {
        Some(l) => format!("{}@{l}", suite.suite),
        None => suite.suite.to_string(),
    }
}

fn failed(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Failed { .. } | Outcome::Error { .. })
}

fn error(message: impl Into<String>) -> Outcome {
    Outcome::Error {
        message: message.into(),
        detail: String::new(),
    }
}

fn skip(reason: impl Into<String>) -> Outcome {
    Outcome::Skipped {
        reason: reason.into(),
    }
}

/// Runs `fut` unless a signal (or, with `abandon_only`, a second signal) comes first.
async fn unless_stopped<T>(
    interrupt: &Interrupt,
    abandon_only: bool,
    fut: impl Future<Output = T>,
) -> Result<T, Signal> {
    let mut rx = interrupt.clone();
    tokio::select! {
        biased;
        sig = signals::wait(&mut rx, abandon_only) => Err(sig),
        v = fut => Ok(v),
    }
}

/// Times one phase of one cell and shows its start and end.
struct Timer<'p> {
    at: Instant,
    progress: &'p dyn Progress,
    cell: &'p str,
}

impl<'p> Timer<'p> {
    fn start(progress: &'p dyn Progress, cell: &'p str, name: PhaseName) -> Self {
        progress.event(progress::Event::Started {
            cell,
            step: name.as_str(),
        });
        Timer {
            at: Instant::now(),
            progress,
            cell,
        }
    }
    fn phase(&self, name: PhaseName, outcome: Outcome) -> PhaseReport {
        let report = PhaseReport {
            name,
            duration: self.at.elapsed(),
            outcome,
        };
        self.progress.event(progress::Event::Finished {
            cell: self.cell,
            step: name.as_str(),
            took: report.duration,
            outcome: &report.outcome,
        });
        report
    }
}

impl<D, T> Engine<'_, D, T>
where
    D: Deployer,
    T: Tester<Target = D::Target>,
{
    /// Runs every cell (`opts.jobs` at once), calling `write` with the report so far after each
    /// cell and once at the end, so even a killed run leaves a report.
    pub async fn run(
        &self,
        plan: &Plan,
        interrupt: &Interrupt,
        mut write: impl FnMut(&RunReport),
    ) -> RunOutcome {
        let mut report = RunReport {
            run_id: self.opts.run_id.clone(),
            interrupted: None,
            cells: Vec::new(),
            provenance: self.opts.provenance.clone(),
        };
        let mut notes = Vec::new();
        let mut cells = futures::stream::iter(&plan.cells)
            .map(|cell| self.run_cell(cell, interrupt))
            .buffered(self.opts.jobs.max(1));
        while let Some(done) = cells.next().await {
            self.progress.event(progress::Event::CellDone {
                report: &done.report,
            });
            report.cells.push(done.report);
            notes.extend(done.notes);
            report.interrupted = interrupt.borrow().signal().map(|s| s.name().to_string());
            write(&report);
        }
        report.interrupted = interrupt.borrow().signal().map(|s| s.name().to_string());
        write(&report);
        let verdict = verdict(&report);
        RunOutcome {
            report,
            notes,
            verdict,
        }
    }

    /// [`Self::run`] writing the JUnit report to `junit` (and the recording, with `record`)
    /// after every cell and at the end, and printing the notes (kept clusters, diagnostics);
    /// also says whether a write failed (the report's failure first: it loses the results).
    pub async fn run_to_junit(
        &self,
        plan: &Plan,
        interrupt: &Interrupt,
        junit: &std::path::Path,
        record: Option<&crate::recording::Recorder>,
    ) -> (RunOutcome, Option<crate::errors::RunError>) {
        let mut report_error = None;
        let mut record_error = None;
        let outcome = self
            .run(plan, interrupt, |r| {
                if let Err(e) = crate::report::junit::write(r, junit) {
                    report_error = Some(crate::errors::RunError::Report {
                        message: e.to_string(),
                    });
                }
                if let Some(rec) = record
                    && let Err(e) = rec.write(plan, r)
                {
                    record_error = Some(crate::errors::RunError::Record {
                        message: e.to_string(),
                    });
                }
            })
            .await;
        eprint!("\n{}", crate::report::terminal::summary(&outcome.report));
        for n in &outcome.notes {
            eprintln!("{n}");
        }
        (outcome, report_error.or(record_error))
    }

    /// One cell. Tear-down always runs once provisioning succeeded, interrupted or not, unless
    /// the person keeps failed clusters; only a second signal skips it.
    async fn run_cell(&self, cell: &CellPlan, interrupt: &Interrupt) -> CellOutcome {
        let mut report = CellReport {
            cell: cell.cell.clone(),
            seed: cell.profile.seed.clone(),
            phases: Vec::new(),
            suites: Vec::new(),
        };
        let mut notes = Vec::new();
        let suite_rounds: Vec<Option<&str>> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Suites { label } => Some(*label),
                Step::Install | Step::Gate(_) => None,
            })
            .collect();
        let skip_all = |report: &mut CellReport, reason: &str| {
            for label in &suite_rounds {
                report
                    .suites
                    .extend(skipped_suites(&cell.suites, *label, reason));
            }
        };
        if let Some(sig) = interrupt.borrow().signal() {
            skip_all(&mut report, &format!("not run: interrupted by {sig}"));
            return CellOutcome { report, notes };
        }

        let t = Timer::start(self.progress, &cell.id, PhaseName::Provision);
        let cluster = match unless_stopped(interrupt, false, self.deployer.provision(cell)).await {
            Ok(Ok(c)) => {
                report
                    .phases
                    .push(t.phase(PhaseName::Provision, Outcome::Passed));
                c
            }
            Ok(Err(e)) => {
                report.phases.push(t.phase(PhaseName::Provision, error(&e)));
                skip_all(&mut report, &format!("not run: provisioning failed: {e}"));
                return CellOutcome { report, notes };
            }
            Err(sig) => {
                report
                    .phases
                    .push(t.phase(PhaseName::Provision, skip(format!("interrupted by {sig}"))));
                skip_all(&mut report, &format!("not run: interrupted by {sig}"));
                return CellOutcome { report, notes };
            }
        };

        // Why the remaining steps do not run, once one could not.
        let mut blocked: Option<String> = None;
        let mut target: Option<D::Target> = None;
        for step in self.steps {
            if blocked.is_none()
                && let Some(sig) = interrupt.borrow().signal()
            {
                blocked = Some(format!("not run: interrupted by {sig}"));
            }
            match step {
                Step::Install => {
                    if blocked.is_some() {
                        continue;
                    }
                    let t = Timer::start(self.progress, &cell.id, PhaseName::Install);
                    let run = self.deployer.install(cell, &cluster);
                    match unless_stopped(interrupt, false, run).await {
                        Ok(Ok(_)) => report
                            .phases
                            .push(t.phase(PhaseName::Install, Outcome::Passed)),
                        Ok(Err(e)) => {
                            report.phases.push(t.phase(PhaseName::Install, error(&e)));
                            blocked = Some(format!("not run: install failed: {e}"));
                        }
                        Err(sig) => {
                            report.phases.push(
                                t.phase(PhaseName::Install, skip(format!("interrupted by {sig}"))),
                            );
                            blocked = Some(format!("not run: interrupted by {sig}"));
                        }
                    }
                }
                Step::Gate(step) => {
                    let name = PhaseName::Gate(*step);
                    if let Some(reason) = &blocked {
                        let t = Timer::start(self.progress, &cell.id, name);
                        report.phases.push(t.phase(name, skip(reason.clone())));
                        continue;
                    }
                    let t = Timer::start(self.progress, &cell.id, name);
                    let run = self.deployer.gate(*step, cell, &cluster);
                    let outcome = match unless_stopped(interrupt, false, run).await {
                        Ok(outcome) => outcome,
                        Err(sig) => skip(format!("interrupted by {sig}")),
                    };
                    match &outcome {
                        Outcome::Error { message, .. } => {
                            blocked = Some(format!("not run: {} failed: {message}", step.as_str()));
                        }
                        Outcome::Skipped { reason } if reason.starts_with("interrupted") => {
                            blocked = Some(format!("not run: {reason}"));
                        }
                        _ => {}
                    }
                    report.phases.push(t.phase(name, outcome));
                }
                Step::Suites { label } => {
                    if let Some(reason) = &blocked {
                        report
                            .suites
                            .extend(skipped_suites(&cell.suites, *label, reason));
                        continue;
                    }
                    let t = Timer::start(self.progress, &cell.id, PhaseName::Suites);
                    if target.is_none() {
                        match self.deployer.target(&cluster).await {
                            Ok(tg) => target = Some(tg),
                            Err(e) => {
                                report.phases.push(t.phase(PhaseName::Suites, error(&e)));
                                let reason = format!("not run: {e}");
                                report
                                    .suites
                                    .extend(skipped_suites(&cell.suites, *label, &reason));
                                blocked = Some(reason);
                                continue;
                            }
                        }
                    }
                    let tg = target.as_ref().expect("set above");
                    let (suites, stopped) = self.round(cell, tg, *label, interrupt).await;
                    let outcome = match stopped {
                        Some(sig) => {
                            blocked = Some(format!("not run: interrupted by {sig}"));
                            skip(format!("interrupted by {sig}"))
                        }
                        None if suites
                            .iter()
                            .flat_map(|s| &s.checks)
                            .any(|c| failed(&c.outcome)) =>
                        {
                            Outcome::Failed {
                                message: "some checks failed".into(),
                                detail: String::new(),
                            }
                        }
                        None => Outcome::Passed,
                    };
                    report.phases.push(t.phase(PhaseName::Suites, outcome));
                    report.suites.extend(suites);
                }
            }
        }

        let cell_failed = report.phases.iter().any(|p| failed(&p.outcome));
        let interrupted = interrupt.borrow().signal();
        if cell_failed && interrupted.is_none() {
            let t = Timer::start(self.progress, &cell.id, PhaseName::Collect);
            let outcome = match &target {
                None => skip("no connection to the cluster to collect from"),
                Some(tg) => {
                    let collect = unless_stopped(interrupt, false, self.tester.collect(cell, tg));
                    match tokio::time::timeout(COLLECT_TIMEOUT, collect).await {
                        Ok(Ok(Ok(where_))) => {
                            notes.push(format!("{}: diagnostics in {where_}", cell.id));
                            Outcome::Passed
                        }
                        Ok(Ok(Err(e))) => error(e),
                        Ok(Err(sig)) => skip(format!("interrupted by {sig}")),
                        Err(_) => error(format!(
                            "collecting diagnostics took over {}s",
                            COLLECT_TIMEOUT.as_secs()
                        )),
                    }
                }
            };
            report.phases.push(t.phase(PhaseName::Collect, outcome));
        }
        drop(target);

        let t = Timer::start(self.progress, &cell.id, PhaseName::Destroy);
        // An interrupted run removes what it made, even a failed cell the person asked to keep.
        if cell_failed && self.opts.keep_on_failure && interrupt.borrow().signal().is_none() {
            notes.push(format!(
                "{}: kept for debugging: {}",
                cell.id,
                self.deployer.keep(&cluster)
            ));
            report
                .phases
                .push(t.phase(PhaseName::Destroy, skip("kept by --keep-on-failure")));
        } else {
            // Raced only against a second signal: a first one must still clean up.
            let outcome =
                match unless_stopped(interrupt, true, self.deployer.tear_down(cluster)).await {
                    Ok(Ok(_)) => Outcome::Passed,
                    Ok(Err(e)) => error(e),
                    Err(sig) => error(format!(
                        "skipped after a second {sig}: remove what is left with `{}`",
                        self.deployer.leftovers()
                    )),
                };
            report.phases.push(t.phase(PhaseName::Destroy, outcome));
        }
        CellOutcome { report, notes }
    }

    /// One round of every planned suite: those that share nothing cluster-wide up to
    /// `suite_jobs` at once, then each suite that must run alone by itself. An interrupt keeps
    /// what finished; reports come back in plan order.
    async fn round(
        &self,
        cell: &CellPlan,
        target: &D::Target,
        label: Option<&str>,
        interrupt: &Interrupt,
    ) -> (Vec<SuiteReport>, Option<Signal>) {
        let (alone, shared): (Vec<usize>, Vec<usize>) = (0..cell.suites.len())
            .partition(|&i| suites::suite(cell.suites[i].suite).runs_alone.is_some());
        let one = |i: usize| async move {
            let suite = &cell.suites[i];
            if let Some(sig) = interrupt.borrow().signal() {
                return (i, Duration::ZERO, Err(sig));
            }
            let step = format!("suite {}", suite_name(suite, label));
            self.progress.event(progress::Event::Started {
                cell: &cell.id,
                step: &step,
            });
            let at = Instant::now();
            let run =
                unless_stopped(interrupt, false, self.tester.suite(cell, target, suite)).await;
            let took = at.elapsed();
            if let Ok(run) = &run {
                let outcome = suite_outcome(run);
                self.progress.event(progress::Event::Finished {
                    cell: &cell.id,
                    step: &step,
                    took,
                    outcome: &outcome,
                });
            }
            (i, took, run)
        };
        let mut reports: Vec<Option<SuiteReport>> = vec![None; cell.suites.len()];
        let mut stopped = None;
        for (batch, at_once) in [(shared, self.opts.suite_jobs), (alone, 1)] {
            let mut runs = futures::stream::iter(batch)
                .map(one)
                .buffered(at_once.max(1));
            while let Some((i, took, run)) = runs.next().await {
                let suite = &cell.suites[i];
                reports[i] = Some(match run {
                    Ok(mut run) => {
                        run.suite = suite_name(suite, label);
                        run.duration = took;
                        run
                    }
                    Err(sig) => {
                        stopped.get_or_insert(sig);
                        skipped_suite(suite, label, &format!("not run: interrupted by {sig}"))
                    }
                });
            }
        }
        (reports.into_iter().flatten().collect(), stopped)
    }
}

/// A suite's result in one line: failed when any check failed or could not observe.
fn suite_outcome(run: &SuiteReport) -> Outcome {
    let failed = run.checks.iter().filter(|c| failed(&c.outcome)).count();
    if failed == 0 {
        Outcome::Passed
    } else {
        Outcome::Failed {
            message: format!("{failed} of {} checks failed", run.checks.len()),
            detail: String::new(),
        }
    }
}

/// A finished run's verdict: interrupted, else a failed phase (the run was not carried out),
/// else a failed check, else passed. Collecting diagnostics is a courtesy and does not count.
pub fn verdict(run: &RunReport) -> Verdict {
    match run.interrupted.as_deref() {
        Some("SIGINT") => return Verdict::Interrupted(Signal::Int),
        Some(_) => return Verdict::Interrupted(Signal::Term),
        None => {}
    }
    let phase_failed = run
        .cells
        .iter()
        .flat_map(|c| &c.phases)
        .any(|p| p.name != PhaseName::Collect && matches!(p.outcome, Outcome::Error { .. }));
    if phase_failed {
        return Verdict::PhaseFailed;
    }
    let check_failed = run.cells.iter().any(|c| {
        c.phases
            .iter()
            .any(|p| failed(&p.outcome) && p.name != PhaseName::Collect)
            || c.suites
                .iter()
                .flat_map(|s| &s.checks)
                .any(|k| failed(&k.outcome))
    });
    if check_failed {
        Verdict::ChecksFailed
    } else {
        Verdict::Passed
    }
}

#[cfg(test)]
mod tests;
