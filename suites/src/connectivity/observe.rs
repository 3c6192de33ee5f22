//! Everything the connectivity suite says to the cluster: setup applies the objects of
//! [`super::objects`] and waits for them, and each check's observe step runs its probes from the
//! pods and returns what it saw.

use super::judge::{NoFrag, Placed, PlacementFact};
use super::objects::{CLIENT, CLIENT_OTHER_NODE, ECHO_OTHER_NODE, ECHO_SAME_NODE, HOST_NETNS};
use crate::kit::check::{CheckCtx, Env};
use crate::kit::errors::KitError;
use crate::kit::probe::curl::{self, CurlResult};
use crate::kit::probe::ping::{self, IPV4_ICMP_OVERHEAD, PingResult};
use crate::kit::probe::{Origin, Probe};
use crate::kit::retry::Leg;
use crate::kit::topology::{self, NodeInfo, PodInfo, ServiceInfo};
use crate::kit::transcript::Peer;
use crate::kit::workload::HTTP_PORT_NAME;
use crate::kit::{wait, workload};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

/// Where the connectivity workloads run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub client: PodInfo,
    pub echo_same: PodInfo,
    /// Present when host-to-pod is selected.
    pub host_netns: Option<PodInfo>,
    pub svc_same: ServiceInfo,
    /// Present when the cluster has two schedulable nodes.
    pub other: Option<OtherNode>,
    pub nodes: Vec<NodeInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherNode {
    pub client: PodInfo,
    pub echo: PodInfo,
    pub svc: ServiceInfo,
}

impl Topology {
    fn other(&self) -> Result<&OtherNode, KitError> {
        self.other.as_ref().ok_or_else(|| KitError::Missing {
            what: "a second node's workloads".into(),
            hint: "the cluster has fewer than two schedulable nodes, so other-node workloads were not deployed".into(),
        })
    }
}

async fn http(
    ctx: &CheckCtx<'_>,
    from: &PodInfo,
    to: Peer,
    url: String,
) -> Result<Leg<CurlResult>, KitError> {
    let probe = Probe {
        label: ctx.label("curl", from.source(), to.clone()),
        origin: from.pod_ref().into(),
        argv: curl::argv(&url),
    };
    let series = ctx
        .until_stable(&probe, CurlResult::parse, curl::judge)
        .await?;
    Ok(Leg {
        what: format!("{} -> {to}", from.name),
        series,
    })
}

async fn icmp(
    ctx: &CheckCtx<'_>,
    from: &PodInfo,
    to: Peer,
    ip: &str,
    payload: Option<u32>,
) -> Result<Leg<PingResult>, KitError> {
    let probe = Probe {
        label: ctx.label("ping", from.source(), to.clone()),
        origin: from.pod_ref().into(),
        argv: ping::argv(ip, payload),
    };
    let series = ctx
        .until_stable(&probe, PingResult::parse, ping::judge)
        .await?;
    Ok(Leg {
        what: format!("{} -> {to}", from.name),
        series,
    })
}

fn pod_url(p: &PodInfo) -> String {
    format!("http://{}:{}/", p.ip, workload::HTTP_PORT)
}

fn svc_peer(s: &ServiceInfo) -> Peer {
    Peer::new(s.name.clone(), Some(format!("{}:{}", s.cluster_ip, s.port)))
}

fn svc_url(s: &ServiceInfo) -> String {
    format!("http://{}:{}/", s.cluster_ip, s.port)
}

fn node_port(s: &ServiceInfo) -> Result<i32, KitError> {
    s.node_port.ok_or_else(|| KitError::Missing {
        what: format!("nodePort of service {}", s.name),
        hint: "the API server did not allocate one for a NodePort Service".into(),
    })
}

pub(crate) async fn pod_to_pod_same_node(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    Ok(Placed {
        placement: vec![PlacementFact::same(&t.client, &t.echo_same)],
        legs: vec![
            http(
                ctx,
                &t.client,
                t.echo_same.dest(workload::HTTP_PORT),
                pod_url(&t.echo_same),
            )
            .await?,
        ],
    })
}

pub(crate) async fn pod_to_pod_other_node(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    let o = t.other()?;
    Ok(Placed {
        placement: vec![
            PlacementFact::different(&t.client, &o.echo),
            PlacementFact::different(&o.client, &t.echo_same),
        ],
        legs: vec![
            http(
                ctx,
                &t.client,
                o.echo.dest(workload::HTTP_PORT),
                pod_url(&o.echo),
            )
            .await?,
            http(
                ctx,
                &o.client,
                t.echo_same.dest(workload::HTTP_PORT),
                pod_url(&t.echo_same),
            )
            .await?,
        ],
    })
}

