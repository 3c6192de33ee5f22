//! The PodSecurity judges on admission answers as the API server gives them: 403 Status bodies,
//! Warning headers, ReplicaSets and events.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Event;
use std::collections::BTreeMap;
use suites::kit::Verdict;
use suites::kit::namespace::{PSA_AUDIT, PSA_ENFORCE, PSA_WARN, PsaLabels, PsaLevel};
use suites::kit::talos::NodeOs;
use suites::pod_security::admission::{self, Admission};
use suites::pod_security::judge::{
    self, DefaultLevel, DeploymentObs, HarnessNamespace, NsLabels, Refusal, RsState, Violation,
};
use suites::pod_security::observe;

fn status(name: &str) -> Admission {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    admission::classify(403, vec![], text.as_bytes()).unwrap()
}

fn refusal(v: Violation, a: Admission) -> Refusal {
    Refusal {
        namespace: "harness-pod-security-r1-baseline".into(),
        violation: v,
        admission: a,
    }
}

#[test]
fn each_baseline_refusal_must_name_its_own_control() {
    for (v, f) in [
        (Violation::NetRaw, "status-403-baseline-net-raw.json"),
        (
            Violation::HostNetwork,
            "status-403-baseline-host-network.json",
        ),
        (Violation::HostPort, "status-403-baseline-host-port.json"),
        (Violation::Privileged, "status-403-baseline-privileged.json"),
    ] {
        assert!(
            judge::refusal(&refusal(v, status(f))).is_pass(),
            "{v:?} on {f}"
        );
    }
    // The NET_RAW refusal does not prove the hostNetwork control.
    let v = judge::refusal(&refusal(
        Violation::HostNetwork,
        status("status-403-baseline-net-raw.json"),
    ));
    assert!(v.message().starts_with("pod psa-host-network was refused, but not by PodSecurity baseline control \"host namespaces\""), "{}", v.message());
}

#[test]
fn an_rbac_403_is_not_a_podsecurity_refusal() {
    let v = judge::refusal(&refusal(
        Violation::NetRaw,
        status("status-403-rbac-forbidden.json"),
    ));
    assert!(!v.is_pass());
    assert!(
        v.message().contains("cannot create resource"),
        "{}",
        v.message()
    );
}

#[test]
fn admission_in_baseline_fails_with_where_to_look() {
    let v = judge::refusal(&refusal(
        Violation::Privileged,
        Admission::Admitted { warnings: vec![] },
    ));
    assert!(v.message().starts_with("namespace harness-pod-security-r1-baseline (enforce=baseline) admitted pod psa-privileged"), "{}", v.message());
}

