//! Selecting checks by suite and by `suite::check` glob, as `cilium connectivity test --test`
//! selects tests.

use suites::{CATALOG, CheckFilter, FilterError, SuiteDecl};

fn suite(name: &str) -> &'static SuiteDecl {
    CATALOG.iter().find(|s| s.name.as_str() == name).unwrap()
}

#[test]
fn unknown_suite_lists_known_ones() {
    let err = CheckFilter::new(&["dnss".into()], &[]).err().unwrap();
    assert_eq!(
        err.to_string(),
        "unknown suite 'dnss'; known suites: connectivity, dns, pod-security, gateway-api, wireguard, lb-ipam, network-policy, features"
    );
}

#[test]
fn pattern_matching_nothing_is_an_error() {
    let err = CheckFilter::new(&[], &["dns::nope".into()]).err().unwrap();
    assert!(matches!(err, FilterError::NoMatch { .. }));
}

#[test]
fn negation_excludes_and_globs_include() {
    let f = CheckFilter::new(&[], &["dns::*".into(), "!dns::external-name".into()]).unwrap();
    let dns = suite("dns");
    assert!(f.selects(dns, "pod-a-record"));
    assert!(!f.selects(dns, "external-name"));
    assert!(!f.selects(suite("connectivity"), "pod-to-host"));
}

#[test]
fn only_negations_keep_everything_else() {
    let f = CheckFilter::new(&[], &["!pod-to-world".into()]).unwrap();
    let c = suite("connectivity");
    assert!(!f.selects(c, "pod-to-world"));
    assert!(f.selects(c, "pod-to-host"));
}

#[test]
fn suite_restriction_applies() {
    let f = CheckFilter::new(&["wireguard".into()], &[]).unwrap();
    assert!(f.selects(suite("wireguard"), "peer-count"));
    assert!(!f.selects(suite("dns"), "pod-a-record"));
}

#[test]
fn the_network_policy_suite_filters_as_the_others_do() {
    let f = CheckFilter::new(&[], &["network-policy::*".into()]).unwrap();
    let np = suite("network-policy");
    assert!(f.selects(np, "l7-http"));
    assert!(!f.selects(suite("dns"), "pod-a-record"));
    let f = CheckFilter::new(
        &[],
        &["network-policy::*".into(), "!network-policy::l7-*".into()],
    )
    .unwrap();
    assert!(f.selects(np, "deny-wins"));
    assert!(!f.selects(np, "l7-http"));
}

#[test]
fn globs_are_taken_as_written() {
    let dns = suite("dns");
    let all = CheckFilter::new(&[], &["*".into()]).unwrap();
    assert!(all.selects(dns, "pod-a-record"));
    assert!(all.selects(suite("connectivity"), "pod-to-host"));
    let f = CheckFilter::new(&[], &["dns*".into()]).unwrap();
    assert!(f.selects(dns, "pod-a-record"));
    assert!(!f.selects(suite("connectivity"), "pod-to-host"));
    let f = CheckFilter::new(&[], &["*::pod-*".into()]).unwrap();
    assert!(f.selects(dns, "pod-a-record"));
    assert!(f.selects(suite("connectivity"), "pod-to-host"));
}

#[test]
fn a_filter_leaving_nothing_is_an_error() {
    assert_eq!(
        CheckFilter::new(&[], &["!".into()]).err(),
        Some(FilterError::EmptyExclusion)
    );
    let err = CheckFilter::new(&[], &["!*".into()]).err().unwrap();
    assert!(matches!(err, FilterError::NothingSelected { .. }), "{err}");
    assert!(err.to_string().contains("'!*'"), "{err}");
    let err = CheckFilter::new(&[], &["dns::*".into(), "!dns*".into()])
        .err()
        .unwrap();
    assert!(matches!(err, FilterError::NothingSelected { .. }), "{err}");
    let err = CheckFilter::new(&["wireguard".into()], &["dns::*".into()])
        .err()
        .unwrap();
    assert!(matches!(err, FilterError::NothingSelected { .. }), "{err}");
}