pub(crate) async fn pod_to_service_same_node(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    Ok(Placed {
        placement: vec![PlacementFact::same(&t.client, &t.echo_same)],
        legs: vec![http(ctx, &t.client, svc_peer(&t.svc_same), svc_url(&t.svc_same)).await?],
    })
}

pub(crate) async fn pod_to_service_other_node(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    let o = t.other()?;
    Ok(Placed {
        placement: vec![PlacementFact::different(&t.client, &o.echo)],
        legs: vec![http(ctx, &t.client, svc_peer(&o.svc), svc_url(&o.svc)).await?],
    })
}

pub(crate) async fn pod_to_nodeport_local(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    let port = node_port(&t.svc_same)?;
    let to = Peer::new(
        format!("{} nodeport on {}", t.svc_same.name, t.client.node),
        Some(format!("{}:{port}", t.client.host_ip)),
    );
    let url = format!("http://{}:{port}/", t.client.host_ip);
    Ok(Placed {
        placement: vec![PlacementFact::same(&t.client, &t.echo_same)],
        legs: vec![http(ctx, &t.client, to, url).await?],
    })
}

pub(crate) async fn pod_to_nodeport_remote(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    let o = t.other()?;
    let mut legs = Vec::new();
    // Both backends through the other node's IP: one answers locally there, one must come back.
    for svc in [&o.svc, &t.svc_same] {
        let port = node_port(svc)?;
        let to = Peer::new(
            format!("{} nodeport on {}", svc.name, o.echo.node),
            Some(format!("{}:{port}", o.echo.host_ip)),
        );
        legs.push(
            http(
                ctx,
                &t.client,
                to,
                format!("http://{}:{port}/", o.echo.host_ip),
            )
            .await?,
        );
    }
    Ok(Placed {
        placement: vec![PlacementFact::different(&t.client, &o.echo)],
        legs,
    })
}

/// The same-node echo's NodePort on every node's InternalIP, from the outside client: the node
/// that receives the request is, for all but one node, not where the backend runs.
pub(crate) async fn nodeport_from_outside(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    let port = node_port(&t.svc_same)?;
    let from = ctx.outside_peer()?;
    if t.nodes.is_empty() {
        return Err(KitError::Missing {
            what: "a node with an InternalIP".into(),
            hint: "no Node object lists an InternalIP address to send the NodePort requests to"
                .into(),
        });
    }
    let mut legs = Vec::new();
    for n in &t.nodes {
        let to = Peer::new(
            format!("{} nodeport on {}", t.svc_same.name, n.name),
            Some(format!("{}:{port}", n.internal_ip)),
        );
        let probe = Probe {
            label: ctx.label("curl", from.clone(), to.clone()),
            origin: Origin::Outside,
            argv: curl::argv(&format!("http://{}:{port}/", n.internal_ip)),
        };
        let series = ctx
            .until_stable(&probe, CurlResult::parse, curl::judge)
            .await?;
        legs.push(Leg {
            what: format!("{} -> {to}", from.name),
            series,
        });
    }
    Ok(Placed {
        placement: Vec::new(),
        legs,
    })
}

