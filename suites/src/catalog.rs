//! The registry: every suite, in run order. Each suite declares itself and its checks once, in
//! its own `mod.rs` (name, what the check proves, the anchor it mirrors, the upstream behaviour
//! its judge assumes, when it applies, its observe step and its judge). `plan`, the runner, the
//! filters, `suites/CHECKS.md`, the README's checks tables and the nextest trials all read that
//! one declaration through [`CATALOG`].

use crate::context::{Applicability, RunContext};
use crate::kit::check::{RecordedJudge, RunFn};
use crate::kit::verdict::Verdict;
use crate::runner::SuiteRunFn;
use serde::Serialize;
use std::fmt;

/// Every suite the harness knows, in run order. Adding a suite is a folder with its declaration
/// (`SUITE`) and one line here.
pub const CATALOG: &[SuiteDecl] = &[
    crate::connectivity::SUITE,
    crate::dns::SUITE,
    crate::pod_security::SUITE,
    crate::gateway_api::SUITE,
    crate::wireguard::SUITE,
    crate::lb_ipam::SUITE,
    crate::network_policy::SUITE,
    crate::features::SUITE,
];

/// A suite's stable name, the first half of `suite::check`. Each suite's folder holds its
/// constant (`suites::dns::NAME`); [`SuiteName::parse`] finds one by its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SuiteName(&'static str);

impl SuiteName {
    pub(crate) const fn new(name: &'static str) -> SuiteName {
        SuiteName(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// The suite of that name in [`CATALOG`].
    pub fn parse(name: &str) -> Option<SuiteName> {
        CATALOG.iter().map(|s| s.name).find(|n| n.0 == name)
    }
}

impl fmt::Display for SuiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether this version of the harness carries an observe step and a judge for a check.
///
/// Declaring a check before it is implemented keeps its name stable for filters and plans; the
/// runner reports such a check as skipped with [`NOT_IMPLEMENTED`], never as passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Implemented,
    NotImplemented,
}

/// The skip reason a runner gives a declared but not implemented check.
pub const NOT_IMPLEMENTED: &str = "not implemented in this version";

/// One check, as its suite declares it (with the `check!` macro, next to its observe step and
/// judge).
pub struct CheckDecl {
    pub name: &'static str,
    pub proves: &'static str,
    pub anchor: &'static str,
    /// The upstream behaviour the judge relies on, and the versions and modes it holds for.
    pub assumes: &'static str,
    pub applies: fn(&RunContext) -> Applicability,
    /// Whether it probes from the run's outside client, which the harness then starts.
    pub outside: bool,
    /// Observe, then judge; `None` for a check declared for later.
    pub(crate) run: Option<RunFn>,
    /// The judge alone, on an observation as JSON; `None` for a check declared for later.
    pub(crate) judge: Option<RecordedJudge>,
}

impl CheckDecl {
    /// The judge's path in its suite (`judge::http`); checks sharing a judge share the name.
    pub fn judge_name(&self) -> Option<&'static str> {
        self.judge.map(|j| j.name)
    }

    /// Judges an observation as this check's observe step records it (`CheckRun.observation`),
    /// without a cluster: the same pure judge the run uses.
    pub fn judge_recorded(&self, observation: &serde_json::Value) -> Result<Verdict, String> {
        let j = self
            .judge
            .ok_or_else(|| format!("{} is not implemented, so it has no judge", self.name))?;
        (j.judge)(observation).map_err(|e| {
            format!(
                "{} cannot judge this observation: it is not the shape {} takes ({e})",
                self.name, j.name
            )
        })
    }

    pub fn status(&self) -> CheckStatus {
        match self.run {
            Some(_) => CheckStatus::Implemented,
            None => CheckStatus::NotImplemented,
        }
    }
}

