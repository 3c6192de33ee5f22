//! What the gateway-api suite creates: a curl client, three conformance echo servers behind
//! ClusterIP Services, a Gateway with one HTTP listener, and one HTTPRoute per behaviour, each on
//! its own hostname so no route can answer another's requests.

use super::types::{
    AllowedRoutes, BackendRef, Gateway, GatewaySpec, HTTPRoute, HTTPRouteSpec, HeaderMatch,
    HeaderModifier, HeaderValue, Listener, ParentRef, PathMatch, RequestRedirect, RouteFilter,
    RouteMatch, RouteNamespaces, RouteRule,
};
use crate::kit::check::Env;
use crate::kit::workload::{self, LABEL_NAME, Placement};
use k8s_openapi::api::core::v1::{
    ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, Pod,
    Probe as K8sProbe, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

pub const GATEWAY_CLASS: &str = "cilium";
pub const GATEWAY: &str = "harness-gw";
pub const LISTENER_PORT: u16 = 80;
pub const CLIENT: &str = "client";
pub const BACKENDS: [&str; 3] = ["echo-v1", "echo-v2", "echo-v3"];
/// echo-basic's default listening port.
pub const ECHO_PORT: i32 = 3000;
pub const SERVICE_PORT: i32 = 8080;

pub const ROUTE_PREFIX: &str = "path-prefix";
pub const ROUTE_EXACT: &str = "exact";
pub const ROUTE_HEADER: &str = "header";
pub const ROUTE_HOST_EXACT: &str = "hostname-exact";
pub const ROUTE_HOST_WILDCARD: &str = "hostname-wildcard";
pub const ROUTE_WEIGHTS: &str = "weights";
pub const ROUTE_REDIRECT: &str = "hostname-redirect";
pub const ROUTE_HEADER_MODIFIER: &str = "header-modifier";
/// The Gateway's only listener, which every route attaches to.
pub const LISTENER: &str = "http";
pub const ROUTES: [&str; 8] = [
    ROUTE_PREFIX,
    ROUTE_EXACT,
    ROUTE_HEADER,
    ROUTE_HOST_EXACT,
    ROUTE_HOST_WILDCARD,
    ROUTE_WEIGHTS,
    ROUTE_REDIRECT,
    ROUTE_HEADER_MODIFIER,
];

pub const HOST_PREFIX: &str = "prefix.example.com";
pub const HOST_EXACT: &str = "exact.example.com";
pub const HOST_HEADER: &str = "header.example.com";
pub const HOST_SPECIFIC: &str = "very.specific.com";
pub const HOST_WILDCARD: &str = "*.wildcard.io";
pub const HOST_WEIGHTS: &str = "weights.example.com";
pub const HOST_REDIRECT: &str = "redirect.example.com";
pub const HOST_HEADERS: &str = "headers.example.com";
pub const REDIRECT_TO: &str = "example.org";

/// Weighted split: requests sent, the weights, and how far a share may stray (10 points is more
/// than three standard deviations of a 70/30 split over 200 requests).
pub const WEIGHT_REQUESTS: u32 = 200;
pub const WEIGHTS: [(&str, u32); 3] = [("echo-v1", 70), ("echo-v2", 30), ("echo-v3", 0)];
pub const WEIGHT_TOLERANCE: f64 = 0.10;
/// The weighted requests go in this many execs of `WEIGHT_REQUESTS / WEIGHT_BATCHES` each, so
/// one exec stays short and a slow Gateway still leaves the samples taken before it stalled.
pub const WEIGHT_BATCHES: u32 = 10;

/// The Service Cilium creates for a Gateway.
pub fn gateway_service(gateway: &str) -> String {
    format!("cilium-gateway-{gateway}")
}

fn meta(name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    }
}

