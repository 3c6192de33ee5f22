//! The checks the harness runs against a cluster.
//!
//! A check is declared, not engineered: it has a stable name (`suite::check`), a sentence saying
//! what it proves, the anchor it mirrors, and an applicability rule over the cluster's
//! [`Features`]. This crate never knows how the cluster was made (Docker, Talos, Omni): it sees
//! only the features and, at run time, a Kubernetes client.
//!
//! Running checks (the harness's `e2e` side):
//!
//! ```no_run
//! # async fn run(client: kube::Client, ctx: suites::RunContext) -> Result<(), suites::kit::KitError> {
//! use suites::{CheckFilter, CheckOutcome, RunOptions, run_suite};
//! let opts = RunOptions::from_env("20261122-1")?; // pinned images + HARNESS_IMAGE_* overrides
//! let filter = CheckFilter::new(&[], &[]).expect("no filter");
//! let run = run_suite(&client, suites::dns::NAME, &ctx, &filter, &opts).await;
//! for check in &run.checks {
//!     // check.name() is `suite::check`; check.transcript.render() is the JUnit system-out.
//!     if let CheckOutcome::Failed { message } = &check.outcome {
//!         eprintln!("{}: {message}", check.name());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Module map: [`catalog`] is the registry of suites; each suite folder ([`connectivity`],
//! [`dns`], [`pod_security`], [`gateway_api`], [`wireguard`], [`lb_ipam`], [`network_policy`], [`features`]) declares its checks
//! once in its `mod.rs`, next to its rooms: `objects` (what it creates), `observe` (the only
//! code that talks to the cluster) and `judge` (pure). [`kit`] is the engine every suite shares
//! (namespaces, workloads, images, exec probes, retries, waits, transcripts); [`runner`] selects,
//! sets up, runs and cleans up; [`docs`] renders CHECKS.md and the README's checks tables.

pub mod catalog;
pub mod connectivity;
pub mod context;
pub mod dns;
pub mod docs;
pub mod features;
pub mod filter;
pub mod gateway_api;
pub mod kit;
pub mod lb_ipam;
pub mod network_policy;
pub mod pod_security;
pub(crate) mod rules;
pub mod runner;
pub mod wireguard;

pub use catalog::{
    CATALOG, CheckDecl, CheckStatus, NOT_IMPLEMENTED, SuiteDecl, SuiteName, all_check_names, suite,
};
pub use context::{
    Applicability, Features, L2Block, OutsideClient, OutsideOrigin, Routing, RunContext,
};
pub use filter::{CheckFilter, FilterError};
pub use runner::{
    CheckOutcome, CheckRun, Cleanup, RunOptions, SuiteRun, implemented_checks, run_suite,
    run_suite_from, run_suite_with,
};
