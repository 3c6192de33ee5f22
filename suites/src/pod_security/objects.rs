//! What the PodSecurity suite creates: namespaces at each level (and one left unlabelled), and
//! the pods and Deployment it submits to admission, each breaking or meeting one control.

use super::judge::{DEPLOYMENT, Violation};
use crate::kit::check::Env;
use crate::kit::namespace::{self, PsaLabels, PsaLevel};
use crate::kit::workload::{self, Placement};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, Pod, PodTemplateSpec, SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// The suffixes of the namespaces this suite creates next to its own.
pub const BASELINE: &str = "baseline";
pub const RESTRICTED: &str = "restricted";
pub const WARN: &str = "warn";
pub const UNLABELLED: &str = "default";

pub fn levels(env: &Env) -> Vec<(String, PsaLabels)> {
    let name = |s| namespace::namespace_name(&env.run_id, env.suite, Some(s));
    vec![
        (name(BASELINE), PsaLabels::enforce(PsaLevel::Baseline)),
        (name(RESTRICTED), PsaLabels::enforce(PsaLevel::Restricted)),
        (
            name(WARN),
            // Enforce privileged so the warning is the only reaction, whatever the default.
            PsaLabels {
                enforce: Some(PsaLevel::Privileged),
                audit: Some(PsaLevel::Privileged),
                warn: Some(PsaLevel::Restricted),
            },
        ),
        (name(UNLABELLED), PsaLabels::default()),
    ]
}

/// A pod breaking one baseline control, as the refusal checks submit it.
pub fn violating_pod(violation: Violation, env: &Env) -> Pod {
    let mut c = workload::container("c", &env.images.client);
    c.command = Some(workload::idle_command());
    let mut host_network = None;
    match violation {
        Violation::NetRaw => {
            c.security_context = Some(SecurityContext {
                capabilities: Some(Capabilities {
                    add: Some(vec!["NET_RAW".into()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            })
        }
        Violation::HostNetwork => host_network = Some(true),
        Violation::HostPort => {
            c.ports = Some(vec![ContainerPort {
                container_port: 8080,
                host_port: Some(8080),
                ..ContainerPort::default()
            }])
        }
        Violation::Privileged => {
            c.security_context = Some(SecurityContext {
                privileged: Some(true),
                ..SecurityContext::default()
            })
        }
    }
    let mut p = workload::pod(
        violation.pod_name(),
        &env.run_labels(),
        &Placement::Anywhere,
        vec![c],
    );
    if let Some(s) = p.spec.as_mut() {
        s.host_network = host_network;
    }
    p
}

pub fn restricted_pod(env: &Env) -> Pod {
    let mut c = workload::container("c", &env.images.client);
    c.command = Some(workload::idle_command());
    c.security_context = Some(SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        run_as_non_root: Some(true),
        run_as_user: Some(65534),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    });
    workload::pod(
        "psa-restricted",
        &env.run_labels(),
        &Placement::Anywhere,
        vec![c],
    )
}

/// Baseline-compliant, restricted-violating: what a warn=restricted namespace warns about.
pub fn plain_pod(env: &Env, name: &str) -> Pod {
    let mut c = workload::container("c", &env.images.client);
    c.command = Some(workload::idle_command());
    workload::pod(name, &env.run_labels(), &Placement::Anywhere, vec![c])
}

pub fn violating_deployment(env: &Env) -> Deployment {
    let pod = violating_pod(Violation::NetRaw, env);
    let labels = BTreeMap::from([(workload::LABEL_NAME.to_string(), DEPLOYMENT.to_string())]);
    let mut template_labels = env.run_labels();
    template_labels.extend(labels.clone());
    Deployment {
        metadata: ObjectMeta {
            name: Some(DEPLOYMENT.into()),
            labels: Some(env.run_labels()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(template_labels),
                    ..ObjectMeta::default()
                }),
                spec: pod.spec,
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}
