//! DNS answers as `dig` prints them, read into records.
//!
//! `+noall +comments +answer` keeps the header (for the response code: NOERROR vs NXDOMAIN vs
//! SERVFAIL) and the answer section, and nothing else. `+time=2 +tries=1` makes a lost query a
//! quick, visible timeout (exit 9) instead of a slow retry; the retry loop above repeats it.

use crate::kit::exec::ExecOutput;
use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RType {
    A,
    Srv,
    Cname,
}

impl RType {
    pub fn as_str(self) -> &'static str {
        match self {
            RType::A => "A",
            RType::Srv => "SRV",
            RType::Cname => "CNAME",
        }
    }
}

/// `search` expands a partial name through the pod's resolv.conf search list (dig does not by
/// default).
pub fn argv(name: &str, rtype: RType, search: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "dig",
        "+time=2",
        "+tries=1",
        "+nocmd",
        "+noall",
        "+comments",
        "+answer",
    ]
    .map(String::from)
    .to_vec();
    if search {
        a.push("+search".into());
    }
    a.push(name.into());
    a.push(rtype.as_str().into());
    a
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RData {
    Ip(IpAddr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub name: String,
    pub rtype: String,
    pub data: RData,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = match &self.data {
            RData::Ip(ip) => ip.to_string(),
            RData::Cname(t) => t.clone(),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("{priority} {weight} {port} {target}"),
            RData::Other(s) => s.clone(),
        };
        write!(f, "{} {} {data}", self.name, self.rtype)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DigResult {
    /// The server answered; `rcode` is NOERROR, NXDOMAIN, SERVFAIL, REFUSED...
    Answer { rcode: String, records: Vec<Record> },
    /// No server answered in time (dig exit 9).
    Timeout { detail: String },
    /// dig itself failed (bad usage, missing binary, no resolv.conf...).
    Failed { exit_code: i32, detail: String },
}

impl DigResult {
    pub fn parse(out: &ExecOutput) -> DigResult {
        let detail = || {
            let text = format!("{}\n{}", out.stdout, out.stderr);
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        if out.exit_code == 9 {
            return DigResult::Timeout { detail: detail() };
        }
        if out.exit_code != 0 {
            return DigResult::Failed {
                exit_code: out.exit_code,
                detail: detail(),
            };
        }
        let mut rcode = None;
        let mut records = Vec::new();
        for line in out.stdout.lines() {
            let l = line.trim();
            if let Some(h) = l.strip_prefix(";; ->>HEADER<<-") {
                rcode = h
                    .split(',')
                    .find_map(|p| p.trim().strip_prefix("status:"))
                    .map(|s| s.trim().to_string());
                continue;
            }
            if l.is_empty() || l.starts_with(';') {
                continue;
            }
            if let Some(r) = parse_record(l) {
                records.push(r);
            }
        }
        match rcode {
            Some(rcode) => DigResult::Answer { rcode, records },
            // Without a header, a "timed out" line is still a timeout (older dig exit codes).
            None if detail().contains("timed out") => DigResult::Timeout { detail: detail() },
            None => DigResult::Failed {
                exit_code: 0,
                detail: format!("no response header in dig output: {}", detail()),
            },
        }
    }

    pub fn records(&self) -> &[Record] {
        match self {
            DigResult::Answer { records, .. } => records,
            _ => &[],
        }
    }

    pub fn ips(&self) -> Vec<IpAddr> {
        self.records()
            .iter()
            .filter_map(|r| match r.data {
                RData::Ip(ip) => Some(ip),
                _ => None,
            })
            .collect()
    }
}

/// `name TTL class type rdata...`
fn parse_record(l: &str) -> Option<Record> {
    let w: Vec<&str> = l.split_whitespace().collect();
    if w.len() < 5 {
        return None;
    }
    let (name, rtype, rdata) = (w[0], w[3], &w[4..]);
    let data = match rtype {
        "A" | "AAAA" => RData::Ip(rdata[0].parse().ok()?),
        "CNAME" => RData::Cname(rdata[0].to_string()),
        "SRV" if rdata.len() == 4 => RData::Srv {
            priority: rdata[0].parse().ok()?,
            weight: rdata[1].parse().ok()?,
            port: rdata[2].parse().ok()?,
            target: rdata[3].to_string(),
        },
        _ => RData::Other(rdata.join(" ")),
    };
    Some(Record {
        name: name.to_string(),
        rtype: rtype.to_string(),
        data,
    })
}

/// Names compare without case and without the root dot.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn fixture(name: &str, exit_code: i32) -> DigResult {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (stdout, stderr) = text.split_once("--- stderr\n").unwrap_or((&text, ""));
        DigResult::parse(&ExecOutput {
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        })
    }

    #[test]
    fn argv_is_quiet_bounded_and_searches_on_request() {
        assert_eq!(
            argv("kubernetes.default", RType::A, true).join(" "),
            "dig +time=2 +tries=1 +nocmd +noall +comments +answer +search kubernetes.default A"
        );
    }

    #[test]
    fn an_a_answer() {
        let r = fixture("dig-a-kubernetes-default.txt", 0);
        let DigResult::Answer { rcode, records } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(rcode, "NOERROR");
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].to_string(),
            "kubernetes.default.svc.cluster.local. A 10.96.0.1"
        );
    }

    #[test]
    fn an_srv_answer() {
        let r = fixture("dig-srv-named-port.txt", 0);
        assert_eq!(
            r.records()[0].data,
            RData::Srv {
                priority: 0,
                weight: 100,
                port: 8080,
                target: "dns-svc.harness-dns-r1.svc.cluster.local.".into()
            }
        );
    }

    #[test]
    fn a_cname_answer() {
        let r = fixture("dig-cname-externalname.txt", 0);
        assert_eq!(r.records()[0].data, RData::Cname("foo.example.com.".into()));
    }

    #[test]
    fn nxdomain_is_an_answer_with_no_records() {
        let r = fixture("dig-nxdomain.txt", 0);
        assert_eq!(
            r,
            DigResult::Answer {
                rcode: "NXDOMAIN".into(),
                records: vec![]
            }
        );
    }

    #[test]
    fn exit_9_is_a_timeout() {
        let r = fixture("dig-timeout.txt", 9);
        let DigResult::Timeout { detail } = r else {
            panic!()
        };
        assert!(detail.contains("no servers could be reached"), "{detail}");
    }

    #[test]
    fn names_compare_without_case_and_root_dot() {
        assert!(same_name("Foo.Example.com.", "foo.example.com"));
        assert!(!same_name("foo.example.com", "foo.example.org"));
    }
}