/// A conformance echo server naming itself through the downward API, as the conformance
/// manifests deploy it.
pub fn echo_pod(name: &str, env: &Env) -> Pod {
    let mut c = workload::container("echo", &env.images.gateway_echo);
    let field = |path: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.into(),
            ..ObjectFieldSelector::default()
        }),
        ..EnvVarSource::default()
    };
    c.env = Some(vec![
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(field("metadata.name")),
            ..EnvVar::default()
        },
        EnvVar {
            name: "NAMESPACE".into(),
            value_from: Some(field("metadata.namespace")),
            ..EnvVar::default()
        },
    ]);
    c.ports = Some(vec![ContainerPort {
        name: Some("http".into()),
        container_port: ECHO_PORT,
        ..ContainerPort::default()
    }]);
    c.readiness_probe = Some(K8sProbe {
        http_get: Some(HTTPGetAction {
            path: Some("/".into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(2),
        ..K8sProbe::default()
    });
    workload::pod(name, &env.run_labels(), &Placement::Anywhere, vec![c])
}

pub fn echo_service(name: &str, env: &Env) -> Service {
    Service {
        metadata: meta(name, &env.run_labels()),
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([(LABEL_NAME.to_string(), name.to_string())])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn gateway(labels: &BTreeMap<String, String>) -> Gateway {
    Gateway {
        metadata: meta(GATEWAY, labels),
        spec: GatewaySpec {
            gateway_class_name: GATEWAY_CLASS.into(),
            listeners: vec![Listener {
                name: LISTENER.into(),
                port: i32::from(LISTENER_PORT),
                protocol: "HTTP".into(),
                allowed_routes: Some(AllowedRoutes {
                    namespaces: Some(RouteNamespaces {
                        from: Some("Same".into()),
                    }),
                }),
            }],
        },
        status: None,
    }
}

fn to(n: usize, weight: Option<i32>) -> BackendRef {
    BackendRef {
        name: BACKENDS[n].into(),
        port: Some(SERVICE_PORT),
        weight,
    }
}

fn path(type_: &str, value: &str) -> RouteMatch {
    RouteMatch {
        path: Some(PathMatch {
            type_: type_.into(),
            value: value.into(),
        }),
        headers: Vec::new(),
    }
}

fn rule(
    matches: Vec<RouteMatch>,
    filters: Vec<RouteFilter>,
    backends: Vec<BackendRef>,
) -> RouteRule {
    RouteRule {
        matches,
        filters,
        backend_refs: backends,
    }
}

fn redirect_filter(status_code: Option<u16>) -> RouteFilter {
    RouteFilter {
        type_: "RequestRedirect".into(),
        request_header_modifier: None,
        request_redirect: Some(RequestRedirect {
            hostname: Some(REDIRECT_TO.into()),
            status_code,
        }),
    }
}

/// Every HTTPRoute of the suite, each on its own hostname.
pub fn routes(labels: &BTreeMap<String, String>) -> Vec<HTTPRoute> {
    let header = |v: &str| RouteMatch {
        path: None,
        headers: vec![HeaderMatch {
            name: "version".into(),
            value: v.into(),
        }],
    };
    let hv = |n: &str, v: &str| HeaderValue {
        name: n.into(),
        value: v.into(),
    };
    let specs: Vec<(&str, Vec<&str>, Vec<RouteRule>)> = vec![
        (
            ROUTE_PREFIX,
            vec![HOST_PREFIX],
            vec![
                rule(vec![path("PathPrefix", "/")], vec![], vec![to(0, None)]),
                rule(vec![path("PathPrefix", "/v2")], vec![], vec![to(1, None)]),
            ],
        ),
        (
            ROUTE_EXACT,
            vec![HOST_EXACT],
            vec![
                rule(vec![path("Exact", "/one")], vec![], vec![to(0, None)]),
                rule(vec![path("Exact", "/two")], vec![], vec![to(1, None)]),
            ],
        ),
        (
            ROUTE_HEADER,
            vec![HOST_HEADER],
            vec![
                rule(vec![header("one")], vec![], vec![to(0, None)]),
                rule(vec![header("two")], vec![], vec![to(1, None)]),
            ],
        ),
        (
            ROUTE_HOST_EXACT,
            vec![HOST_SPECIFIC],
            vec![rule(vec![], vec![], vec![to(0, None)])],
        ),
        (
            ROUTE_HOST_WILDCARD,
            vec![HOST_WILDCARD],
            vec![rule(vec![], vec![], vec![to(1, None)])],
        ),
        (
            ROUTE_WEIGHTS,
            vec![HOST_WEIGHTS],
            vec![rule(
                vec![],
                vec![],
                WEIGHTS
                    .iter()
                    .enumerate()
                    .map(|(i, (_, w))| to(i, Some(*w as i32)))
                    .collect(),
            )],
        ),
        (
            ROUTE_REDIRECT,
            vec![HOST_REDIRECT],
            vec![
                rule(
                    vec![path("PathPrefix", "/hostname-redirect")],
                    vec![redirect_filter(None)],
                    vec![],
                ),
                rule(
                    vec![path("PathPrefix", "/status-code-301")],
                    vec![redirect_filter(Some(301))],
                    vec![],
                ),
            ],
        ),
        (
            ROUTE_HEADER_MODIFIER,
            vec![HOST_HEADERS],
            vec![rule(
                vec![],
                vec![RouteFilter {
                    type_: "RequestHeaderModifier".into(),
                    request_header_modifier: Some(HeaderModifier {
                        set: vec![hv("X-Header-Set", "set-overwrites-values")],
                        add: vec![hv("X-Header-Add", "add-appends-values")],
                        remove: vec!["X-Header-Remove".into()],
                    }),
                    request_redirect: None,
                }],
                vec![to(0, None)],
            )],
        ),
    ];
    specs
        .into_iter()
        .map(|(name, hostnames, rules)| HTTPRoute {
            metadata: meta(name, labels),
            spec: HTTPRouteSpec {
                parent_refs: vec![ParentRef {
                    name: GATEWAY.into(),
                    namespace: None,
                    section_name: None,
                }],
                hostnames: hostnames.into_iter().map(String::from).collect(),
                rules,
            },
            status: None,
        })
        .collect()
}
