//! Pod connectivity, after `cilium connectivity test`: pod-to-pod, pod-to-Service, NodePort,
//! pod-to-host, host-to-pod, hairpin, egress and a don't-fragment payload.
//!
//! Workloads: `client` anywhere; `echo-same-node` and `host-netns` pinned to the client's node by
//! podAffinity; with two or more nodes, `client-other-node` and `echo-other-node` kept off it by
//! podAntiAffinity. Each echo pod has a NodePort Service of its own name (which also has a
//! ClusterIP). Checks verify the placement they rely on before judging traffic.

use crate::catalog::SuiteName;
use crate::kit::check::check_impl;
use crate::kit::check::{CheckCtx, Env, Runnable};
use crate::kit::errors::KitError;
use crate::kit::probe::Probe;
use crate::kit::probe::curl::{self, CurlResult};
use crate::kit::probe::ping::{self, IPV4_ICMP_OVERHEAD, PingResult};
use crate::kit::retry::{Leg, judge_legs};
use crate::kit::topology::{self, NodeInfo, PodInfo, ServiceInfo};
use crate::kit::transcript::Peer;
use crate::kit::verdict::Verdict;
use crate::kit::workload::{HTTP_PORT_NAME, Placement};
use crate::kit::{wait, workload};
use crate::runner::SuiteImpl;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};

pub const CLIENT: &str = "client";
pub const CLIENT_OTHER_NODE: &str = "client-other-node";
pub const ECHO_SAME_NODE: &str = "echo-same-node";
pub const ECHO_OTHER_NODE: &str = "echo-other-node";
pub const HOST_NETNS: &str = "host-netns";

/// Checks that use the other-node workloads.
const NEEDS_OTHER_NODE: [&str; 4] = [
    "pod-to-pod-other-node",
    "pod-to-service-other-node",
    "pod-to-nodeport-remote",
    "pod-to-pod-no-frag",
];

/// Where the connectivity workloads run.
#[derive(Clone, Debug, PartialEq, Eq)]
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

#[derive(Clone, Debug, PartialEq, Eq)]
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

/// A fact about placement a check depends on: two pods (or a pod and a node) on the same node,
/// or on different ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementFact {
    pub a: String,
    pub a_node: String,
    pub b: String,
    pub b_node: String,
    pub same_node: bool,
}

impl PlacementFact {
    pub fn same(a: &PodInfo, b: &PodInfo) -> PlacementFact {
        PlacementFact {
            a: a.name.clone(),
            a_node: a.node.clone(),
            b: b.name.clone(),
            b_node: b.node.clone(),
            same_node: true,
        }
    }

    pub fn different(a: &PodInfo, b: &PodInfo) -> PlacementFact {
        PlacementFact {
            same_node: false,
            ..PlacementFact::same(a, b)
        }
    }

    fn holds(&self) -> bool {
        (self.a_node == self.b_node) == self.same_node
    }
}

/// What a traffic check observed: the placement it relied on and every probe it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed<T> {
    pub placement: Vec<PlacementFact>,
    pub legs: Vec<Leg<T>>,
}

fn judge_placement(facts: &[PlacementFact]) -> Option<Verdict> {
    let broken: Vec<String> = facts
        .iter()
        .filter(|f| !f.holds())
        .map(|f| {
            format!(
                "{} runs on {} and {} on {}, but this check needs them on {} nodes",
                f.a,
                f.a_node,
                f.b,
                f.b_node,
                if f.same_node { "the same" } else { "different" }
            )
        })
        .collect();
    (!broken.is_empty()).then(|| {
        Verdict::Fail(format!(
            "placement does not hold, so the traffic result would prove the wrong path: {}; the scheduler did not honour the pod (anti-)affinity",
            broken.join("; ")
        ))
    })
}

pub fn judge_http(o: &Placed<CurlResult>) -> Verdict {
    judge_placement(&o.placement).unwrap_or_else(|| judge_legs(&o.legs, curl::judge))
}

pub fn judge_ping(o: &Placed<PingResult>) -> Verdict {
    judge_placement(&o.placement).unwrap_or_else(|| judge_legs(&o.legs, ping::judge))
}

/// The don't-fragment probe also needs the MTU it sized its payload from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoFrag {
    pub mtu: u32,
    pub probes: Placed<PingResult>,
}

