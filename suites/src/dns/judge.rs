//! The DNS judges: an answer against what the Kubernetes DNS specification says it must be.
//! Pure: dig results and the expectations the observe steps derived from the API, a verdict out.

use super::dig::{DigResult, RData, RType, same_name};
use super::resolv_conf::ResolvConf;
use crate::kit::retry::{Series, Try, judge_series};
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

/// The known Talos + Cilium breakage an external lookup exposes.
pub const TALOS_HOST_DNS_HINT: &str = "On Talos, CoreDNS forwards to the host DNS at 169.254.116.108 (machine.features.hostDNS.forwardKubeDNSToHost, on by default since Talos 1.8); with Cilium's BPF host routing (kube-proxy replacement, bpf.hostLegacyRouting=false) the replies never reach CoreDNS (siderolabs/talos#9191, siderolabs/talos#10002, cilium/cilium#36737). Fix: set bpf.hostLegacyRouting=true in the Cilium values (or forwardKubeDNSToHost: false in the Talos machine config)";

pub fn external(l: &Lookup) -> Verdict {
    match lookup(l) {
        Verdict::Pass(m) => Verdict::Pass(m),
        Verdict::Fail(m) => Verdict::Fail(format!(
            "{} did not resolve from a pod: {m}. If the external target is right and cluster names resolve, this is most likely the Talos host DNS + BPF host routing breakage. {TALOS_HOST_DNS_HINT}",
            l.name
        )),
    }
}
