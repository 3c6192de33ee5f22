//! What the probes did, for the report's system-out.
//!
//! Every probe names itself the way `cilium connectivity test` does
//! (`test/scenario:action: src (ip) -> dst (ip:port)`), so a failure in a JUnit file says what ran,
//! from where and to where without the reader opening the code. Output is truncated because a
//! report that nobody can scroll through hides the line that matters.

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};
use std::time::Duration;

/// Bytes kept from each of stdout and stderr per attempt.
pub const OUTPUT_LIMIT: usize = 2048;

/// One end of a probe: who, and at which address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// `ns/pod` for the source, a pod, Service or node name for the destination.
    pub name: String,
    /// `ip` or `ip:port`, when known.
    pub addr: Option<String>,
}

impl Peer {
    pub fn new(name: impl Into<String>, addr: Option<String>) -> Peer {
        Peer {
            name: name.into(),
            addr,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            Some(a) => write!(f, "{} ({a})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// `suite/check:action: from -> to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeLabel {
    pub check: String,
    pub action: String,
    pub from: Peer,
    pub to: Peer,
}

impl fmt::Display for ProbeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} -> {}",
            self.check, self.action, self.from, self.to
        )
    }
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    Exited {
        code: i32,
        stdout: String,
        stderr: String,
    },
    /// The command never produced an exit code (exec refused, stream broken, exec timeout).
    NoExit(String),
}

/// Plain data, so a recording (`harness e2e --record`) holds every probe as it ran: times as
/// RFC 3339 and as humantime text (`2s 13ms`), both exact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub label: ProbeLabel,
    pub argv: Vec<String>,
    #[serde(with = "crate::kit::as_text::timestamp")]
    pub started: Timestamp,
    #[serde(with = "crate::kit::as_text::duration")]
    pub duration: Duration,
    pub ended: Ended,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Attempt(Box<Attempt>),
    Note(String),
}

/// The ordered record of a check's (or a suite setup's) probes and notable steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Transcript {
    records: Vec<Record>,
}

impl Transcript {
    pub fn new() -> Transcript {
        Transcript::default()
    }

    pub fn attempt(&mut self, a: Attempt) {
        self.records.push(Record::Attempt(Box::new(a)));
    }

    /// A step that is not a probe but explains the outcome, e.g. a wait or a placement.
    pub fn note(&mut self, text: impl Into<String>) {
        self.records.push(Record::Note(text.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn attempts(&self) -> impl Iterator<Item = &Attempt> {
        self.records.iter().filter_map(|r| match r {
            Record::Attempt(a) => Some(a.as_ref()),
            Record::Note(_) => None,
        })
    }

    pub fn extend(&mut self, other: Transcript) {
        self.records.extend(other.records);
    }

    /// Plain text for JUnit system-out. Consecutive attempts of one probe share a heading, and
    /// a run of attempts that repeat the previous one's result is folded into one line, so a
    /// probe that failed sixty times the same way reads as one failure and a count.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut heading: Option<&ProbeLabel> = None;
        let mut prev: Option<&Attempt> = None;
        let mut n = 0u32;
        let mut folded: Option<Folded> = None;
        for r in &self.records {
            match r {
                Record::Note(text) => {
                    flush(&mut out, folded.take());
                    heading = None;
                    prev = None;
                    let _ = writeln!(out, "# {text}");
                }
                Record::Attempt(a) => {
                    if heading != Some(&a.label) {
                        flush(&mut out, folded.take());
                        heading = Some(&a.label);
                        prev = None;
                        n = 0;
                        let _ = writeln!(out, "{}", a.label);
                    }
                    n += 1;
                    if prev.is_some_and(|p| p.argv == a.argv && p.ended == a.ended) {
                        let f = folded.get_or_insert(Folded {
                            first: n,
                            last: n,
                            last_started: a.started,
                        });
                        f.last = n;
                        f.last_started = a.started;
                        continue;
                    }
                    flush(&mut out, folded.take());
                    render_attempt(&mut out, n, a);
                    prev = Some(a);
                }
            }
        }
        flush(&mut out, folded.take());
        out
    }
}

/// Attempts `first..=last` that repeated the attempt before them exactly.
struct Folded {
    first: u32,
    last: u32,
    last_started: Timestamp,
}

fn flush(out: &mut String, f: Option<Folded>) {
    if let Some(f) = f {
        let range = if f.first == f.last {
            format!("#{}", f.first)
        } else {
            format!("#{}-#{}", f.first, f.last)
        };
        let _ = writeln!(
            out,
            "  {range} same command and result as the attempt above ({} more, the last started {})",
            f.last - f.first + 1,
            f.last_started.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        );
    }
}

fn render_attempt(out: &mut String, n: u32, a: &Attempt) {
    let started = a.started.strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
    let took = a.duration.as_secs_f64();
    let end = match &a.ended {
        Ended::Exited { code, .. } => format!("exit {code}"),
        Ended::NoExit(_) => "no exit code".to_string(),
    };
    let _ = writeln!(out, "  #{n} {started} {took:.3}s {end}");
    let _ = writeln!(out, "    $ {}", shell_words(&a.argv));
    match &a.ended {
        Ended::Exited { stdout, stderr, .. } => {
            render_stream(out, "stdout", stdout);
            render_stream(out, "stderr", stderr);
        }
        Ended::NoExit(why) => render_stream(out, "error", why),
    }
}

fn render_stream(out: &mut String, name: &str, text: &str) {
    let text = truncate(text, OUTPUT_LIMIT);
    let text = text.trim_end();
    if text.is_empty() {
        return;
    }
    let mut lines = text.lines();
    if let Some(first) = lines.next() {
        let _ = writeln!(out, "    {name}: {first}");
    }
    for l in lines {
        let _ = writeln!(out, "      {l}");
    }
}

/// The first `limit` bytes (on a char boundary) and how many were left out.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[... {} more bytes not shown]",
        &text[..end],
        text.len() - end
    )
}

