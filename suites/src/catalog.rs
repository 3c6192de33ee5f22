//! The declared catalog: every suite and check with its stable name, what it proves, the anchor
//! it mirrors and when it applies. `plan` lists it; the runner executes it.

use crate::features::{Applicability, RunContext};
use serde::Serialize;
use std::fmt;

/// A suite's stable name, the first half of `suite::check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuiteName {
    Connectivity,
    Dns,
    PodSecurity,
    GatewayApi,
    Wireguard,
    LbIpam,
}

impl SuiteName {
    pub fn as_str(self) -> &'static str {
        match self {
            SuiteName::Connectivity => "connectivity",
            SuiteName::Dns => "dns",
            SuiteName::PodSecurity => "pod-security",
            SuiteName::GatewayApi => "gateway-api",
            SuiteName::Wireguard => "wireguard",
            SuiteName::LbIpam => "lb-ipam",
        }
    }
}

impl fmt::Display for SuiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Rule = fn(&RunContext) -> Applicability;

/// Whether this version of the harness carries an observe step and a judge for a check.
///
/// Declaring a check before it is implemented keeps its name stable for filters and plans; the
/// runner reports such a check as skipped with [`NOT_IMPLEMENTED`], never as passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Implemented,
    NotImplemented,
}

/// The skip reason a runner gives a declared but not implemented check.
pub const NOT_IMPLEMENTED: &str = "not implemented in this version";

/// One check, as declared.
pub struct CheckDecl {
    pub name: &'static str,
    pub proves: &'static str,
    pub anchor: &'static str,
    pub applies: Rule,
    pub status: CheckStatus,
}

/// One suite: its own applicability, then each check's.
pub struct SuiteDecl {
    pub name: SuiteName,
    pub applies: Rule,
    pub checks: &'static [CheckDecl],
}

impl SuiteDecl {
    /// The suite's rule first, so a skipped suite gives its own reason to every check.
    pub fn check_applicability(&self, check: &CheckDecl, ctx: &RunContext) -> Applicability {
        match (self.applies)(ctx) {
            Applicability::Applies => (check.applies)(ctx),
            skipped => skipped,
        }
    }

    /// What a runner does with a check: its applicability first (a cell that does not need the
    /// check says why), then whether this version can run it at all.
    pub fn check_runnability(&self, check: &CheckDecl, ctx: &RunContext) -> Applicability {
        match self.check_applicability(check, ctx) {
            Applicability::Applies if check.status == CheckStatus::NotImplemented => {
                Applicability::Skipped(NOT_IMPLEMENTED.into())
            }
            other => other,
        }
    }

    pub fn check(&self, name: &str) -> Option<&'static CheckDecl> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// The declaration of one suite.
pub fn suite(name: SuiteName) -> &'static SuiteDecl {
    CATALOG
        .iter()
        .find(|s| s.name == name)
        .expect("every SuiteName has a catalog entry (tested)")
}

fn always(_: &RunContext) -> Applicability {
    Applicability::Applies
}

fn two_nodes(ctx: &RunContext) -> Applicability {
    if ctx.nodes >= 2 {
        Applicability::Applies
    } else {
        Applicability::Skipped(format!(
            "needs two schedulable nodes; the cluster has {}",
            ctx.nodes
        ))
    }
}

fn egress(ctx: &RunContext) -> Applicability {
    match ctx.external_target {
        Some(_) => Applicability::Applies,
        None => Applicability::Skipped(
            "egress disabled (--no-external-target): the run has no route to the internet".into(),
        ),
    }
}

fn gateway_api(ctx: &RunContext) -> Applicability {
    if ctx.features.gateway_api {
        Applicability::Applies
    } else {
        Applicability::Skipped("gatewayAPI.enabled is not true in the values".into())
    }
}

fn wireguard(ctx: &RunContext) -> Applicability {
    if !ctx.features.wireguard {
        return Applicability::Skipped(
            "encryption is off or not WireGuard (encryption.enabled/encryption.type)".into(),
        );
    }
    two_nodes(ctx)
}