/// One suite: its own applicability, its checks, and how to deploy what they share.
pub struct SuiteDecl {
    pub name: SuiteName,
    pub applies: fn(&RunContext) -> Applicability,
    pub checks: &'static [CheckDecl],
    /// Why the suite cannot share the cluster with other suites running at the same time
    /// (cluster-wide state it counts or changes); `None` when its namespace is all it touches.
    pub runs_alone: Option<&'static str>,
    /// Set up, run the selected checks, tear down; `None` for a suite declared for later.
    pub(crate) run: Option<SuiteRunFn>,
}

impl SuiteDecl {
    /// The suite's rule first, so a skipped suite gives its own reason to every check.
    pub fn check_applicability(&self, check: &CheckDecl, ctx: &RunContext) -> Applicability {
        match (self.applies)(ctx) {
            Applicability::Applies => (check.applies)(ctx),
            skipped => skipped,
        }
    }

    /// What a runner does with a check: its applicability first (a cell that does not need the
    /// check says why), then whether this version can run it at all.
    pub fn check_runnability(&self, check: &CheckDecl, ctx: &RunContext) -> Applicability {
        match self.check_applicability(check, ctx) {
            Applicability::Applies if check.status() == CheckStatus::NotImplemented => {
                Applicability::Skipped(NOT_IMPLEMENTED.into())
            }
            other => other,
        }
    }

    pub fn check(&self, name: &str) -> Option<&'static CheckDecl> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// The declaration of one suite.
pub fn suite(name: SuiteName) -> &'static SuiteDecl {
    CATALOG
        .iter()
        .find(|s| s.name == name)
        .expect("a SuiteName only comes from a CATALOG entry")
}

/// Every `suite::check` name, in catalog order.
pub fn all_check_names() -> impl Iterator<Item = String> {
    CATALOG.iter().flat_map(|s| {
        s.checks
            .iter()
            .map(move |c| format!("{}::{}", s.name, c.name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Features, Routing};
    use std::collections::HashSet;

    fn ctx(nodes: u32) -> RunContext {
        RunContext {
            features: Features {
                kube_proxy_replacement: true,
                gateway_api: false,
                wireguard: false,
                node_encryption: false,
                hubble: false,
                hubble_relay: false,
                hubble_ui: false,
                l2_announcements: false,
                l7_proxy: true,
                host_firewall: false,
                bandwidth_manager: false,
                bbr: false,
                mutual_auth_spire: false,
                policy_enforcement: true,
                host_legacy_routing: false,
                routing: Routing::Vxlan,
            },
            nodes,
            external_target: None,
            outside: None,
        }
    }

    #[test]
    fn names_are_unique_and_kebab_case() {
        let names: Vec<String> = all_check_names().collect();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(names.len(), unique.len());
        for n in &names {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == ':'),
                "{n}"
            );
        }
        let suites: HashSet<&str> = CATALOG.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(suites.len(), CATALOG.len(), "suite names are unique");
    }

    #[test]
    fn every_declaration_says_what_it_proves_mirrors_and_assumes() {
        for s in CATALOG {
            for c in s.checks {
                for (what, text) in [
                    ("proves", c.proves),
                    ("anchor", c.anchor),
                    ("assumes", c.assumes),
                ] {
                    assert!(
                        !text.trim().is_empty(),
                        "{}::{} has no {what}",
                        s.name,
                        c.name
                    );
                }
            }
        }
    }

    #[test]
    fn suite_names_parse_back() {
        for s in CATALOG {
            assert_eq!(SuiteName::parse(s.name.as_str()), Some(s.name));
        }
        assert_eq!(SuiteName::parse("nope"), None);
    }

    #[test]
    fn wireguard_suite_is_skipped_with_its_reason_when_encryption_is_off() {
        let c = ctx(3);
        let suite = suite(crate::wireguard::NAME);
        let a = suite.check_applicability(&suite.checks[0], &c);
        assert_eq!(
            a,
            Applicability::Skipped(
                "encryption is off or not WireGuard (encryption.enabled/encryption.type)".into()
            )
        );
    }
}
