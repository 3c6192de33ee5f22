//! What the gate reads across an upgrade, and its judges: the connection-disruption workload's
//! restart counts (cilium-cli's conn-disrupt test: a client pod exits when its connection
//! breaks, so a restart is an interrupted flow), the agents' own restarts,
//! `cilium_drop_count_total` by reason against an allow-list, and new error lines in agent logs.
//! Observations are plain data read from Pods, metrics text and log text; the judges are pure.

use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeMap, BTreeSet};

/// One container's restarts and how it last ended, as its Pod reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restarts {
    pub pod: String,
    pub node: Option<String>,
    pub container: String,
    pub count: i32,
    /// `lastState.terminated`: reason and exit code.
    pub last_terminated: Option<(String, i32)>,
}

impl Restarts {
    fn key(&self) -> (&str, &str) {
        (&self.pod, &self.container)
    }

    fn describe(&self) -> String {
        let node = self
            .node
            .as_deref()
            .map(|n| format!(" on {n}"))
            .unwrap_or_default();
        let last = match &self.last_terminated {
            Some((reason, code)) => format!("; last terminated: {reason} (exit code {code})"),
            None => String::new(),
        };
        format!("{}/{}{node}{last}", self.pod, self.container)
    }
}

/// Every container of every pod, in pod order.
pub fn restarts(pods: &[Pod]) -> Vec<Restarts> {
    let mut out = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for c in statuses.into_iter().flatten() {
            let last_terminated = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| {
                    (
                        t.reason.clone().unwrap_or_else(|| "unknown".into()),
                        t.exit_code,
                    )
                });
            out.push(Restarts {
                pod: name.clone(),
                node: node.clone(),
                container: c.name.clone(),
                count: c.restart_count,
                last_terminated,
            });
        }
    }
    out
}

/// A judge's finding: empty `failures` passes; `notes` are said either way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judged {
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

impl Judged {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The conn-disrupt workload across a move: every client and server recorded before must still
/// be there with the same restart count. Nothing recorded proves nothing, so it fails.
pub fn judge_connections(before: &[Restarts], after: &[Restarts]) -> Judged {
    let mut j = Judged::default();
    if before.is_empty() {
        j.failures.push(
            "no disruption pods were recorded before the upgrade, so no connection was watched"
                .into(),
        );
        return j;
    }
    let now: BTreeMap<(&str, &str), &Restarts> = after.iter().map(|r| (r.key(), r)).collect();
    for was in before {
        match now.get(&was.key()) {
            None => j.failures.push(format!(
                "{}/{} is gone: its connection ended with the pod (it was replaced or deleted)",
                was.pod, was.container
            )),
            Some(is) if is.count != was.count => j.failures.push(format!(
                "connection interrupted: {} restarted {} -> {}",
                is.describe(),
                was.count,
                is.count
            )),
            Some(_) => {}
        }
    }
    j
}

/// Agents after a move: each restart of an agent container is a crash of the new version (a
/// rollout replaces the pods, so their counts start at 0). Restarts already seen at A are
/// said, not counted.
pub fn judge_agent_restarts(before: &[Restarts], after: &[Restarts]) -> Judged {
    let mut j = Judged::default();
    for r in before.iter().filter(|r| r.count > 0) {
        j.notes.push(format!(
            "already restarting before the upgrade: {} ({} restarts)",
            r.describe(),
            r.count
        ));
    }
    if after.is_empty() {
        j.failures
            .push("no Cilium agent pod was found after the upgrade".into());
    }
    let had: BTreeMap<(&str, &str), i32> = before.iter().map(|r| (r.key(), r.count)).collect();
    for r in after {
        let base = had.get(&r.key()).copied().unwrap_or(0);
        if r.count > base {
            j.failures.push(format!(
                "agent restarted {} time(s) after the upgrade: {}",
                r.count - base,
                r.describe()
            ));
        }
    }
    j
}

/// `cilium_drop_count_total` summed over direction, by reason.
pub type Drops = BTreeMap<String, f64>;

/// Reads `cilium_drop_count_total{direction="…",reason="…"} N` samples from Prometheus text
/// exposition (what the agent serves on its metrics port). Other metrics are ignored; a
/// malformed sample of this metric is an error, not a zero.
pub fn parse_drops(text: &str) -> Result<Drops, String> {
    const METRIC: &str = "cilium_drop_count_total";
    let mut out = Drops::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix(METRIC) else {
            continue;
        };
        let bad = |why: &str| format!("metrics line {}: {why}: {line}", n + 1);
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => {
                let end = r.rfind('}').ok_or_else(|| bad("unclosed label set"))?;
                (&r[..end], r[end + 1..].trim())
            }
            None if rest.starts_with(' ') => ("", rest.trim()),
            None => continue, // another metric sharing the prefix
        };
        let value = value.split_whitespace().next().unwrap_or_default();
        let value: f64 = value
            .parse()
            .map_err(|_| bad("the value is not a number"))?;
        let reason = label(labels, "reason").ok_or_else(|| bad("no reason label"))?;
        *out.entry(reason).or_default() += value;
    }
    Ok(out)
}