fn l2_announcements(ctx: &RunContext) -> Applicability {
    if ctx.features.l2_announcements {
        Applicability::Applies
    } else {
        Applicability::Skipped(
            "l2announcements.enabled is not true: LoadBalancer IPs are not announced to the host"
                .into(),
        )
    }
}

/// `check!(name, proves, anchor[, rule])` declares an implemented check;
/// `check!(pending: name, proves, anchor[, rule])` declares one this version cannot run yet.
macro_rules! check {
    (pending: $name:literal, $proves:literal, $anchor:literal) => {
        check!(@decl $name, $proves, $anchor, always, CheckStatus::NotImplemented)
    };
    (pending: $name:literal, $proves:literal, $anchor:literal, $rule:expr) => {
        check!(@decl $name, $proves, $anchor, $rule, CheckStatus::NotImplemented)
    };
    ($name:literal, $proves:literal, $anchor:literal) => {
        check!(@decl $name, $proves, $anchor, always, CheckStatus::Implemented)
    };
    ($name:literal, $proves:literal, $anchor:literal, $rule:expr) => {
        check!(@decl $name, $proves, $anchor, $rule, CheckStatus::Implemented)
    };
    (@decl $name:literal, $proves:literal, $anchor:literal, $rule:expr, $status:expr) => {
        CheckDecl {
            name: $name,
            proves: $proves,
            anchor: $anchor,
            applies: $rule,
            status: $status,
        }
    };
}

const CONNECTIVITY: &[CheckDecl] = &[
    check!(
        "pod-to-pod-same-node",
        "a client reaches an echo pod on its own node by pod IP",
        "cilium connectivity test: pod-to-pod (echo-same-node)"
    ),
    check!(
        "pod-to-pod-other-node",
        "a client reaches an echo pod on another node by pod IP",
        "cilium connectivity test: pod-to-pod (echo-other-node)",
        two_nodes
    ),
    check!(
        "pod-to-service-same-node",
        "a ClusterIP Service with a backend on the client's node answers",
        "cilium connectivity test: pod-to-service"
    ),
    check!(
        "pod-to-service-other-node",
        "a ClusterIP Service with a backend on another node answers",
        "cilium connectivity test: pod-to-service",
        two_nodes
    ),
    check!(
        "pod-to-nodeport-local",
        "a NodePort answers on the client's own node IP",
        "cilium connectivity test: pod-to-local-nodeport"
    ),
    check!(
        "pod-to-nodeport-remote",
        "a NodePort answers on another node's IP",
        "cilium connectivity test: pod-to-remote-nodeport",
        two_nodes
    ),
    check!(
        "pod-to-host",
        "a pod reaches a node IP (ICMP)",
        "cilium connectivity test: pod-to-host"
    ),
    check!(
        "host-to-pod",
        "a host-network pod reaches a pod IP",
        "cilium connectivity test: host-to-pod"
    ),
    check!(
        "pod-to-itself-via-service",
        "a pod reaches itself through its own Service (hairpin)",
        "cilium connectivity test: pod-to-itself-via-service"
    ),
    check!(
        "pod-to-world",
        "a pod reaches the external target over HTTPS",
        "cilium connectivity test: pod-to-world",
        egress
    ),
    check!(
        "pod-to-pod-no-frag",
        "a large payload crosses nodes without fragmentation failures",
        "cilium connectivity test: pod-to-pod-no-frag",
        two_nodes
    ),
];

