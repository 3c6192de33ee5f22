//! What a judge returns. A judge is a pure function from observed data to a verdict; it never
//! talks to the cluster, so every message it can produce is unit-tested on fixtures.

/// Pass carries the evidence (what was seen that proves the check); Fail carries what was
/// expected, what was seen, and where to look next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass(String),
    Fail(String),
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass(_))
    }

    pub fn message(&self) -> &str {
        match self {
            Verdict::Pass(m) | Verdict::Fail(m) => m,
        }
    }

    /// Pass only if every part passes; an empty list fails, because a check that looked at
    /// nothing has proved nothing.
    pub fn all(parts: impl IntoIterator<Item = (String, Verdict)>) -> Verdict {
        let mut passed = Vec::new();
        let mut failed = Vec::new();
        for (what, v) in parts {
            match v {
                Verdict::Pass(m) => passed.push(format!("{what}: {m}")),
                Verdict::Fail(m) => failed.push(format!("{what}: {m}")),
            }
        }
        if passed.is_empty() && failed.is_empty() {
            return Verdict::Fail("nothing was observed, so nothing was proved".into());
        }
        if failed.is_empty() {
            Verdict::Pass(passed.join("; "))
        } else {
            Verdict::Fail(failed.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_fails_on_nothing_and_lists_only_failures() {
        assert!(!Verdict::all(Vec::new()).is_pass());
        let v = Verdict::all(vec![
            ("a".to_string(), Verdict::Pass("ok".into())),
            ("b".to_string(), Verdict::Fail("timed out".into())),
            ("c".to_string(), Verdict::Fail("refused".into())),
        ]);
        assert_eq!(v, Verdict::Fail("b: timed out\nc: refused".into()));
        let v = Verdict::all(vec![("a".to_string(), Verdict::Pass("ok".into()))]);
        assert_eq!(v, Verdict::Pass("a: ok".into()));
    }
}