/// One label's value from a Prometheus label set (`a="x",b="y"`, with `\"` escapes).
fn label(labels: &str, name: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                other => value.push(other),
            }
        }
        let end = end?;
        if key.trim().trim_start_matches(',') == name {
            return Some(value);
        }
        rest = after[end + 1..].trim_start_matches(',');
    }
    None
}

/// Drops with a reason outside `allowed` that grew across the move. Reasons that were already
/// unexpected before are said, not counted. Counters restart with a replaced agent, so `after`
/// is compared with zero when it is below `before`.
pub fn judge_drops(before: &Drops, after: &Drops, allowed: &[String]) -> Judged {
    let mut j = Judged::default();
    let allowed: BTreeSet<&str> = allowed.iter().map(String::as_str).collect();
    for (reason, n) in before {
        if !allowed.contains(reason.as_str()) && *n > 0.0 {
            j.notes.push(format!(
                "already dropping before the upgrade: {n} packet(s) \"{reason}\""
            ));
        }
    }
    for (reason, n) in after {
        if allowed.contains(reason.as_str()) || *n <= 0.0 {
            continue;
        }
        let was = before.get(reason).copied().unwrap_or(0.0);
        if was > 0.0 {
            continue;
        }
        j.failures.push(format!(
            "unexpected drops after the upgrade: {n} packet(s) \"{reason}\" (cilium_drop_count_total)"
        ));
    }
    j
}

/// An agent log line at error level, in both forms the agent writes: logfmt
/// (`level=error` / slog's `level=ERROR`) and JSON (`"level":"error"`).
pub fn is_error_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("level=error") || l.contains("level=fatal") || l.contains("\"level\":\"error\"")
}

/// The message of a log line, so the same error at another time is the same error.
pub fn message(line: &str) -> String {
    if let Some(start) = line.find("msg=") {
        let rest = &line[start + 4..];
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut escaped = false;
            for c in quoted.chars() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    (_, c) => {
                        out.push(c);
                        escaped = false;
                    }
                }
            }
            return out;
        }
        return rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
        && let Some(m) = v.get("msg").and_then(|m| m.as_str())
    {
        return m.to_string();
    }
    line.to_string()
}

/// Error lines of `after` whose message never appeared at error level `before`.
pub fn judge_logs(before: &str, after: &str) -> Judged {
    let mut j = Judged::default();
    let seen: BTreeSet<String> = before
        .lines()
        .filter(|l| is_error_line(l))
        .map(message)
        .collect();
    if !seen.is_empty() {
        j.notes.push(format!(
            "{} error message(s) already logged before the upgrade",
            seen.len()
        ));
    }
    let mut new = BTreeSet::new();
    for line in after.lines().filter(|l| is_error_line(l)) {
        let m = message(line);
        if !seen.contains(&m) && new.insert(m) {
            j.failures
                .push(format!("new error in the agent log: {}", line.trim()));
        }
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_with_escapes_in_any_order() {
        assert_eq!(
            label(r#"direction="INGRESS",reason="Policy denied""#, "reason").as_deref(),
            Some("Policy denied")
        );
        assert_eq!(
            label(r#"reason="say \"hi\"",direction="EGRESS""#, "reason").as_deref(),
            Some("say \"hi\"")
        );
        assert_eq!(label(r#"direction="EGRESS""#, "reason"), None);
    }

    #[test]
    fn a_malformed_drop_sample_is_an_error_not_a_zero() {
        let err =
            parse_drops("cilium_drop_count_total{reason=\"Policy denied\"} lots").unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        // Another metric sharing the prefix is not this one.
        assert!(
            parse_drops("cilium_drop_count_totalx 3")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn messages_of_logfmt_and_json_lines() {
        assert_eq!(
            message(r#"time=2025 level=error msg="Failed to \"sync\"" subsys=k8s"#),
            "Failed to \"sync\""
        );
        assert_eq!(message(r#"{"level":"error","msg":"boom"}"#), "boom");
        assert!(is_error_line("time=x level=ERROR msg=a"));
        assert!(!is_error_line("time=x level=info msg=\"no errors\""));
    }
}