const DNS: &[CheckDecl] = &[
    check!(
        "kubernetes-default-fqdn",
        "kubernetes.default.svc.cluster.local resolves to the API Service IP",
        "Kubernetes e2e: DNS should provide DNS for the cluster"
    ),
    check!(
        "search-path-partial-names",
        "partial names resolve through the pod's search path",
        "Kubernetes e2e: DNS should resolve DNS of partial qualified names"
    ),
    check!(
        "service-a-record",
        "a Service's A record is its ClusterIP",
        "Kubernetes e2e: DNS should provide DNS for services"
    ),
    check!(
        "headless-service-pod-ips",
        "a headless Service resolves to exactly its ready pod IPs",
        "Kubernetes e2e: DNS should provide DNS for services (headless)"
    ),
    check!(
        "srv-named-port",
        "an SRV record exists for a Service's named port",
        "Kubernetes e2e: DNS should provide DNS for services (SRV)"
    ),
    check!(
        "pod-a-record",
        "a-b-c-d.<ns>.pod.cluster.local resolves to the pod IP",
        "Kubernetes e2e: DNS should provide DNS for pods"
    ),
    check!(
        "hostname-subdomain",
        "a pod with hostname and subdomain gets its record",
        "Kubernetes e2e: DNS should provide DNS for pods for Hostname"
    ),
    check!(
        "externalname-cname",
        "an ExternalName Service answers with a CNAME",
        "Kubernetes e2e: DNS should provide DNS for ExternalName services"
    ),
    check!(
        "dns-policy-none",
        "dnsPolicy: None with custom nameservers is honoured",
        "Kubernetes e2e: DNS should support configurable pod DNS nameservers"
    ),
    check!(
        "external-name",
        "an external name resolves from a pod (catches Talos hostDNS + BPF host routing)",
        "talos #9191/#10002, cilium #36737",
        egress
    ),
];

const POD_SECURITY: &[CheckDecl] = &[
    check!(
        "namespace-levels",
        "namespaces at privileged, baseline, restricted and warn-only are created as labelled",
        "Kubernetes Pod Security admission"
    ),
    check!(
        "baseline-refuses-net-raw",
        "baseline refuses a pod adding NET_RAW, naming the control",
        "PodSecurity baseline: non-default capabilities"
    ),
    check!(
        "baseline-refuses-host-network",
        "baseline refuses hostNetwork, naming the control",
        "PodSecurity baseline: host namespaces"
    ),
    check!(
        "baseline-refuses-host-port",
        "baseline refuses hostPort, naming the control",
        "PodSecurity baseline: hostPort"
    ),
    check!(
        "baseline-refuses-privileged",
        "baseline refuses a privileged container, naming the control",
        "PodSecurity baseline: privileged"
    ),
    check!(
        "restricted-admits-compliant-pod",
        "restricted admits a pod that meets every restricted control",
        "PodSecurity restricted"
    ),
    check!(
        "warn-level-warning-header",
        "a warn-only namespace admits a violating pod with a Warning header",
        "PodSecurity warn mode"
    ),
    check!(
        "deployment-admitted-replicaset-failedcreate",
        "a violating Deployment is admitted and its ReplicaSet records FailedCreate",
        "PodSecurity enforces on pods, not controllers"
    ),
    check!(
        "cluster-default-is-baseline",
        "an unlabelled namespace enforces baseline, as Talos documents",
        "Talos default admission configuration"
    ),
    check!(
        "harness-namespaces-labelled",
        "the harness's own test namespaces carry enforce=privileged",
        "cilium/cilium#30346, cilium-cli#3173"
    ),
];

const GATEWAY_API: &[CheckDecl] = &[
    check!(
        "gatewayclass-accepted",
        "GatewayClass cilium is Accepted by io.cilium/gateway-controller",
        "Gateway API conformance: GatewayClassObservedGenerationBump"
    ),
    check!(
        "gateway-programmed",
        "a Gateway is Accepted and Programmed with an address",
        "Gateway API conformance: GatewayWithAttachedRoutes"
    ),
    check!(
        "httproute-accepted",
        "an HTTPRoute's parent status is Accepted and ResolvedRefs",
        "Gateway API conformance: HTTPRouteSimpleSameNamespace"
    ),
    check!(
        "path-prefix-routing",
        "PathPrefix matches whole segments (/v2 vs /v2example)",
        "Gateway API conformance: HTTPRouteMatching"
    ),
    check!(
        "exact-path",
        "an Exact path match routes only that path",
        "Gateway API conformance: HTTPRouteExactPathMatching"
    ),
    check!(
        "header-match",
        "a header match routes by header value",
        "Gateway API conformance: HTTPRouteHeaderMatching"
    ),
    check!(
        "hostname-match",
        "exact and wildcard hostnames route; others get 404",
        "Gateway API conformance: HTTPRouteHostnameIntersection"
    ),
    check!(
        "weighted-backends",
        "backend weights split traffic within tolerance",
        "Gateway API conformance: HTTPRouteWeight"
    ),
    check!(
        "redirect",
        "a RequestRedirect filter answers 301/302 with Location",
        "Gateway API conformance: HTTPRouteRedirectHostAndStatus"
    ),
    check!(
        "request-header-modifier",
        "a RequestHeaderModifier filter sets, adds and removes headers",
        "Gateway API conformance: HTTPRouteRequestHeaderModifier"
    ),
];

