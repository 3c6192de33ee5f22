//! The cluster Cilium is installed on, described once: how Cilium reaches the API server, the
//! API server itself, the pod and Service CIDRs, the node network and how pod traffic crosses
//! it, and the LoadBalancer pool. The Talos patch and the lint read this one description (the
//! overlay's pool is part of it), so what the harness builds and what it checks values against
//! cannot drift apart. Each fact says where it comes from, so a lint can say what it assumed.

use crate::profile::overlay::Overlay;
use crate::profile::talos_patch::KUBEPRISM_PORT;
use serde::Serialize;
use std::fmt;
use std::net::Ipv4Addr;
use talos_docker::Ipv4Net;

/// Where a fact comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "from", content = "detail")]
pub enum Origin {
    /// The harness makes the cluster so; the text says how.
    Harness(String),
    /// Given on the command line (the flag's name).
    Flag(String),
    /// Read from the running cluster (what was read).
    Observed(String),
    /// Not given: a default taken for granted (why, and the flag that overrides it).
    Assumed(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fact<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Fact<T> {
    fn harness(value: T, how: &str) -> Self {
        Fact {
            value,
            origin: Origin::Harness(how.into()),
        }
    }

    pub fn is_assumed(&self) -> bool {
        matches!(self.origin, Origin::Assumed(_))
    }
}

/// How Cilium reaches the API server before it provides Services itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiAccess {
    pub host: String,
    pub port: u16,
    /// Talos's node-local API load balancer, which listens on localhost on every node.
    pub kubeprism: bool,
}

impl fmt::Display for ApiAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)?;
        if self.kubeprism {
            write!(f, " (KubePrism)")?;
        }
        Ok(())
    }
}

/// The API server's own endpoint (the cluster endpoint in the Talos config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiServer {
    /// `None` when it is only known once the cluster exists (a harness cluster's first control
    /// plane takes the first free address of a subnet picked at provisioning).
    pub host: Option<String>,
    pub port: u16,
}

impl fmt::Display for ApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(h) => write!(f, "{h}:{}", self.port),
            None => write!(f, "<control plane address>:{}", self.port),
        }
    }
}

/// How nodes reach each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeLink {
    /// Every node on one L2 segment (one docker bridge): a node can route another node's pod
    /// CIDR straight to it, and nothing else does.
    SharedL2,
    /// Nodes behind routers, which must learn the pod CIDRs (BGP) unless traffic is tunnelled.
    Routed,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeNetwork {
    /// The range node addresses come from.
    pub cidr: Option<Ipv4Net>,
    pub link: NodeLink,
    /// The link MTU; Cilium's own MTU must fit in it.
    pub mtu: Option<u32>,
    /// The nodes' interface on that network.
    pub interface: Option<String>,
}

/// The LoadBalancer pool the harness creates for the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LbPool {
    /// The pool is the top block of this length of the cluster's docker subnet.
    pub prefix_length: u8,
    /// Interface patterns the L2 announcement policy answers ARP on.
    pub interfaces: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDescription {
    /// What cluster this is, for messages ("the Talos-in-Docker cluster the harness builds").
    pub name: String,
    pub built_by_harness: bool,
    pub api_access: Fact<ApiAccess>,
    pub api_server: Fact<ApiServer>,
    pub pod_cidr: Fact<Ipv4Net>,
    pub service_cidr: Fact<Ipv4Net>,
    pub nodes: Fact<NodeNetwork>,
    pub lb_pool: Option<Fact<LbPool>>,
}

/// Talos's defaults (`talosctl gen config`): pod and Service subnets, the API server port.
pub fn talos_pod_cidr() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 244, 0, 0), 16).expect("a network address")
}

pub fn talos_service_cidr() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 96, 0, 0), 12).expect("a network address")
}

pub const API_SERVER_PORT: u16 = 6443;

/// The facts `harness lint` takes as flags for a cluster the harness did not build.
#[derive(Clone, Debug, Default)]
pub struct GivenFacts {
    pub pod_cidr: Option<Ipv4Net>,
    pub service_cidr: Option<Ipv4Net>,
    pub k8s_service_host: Option<String>,
    pub k8s_service_port: Option<u16>,
    pub api_server: Option<(String, u16)>,
    pub node_cidr: Option<Ipv4Net>,
    pub node_link: Option<NodeLink>,
    pub node_mtu: Option<u32>,
}

