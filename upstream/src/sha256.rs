//! A sha256 digest as the hex text that checksum files and pin files carry.

use sha2::Digest;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    pub fn of_bytes(bytes: &[u8]) -> Sha256 {
        Sha256(sha2::Sha256::digest(bytes).into())
    }

    pub fn of_file(path: &Path) -> std::io::Result<Sha256> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(Sha256(hasher.finalize().into()))
    }

    /// The sum a `sha256sum`-style listing gives for `file_name` ("<hex>  <name>" or
    /// "<hex> *<name>" per line), or the single bare sum of a `.sha256` file.
    pub fn from_listing(listing: &str, file_name: &str) -> Option<Sha256> {
        let mut bare = None;
        for line in listing.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut parts = line.split_whitespace();
            let (Some(hex), name) = (parts.next(), parts.next()) else {
                continue;
            };
            match name.map(|n| n.trim_start_matches('*')) {
                Some(n) if n == file_name || n.rsplit('/').next() == Some(file_name) => {
                    return hex.parse().ok();
                }
                None => bare = hex.parse().ok(),
                Some(_) => {}
            }
        }
        bare
    }
}

impl FromStr for Sha256 {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("'{s}' is not a sha256 (64 hex digits)"));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        Ok(Sha256(out))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_matches_a_known_digest() {
        // sha256("abc") from FIPS 180-2, appendix B.1.
        let abc = Sha256::of_bytes(b"abc");
        assert_eq!(
            abc.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(abc.to_string().parse::<Sha256>().unwrap(), abc);
        assert!("ba78".parse::<Sha256>().is_err());
        assert!("zz".repeat(32).parse::<Sha256>().is_err());
    }

    #[test]
    fn listings_give_the_sum_of_the_named_file_only() {
        let a = "1".repeat(64);
        let b = "2".repeat(64);
        let listing = format!("{a}  talosctl-linux-amd64\n{b} *talosctl-darwin-arm64\n");
        assert_eq!(
            Sha256::from_listing(&listing, "talosctl-darwin-arm64").map(|s| s.to_string()),
            Some(b.clone())
        );
        assert_eq!(
            Sha256::from_listing(&listing, "talosctl-linux-amd64").map(|s| s.to_string()),
            Some(a.clone())
        );
        assert_eq!(Sha256::from_listing(&listing, "talosctl-linux-arm64"), None);
        assert_eq!(
            Sha256::from_listing(&format!("{a}\n"), "anything").map(|s| s.to_string()),
            Some(a)
        );
    }
}
