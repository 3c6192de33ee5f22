//! Performance targets: planning the default matrix under 20 ms, writing a 10,000-testcase
//! JUnit report under 50 ms. `cargo bench -p harness` (or `make bench`) prints the figures.

use criterion::{Criterion, criterion_group, criterion_main};
use harness::matrix::{AxisFlags, Cell, MatrixSpec, expand};
use harness::plan::{PlanOptions, plan, text};
use harness::profile::Catalog;
use harness::profile::overlay::Overlay;
use harness::report::{
    CellReport, CheckReport, Outcome, PhaseName, PhaseReport, RunReport, SuiteReport, junit,
};
use harness::version::{CiliumVersion, KubernetesVersion, TalosVersion};
use std::hint::black_box;
use std::time::Duration;
use suites::CheckFilter;

/// Everything `harness plan` does for the default matrix, from the embedded text to the output.
fn plan_default_matrix() -> String {
    let catalog = Catalog::embedded();
    let spec = MatrixSpec::load(None, AxisFlags::default()).unwrap();
    let (cells, excluded) = expand(&spec, &catalog).unwrap();
    let opts = PlanOptions {
        values_files: vec![],
        filter: CheckFilter::new(&[], &[]).unwrap(),
        nodes: 2,
        external_target: Some("one.one.one.one".into()),
        outside: Some(harness::plan::talos_in_docker_outside()),
    };
    let p = plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts).unwrap();
    // Every profile on the newest releases, plus seed 000's pinned Cilium.
    assert_eq!(p.cells.len(), spec.profiles.len() + 1);
    let jobs = harness::capacity::jobs(
        None,
        harness::capacity::HostFacts {
            cpus: 8,
            free_mib: Some(32 * 1024),
        },
        harness::capacity::ClusterSize {
            nodes: 3,
            cpus_per_node: 2.0,
            memory_mib_per_node: 2048,
        },
        p.cells.len(),
    );
    text::render(&p, &jobs)
}

/// 100 cells x 4 suites x 25 checks = 10,000 testcases, a tenth of them failing with transcripts.
fn ten_thousand_checks() -> RunReport {
    let cells = (0..100)
        .map(|i| CellReport {
            cell: Cell {
                profile: format!("profile-{i}"),
                cilium: CiliumVersion::parse("1.18.4").unwrap(),
                talos: TalosVersion::parse("v1.11.5").unwrap(),
                kubernetes: KubernetesVersion::parse("1.34.1").unwrap(),
            },
            seed: "000_0b0a51f430e0de1c.txt".into(),
            phases: vec![PhaseReport {
                name: PhaseName::Install,
                duration: Duration::from_secs(90),
                outcome: Outcome::Passed,
            }],
            suites: (0..4)
                .map(|s| SuiteReport {
                    suite: format!("suite-{s}"),
                    setup_transcript: String::new(),
                    duration: std::time::Duration::ZERO,
                    observed: None,
                    checks: (0..25)
                        .map(|c| CheckReport {
                            name: format!("suite-{s}::check-{c}"),
                            duration: Duration::from_millis(250),
                            outcome: if c % 10 == 0 {
                                Outcome::Failed {
                                    message: "curl exit 28 (timeout)".into(),
                                    detail: "last seen: SYN sent".into(),
                                }
                            } else {
                                Outcome::Passed
                            },
                            transcript:
                                "$ curl --silent --fail http://10.244.1.7:8080/\nexit 0 after 3ms\n"
                                    .into(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    RunReport {
        run_id: "bench".into(),
        interrupted: None,
        cells,
        provenance: Default::default(),
    }
}

fn benches(c: &mut Criterion) {
    c.bench_function("plan default matrix (7 profiles + 1 seed pin)", |b| {
        b.iter(|| black_box(plan_default_matrix()))
    });
    let run = ten_thousand_checks();
    c.bench_function("junit 10k testcases to XML", |b| {
        b.iter(|| black_box(junit::to_xml(&junit::to_junit(black_box(&run))).unwrap()))
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(group);
