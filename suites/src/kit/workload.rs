//! Client and server workloads, placed on purpose.
//!
//! Placement is what makes "same node" and "other node" mean something: the echo server that
//! should share the client's node has a required podAffinity to it, the cross-node one a required
//! podAntiAffinity. A check then verifies the placement it relies on before judging traffic, since
//! a scheduler that ignored a rule would otherwise turn a cross-node test into a same-node one.
//! Bare Pods rather than Deployments: names are predictable for exec, nothing needs self-healing,
//! and a namespace delete removes them.

use crate::kit::errors::KitError;
use crate::kit::images::ImageRef;
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, HTTPGetAction, Pod, PodAffinity,
    PodAffinityTerm, PodAntiAffinity, PodSpec, Probe, SecurityContext, Service, ServicePort,
    ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;

/// Every workload pod carries its own name under this label; affinity rules select on it.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const HOSTNAME_TOPOLOGY: &str = "kubernetes.io/hostname";
/// The echo servers' port, named `http` in the pod and in the Service.
pub const HTTP_PORT: i32 = 8080;
pub const HTTP_PORT_NAME: &str = "http";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    Anywhere,
    /// Required podAffinity to the pod with this name.
    SameNodeAs(String),
    /// Required podAntiAffinity to the pod with this name.
    OtherNodeThan(String),
}

fn term(name: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(LABEL_NAME.to_string(), name.to_string())])),
            ..LabelSelector::default()
        }),
        topology_key: HOSTNAME_TOPOLOGY.into(),
        ..PodAffinityTerm::default()
    }
}

pub fn affinity(p: &Placement) -> Option<Affinity> {
    match p {
        Placement::Anywhere => None,
        Placement::SameNodeAs(n) => Some(Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![term(n)]),
                ..PodAffinity::default()
            }),
            ..Affinity::default()
        }),
        Placement::OtherNodeThan(n) => Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![term(n)]),
                ..PodAntiAffinity::default()
            }),
            ..Affinity::default()
        }),
    }
}

/// Keeps a shell image alive and exits at once on SIGTERM, so namespace deletion is quick.
pub fn idle_command() -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done".into(),
    ]
}

pub fn container(name: &str, image: &ImageRef) -> Container {
    Container {
        name: name.into(),
        image: Some(image.to_string()),
        image_pull_policy: Some("IfNotPresent".into()),
        ..Container::default()
    }
}

