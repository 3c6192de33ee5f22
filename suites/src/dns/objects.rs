//! What the DNS suite creates: a dig client, two Ready backends with hostname and subdomain and
//! one that never becomes Ready, a headless and a ClusterIP Service over them, an ExternalName
//! Service, and (for dns-policy-none) a pod with its own resolver configuration.

use super::resolv_conf::ResolvConf;
use crate::kit::check::Env;
use crate::kit::workload::{self, HTTP_PORT, HTTP_PORT_NAME, Placement};
use k8s_openapi::api::core::v1::{
    ContainerPort, HTTPGetAction, Pod, PodDNSConfig, PodDNSConfigOption, Probe as K8sProbe,
    Service, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

pub const CLIENT: &str = "dns-client";
pub const BACKENDS: [&str; 2] = ["dns-backend-0", "dns-backend-1"];
pub const UNREADY: &str = "dns-backend-unready";
pub const CUSTOM: &str = "dns-custom";
pub const HEADLESS: &str = "dns-headless";
pub const SVC: &str = "dns-svc";
pub const EXTERNAL: &str = "dns-external";
/// What `dns-external` points at; CoreDNS answers the CNAME itself, so no egress is needed.
pub const EXTERNAL_TARGET: &str = "foo.example.com";
/// A search domain inside the cluster zone, so its NXDOMAIN is answered locally and fast.
pub const MARKER_SEARCH: &str = "harness-search.svc";
const COMPONENT: &str = "app.kubernetes.io/component";
const BACKEND: &str = "dns-backend";

pub fn agnhost(name: &str, env: &Env, placement: &Placement, args: &[&str]) -> Pod {
    let mut c = workload::container("dns", &env.images.dns);
    c.args = Some(args.iter().map(|a| a.to_string()).collect());
    workload::pod(name, &env.run_labels(), placement, vec![c])
}

pub fn backend_pod(name: &str, env: &Env, ready_port: i32, dns_name: bool) -> Pod {
    let port = format!("--http-port={HTTP_PORT}");
    let mut p = agnhost(name, env, &Placement::Anywhere, &["netexec", &port]);
    if let Some(l) = p.metadata.labels.as_mut() {
        l.insert(COMPONENT.into(), BACKEND.into());
    }
    if let Some(spec) = p.spec.as_mut() {
        if dns_name {
            spec.hostname = Some(name.into());
            spec.subdomain = Some(HEADLESS.into());
        }
        let c = &mut spec.containers[0];
        c.ports = Some(vec![ContainerPort {
            name: Some(HTTP_PORT_NAME.into()),
            container_port: HTTP_PORT,
            ..ContainerPort::default()
        }]);
        c.readiness_probe = Some(K8sProbe {
            http_get: Some(HTTPGetAction {
                path: Some("/".into()),
                port: IntOrString::Int(ready_port),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(2),
            ..K8sProbe::default()
        });
    }
    p
}

pub fn custom_dns_pod(env: &Env, rc: &ResolvConf) -> Pod {
    let mut p = agnhost(CUSTOM, env, &Placement::Anywhere, &["pause"]);
    if let Some(spec) = p.spec.as_mut() {
        spec.dns_policy = Some("None".into());
        spec.dns_config = Some(PodDNSConfig {
            nameservers: Some(rc.nameservers.clone()),
            searches: Some(rc.search.clone()),
            options: Some(
                rc.options
                    .iter()
                    .map(|o| {
                        let (name, value) = o.split_once(':').unwrap_or((o, ""));
                        PodDNSConfigOption {
                            name: Some(name.into()),
                            value: (!value.is_empty()).then(|| value.into()),
                        }
                    })
                    .collect(),
            ),
        });
    }
    p
}

pub fn service(name: &str, env: &Env, spec: ServiceSpec) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(env.run_labels()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        ..Service::default()
    }
}

pub fn backend_spec(cluster_ip: Option<&str>) -> ServiceSpec {
    ServiceSpec {
        cluster_ip: cluster_ip.map(String::from),
        selector: Some(BTreeMap::from([(
            COMPONENT.to_string(),
            BACKEND.to_string(),
        )])),
        ports: Some(vec![workload::http_service_port()]),
        ..ServiceSpec::default()
    }
}
