//! ICMP probes with iputils ping (busybox ping has no `-M do`, which the fragmentation check
//! needs). One echo request per attempt; the retry loop provides repetition.

use crate::kit::exec::ExecOutput;
use crate::kit::verdict::Verdict;

/// IPv4 header (20) + ICMP header (8): what `-s` must leave room for to fill an MTU exactly.
pub const IPV4_ICMP_OVERHEAD: u32 = 28;

pub fn argv(ip: &str, dont_fragment_payload: Option<u32>) -> Vec<String> {
    let mut a: Vec<String> = ["ping", "-c", "1", "-W", "2"].map(String::from).to_vec();
    if let Some(size) = dont_fragment_payload {
        a.extend(["-M".into(), "do".into(), "-s".into(), size.to_string()]);
    }
    a.push(ip.to_string());
    a
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PingResult {
    pub exit_code: i32,
    pub transmitted: Option<u32>,
    pub received: Option<u32>,
    /// Set when the kernel or a router said the packet is larger than the path allows.
    pub too_big: Option<TooBig>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TooBig {
    pub mtu: Option<u32>,
    pub line: String,
}

impl PingResult {
    pub fn parse(out: &ExecOutput) -> PingResult {
        let all = format!("{}\n{}", out.stdout, out.stderr);
        let mut transmitted = None;
        let mut received = None;
        let mut too_big = None;
        for line in all.lines() {
            let l = line.to_ascii_lowercase();
            if l.contains("packets transmitted") {
                for part in l.split(',') {
                    let mut w = part.split_whitespace();
                    let n = w.next().and_then(|n| n.parse().ok());
                    match w.next() {
                        Some("packets") => transmitted = n,
                        Some("received") => received = n,
                        _ => {}
                    }
                }
            }
            if too_big.is_none() && (l.contains("message too long") || l.contains("frag needed")) {
                too_big = Some(TooBig {
                    mtu: mtu_in(&l),
                    line: line.trim().to_string(),
                });
            }
        }
        let error = out.first_error_line();
        PingResult {
            exit_code: out.exit_code,
            transmitted,
            received,
            too_big,
            error,
        }
    }
}

/// The number after "mtu" in `mtu=1450`, `mtu = 1400` or `mtu: 1450`.
fn mtu_in(l: &str) -> Option<u32> {
    let rest = &l[l.find("mtu")? + 3..];
    let digits: String = rest
        .trim_start_matches([' ', '=', ':'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub fn judge(r: &PingResult) -> Verdict {
    if let Some(tb) = &r.too_big {
        let mtu = tb
            .mtu
            .map(|m| format!(" the path allows {m} bytes;"))
            .unwrap_or_default();
        return Verdict::Fail(format!(
            "packet too big for the path:{mtu} the pod's MTU is larger than what the node network carries after tunnel/encryption overhead, so full-size packets need fragmenting and are lost; align Cilium's MTU (helm `MTU`) with the node interface ({})",
            tb.line
        ));
    }
    match (r.exit_code, r.received) {
        (0, Some(n)) if n > 0 => Verdict::Pass(format!("{n} echo reply received")),
        (0, _) => Verdict::Fail("ping exited 0 but printed no received count".into()),
        (1, _) => Verdict::Fail(
            "no echo reply within 2s (ping exit 1): ICMP is dropped on the way or not answered; check `hubble observe --protocol icmp` and host firewall policy".into(),
        ),
        (126 | 127, _) => Verdict::Fail(format!(
            "ping is not in the client image (exit {}); an image override must ship iputils ping",
            r.exit_code
        )),
        (code, _) => Verdict::Fail(format!(
            "ping failed with exit code {code}{}",
            r.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str, exit_code: i32) -> PingResult {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let (stdout, stderr) = text.split_once("--- stderr\n").unwrap();
        PingResult::parse(&ExecOutput {
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        })
    }

    #[test]
    fn argv_sets_dont_fragment_and_payload() {
        assert_eq!(argv("10.0.0.2", None).join(" "), "ping -c 1 -W 2 10.0.0.2");
        assert_eq!(
            argv("10.244.2.9", Some(1500 - IPV4_ICMP_OVERHEAD)).join(" "),
            "ping -c 1 -W 2 -M do -s 1472 10.244.2.9"
        );
    }

    #[test]
    fn a_reply_passes() {
        let r = fixture("ping-ok.txt", 0);
        assert_eq!((r.transmitted, r.received), (Some(1), Some(1)));
        assert_eq!(judge(&r), Verdict::Pass("1 echo reply received".into()));
    }

    #[test]
    fn no_reply_fails_with_where_to_look() {
        let r = fixture("ping-no-reply.txt", 1);
        assert_eq!(r.received, Some(0));
        assert!(
            judge(&r)
                .message()
                .starts_with("no echo reply within 2s (ping exit 1)")
        );
    }

    #[test]
    fn frag_needed_from_a_router_names_the_path_mtu() {
        let r = fixture("ping-frag-needed.txt", 1);
        let tb = r.too_big.clone().unwrap();
        assert_eq!(tb.mtu, Some(1450));
        let m = judge(&r);
        assert!(
            m.message().contains("the path allows 1450 bytes"),
            "{}",
            m.message()
        );
        assert!(m.message().contains("helm `MTU`"));
    }

    #[test]
    fn local_message_too_long_is_too_big_as_well() {
        let r = fixture("ping-local-message-too-long.txt", 1);
        assert_eq!(r.too_big.unwrap().mtu, Some(1280));
    }
}
