//! Where the deployed workloads ended up, as plain data the checks and judges read.

use crate::kit::errors::KitError;
use crate::kit::exec::PodRef;
use crate::kit::transcript::Peer;
use k8s_openapi::api::core::v1::{Node, Pod, Service};

/// A running pod: where it runs and how to exec into it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub container: String,
    pub ip: String,
    pub node: String,
    pub host_ip: String,
}

impl PodInfo {
    pub fn from_pod(pod: &Pod, container: &str) -> Result<PodInfo, KitError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let missing = |what: &str| KitError::Missing {
            what: format!("{what} of pod {namespace}/{name}"),
            hint: "the pod was reported Ready without it; read the pod's status".into(),
        };
        let status = pod.status.as_ref().ok_or_else(|| missing("status"))?;
        Ok(PodInfo {
            container: container.into(),
            ip: status
                .pod_ip
                .clone()
                .ok_or_else(|| missing("status.podIP"))?,
            host_ip: status
                .host_ip
                .clone()
                .ok_or_else(|| missing("status.hostIP"))?,
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .ok_or_else(|| missing("spec.nodeName"))?,
            name,
            namespace,
        })
    }

    pub fn pod_ref(&self) -> PodRef {
        PodRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            container: self.container.clone(),
        }
    }

    /// As a probe source: `ns/name (ip)`.
    pub fn source(&self) -> Peer {
        Peer::new(
            format!("{}/{}", self.namespace, self.name),
            Some(self.ip.clone()),
        )
    }

    /// As a probe destination on a port: `name (ip:port)`.
    pub fn dest(&self, port: i32) -> Peer {
        Peer::new(self.name.clone(), Some(format!("{}:{port}", self.ip)))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    pub cluster_ip: String,
    pub port: i32,
    pub node_port: Option<i32>,
}

impl ServiceInfo {
    pub fn from_service(svc: &Service, port_name: &str) -> Result<ServiceInfo, KitError> {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let spec = svc.spec.as_ref().ok_or_else(|| KitError::Missing {
            what: format!("spec of service {name}"),
            hint: "the API server returned a Service without a spec".into(),
        })?;
        let port = spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(port_name))
            .ok_or_else(|| KitError::Missing {
                what: format!("port {port_name:?} of service {name}"),
                hint: "the Service was created without it".into(),
            })?;
        Ok(ServiceInfo {
            cluster_ip: spec.cluster_ip.clone().unwrap_or_default(),
            port: port.port,
            node_port: port.node_port,
            name,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ip: String,
}

/// Nodes with an InternalIP, in name order; nodes without one cannot be probed and are left out.
pub fn nodes(list: &[Node]) -> Vec<NodeInfo> {
    let mut out: Vec<NodeInfo> = list
        .iter()
        .filter_map(|n| {
            let ip = n
                .status
                .as_ref()?
                .addresses
                .as_ref()?
                .iter()
                .find(|a| a.type_ == "InternalIP")?
                .address
                .clone();
            Some(NodeInfo {
                name: n.metadata.name.clone()?,
                internal_ip: ip,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_info_reads_ip_node_and_host_ip() {
        let path = format!(
            "{}/tests/fixtures/pod-client-ready.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let pod: Pod = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let i = PodInfo::from_pod(&pod, "client").unwrap();
        assert_eq!(
            (i.ip.as_str(), i.node.as_str(), i.host_ip.as_str()),
            ("10.244.1.3", "w1", "10.5.0.3")
        );
        assert_eq!(
            i.source().to_string(),
            "harness-connectivity-r1/client (10.244.1.3)"
        );
    }

    #[test]
    fn pod_info_refuses_a_pod_without_ip() {
        let path = format!(
            "{}/tests/fixtures/pod-unschedulable-anti-affinity.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let pod: Pod = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(
            PodInfo::from_pod(&pod, "echo")
                .unwrap_err()
                .to_string()
                .contains("status.podIP")
        );
    }

    #[test]
    fn nodes_take_the_internal_ip() {
        let path = format!(
            "{}/tests/fixtures/nodelist-two-nodes.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let list: k8s_openapi::List<Node> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let n = nodes(&list.items);
        assert_eq!(
            n,
            vec![
                NodeInfo {
                    name: "cp1".into(),
                    internal_ip: "10.5.0.2".into()
                },
                NodeInfo {
                    name: "w1".into(),
                    internal_ip: "10.5.0.3".into()
                },
            ]
        );
    }
}
