//! The checks the harness runs against a cluster.
//!
//! A check is declared, not engineered: it has a stable name (`suite::check`), a sentence saying
//! what it proves, the anchor it mirrors, and an applicability rule over the cluster's
//! [`Features`]. This crate never knows how the cluster was made (Docker, Talos, Omni): it sees
//! only the features and, at run time, a Kubernetes client.

pub mod catalog;
pub mod connectivity;
pub mod dns;
pub mod features;
pub mod filter;
pub mod kit;
pub mod pod_security;
pub mod runner;

pub use catalog::{CATALOG, CheckDecl, CheckStatus, NOT_IMPLEMENTED, SuiteDecl, SuiteName};
pub use features::{Applicability, Features, Routing, RunContext};
pub use filter::{CheckFilter, FilterError};
pub use runner::{
    CheckOutcome, CheckRun, Cleanup, RunOptions, SuiteRun, implemented_checks, run_suite,
    run_suite_with,
};
