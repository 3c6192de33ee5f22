//! The DNS judges: an answer against what the Kubernetes DNS specification says it must be.
//! Pure: dig results and the expectations the observe steps derived from the API, a verdict out.

use super::dig::{DigResult, RData, RType, same_name};
use super::resolv_conf::ResolvConf;
use crate::kit::cilium::{CiliumFacts, Version};
use crate::kit::retry::{Series, Try, judge_series};
use crate::kit::talos::NodeOs;
use crate::kit::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// What a lookup must return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// Exactly these addresses.
    Ips(BTreeSet<IpAddr>),
    /// At least one address (external names: which ones is not ours to know).
    AnyIp,
    Srv {
        port: u16,
        target: String,
    },
    Cname(String),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Ips(s) => write!(f, "exactly {}", join(s.iter())),
            Expect::AnyIp => f.write_str("at least one address"),
            Expect::Srv { port, target } => write!(f, "SRV port {port} target {target}"),
            Expect::Cname(t) => write!(f, "CNAME {t}"),
        }
    }
}

fn join<T: ToString>(it: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = it.map(|x| x.to_string()).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// One name looked up repeatedly, with what it had to return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    pub name: String,
    pub rtype: RType,
    pub expect: Expect,
    pub series: Series<DigResult>,
}

/// Judges one dig answer against what was expected.
pub fn answer(r: &DigResult, expect: &Expect) -> Verdict {
    let (rcode, records) = match r {
        DigResult::Timeout { detail } => {
            return Verdict::Fail(format!(
                "no answer within 2s (dig exit 9: {detail}): queries from the pod to the cluster DNS are lost; check that the kube-dns Service has ready CoreDNS endpoints and look for drops with `hubble observe --port 53`"
            ));
        }
        DigResult::Failed { exit_code, detail } => {
            return Verdict::Fail(format!("dig failed (exit {exit_code}): {detail}"));
        }
        DigResult::Answer { rcode, records } => (rcode, records),
    };
    if rcode != "NOERROR" {
        let why = match rcode.as_str() {
            "NXDOMAIN" => "the DNS server says the name does not exist",
            "SERVFAIL" => {
                "the DNS server could not get an answer (for external names: its upstream failed)"
            }
            "REFUSED" => "the DNS server refused the query",
            _ => "unexpected response code",
        };
        return Verdict::Fail(format!("{rcode}: {why}; expected {expect}"));
    }
    let shown = join(records.iter());
    match expect {
        Expect::Ips(want) => {
            let got: BTreeSet<IpAddr> = r.ips().into_iter().collect();
            if &got == want {
                Verdict::Pass(join(got.iter()))
            } else {
                let missing: Vec<_> = want.difference(&got).collect();
                let extra: Vec<_> = got.difference(want).collect();
                Verdict::Fail(format!(
                    "answered {}, expected {expect} (missing: {}; unexpected: {})",
                    join(got.iter()),
                    join(missing.iter()),
                    join(extra.iter())
                ))
            }
        }
        Expect::AnyIp if !r.ips().is_empty() => Verdict::Pass(shown),
        Expect::AnyIp => Verdict::Fail(format!("NOERROR but no address in the answer ({shown})")),
        Expect::Srv { port, target } => {
            let hit = records.iter().any(|rec| {
                matches!(&rec.data, RData::Srv { port: p, target: t, .. } if p == port && same_name(t, target))
            });
            if hit {
                Verdict::Pass(shown)
            } else {
                Verdict::Fail(format!("answered {shown}, expected {expect}"))
            }
        }
        Expect::Cname(target) => {
            let hit = records
                .iter()
                .any(|rec| matches!(&rec.data, RData::Cname(t) if same_name(t, target)));
            if hit {
                Verdict::Pass(shown)
            } else {
                Verdict::Fail(format!("answered {shown}, expected {expect}"))
            }
        }
    }
}

pub fn lookup(l: &Lookup) -> Verdict {
    judge_series(&l.series, |r| answer(r, &l.expect))
}

#[allow(
    clippy::ptr_arg,
    reason = "a judge takes `&Observation`, and this observation is a Vec"
)]
pub fn lookups(ls: &Vec<Lookup>) -> Verdict {
    Verdict::all(
        ls.iter()
            .map(|l| (format!("{} {}", l.name, l.rtype.as_str()), lookup(l))),
    )
}

