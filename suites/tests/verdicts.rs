//! What a person reads when a check ends: the verdict message of every judge, on observations
//! built from the fixtures, snapshot-tested so a change to any message is reviewed as a diff.
//!
//! Each scenario names a check and the observation its observe step would record; it is judged
//! through the check's declaration (`CheckDecl::judge_recorded`), the same JSON round trip a run
//! takes. Every judge must pass in one scenario and fail in another.

mod common;

#[path = "verdicts/connectivity.rs"]
mod connectivity;
#[path = "verdicts/dns.rs"]
mod dns;
#[path = "verdicts/features.rs"]
mod features;
#[path = "verdicts/gateway_api.rs"]
mod gateway_api;
#[path = "verdicts/lb_ipam.rs"]
mod lb_ipam;
#[path = "verdicts/network_policy.rs"]
mod network_policy;
#[path = "verdicts/pod_security.rs"]
mod pod_security;
#[path = "verdicts/wireguard.rs"]
mod wireguard;

#[path = "verdicts/scenario.rs"]
mod scenario;
pub use scenario::{Scenario, case, series, thrice};

use std::collections::BTreeMap;
use suites::catalog::{self, SuiteName};
use suites::kit::Verdict;

fn judged(suite: SuiteName, scenarios: &[Scenario]) -> Vec<(&'static str, &'static str, Verdict)> {
    let decl = catalog::suite(suite);
    scenarios
        .iter()
        .map(|s| {
            let check = decl
                .checks
                .iter()
                .find(|c| c.name == s.check)
                .unwrap_or_else(|| panic!("{suite} declares no check {}", s.check));
            let verdict = check
                .judge_recorded(&s.observation)
                .unwrap_or_else(|e| panic!("{}: {e}", s.case));
            (s.check, check.judge_name().unwrap(), verdict)
        })
        .collect()
}

fn render(suite: SuiteName, scenarios: &[Scenario]) -> String {
    judged(suite, scenarios)
        .into_iter()
        .zip(scenarios)
        .map(|((check, judge, v), s)| {
            let outcome = if v.is_pass() { "PASS" } else { "FAIL" };
            format!(
                "## {suite}::{check} ({judge}): {}\n{outcome}: {}\n",
                s.case,
                v.message()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn all() -> Vec<(SuiteName, Vec<Scenario>)> {
    scenario::all()
}

#[test]
fn connectivity_verdicts() {
    insta::assert_snapshot!(render(
        suites::connectivity::NAME,
        &connectivity::scenarios()
    ));
}

#[test]
fn dns_verdicts() {
    insta::assert_snapshot!(render(suites::dns::NAME, &dns::scenarios()));
}

#[test]
fn pod_security_verdicts() {
    insta::assert_snapshot!(render(
        suites::pod_security::NAME,
        &pod_security::scenarios()
    ));
}

#[test]
fn gateway_api_verdicts() {
    insta::assert_snapshot!(render(suites::gateway_api::NAME, &gateway_api::scenarios()));
}

#[test]
fn wireguard_verdicts() {
    insta::assert_snapshot!(render(suites::wireguard::NAME, &wireguard::scenarios()));
}

#[test]
fn features_verdicts() {
    insta::assert_snapshot!(render(suites::features::NAME, &features::scenarios()));
}

#[test]
fn network_policy_verdicts() {
    insta::assert_snapshot!(render(
        suites::network_policy::NAME,
        &network_policy::scenarios()
    ));
}

#[test]
fn lb_ipam_verdicts() {
    insta::assert_snapshot!(render(suites::lb_ipam::NAME, &lb_ipam::scenarios()));
}

/// Every judge of every implemented check passes in one scenario and fails in another, so no
/// verdict message goes unreviewed and no judge is one that cannot fail.
#[test]
fn every_judge_is_snapshotted_passing_and_failing() {
    let scenarios = all();
    assert_eq!(
        scenarios.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        catalog::CATALOG.iter().map(|s| s.name).collect::<Vec<_>>(),
        "one scenario list per suite, in catalog order"
    );
    let mut missing = Vec::new();
    for (suite, list) in &scenarios {
        let mut seen: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
        for (_, judge, v) in judged(*suite, list) {
            let e = seen.entry(judge).or_default();
            if v.is_pass() {
                e.0 = true;
            } else {
                e.1 = true;
            }
        }
        for check in catalog::suite(*suite).checks {
            let Some(judge) = check.judge_name() else {
                continue;
            };
            match seen.get(judge) {
                Some((true, true)) => {}
                other => missing.push(format!(
                    "{suite}::{} ({judge}): passing {}, failing {}",
                    check.name,
                    other.is_some_and(|o| o.0),
                    other.is_some_and(|o| o.1)
                )),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "judges without a passing and a failing scenario:\n{}",
        missing.join("\n")
    );
}

#[test]
fn an_observation_of_another_shape_is_refused_by_name() {
    let decl = catalog::suite(suites::dns::NAME);
    let check = decl
        .checks
        .iter()
        .find(|c| c.judge_name().is_some())
        .unwrap();
    let e = check
        .judge_recorded(&serde_json::json!({"unexpected": true}))
        .unwrap_err();
    assert!(
        e.contains("cannot judge this observation: it is not the shape judge::"),
        "{e}"
    );
}
