//! Running a plan: for every cell, provision, install, run the suites, collect on failure and
//! destroy (always), timing each phase, then write the JUnit report. The phases are behind the
//! [`Phases`] trait so the orchestration (ordering, destroy-always, interruption, report) is
//! tested without Docker or a cluster; `live.rs` binds them to talos-docker, the installer and
//! the suites.

pub mod live;
pub mod signals;

use crate::plan::{CellPlan, Plan};
use crate::report::{
    CellReport, CheckReport, Outcome, PhaseName, PhaseReport, RunReport, SuiteReport,
};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the phases of one cell do. `Cluster` is whatever provisioning hands to the later phases.
pub trait Phases {
    type Cluster;
    fn provision(&self, cell: &CellPlan) -> impl Future<Output = Result<Self::Cluster, String>>;
    fn install(
        &self,
        cell: &CellPlan,
        cluster: &Self::Cluster,
    ) -> impl Future<Output = Result<String, String>>;
    fn suites(
        &self,
        cell: &CellPlan,
        cluster: &Self::Cluster,
    ) -> impl Future<Output = Vec<SuiteReport>>;
    /// Gather what helps debugging (pod states, events, agent logs) after a failure.
    fn collect(
        &self,
        cell: &CellPlan,
        cluster: &Self::Cluster,
    ) -> impl Future<Output = Result<String, String>>;
    fn destroy(&self, cluster: Self::Cluster) -> impl Future<Output = Result<(), String>>;
    /// Say how to reach a cluster kept for debugging.
    fn keep(&self, cluster: &Self::Cluster) -> String;
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub keep_on_failure: bool,
    /// Copied into the report: the harness build and what each cell ran on.
    pub provenance: crate::report::provenance::Provenance,
}

/// Diagnostics are a courtesy: they must not hold up the destroy that follows.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(120);

/// Which signal interrupted the run, if any.
pub type Interrupt = watch::Receiver<Option<&'static str>>;

pub(crate) fn skipped_checks(cell: &CellPlan, reason: &str) -> Vec<SuiteReport> {
    cell.suites
        .iter()
        .map(|s| skipped_checks_of(s, reason))
        .collect()
}

/// One planned suite as a report in which nothing ran: inapplicable checks keep their own
/// reason, the rest get `reason`.
pub(crate) fn skipped_checks_of(suite: &crate::plan::SuitePlan, reason: &str) -> SuiteReport {
    SuiteReport {
        suite: suite.suite.to_string(),
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
    }
}

fn failed(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Failed { .. } | Outcome::Error { .. })
}

/// Run `fut` unless the interrupt fires first.
async fn unless_interrupted<T>(
    interrupt: &mut Interrupt,
    fut: impl Future<Output = T>,
) -> Result<T, &'static str> {
    if let Some(sig) = *interrupt.borrow() {
        return Err(sig);
    }
    tokio::select! {
        v = fut => Ok(v),
        sig = async {
            loop {
                if interrupt.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                if let Some(sig) = *interrupt.borrow() {
                    return sig;
                }
            }
        } => Err(sig),
    }
}

struct Timer(Instant);

impl Timer {
    fn phase(&self, name: PhaseName, outcome: Outcome) -> PhaseReport {
        PhaseReport {
            name,
            duration: self.0.elapsed(),
            outcome,
        }
    }
}

