//! IP prefixes as WireGuard's cryptokey routing reads them: an address goes to the peer whose
//! allowed IPs hold the longest prefix containing it. Pure.

use std::net::IpAddr;

/// Parses `10.244.1.0/24` (or a bare address as a host route).
pub fn parse(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip.parse().ok()?, len.parse().ok()?),
        None => {
            let ip: IpAddr = s.parse().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if matches!(ip, IpAddr::V4(_)) { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Whether prefix `outer` contains all of prefix `inner`.
pub fn covers(outer: &str, inner: &str) -> bool {
    let (Some((o, ol)), Some((i, il))) = (parse(outer), parse(inner)) else {
        return false;
    };
    if o.is_ipv4() != i.is_ipv4() {
        return false;
    }
    // IPv4 addresses sit in the top 32 bits, so prefix lengths count from the top in both.
    let (ol, il) = (u32::from(ol), u32::from(il));
    if ol > il {
        return false;
    }
    let mask = if ol == 0 { 0 } else { u128::MAX << (128 - ol) };
    bits(o) & mask == bits(i) & mask
}

/// The length of the longest of `prefixes` that contains `ip`, if any does.
pub fn longest_match<'a>(prefixes: impl IntoIterator<Item = &'a String>, ip: &str) -> Option<u8> {
    prefixes
        .into_iter()
        .filter(|p| covers(p, ip))
        .filter_map(|p| parse(p).map(|(_, len)| len))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_is_prefix_containment() {
        assert!(covers("10.244.1.0/24", "10.244.1.0/24"));
        assert!(covers("10.244.0.0/16", "10.244.1.0/24"));
        assert!(covers("0.0.0.0/0", "10.244.1.0/24"));
        assert!(!covers("10.244.1.0/24", "10.244.0.0/16"));
        assert!(!covers("10.244.1.0/24", "10.244.2.0/24"));
        assert!(covers("10.244.1.7", "10.244.1.7/32"));
        assert!(covers("fd00:10:244:1::/64", "fd00:10:244:1::/80"));
        assert!(!covers("fd00:10:244:1::/64", "10.244.1.0/24"));
        assert!(!covers("garbage", "10.244.1.0/24"));
    }

    #[test]
    fn the_longest_prefix_wins() {
        let p = ["10.244.1.0/24".to_string(), "10.244.1.7/32".to_string()];
        assert_eq!(longest_match(&p, "10.244.1.7"), Some(32));
        assert_eq!(longest_match(&p, "10.244.1.8"), Some(24));
        assert_eq!(longest_match(&p, "10.244.2.8"), None);
    }
}