impl GivenFacts {
    pub fn is_empty(&self) -> bool {
        self.pod_cidr.is_none()
            && self.service_cidr.is_none()
            && self.k8s_service_host.is_none()
            && self.k8s_service_port.is_none()
            && self.api_server.is_none()
            && self.node_cidr.is_none()
            && self.node_link.is_none()
            && self.node_mtu.is_none()
    }
}

fn given<T>(value: Option<T>, flag: &str, default: T, why: &str) -> Fact<T> {
    match value {
        Some(v) => Fact {
            value: v,
            origin: Origin::Flag(flag.into()),
        },
        None => Fact {
            value: default,
            origin: Origin::Assumed(format!("{why}; set {flag}")),
        },
    }
}

impl ClusterDescription {
    /// The Talos-in-Docker cluster `harness e2e` and `harness up` build: Talos defaults for
    /// the networks and KubePrism, one docker bridge per cluster, the overlay's LB pool.
    pub fn talos_in_docker(overlay: &Overlay) -> Self {
        ClusterDescription {
            name: "the Talos-in-Docker cluster the harness builds".into(),
            built_by_harness: true,
            api_access: Fact::harness(
                ApiAccess {
                    host: "localhost".into(),
                    port: KUBEPRISM_PORT,
                    kubeprism: true,
                },
                "the harness's Talos patch enables KubePrism on every node on this port",
            ),
            api_server: Fact::harness(
                ApiServer {
                    host: None,
                    port: API_SERVER_PORT,
                },
                "the cluster endpoint is the first control plane, https://<its IP>:6443",
            ),
            pod_cidr: Fact::harness(
                talos_pod_cidr(),
                "Talos's default pod subnet, which the harness keeps",
            ),
            service_cidr: Fact::harness(
                talos_service_cidr(),
                "Talos's default Service subnet, which the harness keeps",
            ),
            nodes: Fact::harness(
                NodeNetwork {
                    cidr: Some(talos_docker::subnet::POOL),
                    link: NodeLink::SharedL2,
                    mtu: Some(1500),
                    interface: Some("eth0".into()),
                },
                "every node sits on one docker bridge: a /24 of 10.5.0.0/16 picked at provisioning, MTU 1500, eth0 in each node",
            ),
            lb_pool: Some(Fact::harness(
                LbPool {
                    prefix_length: overlay.lb_pool.prefix_length,
                    interfaces: overlay.lb_pool.interfaces.clone(),
                },
                "the talos-in-docker overlay's pool: the top block of the docker subnet, announced over L2",
            )),
        }
    }

    /// A cluster the harness did not build, from what the user says of it; the rest are
    /// Talos's defaults, marked as assumed.
    pub fn given(facts: &GivenFacts) -> Self {
        let kubeprism_default = facts.k8s_service_host.is_none();
        let host = facts.k8s_service_host.clone();
        let api_access = match (host, facts.k8s_service_port) {
            (None, None) => Fact {
                value: ApiAccess {
                    host: "localhost".into(),
                    port: KUBEPRISM_PORT,
                    kubeprism: true,
                },
                origin: Origin::Assumed(
                    "Talos's KubePrism on its default port; set --k8s-service-host/--k8s-service-port"
                        .into(),
                ),
            },
            (host, port) => Fact {
                value: ApiAccess {
                    kubeprism: kubeprism_default
                        || host.as_deref().is_some_and(is_loopback),
                    host: host.unwrap_or_else(|| "localhost".into()),
                    port: port.unwrap_or(KUBEPRISM_PORT),
                },
                origin: Origin::Flag("--k8s-service-host/--k8s-service-port".into()),
            },
        };
        ClusterDescription {
            name: "the cluster described by the flags".into(),
            built_by_harness: false,
            api_access,
            api_server: match &facts.api_server {
                Some((h, p)) => Fact {
                    value: ApiServer {
                        host: Some(h.clone()),
                        port: *p,
                    },
                    origin: Origin::Flag("--api-server".into()),
                },
                None => Fact {
                    value: ApiServer {
                        host: None,
                        port: API_SERVER_PORT,
                    },
                    origin: Origin::Assumed(
                        "address unknown, Talos's port; set --api-server HOST:PORT".into(),
                    ),
                },
            },
            pod_cidr: given(
                facts.pod_cidr,
                "--pod-cidr",
                talos_pod_cidr(),
                "Talos's default pod subnet",
            ),
            service_cidr: given(
                facts.service_cidr,
                "--service-cidr",
                talos_service_cidr(),
                "Talos's default Service subnet",
            ),
            nodes: Fact {
                value: NodeNetwork {
                    cidr: facts.node_cidr,
                    link: facts.node_link.unwrap_or(NodeLink::Unknown),
                    mtu: facts.node_mtu,
                    interface: None,
                },
                origin: if facts.node_cidr.is_some()
                    || facts.node_link.is_some()
                    || facts.node_mtu.is_some()
                {
                    Origin::Flag("--node-cidr/--node-link/--node-mtu".into())
                } else {
                    Origin::Assumed(
                        "node network unknown; set --node-cidr, --node-link, --node-mtu".into(),
                    )
                },
            },
            lb_pool: None,
        }
    }

