//! What the verdict snapshots and the recordings (`harness/tests/recordings.rs`) are built from:
//! one observation per scenario, named by its check and case. A test crate including this file
//! declares `mod common` and the suites' scenario modules at its root, as `verdicts.rs` does.

use serde::Serialize;
use std::time::Duration;
use suites::catalog::SuiteName;
use suites::kit::{Series, Try};

/// One observation a check's judge is run on.
pub struct Scenario {
    pub check: &'static str,
    pub case: &'static str,
    pub observation: serde_json::Value,
}

pub fn case<O: Serialize>(check: &'static str, case: &'static str, o: &O) -> Scenario {
    Scenario {
        check,
        case,
        observation: serde_json::to_value(o).unwrap(),
    }
}

/// A series of observations as `until_stable` leaves it: 3 wanted within 60 s.
pub fn series<T: Clone>(tries: &[T]) -> Series<T> {
    Series {
        required: 3,
        deadline: Duration::from_secs(60),
        elapsed: Duration::from_secs(2),
        tries: tries.iter().cloned().map(Try::Observed).collect(),
    }
}

pub fn thrice<T: Clone>(t: T) -> Series<T> {
    series(&[t.clone(), t.clone(), t])
}

/// Every suite's scenarios, in catalog order.
pub fn all() -> Vec<(SuiteName, Vec<Scenario>)> {
    vec![
        (suites::connectivity::NAME, crate::connectivity::scenarios()),
        (suites::dns::NAME, crate::dns::scenarios()),
        (suites::pod_security::NAME, crate::pod_security::scenarios()),
        (suites::gateway_api::NAME, crate::gateway_api::scenarios()),
        (suites::wireguard::NAME, crate::wireguard::scenarios()),
        (suites::lb_ipam::NAME, crate::lb_ipam::scenarios()),
        (
            suites::network_policy::NAME,
            crate::network_policy::scenarios(),
        ),
        (suites::features::NAME, crate::features::scenarios()),
    ]
}
