//! IPv4 subnets: parsing, overlap, and picking a free /24 for a new cluster network.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Where clusters get their network when none is given: 10.5.0.0/16, split into /24s
/// (the first of which is talosctl's own default, 10.5.0.0/24).
pub const POOL: Ipv4Net = Ipv4Net {
    addr: Ipv4Addr::new(10, 5, 0, 0),
    prefix: 16,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// Fails when host bits are set, since Docker would silently use another network than asked.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, String> {
        if prefix > 32 {
            return Err(format!("prefix /{prefix} is longer than 32"));
        }
        let net = Ipv4Net { addr, prefix };
        if net.network() != addr {
            let fixed = Ipv4Net {
                addr: net.network(),
                prefix,
            };
            return Err(format!("host bits are set (did you mean {fixed}?)"));
        }
        Ok(net)
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Number of addresses, including network and broadcast.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    /// The `n`-th address of the subnet (0 is the network address), if it lies inside.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        (u64::from(n) < self.size()).then(|| Ipv4Addr::from(u32::from(self.network()) + n))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| "it has no /prefix".to_string())?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("'{addr}' is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("'{prefix}' is not a prefix length"))?;
        Ipv4Net::new(addr, prefix)
    }
}

/// The first /24 of [`POOL`] that overlaps none of `taken`.
pub fn first_free(taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    (0..=255u8)
        .map(|third| Ipv4Net {
            addr: Ipv4Addr::new(10, 5, third, 0),
            prefix: 24,
        })
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!(net("10.5.3.0/24").to_string(), "10.5.3.0/24");
        assert!(
            "10.5.3.1/24"
                .parse::<Ipv4Net>()
                .unwrap_err()
                .contains("10.5.3.0/24")
        );
        assert!("10.5.3.0".parse::<Ipv4Net>().is_err());
        assert!("10.5.3.0/33".parse::<Ipv4Net>().is_err());
        assert!("fd00::/64".parse::<Ipv4Net>().is_err());
    }

    #[test]
    fn overlap_is_symmetric_and_handles_nesting() {
        assert!(net("10.5.0.0/16").overlaps(&net("10.5.7.0/24")));
        assert!(net("10.5.7.0/24").overlaps(&net("10.5.0.0/16")));
        assert!(!net("10.5.7.0/24").overlaps(&net("10.5.8.0/24")));
        assert!(net("0.0.0.0/0").overlaps(&net("192.168.1.0/24")));
    }

    #[test]
    fn nth_stays_inside() {
        let n = net("10.5.1.0/24");
        assert_eq!(n.nth(2), Some(Ipv4Addr::new(10, 5, 1, 2)));
        assert_eq!(n.nth(256), None);
    }

    #[test]
    fn first_free_skips_every_overlap() {
        assert_eq!(first_free(&[]), Some(net("10.5.0.0/24")));
        let taken = [net("10.5.0.0/23"), net("172.17.0.0/16"), net("10.5.2.0/25")];
        assert_eq!(first_free(&taken), Some(net("10.5.3.0/24")));
        assert_eq!(first_free(&[net("10.0.0.0/8")]), None);
    }
}