/// Run one cell. Destroy always runs once provisioning succeeded, interrupted or not, unless
/// the user keeps failed clusters.
pub async fn run_cell<P: Phases>(
    phases: &P,
    cell: &CellPlan,
    opts: &RunOptions,
    interrupt: &mut Interrupt,
) -> (CellReport, Vec<String>) {
    let mut notes = Vec::new();
    let mut report = CellReport {
        cell: cell.cell.clone(),
        seed: cell.profile.seed.clone(),
        phases: Vec::new(),
        suites: Vec::new(),
    };
    let skip = |why: String| Outcome::Skipped { reason: why };

    let t = Timer(Instant::now());
    let cluster = match unless_interrupted(interrupt, phases.provision(cell)).await {
        Ok(Ok(c)) => {
            report
                .phases
                .push(t.phase(PhaseName::Provision, Outcome::Passed));
            c
        }
        Ok(Err(e)) => {
            report.phases.push(t.phase(
                PhaseName::Provision,
                Outcome::Error {
                    message: e.clone(),
                    detail: String::new(),
                },
            ));
            report.suites = skipped_checks(cell, &format!("not run: provisioning failed: {e}"));
            return (report, notes);
        }
        Err(sig) => {
            report
                .phases
                .push(t.phase(PhaseName::Provision, skip(format!("interrupted by {sig}"))));
            report.suites = skipped_checks(cell, &format!("not run: interrupted by {sig}"));
            return (report, notes);
        }
    };

    let t = Timer(Instant::now());
    let installed = match unless_interrupted(interrupt, phases.install(cell, &cluster)).await {
        Ok(Ok(_)) => {
            report
                .phases
                .push(t.phase(PhaseName::Install, Outcome::Passed));
            Ok(())
        }
        Ok(Err(e)) => {
            report.phases.push(t.phase(
                PhaseName::Install,
                Outcome::Error {
                    message: e.clone(),
                    detail: String::new(),
                },
            ));
            Err(format!("not run: install failed: {e}"))
        }
        Err(sig) => {
            report
                .phases
                .push(t.phase(PhaseName::Install, skip(format!("interrupted by {sig}"))));
            Err(format!("not run: interrupted by {sig}"))
        }
    };

    match installed {
        Ok(()) => {
            let t = Timer(Instant::now());
            match unless_interrupted(interrupt, phases.suites(cell, &cluster)).await {
                Ok(suites) => {
                    let any_failed = suites
                        .iter()
                        .flat_map(|s| &s.checks)
                        .any(|c| failed(&c.outcome));
                    let outcome = if any_failed {
                        Outcome::Failed {
                            message: "some checks failed".into(),
                            detail: String::new(),
                        }
                    } else {
                        Outcome::Passed
                    };
                    report.phases.push(t.phase(PhaseName::Suites, outcome));
                    report.suites = suites;
                }
                Err(sig) => {
                    report
                        .phases
                        .push(t.phase(PhaseName::Suites, skip(format!("interrupted by {sig}"))));
                    report.suites = skipped_checks(cell, &format!("not run: interrupted by {sig}"));
                }
            }
        }
        Err(reason) => report.suites = skipped_checks(cell, &reason),
    }

    let cell_failed = report.phases.iter().any(|p| failed(&p.outcome));
    if cell_failed && interrupt.borrow().is_none() {
        let t = Timer(Instant::now());
        let collect = unless_interrupted(interrupt, phases.collect(cell, &cluster));
        let outcome = match tokio::time::timeout(COLLECT_TIMEOUT, collect).await {
            Ok(Ok(Ok(where_))) => {
                notes.push(format!("{}: diagnostics in {where_}", cell.id));
                Outcome::Passed
            }
            Ok(Ok(Err(e))) => Outcome::Error {
                message: e,
                detail: String::new(),
            },
            Ok(Err(sig)) => skip(format!("interrupted by {sig}")),
            Err(_) => Outcome::Error {
                message: format!("collecting diagnostics took over {COLLECT_TIMEOUT:?}"),
                detail: String::new(),
            },
        };
        report.phases.push(t.phase(PhaseName::Collect, outcome));
    }

    let t = Timer(Instant::now());
    // An interrupted run removes what it made, even a failed cell the user asked to keep.
    if cell_failed && opts.keep_on_failure && interrupt.borrow().is_none() {
        notes.push(format!(
            "{}: kept for debugging: {}",
            cell.id,
            phases.keep(&cluster)
        ));
        report
            .phases
            .push(t.phase(PhaseName::Destroy, skip("kept by --keep-on-failure".into())));
    } else {
        // Not raced against the interrupt: an interrupted run must still clean up.
        let outcome = match phases.destroy(cluster).await {
            Ok(()) => Outcome::Passed,
            Err(e) => Outcome::Error {
                message: e,
                detail: String::new(),
            },
        };
        report.phases.push(t.phase(PhaseName::Destroy, outcome));
    }
    (report, notes)
}

/// Run every cell in order, writing the report after each so that even a killed run leaves one.
pub async fn run_plan<P: Phases>(
    phases: &P,
    plan: &Plan,
    run_id: &str,
    opts: &RunOptions,
    mut interrupt: Interrupt,
    mut write: impl FnMut(&RunReport),
) -> (RunReport, Vec<String>) {
    let mut run = RunReport {
        run_id: run_id.to_string(),
        interrupted: None,
        cells: Vec::new(),
        provenance: opts.provenance.clone(),
    };
    let mut notes = Vec::new();
    for cell in &plan.cells {
        if let Some(sig) = *interrupt.borrow() {
            run.cells.push(CellReport {
                cell: cell.cell.clone(),
                seed: cell.profile.seed.clone(),
                phases: Vec::new(),
                suites: skipped_checks(cell, &format!("not run: interrupted by {sig}")),
            });
            continue;
        }
        let (report, cell_notes) = run_cell(phases, cell, opts, &mut interrupt).await;
        run.cells.push(report);
        notes.extend(cell_notes);
        run.interrupted = interrupt.borrow().map(String::from);
        write(&run);
    }
    run.interrupted = interrupt.borrow().map(String::from);
    write(&run);
    (run, notes)
}

