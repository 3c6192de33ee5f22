//! The neighbour (ARP) table of a probe origin, read with `ip -4 neigh show`: whether an
//! address was answered over ARP, and with which MAC. Who answers ARP for a LoadBalancer IP is
//! what L2 announcements are about, so a failed request from outside is judged with it.
//!
//! Line format (iproute2 `ip/ipneigh.c`, `print_neigh`; busybox's `ip neigh` prints the same):
//! the address, `dev <ifname>`, `lladdr <mac>` once resolved, optional `router`/`proxy`, then
//! the NUD state names (`REACHABLE`, `STALE`, `DELAY`, `PROBE`, `FAILED`, `INCOMPLETE`,
//! `PERMANENT`, `NOARP`, `NONE`). An address whose ARP requests went unanswered is `FAILED`
//! (or `INCOMPLETE` while still asking), without `lladdr`.

use serde::{Deserialize, Serialize};

pub fn argv() -> Vec<String> {
    ["ip", "-4", "neigh", "show"].map(String::from).to_vec()
}

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    pub ip: String,
    pub dev: Option<String>,
    /// The MAC that answered; `None` until (or unless) one did.
    pub lladdr: Option<String>,
    /// NUD states, e.g. `["REACHABLE"]` or `["FAILED"]`.
    pub states: Vec<String>,
}

impl Neighbour {
    /// A MAC answered and the entry is not marked failed.
    pub fn answered(&self) -> bool {
        self.lladdr.is_some() && !self.states.iter().any(|s| s == "FAILED")
    }
}

/// Every line that names an address; lines it cannot read are left out.
pub fn parse(stdout: &str) -> Vec<Neighbour> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let ip = words.next()?.to_string();
            ip.parse::<std::net::IpAddr>().ok()?;
            let mut n = Neighbour {
                ip,
                dev: None,
                lladdr: None,
                states: Vec::new(),
            };
            while let Some(w) = words.next() {
                match w {
                    "dev" => n.dev = words.next().map(String::from),
                    "lladdr" => n.lladdr = words.next().map(str::to_ascii_lowercase),
                    // `ip -s` adds counters; `ref`/`used`/`probes` take a value.
                    "ref" | "used" | "probes" => {
                        words.next();
                    }
                    w if w.chars().all(|c| c.is_ascii_uppercase()) => n.states.push(w.into()),
                    _ => {}
                }
            }
            Some(n)
        })
        .collect()
}

/// The entry for `ip`, if the table has one.
pub fn find<'a>(table: &'a [Neighbour], ip: &str) -> Option<&'a Neighbour> {
    table.iter().find(|n| n.ip == ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_failed_and_incomplete_entries_are_told_apart() {
        let t = parse(
            "10.5.0.3 dev eth0 lladdr 02:42:0A:05:00:03 REACHABLE\n\
             10.5.0.233 dev eth0 FAILED\n\
             10.5.0.234 dev eth0 INCOMPLETE\n\
             10.5.0.1 dev eth0 lladdr 02:42:d1:7e:4c:01 router STALE\n",
        );
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].lladdr.as_deref(), Some("02:42:0a:05:00:03"));
        assert!(t[0].answered());
        assert!(!t[1].answered());
        assert_eq!(t[2].states, ["INCOMPLETE"]);
        assert_eq!(t[3].states, ["STALE"]);
        assert_eq!(find(&t, "10.5.0.233").unwrap().dev.as_deref(), Some("eth0"));
    }

    #[test]
    fn counters_of_ip_s_are_skipped() {
        let t = parse(
            "10.5.0.4 dev eth0 lladdr 02:42:0a:05:00:04 ref 1 used 0/0/0 probes 1 REACHABLE\n",
        );
        assert_eq!(t[0].states, ["REACHABLE"]);
    }
}