const WIREGUARD: &[CheckDecl] = &[
    check!(
        "encryption-mode",
        "every agent reports encryption mode Wireguard",
        "cilium-dbg status -o json: .encryption.mode"
    ),
    check!(
        "peer-count",
        "every agent has one peer per other node",
        "cilium-dbg status: wireguard peer-count"
    ),
    check!(
        "peer-keys-match-nodes",
        "every peer key is another node's network.cilium.io/wg-pub-key",
        "CiliumNode annotations"
    ),
    check!(
        "allowed-ips-cover-pod-cidrs",
        "each peer's allowed IPs cover that node's pod CIDR",
        "cilium-dbg debuginfo: wireguard peers allowed-ips"
    ),
    check!(
        "handshake-after-traffic",
        "peers show a recent handshake after cross-node traffic",
        "cilium-dbg debuginfo: wireguard peers last-handshake-time"
    ),
];

const LB_IPAM: &[CheckDecl] = &[
    check!(
        "pool-ready",
        "the CiliumLoadBalancerIPPool reports its IP counts and no conflict",
        "Cilium LB IPAM pool conditions"
    ),
    check!(
        "service-gets-ip",
        "a LoadBalancer Service gets an IP from the pool",
        "Cilium LB IPAM: cilium.io/IPAMRequestSatisfied"
    ),
    check!(
        "requested-ip-annotation",
        "lbipam.cilium.io/ips assigns the requested address",
        "Cilium LB IPAM service annotations"
    ),
    check!(
        "sharing-key",
        "two Services with one sharing key share an IP",
        "Cilium LB IPAM: lbipam.cilium.io/sharing-key"
    ),
    check!(
        "pool-exhausted-pending",
        "a Service beyond the pool's size stays pending with reason out_of_ips",
        "Cilium LB IPAM: IPAMRequestSatisfied=False"
    ),
    check!(
        pending: "l2-reachable-from-host",
        "the LoadBalancer IP answers from the Docker host via L2 announcements",
        "Cilium CI (kind) L2 announcement tests",
        l2_announcements
    ),
];

/// Every suite the harness knows, in run order.
pub const CATALOG: &[SuiteDecl] = &[
    SuiteDecl {
        name: SuiteName::Connectivity,
        applies: always,
        checks: CONNECTIVITY,
    },
    SuiteDecl {
        name: SuiteName::Dns,
        applies: always,
        checks: DNS,
    },
    SuiteDecl {
        name: SuiteName::PodSecurity,
        applies: always,
        checks: POD_SECURITY,
    },
    SuiteDecl {
        name: SuiteName::GatewayApi,
        applies: gateway_api,
        checks: GATEWAY_API,
    },
    SuiteDecl {
        name: SuiteName::Wireguard,
        applies: wireguard,
        checks: WIREGUARD,
    },
    SuiteDecl {
        name: SuiteName::LbIpam,
        applies: always,
        checks: LB_IPAM,
    },
];