/// The process exit status for a finished run: 130/143 when interrupted, 1 on any failure.
pub fn exit_status(run: &RunReport) -> u8 {
    match run.interrupted.as_deref() {
        Some("SIGINT") => return 130,
        Some(_) => return 143,
        None => {}
    }
    let any_failed = run.cells.iter().any(|c| {
        c.phases.iter().any(|p| failed(&p.outcome))
            || c.suites
                .iter()
                .flat_map(|s| &s.checks)
                .any(|k| failed(&k.outcome))
    });
    u8::from(any_failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn plan_of(profiles: &[&str]) -> Plan {
        crate::plan::for_tests(profiles, &["dns::*"])
    }

    #[derive(Default)]
    struct Fake {
        fail_provision: bool,
        fail_install: bool,
        fail_check: bool,
        hang_in_suites: bool,
        /// Sends this signal from inside the install phase, which then fails.
        signal_in_install: Option<watch::Sender<Option<&'static str>>>,
        calls: Mutex<Vec<String>>,
    }

    impl Fake {
        fn log(&self, s: impl Into<String>) {
            self.calls.lock().unwrap().push(s.into());
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Phases for Fake {
        type Cluster = String;
        async fn provision(&self, cell: &CellPlan) -> Result<String, String> {
            self.log(format!("provision {}", cell.profile.name));
            if self.fail_provision {
                Err("subnet taken".into())
            } else {
                Ok(format!("cluster-{}", cell.profile.name))
            }
        }
        async fn install(&self, _: &CellPlan, c: &String) -> Result<String, String> {
            self.log(format!("install {c}"));
            if let Some(tx) = &self.signal_in_install {
                tx.send(Some("SIGTERM")).unwrap();
                return Err("helm killed".into());
            }
            if self.fail_install {
                Err("helm failed".into())
            } else {
                Ok(String::new())
            }
        }
        async fn suites(&self, cell: &CellPlan, c: &String) -> Vec<SuiteReport> {
            self.log(format!("suites {c}"));
            if self.hang_in_suites {
                std::future::pending::<()>().await;
            }
            vec![SuiteReport {
                suite: "dns".into(),
                checks: cell.suites[0]
                    .checks
                    .iter()
                    .map(|k| CheckReport {
                        name: k.name.clone(),
                        duration: Duration::from_millis(1),
                        outcome: if self.fail_check && k.name == "dns::pod-a-record" {
                            Outcome::Failed {
                                message: "NXDOMAIN".into(),
                                detail: String::new(),
                            }
                        } else {
                            Outcome::Passed
                        },
                        transcript: String::new(),
                    })
                    .collect(),
                setup_transcript: String::new(),
            }]
        }
        async fn collect(&self, _: &CellPlan, c: &String) -> Result<String, String> {
            self.log(format!("collect {c}"));
            Ok("reports/artifacts".into())
        }
        async fn destroy(&self, c: String) -> Result<(), String> {
            self.log(format!("destroy {c}"));
            Ok(())
        }
        fn keep(&self, c: &String) -> String {
            format!("harness down {c}")
        }
    }

    fn no_interrupt() -> (watch::Sender<Option<&'static str>>, Interrupt) {
        watch::channel(None)
    }

    /// One run of the talos-basic plan with `opts` and no interrupt.
    async fn run_basic(fake: &Fake, opts: RunOptions) -> (RunReport, Vec<String>) {
        let (_tx, rx) = no_interrupt();
        run_plan(fake, &plan_of(&["talos-basic"]), "r1", &opts, rx, |_| {}).await
    }

    fn phase_names(c: &CellReport) -> Vec<(&'static str, bool)> {
        c.phases
            .iter()
            .map(|p| (p.name.as_str(), matches!(p.outcome, Outcome::Passed)))
            .collect()
    }

    #[tokio::test]
    async fn a_passing_cell_runs_every_phase_and_destroys() {
        let fake = Fake::default();
        let (_tx, rx) = no_interrupt();
        let mut writes = 0;
        let (run, _) = run_plan(
            &fake,
            &plan_of(&["talos-basic"]),
            "r1",
            &RunOptions::default(),
            rx,
            |_| writes += 1,
        )
        .await;
        assert_eq!(
            fake.calls(),
            [
                "provision talos-basic",
                "install cluster-talos-basic",
                "suites cluster-talos-basic",
                "destroy cluster-talos-basic"
            ]
        );
        assert_eq!(
            phase_names(&run.cells[0]),
            [
                ("provision", true),
                ("install", true),
                ("suites", true),
                ("destroy", true)
            ]
        );
        assert_eq!(exit_status(&run), 0);
        assert!(writes >= 1);
    }

    #[tokio::test]
    async fn a_failed_check_collects_then_destroys_and_exits_1() {
        let fake = Fake {
            fail_check: true,
            ..Default::default()
        };
        let (run, notes) = run_basic(&fake, RunOptions::default()).await;
        assert_eq!(
            fake.calls()[3..],
            ["collect cluster-talos-basic", "destroy cluster-talos-basic"]
        );
        assert_eq!(exit_status(&run), 1);
        assert!(notes[0].contains("diagnostics in reports/artifacts"));
    }

    #[tokio::test]
    async fn install_failure_skips_checks_with_the_reason_and_keep_on_failure_keeps() {
        let fake = Fake {
            fail_install: true,
            ..Default::default()
        };
        let (run, notes) = run_basic(
            &fake,
            RunOptions {
                keep_on_failure: true,
                ..Default::default()
            },
        )
        .await;
        assert!(!fake.calls().iter().any(|c| c.starts_with("destroy")));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("kept for debugging: harness down cluster-talos-basic"))
        );
        let check = &run.cells[0].suites[0].checks[0];
        assert_eq!(
            check.outcome,
            Outcome::Skipped {
                reason: "not run: install failed: helm failed".into()
            }
        );
        assert_eq!(exit_status(&run), 1);
    }

    #[tokio::test]
    async fn provisioning_failure_has_nothing_to_destroy() {
        let fake = Fake {
            fail_provision: true,
            ..Default::default()
        };
        let (run, _) = run_basic(&fake, RunOptions::default()).await;
        assert_eq!(fake.calls(), ["provision talos-basic"]);
        assert_eq!(phase_names(&run.cells[0]), [("provision", false)]);
        assert_eq!(exit_status(&run), 1);
    }

    #[tokio::test]
    async fn an_interrupt_destroys_marks_the_rest_and_exits_130() {
        let fake = Fake {
            hang_in_suites: true,
            ..Default::default()
        };
        let (tx, rx) = watch::channel(None);
        let plan = plan_of(&["talos-basic", "k8s-local"]);
        let written = Mutex::new(Vec::new());
        let opts = RunOptions::default();
        let runner = run_plan(&fake, &plan, "r1", &opts, rx, |r| {
            written.lock().unwrap().push(r.interrupted.clone())
        });
        let interrupter = async {
            while !fake.calls().iter().any(|c| c.starts_with("suites")) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tx.send(Some("SIGINT")).unwrap();
        };
        let ((run, _), ()) = tokio::join!(runner, interrupter);
        assert_eq!(
            fake.calls(),
            [
                "provision talos-basic",
                "install cluster-talos-basic",
                "suites cluster-talos-basic",
                "destroy cluster-talos-basic"
            ]
        );
        assert_eq!(run.interrupted.as_deref(), Some("SIGINT"));
        assert_eq!(exit_status(&run), 130);
        let second = &run.cells[1];
        assert!(second.phases.is_empty());
        assert_eq!(
            second.suites[0].checks[0].outcome,
            Outcome::Skipped {
                reason: "not run: interrupted by SIGINT".into()
            }
        );
        assert_eq!(
            written.lock().unwrap().last().unwrap().as_deref(),
            Some("SIGINT")
        );
    }

    #[tokio::test]
    async fn an_interrupt_overrides_keep_on_failure() {
        let (tx, rx) = watch::channel(None);
        let fake = Fake {
            signal_in_install: Some(tx),
            ..Default::default()
        };
        let opts = RunOptions {
            keep_on_failure: true,
            ..Default::default()
        };
        let (run, notes) =
            run_plan(&fake, &plan_of(&["talos-basic"]), "r1", &opts, rx, |_| {}).await;
        assert_eq!(
            fake.calls().last().map(String::as_str),
            Some("destroy cluster-talos-basic")
        );
        assert!(!notes.iter().any(|n| n.contains("kept")), "{notes:?}");
        assert_eq!(exit_status(&run), 143);
    }
}