#[test]
fn warn_needs_the_restricted_warning() {
    let w = std::fs::read_to_string(format!(
        "{}/tests/fixtures/warning-header-restricted.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let text = admission::parse_warning(w.trim()).unwrap();
    assert!(
        judge::warning(&Admission::Admitted {
            warnings: vec![text]
        })
        .is_pass()
    );
    assert!(!judge::warning(&Admission::Admitted { warnings: vec![] }).is_pass());
    assert!(!judge::warning(&status("status-403-baseline-net-raw.json")).is_pass());
}

#[test]
fn restricted_admission_must_be_clean() {
    assert!(judge::restricted_admits(&Admission::Admitted { warnings: vec![] }).is_pass());
    assert!(!judge::restricted_admits(&status("status-403-restricted-net-raw.json")).is_pass());
}

#[test]
fn deployment_passes_only_with_a_podsecurity_failedcreate() {
    let rs: ReplicaSet = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/replicaset-failedcreate-baseline.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let events: k8s_openapi::List<Event> = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/eventlist-failedcreate-baseline.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let w = std::fs::read_to_string(format!(
        "{}/tests/fixtures/warning-header-baseline-deployment.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let obs = DeploymentObs {
        namespace: "harness-pod-security-r1-baseline".into(),
        admission: Admission::Admitted {
            warnings: vec![admission::parse_warning(w.trim()).unwrap()],
        },
        replica_set: Some(observe::rs_state(&rs)),
        events: events.items.into_iter().filter_map(|e| e.message).collect(),
        gave_up: None,
    };
    let v = judge::deployment(&obs);
    assert!(v.is_pass(), "{v:?}");
    assert!(v.message().contains("ReplicaSet psa-deployment-6d9f7c5b8d records FailedCreate: pods \"psa-deployment-6d9f7c5b8d-x7k2p\" is forbidden"), "{}", v.message());
    let created = DeploymentObs {
        replica_set: Some(RsState {
            name: "psa-deployment-1".into(),
            replicas: 1,
            failure: None,
        }),
        events: vec![],
        ..obs.clone()
    };
    assert!(
        judge::deployment(&created)
            .message()
            .contains("PodSecurity did not enforce on the controller's pods")
    );
    let none = DeploymentObs {
        replica_set: None,
        gave_up: Some("waited 60s".into()),
        ..obs
    };
    assert!(!judge::deployment(&none).is_pass());
}

#[test]
fn cluster_default_must_be_exactly_baseline() {
    let base = DefaultLevel {
        namespace: "harness-pod-security-r1-default".into(),
        labels: BTreeMap::from([("io.harness.run-id".to_string(), "r1".to_string())]),
        violating: status("status-403-baseline-net-raw.json"),
        compliant: Admission::Admitted { warnings: vec![] },
        node_os: NodeOs {
            os_images: ["Talos (v1.11.5)".to_string()].into(),
        },
    };
    assert!(judge::default_level(&base).is_pass());
    let open = DefaultLevel {
        violating: Admission::Admitted { warnings: vec![] },
        ..base.clone()
    };
    assert!(
        judge::default_level(&open)
            .message()
            .contains("cluster.apiServer.admissionControl")
    );
    let strict = DefaultLevel {
        violating: status("status-403-restricted-net-raw.json"),
        ..base.clone()
    };
    assert!(
        judge::default_level(&strict)
            .message()
            .starts_with("the cluster default is restricted, not baseline")
    );
    // kind's nodes report their Debian base image (kindest/node is built on Debian 12).
    let kind = DefaultLevel {
        node_os: NodeOs {
            os_images: ["Debian GNU/Linux 12 (bookworm)".to_string()].into(),
        },
        ..open.clone()
    };
    let m = judge::default_level(&kind).message().to_string();
    assert!(
        m.contains("`Debian GNU/Linux 12 (bookworm)`, not Talos"),
        "{m}"
    );
    assert!(!m.contains("cluster.apiServer.admissionControl"), "{m}");
    let mut labelled = base;
    labelled
        .labels
        .insert(PSA_ENFORCE.into(), "baseline".into());
    assert!(!judge::default_level(&labelled).is_pass());
}

#[test]
fn harness_namespace_needs_the_label_and_the_admissions() {
    let ok = HarnessNamespace {
        namespace: "harness-pod-security-r1".into(),
        labels: BTreeMap::from([(PSA_ENFORCE.to_string(), "privileged".to_string())]),
        client: Admission::Admitted { warnings: vec![] },
        host_netns: Admission::Admitted { warnings: vec![] },
    };
    assert!(judge::harness_namespace(&ok).is_pass());
    let unlabelled = HarnessNamespace {
        labels: BTreeMap::new(),
        ..ok.clone()
    };
    assert!(
        judge::harness_namespace(&unlabelled)
            .message()
            .contains("expected privileged")
    );
    let refused = HarnessNamespace {
        host_netns: status("status-403-baseline-host-network.json"),
        ..ok
    };
    assert!(
        judge::harness_namespace(&refused)
            .message()
            .contains("host-netns (hostNetwork) refused")
    );
}

#[test]
fn namespace_levels_name_the_wrong_label() {
    let good = NsLabels {
        name: "harness-pod-security-r1-warn".into(),
        expected: PsaLabels {
            enforce: Some(PsaLevel::Privileged),
            audit: Some(PsaLevel::Privileged),
            warn: Some(PsaLevel::Restricted),
        },
        labels: BTreeMap::from([
            (PSA_ENFORCE.to_string(), "privileged".to_string()),
            (PSA_AUDIT.to_string(), "privileged".to_string()),
            (PSA_WARN.to_string(), "restricted".to_string()),
        ]),
    };
    assert!(judge::namespace_levels(&vec![good.clone()]).is_pass());
    let mut bad = good;
    bad.labels.insert(PSA_WARN.into(), "baseline".into());
    assert_eq!(
        judge::namespace_levels(&vec![bad]),
        Verdict::Fail("namespace harness-pod-security-r1-warn: pod-security.kubernetes.io/warn is baseline, expected restricted; something rewrote the labels the harness set (a policy engine or namespace controller?)".into())
    );
}