pub fn judge_no_frag(o: &NoFrag) -> Verdict {
    match judge_ping(&o.probes) {
        Verdict::Pass(m) => Verdict::Pass(format!(
            "{}-byte packets (pod MTU {}) crossed nodes with DF set: {m}",
            o.mtu, o.mtu
        )),
        Verdict::Fail(m) => Verdict::Fail(format!(
            "a full-MTU packet ({} bytes, DF set) did not cross nodes: {m}",
            o.mtu
        )),
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
        pod: from.pod_ref(),
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
        pod: from.pod_ref(),
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

async fn pod_to_pod_same_node(
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

async fn pod_to_pod_other_node(
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

async fn pod_to_service_same_node(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    Ok(Placed {
        placement: vec![PlacementFact::same(&t.client, &t.echo_same)],
        legs: vec![http(ctx, &t.client, svc_peer(&t.svc_same), svc_url(&t.svc_same)).await?],
    })
}

async fn pod_to_service_other_node(
    t: &Topology,
    ctx: &CheckCtx<'_>,
) -> Result<Placed<CurlResult>, KitError> {
    let o = t.other()?;
    Ok(Placed {
        placement: vec![PlacementFact::different(&t.client, &o.echo)],
        legs: vec![http(ctx, &t.client, svc_peer(&o.svc), svc_url(&o.svc)).await?],
    })
}

async fn pod_to_nodeport_local(
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

async fn pod_to_nodeport_remote(
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

async fn pod_to_host(t: &Topology, ctx: &CheckCtx<'_>) -> Result<Placed<PingResult>, KitError> {
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

async fn host_to_pod(t: &Topology, ctx: &CheckCtx<'_>) -> Result<Placed<CurlResult>, KitError> {
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

async fn pod_to_itself_via_service(
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

async fn pod_to_world(t: &Topology, ctx: &CheckCtx<'_>) -> Result<Placed<CurlResult>, KitError> {
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

async fn pod_to_pod_no_frag(t: &Topology, ctx: &CheckCtx<'_>) -> Result<NoFrag, KitError> {
    let o = t.other()?;
    let probe = Probe {
        label: ctx.label("read-mtu", t.client.source(), Peer::new("eth0", None)),
        pod: t.client.pod_ref(),
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

pub(crate) struct Connectivity;

impl SuiteImpl for Connectivity {
    type Fixture = Topology;
    const SUITE: SuiteName = SuiteName::Connectivity;

    fn checks() -> Vec<Box<dyn Runnable<Topology>>> {
        vec![
            check_impl!("pod-to-pod-same-node", pod_to_pod_same_node, judge_http),
            check_impl!("pod-to-pod-other-node", pod_to_pod_other_node, judge_http),
            check_impl!(
                "pod-to-service-same-node",
                pod_to_service_same_node,
                judge_http
            ),
            check_impl!(
                "pod-to-service-other-node",
                pod_to_service_other_node,
                judge_http
            ),
            check_impl!("pod-to-nodeport-local", pod_to_nodeport_local, judge_http),
            check_impl!("pod-to-nodeport-remote", pod_to_nodeport_remote, judge_http),
            check_impl!("pod-to-host", pod_to_host, judge_ping),
            check_impl!("host-to-pod", host_to_pod, judge_http),
            check_impl!(
                "pod-to-itself-via-service",
                pod_to_itself_via_service,
                judge_http
            ),
            check_impl!("pod-to-world", pod_to_world, judge_http),
            check_impl!("pod-to-pod-no-frag", pod_to_pod_no_frag, judge_no_frag),
        ]
    }

    async fn setup(
        env: &Env,
        wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<Topology, KitError> {
        let labels = env.run_labels();
        let img = &env.images;
        let near = Placement::SameNodeAs(CLIENT.into());
        let far = Placement::OtherNodeThan(CLIENT.into());
        // Deploy only what the selected checks use: a filtered run should not wait on pods
        // (and image pulls) that nothing will probe.
        let host = wanted.contains(&"host-to-pod");
        let multi = env.nodes >= 2 && (host || wanted.iter().any(|c| NEEDS_OTHER_NODE.contains(c)));
        let mut pods = vec![
            (
                workload::client_pod(CLIENT, &labels, &img.client, &Placement::Anywhere),
                "client",
            ),
            (
                workload::echo_pod(ECHO_SAME_NODE, &labels, &img.echo, &near),
                "echo",
            ),
        ];
        if host {
            pods.push((
                workload::host_netns_pod(HOST_NETNS, &labels, &img.client, &near),
                "client",
            ));
        }
        let mut services = vec![workload::echo_service(
            ECHO_SAME_NODE,
            &labels,
            ECHO_SAME_NODE,
        )];
        if multi {
            pods.push((
                workload::client_pod(CLIENT_OTHER_NODE, &labels, &img.client, &far),
                "client",
            ));
            pods.push((
                workload::echo_pod(ECHO_OTHER_NODE, &labels, &img.echo, &far),
                "echo",
            ));
            services.push(workload::echo_service(
                ECHO_OTHER_NODE,
                &labels,
                ECHO_OTHER_NODE,
            ));
        }
        for (p, _) in &pods {
            workload::create_pod(&env.client, &env.namespace, p).await?;
        }
        let mut created = Vec::new();
        for s in &services {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::exec::ExecOutput;
    use crate::kit::retry::{Series, Try};
    use std::time::Duration;

    fn series<T>(tries: Vec<T>) -> Series<T> {
        Series {
            required: 3,
            deadline: Duration::from_secs(60),
            elapsed: Duration::from_secs(2),
            tries: tries.into_iter().map(Try::Observed).collect(),
        }
    }

    fn curl_fixture(name: &str, exit_code: i32) -> CurlResult {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (stdout, stderr) = text.split_once("--- stderr\n").unwrap();
        CurlResult::parse(&ExecOutput {
            exit_code,
            stdout: stdout.trim_end().into(),
            stderr: stderr.into(),
        })
    }

    fn fact(a_node: &str, b_node: &str, same_node: bool) -> PlacementFact {
        PlacementFact {
            a: "client".into(),
            a_node: a_node.into(),
            b: "echo-other-node".into(),
            b_node: b_node.into(),
            same_node,
        }
    }

    #[test]
    fn three_successes_on_the_right_placement_pass() {
        let ok = curl_fixture("curl-ok-200.txt", 0);
        let o = Placed {
            placement: vec![fact("w1", "w2", false)],
            legs: vec![Leg {
                what: "client -> echo-other-node (10.244.2.9:8080)".into(),
                series: series(vec![ok.clone(), ok.clone(), ok]),
            }],
        };
        assert_eq!(
            judge_http(&o),
            Verdict::Pass(
                "client -> echo-other-node (10.244.2.9:8080): HTTP 200 from 10.244.1.7:8080 (3 in a row)".into()
            )
        );
    }

    #[test]
    fn a_cross_node_check_on_one_node_fails_before_looking_at_traffic() {
        let ok = curl_fixture("curl-ok-200.txt", 0);
        let o = Placed {
            placement: vec![fact("w1", "w1", false)],
            legs: vec![Leg {
                what: "client -> echo-other-node".into(),
                series: series(vec![ok.clone(), ok.clone(), ok]),
            }],
        };
        let v = judge_http(&o);
        assert!(!v.is_pass());
        assert!(v.message().contains("client runs on w1 and echo-other-node on w1, but this check needs them on different nodes"), "{}", v.message());
    }

    #[test]
    fn a_timeout_names_the_leg_and_the_drop() {
        let t = curl_fixture("curl-timeout-28.txt", 28);
        let ok = curl_fixture("curl-ok-200.txt", 0);
        let o = Placed {
            placement: vec![],
            legs: vec![
                Leg {
                    what: "client -> echo-same-node (10.244.1.7:8080)".into(),
                    series: series(vec![ok.clone(), ok.clone(), ok]),
                },
                Leg {
                    what: "client -> echo-other-node (10.244.2.9:8080)".into(),
                    series: series(vec![t.clone(), t.clone(), t]),
                },
            ],
        };
        let v = judge_http(&o);
        assert!(
            v.message()
                .starts_with("client -> echo-other-node (10.244.2.9:8080): timeout (curl exit 28)"),
            "{}",
            v.message()
        );
        assert!(
            !v.message().contains("echo-same-node"),
            "passing legs stay out of a failure message"
        );
    }

    #[test]
    fn no_frag_reports_the_mtu_it_tried() {
        let path = format!(
            "{}/tests/fixtures/ping-frag-needed.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let (stdout, stderr) = text.split_once("--- stderr\n").unwrap();
        let r = PingResult::parse(&ExecOutput {
            exit_code: 1,
            stdout: stdout.into(),
            stderr: stderr.into(),
        });
        let o = NoFrag {
            mtu: 1500,
            probes: Placed {
                placement: vec![fact("w1", "w2", false)],
                legs: vec![Leg {
                    what: "client -> echo-other-node (10.244.2.9)".into(),
                    series: series(vec![r]),
                }],
            },
        };
        let v = judge_no_frag(&o);
        assert!(v.message().starts_with("a full-MTU packet (1500 bytes, DF set) did not cross nodes: client -> echo-other-node (10.244.2.9): packet too big for the path: the path allows 1450 bytes;"), "{}", v.message());
    }

    #[test]
    fn pod_to_host_with_no_nodes_is_not_a_pass() {
        let o: Placed<PingResult> = Placed {
            placement: vec![],
            legs: vec![],
        };
        assert!(!judge_ping(&o).is_pass());
    }
}