    /// A running cluster, from what its API shows: the nodes' pod CIDRs (`spec.podCIDRs`) and
    /// addresses, and the API server the kubeconfig names. What the API does not show (the
    /// Service CIDR, KubePrism) is Talos's default, marked as assumed.
    pub fn observed(nodes: &[k8s_openapi::api::core::v1::Node], server: &str) -> Self {
        let pod_cidrs: Vec<Ipv4Net> = nodes
            .iter()
            .filter_map(|n| n.spec.as_ref())
            .flat_map(|s| {
                s.pod_cidrs
                    .clone()
                    .or_else(|| s.pod_cidr.clone().map(|c| vec![c]))
                    .unwrap_or_default()
            })
            .filter_map(|c| c.parse().ok())
            .collect();
        let addresses: Vec<Ipv4Net> = nodes
            .iter()
            .filter_map(|n| n.status.as_ref()?.addresses.as_ref())
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
            .filter_map(|a| a.address.parse::<Ipv4Addr>().ok())
            .filter_map(|ip| Ipv4Net::new(ip, 32).ok())
            .collect();
        let mut d = ClusterDescription::given(&GivenFacts::default());
        d.name = "the cluster the kubeconfig reaches".into();
        if let Some(c) = covering(&pod_cidrs) {
            d.pod_cidr = Fact {
                value: c,
                origin: Origin::Observed(format!(
                    "the smallest range covering the nodes' spec.podCIDRs ({})",
                    pod_cidrs
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        }
        let url = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        if let Some((host, port)) = url.rsplit_once(':')
            && let Ok(port) = port.parse()
        {
            d.api_server = Fact {
                value: ApiServer {
                    host: Some(
                        host.trim_start_matches('[')
                            .trim_end_matches(']')
                            .to_string(),
                    ),
                    port,
                },
                origin: Origin::Observed("the kubeconfig's server".into()),
            };
        }
        if let Some(c) = covering(&addresses) {
            d.nodes = Fact {
                value: NodeNetwork {
                    cidr: Some(c),
                    link: NodeLink::Unknown,
                    mtu: None,
                    interface: None,
                },
                origin: Origin::Observed(
                    "the smallest range covering the nodes' InternalIPs; the link is not visible from the API".into(),
                ),
            };
        }
        d
    }

    /// The KubePrism port the Talos patch enables, when Cilium reaches the API through it.
    pub fn kubeprism_port(&self) -> Option<u16> {
        self.api_access
            .value
            .kubeprism
            .then_some(self.api_access.value.port)
    }

    /// Every fact as (name, value, origin), for "linted against ..." notes.
    pub fn facts(&self) -> Vec<(&'static str, String, &Origin)> {
        let n = &self.nodes.value;
        let unknown = n.cidr.is_none() && n.link == NodeLink::Unknown && n.mtu.is_none();
        let mut nodes = match n.cidr {
            Some(c) => format!("{c}"),
            None => "unknown range".into(),
        };
        nodes += match n.link {
            NodeLink::SharedL2 => ", one L2 segment",
            NodeLink::Routed => ", routed",
            NodeLink::Unknown => ", link unknown",
        };
        if let Some(m) = n.mtu {
            nodes += &format!(", MTU {m}");
        }
        if unknown {
            nodes = "unknown".into();
        }
        let mut out = vec![
            (
                "API access",
                self.api_access.value.to_string(),
                &self.api_access.origin,
            ),
            (
                "API server",
                self.api_server.value.to_string(),
                &self.api_server.origin,
            ),
            (
                "pod CIDR",
                self.pod_cidr.value.to_string(),
                &self.pod_cidr.origin,
            ),
            (
                "Service CIDR",
                self.service_cidr.value.to_string(),
                &self.service_cidr.origin,
            ),
            ("node network", nodes, &self.nodes.origin),
        ];
        if let Some(pool) = &self.lb_pool {
            out.push((
                "LB pool",
                format!(
                    "top /{} of the docker subnet, L2 on {}",
                    pool.value.prefix_length,
                    pool.value.interfaces.join(", ")
                ),
                &pool.origin,
            ));
        }
        out
    }
}

/// The smallest network holding every one of `nets`.
pub fn covering(nets: &[Ipv4Net]) -> Option<Ipv4Net> {
    let first = nets.first()?;
    let mut prefix = first.prefix();
    let base = u32::from(first.network());
    for n in nets {
        prefix = prefix.min(n.prefix());
        let diff = base ^ u32::from(n.network());
        prefix = prefix.min(diff.leading_zeros() as u8);
    }
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Ipv4Net::new(Ipv4Addr::from(base & mask), prefix).ok()
}

pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_cluster_is_talos_defaults_on_one_bridge() {
        let c = ClusterDescription::talos_in_docker(&Overlay::embedded());
        assert_eq!(c.kubeprism_port(), Some(7445));
        assert_eq!(c.pod_cidr.value, "10.244.0.0/16".parse().unwrap());
        assert_eq!(c.nodes.value.link, NodeLink::SharedL2);
        assert_eq!(c.lb_pool.as_ref().unwrap().value.prefix_length, 28);
        assert!(
            c.facts()
                .iter()
                .all(|(_, _, o)| matches!(o, Origin::Harness(_)))
        );
    }

    #[test]
    fn a_running_cluster_shows_its_pod_cidrs_and_api_server() {
        // Node objects as a Talos cluster reports them (spec.podCIDRs from kube-controller-manager).
        let nodes: Vec<k8s_openapi::api::core::v1::Node> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "cp"}, "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]},
             "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "cp"}]}},
            {"metadata": {"name": "w1"}, "spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]},
             "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.21"}]}},
            {"metadata": {"name": "w2"}, "spec": {"podCIDR": "10.42.3.0/24", "podCIDRs": ["10.42.3.0/24"]},
             "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.22"}]}}
        ]))
        .unwrap();
        let c = ClusterDescription::observed(&nodes, "https://192.168.1.10:6443");
        assert_eq!(c.pod_cidr.value, "10.42.0.0/22".parse().unwrap());
        assert!(matches!(c.pod_cidr.origin, Origin::Observed(_)));
        assert_eq!(c.api_server.value.host.as_deref(), Some("192.168.1.10"));
        assert_eq!(c.nodes.value.cidr, Some("192.168.1.0/27".parse().unwrap()));
        assert!(c.service_cidr.is_assumed());
    }

    #[test]
    fn given_facts_mark_the_rest_assumed() {
        let c = ClusterDescription::given(&GivenFacts {
            pod_cidr: Some("10.42.0.0/16".parse().unwrap()),
            ..Default::default()
        });
        assert_eq!(c.pod_cidr.origin, Origin::Flag("--pod-cidr".into()));
        assert!(c.service_cidr.is_assumed() && c.api_access.is_assumed());
        assert_eq!(c.kubeprism_port(), Some(7445));
        let c = ClusterDescription::given(&GivenFacts {
            k8s_service_host: Some("10.0.0.5".into()),
            k8s_service_port: Some(6443),
            ..Default::default()
        });
        assert_eq!(c.kubeprism_port(), None);
        assert_eq!(c.api_access.value.to_string(), "10.0.0.5:6443");
    }
}
