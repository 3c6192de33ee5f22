//! PodSecurity observations: admission answers (403 Status bodies, Warning headers), the
//! ReplicaSet and its events, namespace labels, and the nodes' operating system.

use crate::Scenario;
use crate::case;
use crate::common::{fixture, fixture_json};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Event;
use std::collections::BTreeMap;
use suites::kit::namespace::{PSA_AUDIT, PSA_ENFORCE, PSA_WARN, PsaLabels, PsaLevel};
use suites::kit::talos::NodeOs;
use suites::pod_security::admission::{self, Admission};
use suites::pod_security::judge::{
    DefaultLevel, DeploymentObs, HarnessNamespace, NsLabels, Refusal, RsState, Violation,
};
use suites::pod_security::observe;

fn refused(name: &str) -> Admission {
    admission::classify(403, vec![], fixture(name).as_bytes()).unwrap()
}

fn warned(name: &str) -> Admission {
    Admission::Admitted {
        warnings: vec![admission::parse_warning(fixture(name).trim()).unwrap()],
    }
}

fn admitted() -> Admission {
    Admission::Admitted { warnings: vec![] }
}

fn refusal(violation: Violation, admission: Admission) -> Refusal {
    Refusal {
        namespace: "harness-pod-security-r1-baseline".into(),
        violation,
        admission,
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn warn_only(warn: &str) -> Vec<NsLabels> {
    vec![NsLabels {
        name: "harness-pod-security-r1-warn".into(),
        expected: PsaLabels {
            enforce: Some(PsaLevel::Privileged),
            audit: Some(PsaLevel::Privileged),
            warn: Some(PsaLevel::Restricted),
        },
        labels: labels(&[
            (PSA_ENFORCE, "privileged"),
            (PSA_AUDIT, "privileged"),
            (PSA_WARN, warn),
        ]),
    }]
}

fn deployment() -> DeploymentObs {
    let rs: ReplicaSet =
        serde_json::from_value(fixture_json("replicaset-failedcreate-baseline.json")).unwrap();
    let events: k8s_openapi::List<Event> =
        serde_json::from_value(fixture_json("eventlist-failedcreate-baseline.json")).unwrap();
    DeploymentObs {
        namespace: "harness-pod-security-r1-baseline".into(),
        admission: warned("warning-header-baseline-deployment.txt"),
        replica_set: Some(observe::rs_state(&rs)),
        events: events.items.into_iter().filter_map(|e| e.message).collect(),
        gave_up: None,
    }
}

fn default_level(violating: Admission, os_image: &str) -> DefaultLevel {
    DefaultLevel {
        namespace: "harness-pod-security-r1-default".into(),
        labels: labels(&[("io.harness.run-id", "r1")]),
        violating,
        compliant: admitted(),
        node_os: NodeOs {
            os_images: [os_image.to_string()].into(),
        },
    }
}

fn harness_namespace(enforce: &str, client: Admission) -> HarnessNamespace {
    HarnessNamespace {
        namespace: "harness-pod-security-r1".into(),
        labels: labels(&[(PSA_ENFORCE, enforce)]),
        client,
        host_netns: admitted(),
    }
}

pub fn scenarios() -> Vec<Scenario> {
    const TALOS: &str = "Talos (v1.11.5)";
    vec![
        case(
            "namespace-levels",
            "the labels as created",
            &warn_only("restricted"),
        ),
        case(
            "namespace-levels",
            "warn rewritten to baseline",
            &warn_only("baseline"),
        ),
        case(
            "baseline-refuses-net-raw",
            "refused naming non-default capabilities",
            &refusal(
                Violation::NetRaw,
                refused("status-403-baseline-net-raw.json"),
            ),
        ),
        case(
            "baseline-refuses-host-network",
            "refused, but for NET_RAW",
            &refusal(
                Violation::HostNetwork,
                refused("status-403-baseline-net-raw.json"),
            ),
        ),
        case(
            "baseline-refuses-host-port",
            "refused naming hostPort",
            &refusal(
                Violation::HostPort,
                refused("status-403-baseline-host-port.json"),
            ),
        ),
        case(
            "baseline-refuses-privileged",
            "admitted",
            &refusal(Violation::Privileged, admitted()),
        ),
        case(
            "baseline-refuses-net-raw",
            "an RBAC 403, not PodSecurity",
            &refusal(Violation::NetRaw, refused("status-403-rbac-forbidden.json")),
        ),
        case(
            "restricted-admits-compliant-pod",
            "admitted without warnings",
            &admitted(),
        ),
        case(
            "restricted-admits-compliant-pod",
            "refused by restricted",
            &refused("status-403-restricted-net-raw.json"),
        ),
        case(
            "warn-level-warning-header",
            "admitted with the restricted warning",
            &warned("warning-header-restricted.txt"),
        ),
        case(
            "warn-level-warning-header",
            "admitted silently",
            &admitted(),
        ),
        case(
            "deployment-admitted-replicaset-failedcreate",
            "the ReplicaSet records FailedCreate",
            &deployment(),
        ),
        case(
            "deployment-admitted-replicaset-failedcreate",
            "the ReplicaSet created its pod",
            &DeploymentObs {
                replica_set: Some(RsState {
                    name: "psa-deployment-6d9f7c5b8d".into(),
                    replicas: 1,
                    failure: None,
                }),
                events: vec![],
                ..deployment()
            },
        ),
        case(
            "deployment-admitted-replicaset-failedcreate",
            "no ReplicaSet appeared",
            &DeploymentObs {
                replica_set: None,
                events: vec![],
                gave_up: Some("waited 60s for a ReplicaSet of deployment psa-deployment".into()),
                ..deployment()
            },
        ),
        case(
            "cluster-default-is-baseline",
            "Talos refuses NET_RAW as baseline",
            &default_level(refused("status-403-baseline-net-raw.json"), TALOS),
        ),
        case(
            "cluster-default-is-baseline",
            "Talos admits NET_RAW",
            &default_level(admitted(), TALOS),
        ),
        case(
            "cluster-default-is-baseline",
            "a kind cluster admits NET_RAW",
            &default_level(admitted(), "Debian GNU/Linux 12 (bookworm)"),
        ),
        case(
            "cluster-default-is-baseline",
            "the default is restricted",
            &default_level(refused("status-403-restricted-net-raw.json"), TALOS),
        ),
        case(
            "harness-namespaces-labelled",
            "privileged, both pods admitted",
            &harness_namespace("privileged", admitted()),
        ),
        case(
            "harness-namespaces-labelled",
            "baseline refuses the client",
            &harness_namespace("baseline", refused("status-403-baseline-net-raw.json")),
        ),
    ]
}
