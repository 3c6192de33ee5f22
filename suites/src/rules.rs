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
