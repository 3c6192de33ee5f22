//! Selecting checks by suite name and by `suite::check` glob, the way `cilium connectivity test
//! --test` selects tests: a pattern starting with `!` excludes.

use crate::catalog::{CATALOG, SuiteDecl, all_check_names};
use glob::Pattern;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("unknown suite '{given}'; known suites: {known}")]
    UnknownSuite { given: String, known: String },
    #[error("check filter '{given}' is not a valid glob: {reason}")]
    BadPattern { given: String, reason: String },
    #[error(
        "check filter '{given}' matches no check; use `suite::check` globs such as 'dns::*' or '!connectivity::pod-to-world' (see `harness plan` for every name)"
    )]
    NoMatch { given: String },
    #[error(
        "check filter '!' names nothing to leave out; write '!suite::check' or '!glob', e.g. '!connectivity::pod-to-world'"
    )]
    EmptyExclusion,
    #[error(
        "the check filters {given} leave no check to run; drop a '!' filter or widen an include (see `harness plan` for every name)"
    )]
    NothingSelected { given: String },
}

/// Which checks a run selects. Empty means all.
#[derive(Default)]
pub struct CheckFilter {
    suites: Vec<String>,
    includes: Vec<Pattern>,
    excludes: Vec<Pattern>,
}

impl CheckFilter {
    pub fn new(suites: &[String], checks: &[String]) -> Result<Self, FilterError> {
        let known: Vec<&str> = CATALOG.iter().map(|s| s.name.as_str()).collect();
        for s in suites {
            if !known.contains(&s.as_str()) {
                return Err(FilterError::UnknownSuite {
                    given: s.clone(),
                    known: known.join(", "),
                });
            }
        }
        let mut filter = CheckFilter {
            suites: suites.to_vec(),
            ..Default::default()
        };
        for raw in checks {
            let (negate, body) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, raw.as_str()),
            };
            if body.is_empty() {
                return Err(FilterError::EmptyExclusion);
            }
            // A bare word matches a whole suite or a check in any suite; a glob (`*`, `dns*`)
            // is taken as written, against the whole `suite::check` name.
            let body = if body.contains("::") || body.contains(['*', '?', '[']) {
                body.to_string()
            } else {
                format!("*{body}*")
            };
            let pattern = Pattern::new(&body).map_err(|e| FilterError::BadPattern {
                given: raw.clone(),
                reason: e.msg.to_string(),
            })?;
            if !all_check_names().any(|n| pattern.matches(&n)) {
                return Err(FilterError::NoMatch { given: raw.clone() });
            }
            if negate {
                filter.excludes.push(pattern);
            } else {
                filter.includes.push(pattern);
            }
        }
        let any = CATALOG
            .iter()
            .any(|s| s.checks.iter().any(|c| filter.selects(s, c.name)));
        if !any {
            return Err(FilterError::NothingSelected {
                given: checks
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        Ok(filter)
    }

    pub fn selects(&self, suite: &SuiteDecl, check: &str) -> bool {
        if !self.suites.is_empty() && !self.suites.iter().any(|s| s == suite.name.as_str()) {
            return false;
        }
        let full = format!("{}::{}", suite.name, check);
        let included = self.includes.is_empty() || self.includes.iter().any(|p| p.matches(&full));
        included && !self.excludes.iter().any(|p| p.matches(&full))
    }
}
