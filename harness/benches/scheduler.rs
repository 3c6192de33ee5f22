//! The run engine's scheduler with fake phases on tokio's paused clock: the makespan of the
//! default and nightly matrices at `--jobs 1` against the default `--jobs` the harness picks for
//! an 8-core host with 32 GiB free (target: at least 2x shorter). Criterion's figure for each
//! case is the simulated makespan (`iter_custom` returns tokio's elapsed time), so the report
//! reads in simulated seconds; the real time is milliseconds.
//!
//! Phase durations, stated as the bench's parameters:
//! - provision 115 s: Talos' Docker quickstart shows its nodes Ready at AGE 115s after
//!   `talosctl cluster create` (talos.dev, Introduction > Quickstart, v1.4 and earlier);
//! - install 300 s: the bound cilium-cli puts on an install becoming ready
//!   (`cilium status --wait`, `--wait-duration` default 5m0s), taken as the worst case;
//! - each suite 60 s and destroy 10 s: assumed, not documented; change them here.
//!
//! Host: 8 CPUs, 32 GiB free; clusters of 1 control plane + 2 workers of 2 GiB (the defaults).

use criterion::{Criterion, criterion_group, criterion_main};
use harness::capacity::{ClusterSize, HostFacts, jobs};
use harness::matrix::{AxisFlags, MatrixSpec, expand};
use harness::plan::{CellPlan, Plan, PlanOptions, SuitePlan, plan};
use harness::profile::Catalog;
use harness::profile::overlay::Overlay;
use harness::report::{CheckReport, Outcome, SuiteReport};
use harness::run::{Deployer, Engine, EngineOptions, Step, Tester, signals};
use std::path::Path;
use std::time::Duration;
use suites::CheckFilter;

const PROVISION: Duration = Duration::from_secs(115);
const INSTALL: Duration = Duration::from_secs(300);
const SUITE: Duration = Duration::from_secs(60);
const DESTROY: Duration = Duration::from_secs(10);
const HOST: HostFacts = HostFacts {
    cpus: 8,
    free_mib: Some(32 * 1024),
};
const SIZE: ClusterSize = ClusterSize {
    nodes: 3,
    cpus_per_node: 2.0,
    memory_mib_per_node: 2048,
};

/// Every phase sleeps its stated time and passes.
struct Phases;

impl Deployer for Phases {
    type Cluster = ();
    type Target = ();
    async fn provision(&self, _: &CellPlan) -> Result<(), String> {
        tokio::time::sleep(PROVISION).await;
        Ok(())
    }
    async fn install(&self, _: &CellPlan, _: &()) -> Result<String, String> {
        tokio::time::sleep(INSTALL).await;
        Ok(String::new())
    }
    async fn target(&self, _: &()) -> Result<(), String> {
        Ok(())
    }
    async fn tear_down(&self, _: ()) -> Result<String, String> {
        tokio::time::sleep(DESTROY).await;
        Ok(String::new())
    }
    fn keep(&self, _: &()) -> String {
        String::new()
    }
    fn leftovers(&self) -> String {
        String::new()
    }
}

impl Tester for Phases {
    type Target = ();
    async fn suite(&self, _: &CellPlan, _: &(), suite: &SuitePlan) -> SuiteReport {
        tokio::time::sleep(SUITE).await;
        SuiteReport {
            suite: suite.suite.to_string(),
            checks: suite
                .checks
                .iter()
                .map(|c| CheckReport {
                    name: c.name.clone(),
                    duration: Duration::ZERO,
                    outcome: Outcome::Passed,
                    transcript: String::new(),
                })
                .collect(),
            setup_transcript: String::new(),
            duration: Duration::ZERO,
            observed: None,
        }
    }
    async fn collect(&self, _: &CellPlan, _: &()) -> Result<String, String> {
        Ok(String::new())
    }
}

fn matrix(file: Option<&str>) -> Plan {
    let catalog = Catalog::embedded();
    let path = file.map(|f| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(f));
    let spec = MatrixSpec::load(path.as_deref(), AxisFlags::default()).unwrap();
    let (cells, excluded) = expand(&spec, &catalog).unwrap();
    let opts = PlanOptions {
        values_files: vec![],
        filter: CheckFilter::new(&[], &[]).unwrap(),
        nodes: 2,
        external_target: None,
        outside: Some(harness::plan::talos_in_docker_outside()),
    };
    plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts).unwrap()
}

/// The simulated time the engine takes for `plan` at `jobs` cells at once (suites one at a
/// time, so only the cell scheduling is measured).
fn makespan(plan: &Plan, jobs: usize) -> Duration {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let (_tx, rx) = signals::never();
            let engine = Engine {
                deployer: &Phases,
                tester: &Phases,
                steps: &[Step::Install, Step::Suites { label: None }],
                opts: EngineOptions {
                    run_id: "bench".into(),
                    keep_on_failure: false,
                    jobs,
                    suite_jobs: 1,
                    provenance: Default::default(),
                },
                progress: &(),
            };
            let start = tokio::time::Instant::now();
            let out = engine.run(plan, &rx, |_| {}).await;
            assert_eq!(out.report.cells.len(), plan.cells.len());
            start.elapsed()
        })
}

fn scheduler(c: &mut Criterion) {
    let mut group = c.benchmark_group("makespan");
    group.sample_size(10);
    for (name, file) in [
        ("default", None),
        ("nightly", Some("profiles/matrix/nightly.yaml")),
    ] {
        let plan = matrix(file);
        let picked = jobs(None, HOST, SIZE, plan.cells.len()).jobs;
        // `--list` (nextest lists every target before it runs one) only names the benches: the
        // figures are worked out when they run, and go to stderr so stdout stays the list.
        if !std::env::args().any(|a| a == "--list") {
            figures(name, &plan, picked);
        }
        for j in [1, picked] {
            group.bench_function(format!("{name}/jobs-{j}"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| makespan(&plan, j)).sum())
            });
        }
    }
    group.finish();
}

/// The makespan at `--jobs 1` against the picked default, with the README's target asserted.
fn figures(name: &str, plan: &Plan, picked: usize) {
    let serial = makespan(plan, 1);
    let parallel = makespan(plan, picked);
    let ratio = serial.as_secs_f64() / parallel.as_secs_f64();
    eprintln!(
        "{name} matrix, {} cells: --jobs 1 {:.0} min, --jobs {picked} (default for 8 CPUs, 32 GiB) {:.0} min: {ratio:.1}x shorter",
        plan.cells.len(),
        serial.as_secs_f64() / 60.0,
        parallel.as_secs_f64() / 60.0
    );
    assert!(
        ratio >= 2.0,
        "{name}: the default --jobs must at least halve the makespan, got {ratio:.2}x"
    );
}

criterion_group!(benches, scheduler);
criterion_main!(benches);
