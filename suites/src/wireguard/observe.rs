//! Everything the wireguard suite says to the cluster: setup finds the Ready agents (and, for
//! the handshake check, places one idle client on every node); the observe steps read the
//! agents by exec (`cilium-dbg status -o json` and `cilium-dbg debuginfo --output json` in the
//! `cilium-agent` container of the pods `k8s-app=cilium` in kube-system), the CiliumNodes, the
//! endpoints (Ready pods off the host network) and Cilium's configuration.

use super::judge::{AgentReport, Endpoint, Handshakes, NodeKeys, Snapshot, WG_PUB_KEY};
use super::model::{merge, parse_debuginfo, parse_status};
use super::objects::client_pod;
use crate::kit::check::{CheckCtx, Env};
use crate::kit::cilium;
use crate::kit::errors::KitError;
use crate::kit::probe::Probe;
use crate::kit::probe::ping::{self, PingResult};
use crate::kit::retry::Leg;
use crate::kit::topology::PodInfo;
use crate::kit::transcript::Peer;
use crate::kit::wait;
use crate::kit::workload;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use std::collections::BTreeMap;

pub use crate::kit::cilium::AGENT_CONTAINER;

/// What a CiliumNode publishes: its key annotation, pod CIDRs and InternalIP addresses.
pub fn node_keys(list: &[DynamicObject]) -> Vec<NodeKeys> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out: Vec<NodeKeys> = list
        .iter()
        .map(|o| NodeKeys {
            name: o.metadata.name.clone().unwrap_or_default(),
            wg_pub_key: o
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(WG_PUB_KEY))
                .cloned(),
            pod_cidrs: strings(&o.data["spec"]["ipam"]["podCIDRs"]),
            internal_ips: o.data["spec"]["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["type"] == "InternalIP")
                .filter_map(|a| a["ip"].as_str().map(String::from))
                .collect(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The Cilium endpoints among `pods`: Running and Ready, on a node, with an IP, not on the host
/// network (a host-network pod is its node's IP, which the node's own entry covers).
pub fn endpoints(pods: &[Pod]) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = pods
        .iter()
        .filter(|p| wait::is_ready(p))
        .filter(|p| p.spec.as_ref().and_then(|s| s.host_network) != Some(true))
        .filter_map(|p| {
            let node = p.spec.as_ref()?.node_name.clone()?;
            let status = p.status.as_ref()?;
            let mut ips: Vec<String> = status
                .pod_ips
                .iter()
                .flatten()
                .map(|i| i.ip.clone())
                .collect();
            if ips.is_empty() {
                ips.extend(status.pod_ip.clone());
            }
            (!ips.is_empty()).then(|| Endpoint {
                pod: format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or_default(),
                    p.metadata.name.as_deref().unwrap_or_default()
                ),
                node,
                ips,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.node, &a.pod).cmp(&(&b.node, &b.pod)));
    out
}

pub use crate::kit::cilium::Agent;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WgFixture {
    pub agents: Vec<Agent>,
    /// One client per node, only when the handshake check was selected.
    pub clients: Vec<PodInfo>,
}

pub fn status_argv() -> Vec<String> {
    ["cilium-dbg", "status", "-o", "json"]
        .map(String::from)
        .to_vec()
}

pub fn debuginfo_argv() -> Vec<String> {
    ["cilium-dbg", "debuginfo", "--output", "json"]
        .map(String::from)
        .to_vec()
}

pub fn ciliumnode_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cilium.io", "v2", "CiliumNode"),
        "ciliumnodes",
    )
}

/// Runs one `cilium-dbg` command in an agent and returns its stdout, or why it could not.
async fn agent_json(
    ctx: &CheckCtx<'_>,
    a: &Agent,
    action: &str,
    argv: Vec<String>,
) -> Result<String, KitError> {
    let probe = Probe {
        label: ctx.label(
            action,
            Peer::new(a.pod.to_string(), None),
            Peer::new(format!("agent on {}", a.node), None),
        ),
        origin: a.pod.clone().into(),
        argv,
    };
    let out = ctx.run(&probe).await?;
    if out.exit_code != 0 {
        return Err(KitError::Parse {
            what: format!("`{}` in {}", probe.argv.join(" "), a.pod),
            detail: format!("exit {}: {}", out.exit_code, out.stderr.trim()),
        });
    }
    Ok(out.stdout)
}

async fn agent_status(ctx: &CheckCtx<'_>, a: &Agent) -> Result<AgentReport, KitError> {
    let parse_err = |cmd: &str, detail: String| KitError::Parse {
        what: format!("`{cmd}` in {}", a.pod),
        detail,
    };
    let status = agent_json(ctx, a, "cilium-dbg-status", status_argv()).await?;
    let (status, routing) =
        parse_status(&status).map_err(|e| parse_err("cilium-dbg status -o json", e))?;
    let debuginfo = agent_json(ctx, a, "cilium-dbg-debuginfo", debuginfo_argv()).await?;
    let (version, peers) = parse_debuginfo(&debuginfo)
        .map_err(|e| parse_err("cilium-dbg debuginfo --output json", e))?;
    Ok(AgentReport {
        node: a.node.clone(),
        pod: a.pod.to_string(),
        encryption: merge(status, peers),
        routing,
        version,
    })
}

pub(crate) async fn snapshot(f: &WgFixture, ctx: &CheckCtx<'_>) -> Result<Snapshot, KitError> {
    // Pods first: every endpoint judged then existed before the agents were read.
    let pods = Api::<Pod>::all(ctx.env.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(KitError::api("list pods in all namespaces"))?;
    let endpoints = endpoints(&pods.items);
    let mut agents = Vec::new();
    for a in &f.agents {
        agents.push(agent_status(ctx, a).await?);
    }
    let list = Api::<DynamicObject>::all_with(ctx.env.client.clone(), &ciliumnode_resource())
        .list(&ListParams::default())
        .await
        .map_err(KitError::api("list ciliumnodes.cilium.io/v2"))?;
    let nodes = node_keys(&list.items);
    ctx.note(format!(
        "{} CiliumNodes: {}",
        nodes.len(),
        nodes
            .iter()
            .map(|n| format!(
                "{} key {} InternalIP [{}] podCIDRs [{}]",
                n.name,
                n.wg_pub_key.as_deref().unwrap_or("-"),
                n.internal_ips.join(", "),
                n.pod_cidrs.join(", ")
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    ctx.note(format!(
        "{} endpoints: {}",
        endpoints.len(),
        endpoints
            .iter()
            .map(|e| format!("{} on {} [{}]", e.pod, e.node, e.ips.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    let cilium = cilium::facts(&ctx.env.client).await?;
    Ok(Snapshot {
        agents,
        nodes,
        endpoints,
        cilium,
    })
}

pub(crate) async fn handshakes(f: &WgFixture, ctx: &CheckCtx<'_>) -> Result<Handshakes, KitError> {
    let before = snapshot(f, ctx).await?;
    let mut started = BTreeMap::new();
    for a in &f.agents {
        let out = ctx
            .run(&Probe {
                label: ctx.label(
                    "node-clock",
                    Peer::new(a.pod.to_string(), None),
                    Peer::new(a.node.clone(), None),
                ),
                origin: a.pod.clone().into(),
                argv: vec!["date".into(), "+%s".into()],
            })
            .await?;
        let t: i64 = out.stdout.trim().parse().map_err(|_| KitError::Parse {
            what: format!("the clock of node {} (`date +%s` in {})", a.node, a.pod),
            detail: format!("exit {}, stdout {:?}", out.exit_code, out.stdout),
        })?;
        started.insert(a.node.clone(), t);
    }
    let mut pings = Vec::new();
    for from in &f.clients {
        for to in f.clients.iter().filter(|c| c.node != from.node) {
            let probe = Probe {
                label: ctx.label(
                    "ping",
                    from.source(),
                    Peer::new(&to.name, Some(to.ip.clone())),
                ),
                origin: from.pod_ref().into(),
                argv: ping::argv(&to.ip, None),
            };
            let series = ctx
                .until_stable(&probe, PingResult::parse, ping::judge)
                .await?;
            pings.push(Leg {
                what: format!("{} -> {}", from.node, to.node),
                series,
            });
        }
    }
    let after = snapshot(f, ctx).await?;
    Ok(Handshakes {
        started,
        pings,
        before,
        after,
    })
}

pub(crate) async fn setup(
    env: &Env,
    with_clients: bool,
    log: &CheckCtx<'_>,
) -> Result<WgFixture, KitError> {
    let agents = cilium::ready_agents(&env.client).await?;
    log.note(format!(
        "agents: {}",
        agents
            .iter()
            .map(|a| format!("{} on {}", a.pod.name, a.node))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut clients = Vec::new();
    if with_clients {
        let labels = env.run_labels();
        let mut names = Vec::new();
        for (i, a) in agents.iter().enumerate() {
            let (name, p) = client_pod(i, &a.node, &labels, &env.images.client);
            workload::create_pod(&env.client, &env.namespace, &p).await?;
            names.push(name);
        }
        let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
        clients = futures::future::try_join_all(names.iter().map(|n| {
            let api = api.clone();
            async move {
                PodInfo::from_pod(
                    &wait::pod_ready(api, n, env.timeouts.pod_ready).await?,
                    "client",
                )
            }
        }))
        .await?;
        for c in &clients {
            log.note(format!(
                "{} ready on node {} with ip {}",
                c.name, c.node, c.ip
            ));
        }
    }
    Ok(WgFixture { agents, clients })
}
