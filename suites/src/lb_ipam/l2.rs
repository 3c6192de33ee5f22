//! l2-reachable-from-host's part of the lb-ipam suite: a pool on the outside client's L2
//! segment serving one LoadBalancer Service in front of an echo pod, HTTP to that address from
//! the outside client, and what explains a failure (the announcement Lease, the outside
//! client's ARP table, the nodes).

use super::blocks::{parse_block, requested_ip};
use super::judge::{L2Reach, LeaseSeen};
use super::objects::*;
use super::observe::{L2Fixture, LbFixture, create_and_settle, overlapping_pools};
use crate::kit::check::{CheckCtx, Env};
use crate::kit::errors::KitError;
use crate::kit::probe::curl::{self, CurlResult};
use crate::kit::probe::{Origin, Probe, neigh};
use crate::kit::transcript::Peer;
use crate::kit::{topology, wait, workload};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DynamicObject, ListParams, PostParams};

/// The L2 pool (on the outside client's segment, serving only the L2 Service) and the echo pod
/// behind that Service. A block that overlaps another pool is refused before anything is made;
/// an echo pod that never gets Ready is recorded for the check rather than failing the suite.
pub(crate) async fn setup(
    env: &Env,
    api: &Api<DynamicObject>,
    version: &str,
    existing: &[DynamicObject],
    block: &str,
    uid: &str,
    log: &CheckCtx<'_>,
) -> Result<L2Fixture, KitError> {
    parse_block(block).map_err(|detail| KitError::Parse {
        what: "the L2 block (--lb-l2-block)".into(),
        detail,
    })?;
    let overlaps = overlapping_pools(existing, block);
    if !overlaps.is_empty() {
        return Err(KitError::Missing {
            what: format!(
                "a free L2 block for the suite's pool {}{L2_POOL_SUFFIX}",
                env.namespace
            ),
            hint: format!(
                "{block} overlaps the existing {POOL_KIND} {}; name a free block of the outside client's segment with --lb-l2-block",
                overlaps.join(", ")
            ),
        });
    }
    let name = format!("{}{L2_POOL_SUFFIX}", env.namespace);
    let body: DynamicObject = serde_json::from_value(pool_object(
        &name,
        &format!("cilium.io/{version}"),
        block,
        &l2_labels(&env.run_labels()),
        Some((&env.namespace, uid)),
    ))
    .map_err(|e| KitError::Parse {
        what: "the L2 pool object".into(),
        detail: e.to_string(),
    })?;
    api.create(&PostParams::default(), &body)
        .await
        .map_err(KitError::api(format!(
            "create pool {name} (cilium.io/{version})"
        )))?;
    log.note(format!(
        "pool {name} (cilium.io/{version}) created with block {block} for service {SVC_L2} (label {}={}); deleted with the suite's pool",
        L2_LABEL.0, L2_LABEL.1
    ));
    let pod = workload::echo_pod(
        ECHO_L2,
        &env.run_labels(),
        &env.images.echo,
        &workload::Placement::Anywhere,
    );
    let ready = match workload::create_pod(&env.client, &env.namespace, &pod).await {
        Err(e) => Err(e.to_string()),
        Ok(_) => wait::pod_ready(
            Api::namespaced(env.client.clone(), &env.namespace),
            ECHO_L2,
            env.timeouts.pod_ready,
        )
        .await
        .map(|p| {
            log.note(format!(
                "{ECHO_L2} ready on node {}",
                p.spec.and_then(|s| s.node_name).unwrap_or_default()
            ))
        })
        .map_err(|e| e.to_string()),
    };
    Ok(L2Fixture {
        pool: name,
        block: block.to_string(),
        ready,
    })
}

/// The L2 Service's address from the outside client: HTTP under the retry rule, then the
/// neighbour table (after one ping to each node, so their MACs are in it to name whoever
/// answered ARP), the announcement Lease and the nodes.
pub(crate) async fn l2_reachable_from_host(
    f: &LbFixture,
    ctx: &CheckCtx<'_>,
) -> Result<L2Reach, KitError> {
    let l2 = f.l2.as_ref().ok_or_else(|| KitError::Missing {
        what: "the suite's L2 pool".into(),
        hint: "setup makes it only when l2-reachable-from-host runs with a block of the outside client's segment".into(),
    })?;
    if let Err(why) = &l2.ready {
        return Err(KitError::Missing {
            what: format!("a Ready {ECHO_L2} backend"),
            hint: why.clone(),
        });
    }
    let from = ctx.outside_peer()?;
    let ip = requested_ip(&l2.block).map_err(|detail| KitError::Parse {
        what: "the L2 block".into(),
        detail,
    })?;
    let service = create_and_settle(ctx, &l2_service(&f.labels, &ip)).await?;
    let lease_name = l2_lease_name(&f.namespace, SVC_L2);
    let address = service.ingress.first().cloned();
    let http = match &address {
        Some(addr) if service.satisfied().is_some_and(|c| c.status == "True") => {
            let probe = Probe {
                label: ctx.label(
                    "curl",
                    from.clone(),
                    Peer::new(SVC_L2, Some(format!("{addr}:{L2_PORT}"))),
                ),
                origin: Origin::Outside,
                argv: curl::argv(&format!("http://{addr}:{L2_PORT}/")),
            };
            Some(
                ctx.until_stable(&probe, CurlResult::parse, curl::judge)
                    .await?,
            )
        }
        _ => None,
    };
    let nodes = Api::<Node>::all(ctx.env.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(KitError::api("list nodes"))?;
    let nodes = topology::nodes(&nodes.items);
    for n in &nodes {
        // Only to have the node's MAC in the table; whether ICMP is answered does not matter.
        let _ = ctx
            .run(&Probe {
                label: ctx.label(
                    "arp",
                    from.clone(),
                    Peer::new(format!("node {}", n.name), Some(n.internal_ip.clone())),
                ),
                origin: Origin::Outside,
                argv: ["ping", "-c", "1", "-W", "1", &n.internal_ip]
                    .map(String::from)
                    .to_vec(),
            })
            .await;
    }
    let neighbours = ctx
        .run(&Probe {
            label: ctx.label("neigh", from.clone(), Peer::new("its ARP table", None)),
            origin: Origin::Outside,
            argv: neigh::argv(),
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|o| match o.exit_code {
            0 => Ok(neigh::parse(&o.stdout)),
            c => Err(format!(
                "`ip -4 neigh show` exited {c}: {}",
                o.first_error_line().unwrap_or_default()
            )),
        });
    let leases = Api::<Lease>::all(ctx.env.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(KitError::api("list leases"))?;
    let lease = leases
        .items
        .iter()
        .find(|l| l.metadata.name.as_deref() == Some(lease_name.as_str()))
        .map(lease_seen);
    if let Some(l) = &lease {
        ctx.note(format!(
            "lease {}/{}: holder {}",
            l.namespace,
            l.name,
            l.holder.as_deref().unwrap_or("none")
        ));
    }
    Ok(L2Reach {
        block: l2.block.clone(),
        service,
        http,
        lease_name,
        lease,
        neighbours,
        nodes,
    })
}

/// A Lease as the judge reads it.
pub fn lease_seen(l: &Lease) -> LeaseSeen {
    let spec = l.spec.as_ref();
    LeaseSeen {
        namespace: l.metadata.namespace.clone().unwrap_or_default(),
        name: l.metadata.name.clone().unwrap_or_default(),
        holder: spec
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty()),
        renew_time: spec
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.to_string()),
    }
}