pub(crate) async fn pod_to_host(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<PingResult>, KitError> {
    let mut legs = Vec::new();
    for n in &t.nodes {
        let to = Peer::new(format!("node {}", n.name), Some(n.internal_ip.clone()));
        legs.push(icmp(ctx, &t.client, to, &n.internal_ip, None).await?);
    }
    Ok(Placed {
        placement: Vec::new(),
        legs,
    })
}

pub(crate) async fn host_to_pod(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    let host = t.host_netns.as_ref().ok_or_else(|| KitError::Missing {
        what: "the host-network pod".into(),
        hint: "setup deploys it only when host-to-pod is selected".into(),
    })?;
    let mut legs = vec![
        http(
            ctx,
            host,
            t.echo_same.dest(workload::HTTP_PORT),
            pod_url(&t.echo_same),
        )
        .await?,
    ];
    if let Some(o) = &t.other {
        legs.push(
            http(
                ctx,
                host,
                o.echo.dest(workload::HTTP_PORT),
                pod_url(&o.echo),
            )
            .await?,
        );
    }
    Ok(Placed {
        placement: vec![PlacementFact::same(host, &t.client)],
        legs,
    })
}

pub(crate) async fn pod_to_itself_via_service(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    // The Service selects only this pod, so the connection must hairpin back to its sender.
    Ok(Placed {
        placement: Vec::new(),
        legs: vec![
            http(
                ctx,
                &t.echo_same,
                svc_peer(&t.svc_same),
                svc_url(&t.svc_same),
            )
            .await?,
        ],
    })
}

pub(crate) async fn pod_to_world(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    let target = ctx
        .env
        .external_target
        .clone()
        .ok_or_else(|| KitError::Missing {
            what: "external target".into(),
            hint: "pod-to-world runs only with an external target (--external-target)".into(),
        })?;
    let url = format!("https://{target}/");
    Ok(Placed {
        placement: Vec::new(),
        legs: vec![http(ctx, &t.client, Peer::new(target, Some("443".into())), url).await?],
    })
}

pub(crate) async fn pod_to_pod_no_frag(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<NoFrag, KitError> {
    let o = t.other()?;
    let probe = Probe {
        label: ctx.label("read-mtu", t.client.source(), Peer::new("eth0", None)),
        origin: t.client.pod_ref().into(),
        argv: vec!["cat".into(), "/sys/class/net/eth0/mtu".into()],
    };
    let out = ctx.run(&probe).await?;
    let mtu: u32 = out.stdout.trim().parse().map_err(|_| KitError::Parse {
        what: format!("the MTU of eth0 in {}", t.client.name),
        detail: format!(
            "exit {}, stdout {:?}, stderr {:?}",
            out.exit_code, out.stdout, out.stderr
        ),
    })?;
    let payload = mtu.saturating_sub(IPV4_ICMP_OVERHEAD);
    let to = Peer::new(o.echo.name.clone(), Some(o.echo.ip.clone()));
    Ok(NoFrag {
        mtu,
        probes: Placed {
            placement: vec![PlacementFact::different(&t.client, &o.echo)],
            legs: vec![icmp(ctx, &t.client, to, &o.echo.ip, Some(payload)).await?],
        },
    })
}

/// Deploys what the wanted checks use: a filtered run should not wait on pods (and image pulls)
/// that nothing will probe.
pub(crate) async fn setup(
    env: &Env,
    host: bool,
    other_node: bool,
    log: &CheckCtx<'_>,
) -> Result<Topology, KitError> {
    let multi = env.nodes >= 2 && other_node;
    let pods = super::objects::pods(env, host, multi);
    for (p, _) in &pods {
        workload::create_pod(&env.client, &env.namespace, p).await?;
    }
    let mut created = Vec::new();
    for s in &super::objects::services(env, multi) {
        created.push(ServiceInfo::from_service(
            &workload::create_service(&env.client, &env.namespace, s).await?,
            HTTP_PORT_NAME,
        )?);
    }
    let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let ready = futures::future::try_join_all(pods.iter().map(|(p, c)| {
        let name = p.metadata.name.clone().unwrap_or_default();
        let api = api.clone();
        async move {
            let pod = wait::pod_ready(api, &name, env.timeouts.pod_ready).await?;
            PodInfo::from_pod(&pod, c)
        }
    }))
    .await?;
    for p in &ready {
        log.note(format!(
            "{} ready on node {} with ip {}",
            p.name, p.node, p.ip
        ));
    }
    let find = |name: &str| ready.iter().find(|p| p.name == name).cloned();
    let nodes = Api::<Node>::all(env.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(KitError::api("list nodes"))?;
    let missing = |what: &str| KitError::Missing {
        what: what.into(),
        hint: "it was created and reported Ready, then not found in the Ready list".into(),
    };
    Ok(Topology {
        client: find(CLIENT).ok_or_else(|| missing(CLIENT))?,
        echo_same: find(ECHO_SAME_NODE).ok_or_else(|| missing(ECHO_SAME_NODE))?,
        host_netns: if host {
            Some(find(HOST_NETNS).ok_or_else(|| missing(HOST_NETNS))?)
        } else {
            None
        },
        svc_same: created[0].clone(),
        other: match (
            find(CLIENT_OTHER_NODE),
            find(ECHO_OTHER_NODE),
            created.get(1),
        ) {
            (Some(client), Some(echo), Some(svc)) => Some(OtherNode {
                client,
                echo,
                svc: svc.clone(),
            }),
            _ => None,
        },
        nodes: topology::nodes(&nodes.items),
    })
}
