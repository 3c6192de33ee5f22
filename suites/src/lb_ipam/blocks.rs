//! IPv4 block arithmetic for the suite's pool: parsing a block, its size, membership, and the
//! address the requested-IP check asks for. Pure.

use std::net::Ipv4Addr;

/// `a.b.c.d/len` as (network, len); only IPv4 blocks are supported.
pub fn parse_block(block: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = block
        .split_once('/')
        .ok_or_else(|| format!("{block:?} is not a CIDR (a.b.c.d/len)"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{block:?}: {ip:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| (24..=32).contains(l))
        .ok_or_else(|| {
            format!("{block:?}: the prefix length must be 24 to 32, a pool small enough to exhaust")
        })?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if u32::from(ip) & !mask != 0 {
        return Err(format!("{block:?} has host bits set"));
    }
    Ok((ip, len))
}

/// Addresses in a block; with `allowFirstLastIPs: Yes` every one is allocatable.
pub fn block_size(len: u8) -> u64 {
    1u64 << (32 - u32::from(len))
}

pub fn in_block(ip: &str, block: &str) -> bool {
    let (Ok((net, len)), Ok(ip)) = (parse_block(block), ip.parse::<Ipv4Addr>()) else {
        return false;
    };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net)
}

/// The address the requested-IP check asks for: the last of the block.
pub fn requested_ip(block: &str) -> Result<String, String> {
    let (net, len) = parse_block(block)?;
    let last = u32::from(net) + (block_size(len) as u32 - 1);
    Ok(Ipv4Addr::from(last).to_string())
}