/// An address the EndpointSlice controller published for a Service, with its readiness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub ready: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headless {
    pub not_ready: Vec<IpAddr>,
    pub lookup: Lookup,
    /// What the EndpointSlices said after the lookups, to tell a DNS fault from an endpoints one.
    pub endpoints: Vec<Endpoint>,
}

pub fn headless(h: &Headless) -> Verdict {
    let v = lookup(&h.lookup);
    let Verdict::Fail(m) = v else {
        return v;
    };
    let last = match h.lookup.series.tries.last() {
        Some(Try::Observed(r)) => r.ips(),
        _ => Vec::new(),
    };
    let leaked: Vec<IpAddr> = last
        .into_iter()
        .filter(|ip| h.not_ready.contains(ip))
        .collect();
    let published: BTreeSet<IpAddr> = h
        .endpoints
        .iter()
        .filter(|e| e.ready)
        .map(|e| e.ip)
        .collect();
    let where_ = match &h.lookup.expect {
        Expect::Ips(want) if &published != want => format!(
            "the EndpointSlices list {} as ready, the Ready pods are {}: the endpoints are wrong before DNS sees them (EndpointSlice controller, pod readiness)",
            join(published.iter()),
            join(want.iter())
        ),
        _ => "the EndpointSlices are right, so CoreDNS answers differently from them (CoreDNS cache or its kubernetes plugin)".into(),
    };
    if leaked.is_empty() {
        Verdict::Fail(format!("{m}; {where_}"))
    } else {
        Verdict::Fail(format!(
            "the headless Service publishes not-ready pod {}: DNS must return only Ready endpoints (publishNotReadyAddresses must stay false); {where_}; {m}",
            join(leaked.iter())
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyNone {
    pub configured: ResolvConf,
    pub actual: ResolvConf,
    pub lookup: Lookup,
}

pub fn policy_none(p: &PolicyNone) -> Verdict {
    let mut wrong = Vec::new();
    if p.actual.nameservers != p.configured.nameservers {
        wrong.push(format!(
            "nameservers are [{}], configured [{}]",
            p.actual.nameservers.join(" "),
            p.configured.nameservers.join(" ")
        ));
    }
    if p.actual.search != p.configured.search {
        wrong.push(format!(
            "search is [{}], configured [{}]",
            p.actual.search.join(" "),
            p.configured.search.join(" ")
        ));
    }
    for o in &p.configured.options {
        if !p.actual.options.contains(o) {
            wrong.push(format!("option {o} is missing"));
        }
    }
    if !wrong.is_empty() {
        return Verdict::Fail(format!(
            "the kubelet did not write the pod's dnsConfig into /etc/resolv.conf (dnsPolicy: None): {}",
            wrong.join("; ")
        ));
    }
    match lookup(&p.lookup) {
        Verdict::Pass(m) => Verdict::Pass(format!(
            "resolv.conf is exactly the dnsConfig, and {} resolves through its search list to {m}",
            p.lookup.name
        )),
        Verdict::Fail(m) => Verdict::Fail(format!(
            "resolv.conf matches the dnsConfig, but {} did not resolve through it: {m}",
            p.lookup.name
        )),
    }
}

/// From this release Cilium's BPF host routing reliably drops the host DNS replies Talos's
/// forwardKubeDNSToHost relies on (cilium/cilium#35098; siderolabs/talos#10002,
/// cilium/cilium#36737); before it, only some setups broke (siderolabs/talos#9191 on 1.14).
/// Not fixed: Cilium documents it as a Talos limitation (cilium/cilium#36852).
pub const HOST_DNS_BREAKS_FROM: Version = Version::new(1, 16, 5);

/// The Talos release from which new clusters forward CoreDNS to the host DNS at
/// 169.254.116.108 by default (machine.features.hostDNS.forwardKubeDNSToHost).
pub const TALOS_FORWARDS_BY_DEFAULT_FROM: Version = Version::new(1, 8, 0);

/// The external lookup and the evidence its failure is read against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    pub lookup: Lookup,
    /// The same client resolving a cluster name: whether CoreDNS itself answers.
    pub control: Lookup,
    /// Whether the Service `kube-system/host-dns` exists: Talos 1.7 forwards CoreDNS to the
    /// host DNS through it (siderolabs/talos#8533); later releases use a link-local address.
    pub talos_host_dns: bool,
    pub node_os: NodeOs,
    pub cilium: CiliumFacts,
}

/// Which of the known breakage's conditions hold, each in a few words, or the one that does not.
fn host_dns_signature(e: &External) -> Result<String, String> {
    let forwarding = if e.talos_host_dns {
        "CoreDNS forwards to the Talos host DNS (Service kube-system/host-dns)".to_string()
    } else {
        match e.node_os.talos() {
            Some(v) if v >= TALOS_FORWARDS_BY_DEFAULT_FROM => format!(
                "the nodes run Talos {v}, whose CoreDNS forwards to the host DNS at 169.254.116.108 unless forwardKubeDNSToHost is turned off"
            ),
            Some(v) => {
                return Err(format!(
                    "the nodes run Talos {v}, which forwards to the host DNS only through a Service kube-system/host-dns, and there is none"
                ));
            }
            None => {
                return Err(format!(
                    "the nodes run {}, not Talos, so CoreDNS does not forward to a Talos host DNS",
                    e.node_os.describe()
                ));
            }
        }
    };
    Ok(format!(
        "{forwarding}, and {}",
        bpf_host_routing(&e.cilium)?
    ))
}

/// Whether Cilium routes host traffic in BPF, from the configuration the chart renders: BPF host
/// routing needs kube-proxy replacement and BPF masquerading, and `enable-host-legacy-routing`
/// turns it off (Cilium's tuning guide, "eBPF Host-Routing").
fn bpf_host_routing(c: &CiliumFacts) -> Result<String, String> {
    let version = c.describe_version();
    let era = match c.version {
        Some(v) if v < HOST_DNS_BREAKS_FROM => format!(
            " (before {HOST_DNS_BREAKS_FROM} only some setups broke, siderolabs/talos#9191)"
        ),
        _ => String::new(),
    };
    if c.config.is_empty() {
        return Ok(format!(
            "{version}'s host routing is unknown (no kube-system/cilium-config to read){era}"
        ));
    }
    if c.flag("enable-host-legacy-routing") == Some(true) {
        return Err(format!(
            "{version} routes host traffic the legacy way (enable-host-legacy-routing=true), the documented fix"
        ));
    }
    let kpr = c.config.get("kube-proxy-replacement").map(|v| v.trim());
    if kpr != Some("true") {
        return Err(format!(
            "{version} does not replace kube-proxy (kube-proxy-replacement {}), so it does not route host traffic in BPF",
            kpr.unwrap_or("unset")
        ));
    }
    if c.flag("enable-bpf-masquerade") != Some(true) {
        return Err(format!(
            "{version} does not masquerade in BPF (enable-bpf-masquerade not true), so it does not route host traffic in BPF"
        ));
    }
    Ok(format!(
        "{version} routes host traffic in BPF (kube-proxy-replacement and BPF masquerading on, enable-host-legacy-routing not set){era}"
    ))
}

pub fn external(e: &External) -> Verdict {
    let m = match lookup(&e.lookup) {
        Verdict::Pass(m) => return Verdict::Pass(m),
        Verdict::Fail(m) => m,
    };
    if let Verdict::Fail(c) = lookup(&e.control) {
        return Verdict::Fail(format!(
            "{} did not resolve from a pod: {m}; the cluster name {} failed from the same pod too ({c}), so cluster DNS itself is broken: see the other dns checks first",
            e.lookup.name, e.control.name
        ));
    }
    match host_dns_signature(e) {
        Ok(signature) => Verdict::Fail(format!(
            "{} did not resolve from a pod: {m}. Cluster names resolve, {signature}: the known breakage siderolabs/talos#9191, siderolabs/talos#10002, cilium/cilium#36737, where the host DNS replies never reach CoreDNS (every Cilium from {HOST_DNS_BREAKS_FROM}, cilium/cilium#35098; not fixed, documented as a Talos limitation in cilium/cilium#36852). Fix: set bpf.hostLegacyRouting=true in the Cilium values, or forwardKubeDNSToHost: false in the Talos machine config",
            e.lookup.name
        )),
        Err(why) => Verdict::Fail(format!(
            "{} did not resolve from a pod: {m}. Cluster names resolve, so CoreDNS answers but its upstream does not; not the Talos host DNS breakage: {why}. Check CoreDNS's forward target and that nodes reach it (`kubectl -n kube-system logs deploy/coredns`)",
            e.lookup.name
        )),
    }
}