/// CHECKS.md: one table per implemented suite, then the suites declared for later. Generated so
/// the document cannot drift from the catalog (a test compares the file with this).
pub fn checks_markdown() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# Checks\n\n\
         Generated from `suites/src/catalog.rs` (`cargo test -p suites --test catalog_coverage` \
         fails when this file is stale; rerun it with `UPDATE_CHECKS_MD=1` to rewrite it).\n\n\
         Every check observes the cluster (exec probes in pods, API requests) and hands plain data \
         to a pure judge. A probe passes after 3 consecutive successes within 60s. A check ends \
         passed, failed (the cluster misbehaved; the message says what and where to look), error \
         (the harness could not observe) or skipped (not applicable to the cell, or not \
         implemented in this version; never reported as passed).\n",
    );
    let cell = |s: &str| s.replace('|', "\\|");
    for suite in CATALOG {
        if suite
            .checks
            .iter()
            .all(|c| c.status == CheckStatus::NotImplemented)
        {
            continue;
        }
        let _ = write!(
            out,
            "\n## {}\n\n| Check | What it proves | Anchor |\n|---|---|---|\n",
            suite.name
        );
        for c in suite.checks {
            let pending = match c.status {
                CheckStatus::Implemented => String::new(),
                CheckStatus::NotImplemented => format!(" ({NOT_IMPLEMENTED})"),
            };
            let _ = writeln!(
                out,
                "| `{}::{}` | {}{pending} | {} |",
                suite.name,
                c.name,
                cell(c.proves),
                cell(c.anchor)
            );
        }
    }
    let later: Vec<String> = CATALOG
        .iter()
        .filter(|s| {
            s.checks
                .iter()
                .all(|c| c.status == CheckStatus::NotImplemented)
        })
        .map(|s| format!("`{}` ({} checks)", s.name, s.checks.len()))
        .collect();
    if !later.is_empty() {
        let _ = write!(
            out,
            "\n## Declared, not implemented in this version\n\n{}: their checks are listed by \
             `harness plan` and reported as skipped \"{NOT_IMPLEMENTED}\".\n",
            later.join(", ")
        );
    }
    out
}

/// Every `suite::check` name, in catalog order.
pub fn all_check_names() -> impl Iterator<Item = String> {
    CATALOG.iter().flat_map(|s| {
        s.checks
            .iter()
            .map(move |c| format!("{}::{}", s.name, c.name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{Features, Routing};
    use std::collections::HashSet;

    fn ctx(nodes: u32) -> RunContext {
        RunContext {
            features: Features {
                kube_proxy_replacement: true,
                gateway_api: false,
                wireguard: false,
                node_encryption: false,
                hubble: false,
                hubble_relay: false,
                hubble_ui: false,
                l2_announcements: false,
                l7_proxy: true,
                host_firewall: false,
                bandwidth_manager: false,
                bbr: false,
                mutual_auth_spire: false,
                routing: Routing::Vxlan,
            },
            nodes,
            external_target: None,
        }
    }

    #[test]
    fn names_are_unique_and_kebab_case() {
        let names: Vec<String> = all_check_names().collect();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(names.len(), unique.len());
        for n in &names {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == ':'),
                "{n}"
            );
        }
    }

    #[test]
    fn wireguard_suite_is_skipped_with_its_reason_when_encryption_is_off() {
        let c = ctx(3);
        let suite = CATALOG
            .iter()
            .find(|s| s.name == SuiteName::Wireguard)
            .unwrap();
        let a = suite.check_applicability(&suite.checks[0], &c);
        assert_eq!(
            a,
            Applicability::Skipped(
                "encryption is off or not WireGuard (encryption.enabled/encryption.type)".into()
            )
        );
    }

    #[test]
    fn cross_node_checks_need_two_nodes() {
        let suite = &CATALOG[0];
        let other = suite
            .checks
            .iter()
            .find(|c| c.name == "pod-to-pod-other-node")
            .unwrap();
        assert!(!suite.check_applicability(other, &ctx(1)).applies());
        assert!(suite.check_applicability(other, &ctx(2)).applies());
    }

    #[test]
    fn egress_checks_follow_the_external_target() {
        let mut c = ctx(3);
        let dns = CATALOG.iter().find(|s| s.name == SuiteName::Dns).unwrap();
        let ext = dns
            .checks
            .iter()
            .find(|c| c.name == "external-name")
            .unwrap();
        assert!(!dns.check_applicability(ext, &c).applies());
        c.external_target = Some("cilium.io".into());
        assert!(dns.check_applicability(ext, &c).applies());
    }
}