/// A pod with the harness's defaults: labelled, no service-account token, no service links
/// (neither is needed, and both add noise), short grace period.
pub fn pod(
    name: &str,
    run_labels: &BTreeMap<String, String>,
    placement: &Placement,
    containers: Vec<Container>,
) -> Pod {
    let mut labels = run_labels.clone();
    labels.insert(LABEL_NAME.into(), name.into());
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers,
            affinity: affinity(placement),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(1),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn net_raw() -> SecurityContext {
    // ping opens raw ICMP sockets; cilium-cli's clients add the same capability.
    SecurityContext {
        capabilities: Some(Capabilities {
            add: Some(vec!["NET_RAW".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// A probe client: idle shell with curl, ping and dig.
pub fn client_pod(
    name: &str,
    run_labels: &BTreeMap<String, String>,
    image: &ImageRef,
    placement: &Placement,
) -> Pod {
    let mut c = container("client", image);
    c.command = Some(idle_command());
    c.security_context = Some(net_raw());
    pod(name, run_labels, placement, vec![c])
}

/// A client in the node's network namespace, for host-to-pod.
pub fn host_netns_pod(
    name: &str,
    run_labels: &BTreeMap<String, String>,
    image: &ImageRef,
    placement: &Placement,
) -> Pod {
    let mut p = client_pod(name, run_labels, image, placement);
    if let Some(spec) = p.spec.as_mut() {
        spec.host_network = Some(true);
        // Keeps cluster DNS usable from the host namespace.
        spec.dns_policy = Some("ClusterFirstWithHostNet".into());
    }
    p
}

/// An HTTP echo server on port 8080 named `http`, Ready when it answers.
pub fn echo_pod(
    name: &str,
    run_labels: &BTreeMap<String, String>,
    image: &ImageRef,
    placement: &Placement,
) -> Pod {
    let c = echo_container("echo", image, HTTP_PORT, HTTP_PORT_NAME);
    pod(name, run_labels, placement, vec![c])
}

/// json-mock serving on `port` (named `port_name`), Ready when it answers there.
pub fn echo_container(name: &str, image: &ImageRef, port: i32, port_name: &str) -> Container {
    let mut c = container(name, image);
    c.env = Some(vec![EnvVar {
        name: "PORT".into(),
        value: Some(port.to_string()),
        ..EnvVar::default()
    }]);
    c.ports = Some(vec![ContainerPort {
        name: Some(port_name.into()),
        container_port: port,
        ..ContainerPort::default()
    }]);
    c.readiness_probe = Some(Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/".into()),
            port: IntOrString::String(port_name.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(2),
        ..Probe::default()
    });
    c
}

/// A NodePort Service in front of one echo pod. A NodePort Service also has a ClusterIP, so one
/// object serves the ClusterIP, NodePort and hairpin checks, as in cilium-cli.
pub fn echo_service(name: &str, run_labels: &BTreeMap<String, String>, pod_name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(run_labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("NodePort".into()),
            selector: Some(BTreeMap::from([(
                LABEL_NAME.to_string(),
                pod_name.to_string(),
            )])),
            ports: Some(vec![http_service_port()]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Service port every probe target serves: HTTP on the echo container's named port.
pub fn http_service_port() -> ServicePort {
    ServicePort {
        name: Some(HTTP_PORT_NAME.into()),
        port: HTTP_PORT,
        target_port: Some(IntOrString::String(HTTP_PORT_NAME.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

pub async fn create_pod(client: &kube::Client, ns: &str, pod: &Pod) -> Result<Pod, KitError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), pod)
        .await
        .map_err(KitError::api(format!("create pod {ns}/{name}")))
}

pub async fn create_service(
    client: &kube::Client,
    ns: &str,
    svc: &Service,
) -> Result<Service, KitError> {
    let name = svc.metadata.name.clone().unwrap_or_default();
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), svc)
        .await
        .map_err(KitError::api(format!("create service {ns}/{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([("io.harness.run-id".to_string(), "r1".to_string())])
    }

    fn img() -> ImageRef {
        ImageRef::parse(crate::kit::images::CLIENT).unwrap()
    }

    #[test]
    fn same_node_is_required_pod_affinity_on_hostname() {
        let p = echo_pod(
            "echo-same-node",
            &labels(),
            &img(),
            &Placement::SameNodeAs("client".into()),
        );
        let a = p.spec.unwrap().affinity.unwrap();
        let terms = a
            .pod_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(terms[0].topology_key, "kubernetes.io/hostname");
        assert_eq!(
            terms[0]
                .label_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()[LABEL_NAME],
            "client"
        );
        assert!(a.pod_anti_affinity.is_none());
    }

    #[test]
    fn host_netns_pod_uses_the_host_network_and_keeps_cluster_dns() {
        let p = host_netns_pod(
            "host-netns",
            &labels(),
            &img(),
            &Placement::SameNodeAs("client".into()),
        );
        let s = p.spec.unwrap();
        assert_eq!(s.host_network, Some(true));
        assert_eq!(s.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    }

    #[test]
    fn echo_service_is_nodeport_with_a_named_http_port() {
        let s = echo_service("echo-same-node", &labels(), "echo-same-node")
            .spec
            .unwrap();
        assert_eq!(s.type_.as_deref(), Some("NodePort"));
        let p = &s.ports.unwrap()[0];
        assert_eq!(p.name.as_deref(), Some("http"));
        assert_eq!(p.port, 8080);
        assert_eq!(p.target_port, Some(IntOrString::String("http".into())));
    }
}
