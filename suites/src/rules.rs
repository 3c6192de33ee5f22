//! When a suite or a check applies: small rules over the run's [`RunContext`], shared by the
//! declarations. A rule that does not apply says why, in the words a plan prints.

use crate::context::{Applicability, RunContext};

pub(crate) fn always(_: &RunContext) -> Applicability {
    Applicability::Applies
}

pub(crate) fn two_nodes(ctx: &RunContext) -> Applicability {
    if ctx.nodes >= 2 {
        Applicability::Applies
    } else {
        Applicability::Skipped(format!(
            "needs two schedulable nodes; the cluster has {}",
            ctx.nodes
        ))
    }
}

pub(crate) fn egress(ctx: &RunContext) -> Applicability {
    match ctx.external_target {
        Some(_) => Applicability::Applies,
        None => Applicability::Skipped(
            "egress disabled (--no-external-target): the run has no route to the internet".into(),
        ),
    }
}

pub(crate) fn gateway_api(ctx: &RunContext) -> Applicability {
    if ctx.features.gateway_api {
        Applicability::Applies
    } else {
        Applicability::Skipped("gatewayAPI.enabled is not true in the values".into())
    }
}

pub(crate) fn wireguard(ctx: &RunContext) -> Applicability {
    if !ctx.features.wireguard {
        return Applicability::Skipped(
            "encryption is off or not WireGuard (encryption.enabled/encryption.type)".into(),
        );
    }
    two_nodes(ctx)
}

pub(crate) fn l2_announcements(ctx: &RunContext) -> Applicability {
    if ctx.features.l2_announcements {
        Applicability::Applies
    } else {
        Applicability::Skipped(
            "l2announcements.enabled is not true: LoadBalancer IPs are not announced to the host"
                .into(),
        )
    }
}

pub(crate) fn policy_enforcement(ctx: &RunContext) -> Applicability {
    if ctx.features.policy_enforcement {
        Applicability::Applies
    } else {
        Applicability::Skipped(
            "policyEnforcementMode is never: Cilium enforces no network policy".into(),
        )
    }
}

pub(crate) fn l7_proxy(ctx: &RunContext) -> Applicability {
    if ctx.features.l7_proxy {
        Applicability::Applies
    } else {
        Applicability::Skipped(
            "l7Proxy is false: no Envoy proxy for HTTP rules and no DNS proxy for toFQDNs".into(),
        )
    }
}
pub(crate) fn hubble_relay(ctx: &RunContext) -> Applicability {
    if ctx.features.hubble_relay {
        Applicability::Applies
    } else {
        Applicability::Skipped("hubble.enabled or hubble.relay.enabled is not true".into())
    }
}

pub(crate) fn hubble_ui(ctx: &RunContext) -> Applicability {
    if ctx.features.hubble_ui {
        Applicability::Applies
    } else {
        Applicability::Skipped("hubble.enabled or hubble.ui.enabled is not true".into())
    }
}

pub(crate) fn kube_proxy_replacement(ctx: &RunContext) -> Applicability {
    if ctx.features.kube_proxy_replacement {
        Applicability::Applies
    } else {
        Applicability::Skipped(
            "kubeProxyReplacement is not true: kube-proxy serves Services".into(),
        )
    }
}

pub(crate) fn bandwidth_manager(ctx: &RunContext) -> Applicability {
    if ctx.features.bandwidth_manager {
        Applicability::Applies
    } else {
        Applicability::Skipped("bandwidthManager.enabled is not true".into())
    }
}

/// BBR for pods needs BPF host routing: with legacy host routing the packet loses its socket
/// on the way through the host stack before it reaches the FQ qdisc, so pods are not paced by
/// BBR whatever the agent reports (Cilium's bandwidth manager guide). The Talos-in-Docker
/// overlay sets `bpf.hostLegacyRouting=true`, so BBR cannot be proved in those cells.
pub(crate) fn bbr(ctx: &RunContext) -> Applicability {
    if !ctx.features.bbr {
        return Applicability::Skipped(
            "bandwidthManager.bbr is not true (or the bandwidth manager is off)".into(),
        );
    }
    if ctx.features.host_legacy_routing {
        return Applicability::Skipped(
            "bpf.hostLegacyRouting=true: BBR for pods needs BPF host routing to keep the socket up to the FQ qdisc, so it cannot be proved here (the Talos-in-Docker overlay sets it for CoreDNS)".into(),
        );
    }
    Applicability::Applies
}

pub(crate) fn outside_client(ctx: &RunContext) -> Applicability {
    match ctx.outside {
        Some(_) => Applicability::Applies,
        None => Applicability::Skipped(
            "no outside client (--outside-client none): the run probes only from pods".into(),
        ),
    }
}

/// An L2-announced LoadBalancer address is reachable from the outside client: announcements
/// on, an outside client, and a block of its L2 segment for the suite's pool.
pub(crate) fn l2_from_outside(ctx: &RunContext) -> Applicability {
    if let skipped @ Applicability::Skipped(_) = l2_announcements(ctx) {
        return skipped;
    }
    let Some(outside) = &ctx.outside else {
        return outside_client(ctx);
    };
    match &outside.l2_block {
        Some(_) => Applicability::Applies,
        None => Applicability::Skipped(format!(
            "no LB pool reachable from the outside client ({}): name a free block of its L2 segment with --lb-l2-block",
            outside.origin.as_str()
        )),
    }
}

/// The Gateway's external address is reachable from the outside client: in this harness's
/// clusters the Gateway's LoadBalancer address comes from a pool announced over L2.
pub(crate) fn gateway_from_outside(ctx: &RunContext) -> Applicability {
    if let skipped @ Applicability::Skipped(_) = gateway_api(ctx) {
        return skipped;
    }
    if ctx.outside.is_none() {
        return outside_client(ctx);
    }
    if !ctx.features.l2_announcements {
        return Applicability::Skipped(
            "no Gateway address reachable from outside: l2announcements.enabled is not true, so the Gateway's LoadBalancer address is not announced on the outside client's network".into(),
        );
    }
    Applicability::Applies
}

pub(crate) fn host_firewall(ctx: &RunContext) -> Applicability {
    if ctx.features.host_firewall {
        Applicability::Applies
    } else {
        Applicability::Skipped("hostFirewall.enabled is not true".into())
    }
}

pub(crate) fn mutual_auth_spire(ctx: &RunContext) -> Applicability {
    if ctx.features.mutual_auth_spire {
        Applicability::Applies
    } else {
        Applicability::Skipped("authentication.mutual.spire.enabled is not true".into())
    }
}