/// Argv as a person would paste it into `kubectl exec -- ...`.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label() -> ProbeLabel {
        ProbeLabel {
            check: "connectivity/pod-to-pod-same-node".into(),
            action: "curl".into(),
            from: Peer::new("harness-connectivity-r1/client", Some("10.244.1.3".into())),
            to: Peer::new("echo-same-node", Some("10.244.1.7:8080".into())),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_795_000_000 + secs).unwrap()
    }

    #[test]
    fn label_reads_like_cilium_connectivity_test() {
        assert_eq!(
            label().to_string(),
            "connectivity/pod-to-pod-same-node:curl: harness-connectivity-r1/client (10.244.1.3) -> echo-same-node (10.244.1.7:8080)"
        );
    }

    #[test]
    fn render_groups_attempts_under_one_heading() {
        let argv: Vec<String> = [
            "curl",
            "--silent",
            "-w",
            "%{http_code} %{remote_ip}",
            "http://10.244.1.7:8080/",
        ]
        .map(String::from)
        .to_vec();
        let mut t = Transcript::new();
        t.note("client on node w1, echo-same-node on node w1");
        // curl's write-out and its timeout error (`lib/connect.c`), as in curl-timeout-28.txt.
        t.attempt(Attempt {
            label: label(),
            argv: argv.clone(),
            started: at(0),
            duration: Duration::from_millis(2013),
            ended: Ended::Exited {
                code: 28,
                stdout: "000 ".into(),
                stderr: "curl: (28) Connection timed out after 2001 milliseconds\n".into(),
            },
        });
        t.attempt(Attempt {
            label: label(),
            argv,
            started: at(3),
            duration: Duration::from_millis(12),
            ended: Ended::Exited {
                code: 0,
                stdout: "200 10.244.1.7".into(),
                stderr: String::new(),
            },
        });
        assert_eq!(
            t.render(),
            "# client on node w1, echo-same-node on node w1
connectivity/pod-to-pod-same-node:curl: harness-connectivity-r1/client (10.244.1.3) -> echo-same-node (10.244.1.7:8080)
  #1 2026-11-18T11:06:40.000Z 2.013s exit 28
    $ curl --silent -w '%{http_code} %{remote_ip}' http://10.244.1.7:8080/
    stdout: 000
    stderr: curl: (28) Connection timed out after 2001 milliseconds
  #2 2026-11-18T11:06:43.000Z 0.012s exit 0
    $ curl --silent -w '%{http_code} %{remote_ip}' http://10.244.1.7:8080/
    stdout: 200 10.244.1.7
"
        );
    }

    #[test]
    fn repeated_identical_attempts_fold_into_one_line() {
        let mut t = Transcript::new();
        let timeout = Ended::Exited {
            code: 28,
            stdout: "000 :0".into(),
            stderr: "curl: (28) Connection timed out after 2002 milliseconds".into(),
        };
        for i in 0..5 {
            t.attempt(Attempt {
                label: label(),
                argv: vec!["curl".into(), "http://10.244.1.7:8080/".into()],
                started: at(i * 3),
                duration: Duration::from_millis(2002),
                ended: timeout.clone(),
            });
        }
        let r = t.render();
        assert_eq!(r.matches("exit 28").count(), 1, "{r}");
        assert!(
            r.ends_with("  #2-#5 same command and result as the attempt above (4 more, the last started 2026-11-18T11:06:52.000Z)\n"),
            "{r}"
        );
    }

    #[test]
    fn long_output_is_cut_on_a_char_boundary_and_says_how_much_was_cut() {
        let text = "é".repeat(1500); // 3000 bytes
        let cut = truncate(&text, 2047);
        assert!(cut.starts_with(&"é".repeat(1023)));
        assert!(cut.ends_with("[... 954 more bytes not shown]"), "{cut}");
    }

    #[test]
    fn exec_errors_render_without_an_exit_code() {
        let mut t = Transcript::new();
        t.attempt(Attempt {
            label: label(),
            argv: vec!["curl".into()],
            started: at(0),
            duration: Duration::from_secs(30),
            ended: Ended::NoExit("exec did not finish within 30s".into()),
        });
        assert!(t.render().contains("  #1 2026-11-18T11:06:40.000Z 30.000s no exit code\n    $ curl\n    error: exec did not finish within 30s\n"));
    }
}
