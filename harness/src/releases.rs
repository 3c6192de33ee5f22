//! The release table (`harness/data/releases.yaml`): what the harness knows about Talos, Cilium,
//! Kubernetes and Gateway API releases, each fact with its source. Plan, lint, the matrices,
//! preflight, install and the README's support table read it from here; no other module holds a
//! version fact of its own.

use crate::errors::InputError;
use crate::version::{CiliumVersion, GatewayApiVersion, KubernetesVersion, TalosVersion};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

pub const TABLE: &str = include_str!("../data/releases.yaml");
/// Published Cilium chart digests (version, sha256, date), from the cilium/charts index.
pub const CHART_DIGESTS: &str = include_str!("../data/cilium-charts.tsv");

/// A release line, `major.minor`, written "1.14" in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Minor(pub u64, pub u64);

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl<'de> Deserialize<'de> for Minor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("'{s}' is not a major.minor release line"));
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        Ok(Minor(
            major.parse().map_err(|_| bad())?,
            minor.parse().map_err(|_| bad())?,
        ))
    }
}

impl From<(u64, u64)> for Minor {
    fn from((a, b): (u64, u64)) -> Self {
        Minor(a, b)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseTable {
    pub kubernetes: Vec<KubernetesPatch>,
    pub talos: Vec<TalosRelease>,
    pub cilium: Vec<CiliumRelease>,
    pub gateway_api_releases: Vec<GatewayApiRelease>,
    pub removed_values: Vec<RemovedValue>,
    pub default_changes: Vec<DefaultChange>,
    pub upgrades: Upgrades,
    pub disruption: Disruption,
}

/// How far one upgrade of a component may go, as its project tests it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRule {
    /// Minors one upgrade may cross (1: the next minor only).
    pub minor_steps: u64,
    /// Whether going back is a path the project tests.
    pub downgrade: bool,
    pub source: String,
}

impl UpgradeRule {
    /// Why going from `from` to `to` is not a tested path, if it is not.
    pub fn refuses(&self, what: &str, from: Minor, to: Minor) -> Option<String> {
        if from.0 != to.0 {
            return Some(format!("{what} {from} to {to} crosses a major release"));
        }
        if to < from && !self.downgrade {
            return Some(format!(
                "{what} cannot go back from {from} to {to}: downgrades are not a supported path"
            ));
        }
        let steps = from.1.abs_diff(to.1);
        if steps > self.minor_steps {
            let next = if to > from {
                Minor(from.0, from.1 + self.minor_steps)
            } else {
                Minor(from.0, from.1 - self.minor_steps)
            };
            return Some(format!(
                "{what} {from} to {to} skips a minor release: only consecutive minors are a tested path; go to {next} first"
            ));
        }
        None
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiliumUpgradeRule {
    pub minor_steps: u64,
    pub downgrade: bool,
    /// The chart value naming the minor upgraded from.
    pub compatibility_value: String,
    pub source: String,
}

impl CiliumUpgradeRule {
    pub fn rule(&self) -> UpgradeRule {
        UpgradeRule {
            minor_steps: self.minor_steps,
            downgrade: self.downgrade,
            source: self.source.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayApiUpgradeRule {
    /// Once this release (or a later one) is installed, CRDs older than it are refused.
    pub no_downgrade_below: GatewayApiVersion,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upgrades {
    pub cilium: CiliumUpgradeRule,
    pub talos: UpgradeRule,
    pub kubernetes: UpgradeRule,
    pub gateway_api: GatewayApiUpgradeRule,
}

/// The upgrade gate's connection-disruption workload and the drop reasons it allows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disruption {
    /// `repository:tag@sha256:digest`.
    pub image: String,
    pub image_source: String,
    pub server_command: Vec<String>,
    pub client_command: Vec<String>,
    pub commands_source: String,
    pub expected_drop_reasons: Vec<String>,
    pub expected_drop_reasons_source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesPatch {
    pub version: KubernetesVersion,
    pub source: String,
}

/// A window of Kubernetes minors, both ends included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesWindow {
    pub min: Minor,
    pub max: Minor,
    pub source: String,
}

impl KubernetesWindow {
    pub fn contains(&self, k: &KubernetesVersion) -> bool {
        let m = Minor::from(k.minor());
        self.min <= m && m <= self.max
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalosKubernetes {
    pub min: Minor,
    pub max: Minor,
    pub default: KubernetesVersion,
    pub source: String,
}

impl TalosKubernetes {
    pub fn contains(&self, k: &KubernetesVersion) -> bool {
        let m = Minor::from(k.minor());
        self.min <= m && m <= self.max
    }
}

/// Where a Talos release takes one of the settings the harness writes: a key of the v1alpha1
/// machine config, or a document of its own.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub enum Form {
    #[serde(rename = "v1alpha1")]
    V1alpha1(String),
    #[serde(rename = "document")]
    Document(String),
}

impl Form {
    pub fn is_document(&self) -> bool {
        matches!(self, Form::Document(_))
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Form::V1alpha1(path) => write!(f, "v1alpha1 .{path}"),
            Form::Document(kind) => write!(f, "{kind} document"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigForms {
    /// No Talos-managed CNI (Flannel).
    pub cni_none: Form,
    /// No kube-proxy, when Cilium replaces it.
    pub kube_proxy_off: Form,
    /// The KubePrism load balancer and its port.
    pub kubeprism: Form,
    /// The host DNS resolver and its forwarding of CoreDNS upstream queries.
    pub host_dns: Form,
    /// Registry mirrors for the node's container runtime.
    pub registry_mirrors: Form,
    pub source: String,
}

/// How talosctl lays out a Talos node container of this release.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerLayout {
    pub tmpfs: Vec<String>,
    pub volumes: Vec<String>,
    /// Seconds a node gets to shut down on `docker stop` before it is killed; 0 is a forced remove.
    pub stop_grace_seconds: u64,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalosRelease {
    pub minor: Minor,
    pub latest: TalosVersion,
    pub latest_source: String,
    pub kubernetes: TalosKubernetes,
    pub talosctl: TalosVersion,
    pub talosctl_source: String,
    pub config: ConfigForms,
    pub docker: DockerLayout,
}

/// A Kubernetes kind at one API version.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KindVersion {
    pub kind: String,
    pub version: String,
}

/// Gateway API releases a Cilium minor works with, `min` included, `below` excluded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    pub min: GatewayApiVersion,
    pub below: GatewayApiVersion,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayApiSupport {
    /// The release Cilium is built and tested against: what a cell installs by default.
    pub built_against: GatewayApiVersion,
    pub tolerates: Tolerance,
    /// What the operator checks for at start-up before it runs its gateway controller.
    pub requires_served: Vec<KindVersion>,
    /// Kinds it watches when their CRD exists: a CRD listing the version unserved stops it.
    pub fails_if_unserved: Vec<KindVersion>,
    /// Why releases below `tolerates.min` do not work.
    pub too_old: String,
    /// Why releases from `tolerates.below` on do not work.
    pub too_new: String,
    pub source: String,
}

impl GatewayApiSupport {
    /// Why this Cilium minor cannot work with Gateway API `v`, if it cannot.
    pub fn refuses(&self, v: &GatewayApiVersion) -> Option<&str> {
        if v < &self.tolerates.min {
            Some(&self.too_old)
        } else if v >= &self.tolerates.below {
            Some(&self.too_new)
        } else {
            None
        }
    }
}

/// The API versions of one Cilium CRD a release serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrdVersions {
    pub kind: String,
    /// The storage version: what the harness writes.
    pub preferred: String,
    pub served: Vec<String>,
    pub deprecated: Vec<String>,
}

/// What a Cilium release says of an object's apiVersion.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    Yes,
    Deprecated { preferred: String },
    No { preferred: String },
    UnknownKind,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiliumRelease {
    pub minor: Minor,
    pub latest: CiliumVersion,
    pub latest_source: String,
    pub kubernetes_tested: KubernetesWindow,
    pub gateway_api: GatewayApiSupport,
    pub crds: Vec<CrdVersions>,
    pub crds_source: String,
    /// The values `encryption.type` takes.
    pub encryption_types: Vec<String>,
    pub encryption_types_source: String,
}

impl CiliumRelease {
    fn crd(&self, kind: &str) -> Option<&CrdVersions> {
        self.crds.iter().find(|c| c.kind == kind)
    }

    /// `cilium.io/<version>` to write a `kind` in.
    pub fn api_version(&self, kind: &str) -> String {
        let crd = self
            .crd(kind)
            .unwrap_or_else(|| panic!("the release table lists no CRD {kind}"));
        format!("cilium.io/{}", crd.preferred)
    }

    pub fn lb_pool_api_version(&self) -> String {
        self.api_version("CiliumLoadBalancerIPPool")
    }

    pub fn l2_policy_api_version(&self) -> String {
        self.api_version("CiliumL2AnnouncementPolicy")
    }

    /// Whether `api_version` (e.g. `cilium.io/v2alpha1`) of `kind` is served.
    pub fn serves(&self, kind: &str, api_version: &str) -> Served {
        let Some(crd) = self.crd(kind) else {
            return Served::UnknownKind;
        };
        let version = api_version
            .strip_prefix("cilium.io/")
            .unwrap_or(api_version);
        let preferred = format!("cilium.io/{}", crd.preferred);
        if !crd.served.iter().any(|v| v == version) {
            Served::No { preferred }
        } else if crd.deprecated.iter().any(|v| v == version) {
            Served::Deprecated { preferred }
        } else {
            Served::Yes
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayApiRelease {
    pub version: GatewayApiVersion,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedValue {
    pub key: String,
    pub removed_in: Minor,
    /// The chart's validation fails on it; otherwise the chart ignores it without a word.
    pub refused: bool,
    pub fix: String,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultChange {
    pub key: String,
    pub changed_in: Minor,
    pub before: Value,
    pub after: Value,
    pub note: String,
    pub source: String,
}

fn nearest<'a, T>(known: impl Iterator<Item = (&'a Minor, T)>, given: Minor) -> Vec<T> {
    let distance = |m: &Minor| (m.0.abs_diff(given.0), m.1.abs_diff(given.1));
    let mut all: Vec<(&Minor, T)> = known.collect();
    all.sort_by_key(|(m, _)| (distance(m), std::cmp::Reverse(**m)));
    all.into_iter().take(2).map(|(_, t)| t).collect()
}

impl ReleaseTable {
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The table compiled into the binary.
    pub fn embedded() -> &'static ReleaseTable {
        static TABLE_CELL: OnceLock<ReleaseTable> = OnceLock::new();
        TABLE_CELL.get_or_init(|| {
            ReleaseTable::parse(TABLE)
                .unwrap_or_else(|e| panic!("harness/data/releases.yaml is invalid: {e}"))
        })
    }

    fn talos_minors(&self) -> String {
        let first = self.talos.first().map(|t| t.minor).unwrap_or(Minor(0, 0));
        let last = self.newest_talos().minor;
        format!("v{first} to v{last}")
    }

    /// The facts of `v`'s release line, or which known releases are nearest.
    pub fn talos(&self, v: &TalosVersion) -> Result<&TalosRelease, InputError> {
        let minor = Minor::from(v.minor());
        match self.talos.iter().find(|t| t.minor == minor) {
            Some(t) if v.semver() <= t.latest.semver() => Ok(t),
            Some(t) => Err(InputError::Unsupported(format!(
                "Talos {v} is not in the release table: the newest v{minor} release it knows is {}; \
                 pick it, or add {v} with its source to harness/data/releases.yaml",
                t.latest
            ))),
            None => {
                let near: Vec<String> = nearest(
                    self.talos.iter().map(|t| (&t.minor, t.latest.to_string())),
                    minor,
                );
                Err(InputError::Unsupported(format!(
                    "Talos {v} is not in the release table (it knows Talos {}); the nearest known \
                     releases are {}",
                    self.talos_minors(),
                    near.join(" and ")
                )))
            }
        }
    }

    pub fn cilium(&self, v: &CiliumVersion) -> Result<&CiliumRelease, InputError> {
        let minor = Minor::from(v.minor());
        match self.cilium.iter().find(|c| c.minor == minor) {
            Some(c) if v.semver() <= c.latest.semver() => Ok(c),
            Some(c) => Err(InputError::Unsupported(format!(
                "Cilium {v} is not in the release table: the newest {minor} release it knows is {}; \
                 pick it, or add {v} with its source to harness/data/releases.yaml",
                c.latest
            ))),
            None => {
                let first = self.cilium.first().map(|c| c.minor).unwrap_or(Minor(0, 0));
                let near: Vec<String> = nearest(
                    self.cilium.iter().map(|c| (&c.minor, c.latest.to_string())),
                    minor,
                );
                Err(InputError::Unsupported(format!(
                    "Cilium {v} is not in the release table (it knows Cilium {first} to {}); the \
                     nearest known releases are {}",
                    self.newest_cilium().minor,
                    near.join(" and ")
                )))
            }
        }
    }

    pub fn newest_talos(&self) -> &TalosRelease {
        self.talos
            .iter()
            .max_by_key(|t| t.minor)
            .expect("the table lists Talos releases")
    }

    /// Talos release lines, newest first.
    pub fn talos_newest_first(&self) -> Vec<&TalosRelease> {
        let mut all: Vec<&TalosRelease> = self.talos.iter().collect();
        all.sort_by_key(|t| std::cmp::Reverse(t.minor));
        all
    }

    pub fn newest_cilium(&self) -> &CiliumRelease {
        self.cilium
            .iter()
            .max_by_key(|c| c.minor)
            .expect("the table lists Cilium releases")
    }

    /// Cilium release lines, newest first.
    pub fn cilium_newest_first(&self) -> Vec<&CiliumRelease> {
        let mut all: Vec<&CiliumRelease> = self.cilium.iter().collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.minor));
        all
    }

    /// The newest Kubernetes patch the table knows that both Talos runs and Cilium is tested on.
    pub fn kubernetes_for(
        &self,
        talos: &TalosRelease,
        cilium: &CiliumRelease,
    ) -> Option<&KubernetesVersion> {
        self.kubernetes
            .iter()
            .map(|k| &k.version)
            .filter(|k| talos.kubernetes.contains(k) && cilium.kubernetes_tested.contains(k))
            .max()
    }

    pub fn knows_gateway_api(&self, v: &GatewayApiVersion) -> bool {
        self.gateway_api_releases.iter().any(|g| &g.version == v)
    }

    /// Values the chart of `minor` no longer has.
    pub fn removed_by(&self, minor: Minor) -> impl Iterator<Item = &RemovedValue> {
        self.removed_values
            .iter()
            .filter(move |r| r.removed_in <= minor)
    }

    /// The chart default of `key` for `minor`, where the table records that it changed.
    pub fn chart_default(&self, key: &str, minor: Minor) -> Option<&Value> {
        self.default_changes.iter().find(|c| c.key == key).map(|c| {
            if minor >= c.changed_in {
                &c.after
            } else {
                &c.before
            }
        })
    }
}

fn short_form(f: &Form) -> String {
    match f {
        Form::V1alpha1(path) => format!("`.{path}`"),
        Form::Document(kind) => format!("`{kind}`"),
    }
}

impl ReleaseTable {
    /// The README's support tables, generated from this table (a test keeps the README in step).
    pub fn support_markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| Talos | Newest known | Kubernetes | Default | talosctl | CNI off / kube-proxy off / KubePrism / host DNS / registry mirrors | Docker node volumes | Stop |\n",
        );
        out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for t in &self.talos {
            let c = &t.config;
            let forms = [
                &c.cni_none,
                &c.kube_proxy_off,
                &c.kubeprism,
                &c.host_dns,
                &c.registry_mirrors,
            ]
            .map(short_form)
            .join(" / ");
            let stop = if t.docker.stop_grace_seconds == 0 {
                "forced remove".to_string()
            } else {
                format!(
                    "{} s graceful stop, then remove",
                    t.docker.stop_grace_seconds
                )
            };
            out.push_str(&format!(
                "| {} | {} | {} to {} | {} | {} | {forms} | {} | {stop} |\n",
                t.minor,
                t.latest,
                t.kubernetes.min,
                t.kubernetes.max,
                t.kubernetes.default,
                t.talosctl,
                t.docker.volumes.join(", ")
            ));
        }
        out.push('\n');
        out.push_str(
            "| Cilium | Newest known | e2e-tested Kubernetes | Gateway API built against | Gateway API it works with | LB pool / L2 policy written as | Deprecated, still served | Chart values removed in this minor |\n",
        );
        out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for c in &self.cilium {
            let g = &c.gateway_api;
            let deprecated: Vec<String> = c
                .crds
                .iter()
                .flat_map(|crd| {
                    crd.deprecated
                        .iter()
                        .map(move |v| format!("{} {v}", crd.kind))
                })
                .collect();
            let removed: Vec<String> = self
                .removed_values
                .iter()
                .filter(|r| r.removed_in == c.minor)
                .map(|r| format!("`{}`", r.key))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} to {} | {} | {} up to below {} | {} / {} | {} | {} |\n",
                c.minor,
                c.latest,
                c.kubernetes_tested.min,
                c.kubernetes_tested.max,
                g.built_against,
                g.tolerates.min,
                g.tolerates.below,
                c.lb_pool_api_version(),
                c.l2_policy_api_version(),
                if deprecated.is_empty() {
                    "none".into()
                } else {
                    deprecated.join(", ")
                },
                if removed.is_empty() {
                    "none".into()
                } else {
                    removed.join(", ")
                },
            ));
        }
        out
    }
}

/// The sha256 the cilium/charts index records for a chart version.
pub fn chart_digest(version: &CiliumVersion) -> Option<&'static str> {
    let wanted = version.to_string();
    CHART_DIGESTS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split('\t');
            Some((cols.next()?, cols.next()?))
        })
        .find(|(v, _)| *v == wanted)
        .map(|(_, sha)| sha)
}

/// What checking a downloaded chart against the recorded digest found.
#[derive(Debug, PartialEq, Eq)]
pub enum ChartCheck {
    /// The file's sha256 is the one recorded for its version.
    Verified { sha256: String },
    /// No digest is recorded for this version; the file was not checked.
    NoDigest { sha256: String },
}

/// Check a downloaded chart archive against the digest recorded for `version`. A mismatch is an
/// error naming both digests.
pub fn check_chart(version: &CiliumVersion, archive: &Path) -> Result<ChartCheck, String> {
    use sha2::Digest;
    let bytes = std::fs::read(archive)
        .map_err(|e| format!("cannot read the chart {}: {e}", archive.display()))?;
    let sha256: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match chart_digest(version) {
        Some(expected) if expected == sha256 => Ok(ChartCheck::Verified { sha256 }),
        Some(expected) => Err(format!(
            "the chart {} is not the published cilium {version}: its sha256 is {sha256}, the \
             cilium/charts index records {expected}; remove it and download it again",
            archive.display()
        )),
        None => Ok(ChartCheck::NoDigest { sha256 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> &'static ReleaseTable {
        ReleaseTable::embedded()
    }

    fn source_is_named(s: &str) -> bool {
        s.trim().len() > 12
    }

    #[test]
    fn every_fact_names_its_source() {
        let t = table();
        for k in &t.kubernetes {
            assert!(source_is_named(&k.source), "kubernetes {}", k.version);
        }
        for r in &t.talos {
            for s in [
                &r.latest_source,
                &r.kubernetes.source,
                &r.talosctl_source,
                &r.config.source,
                &r.docker.source,
            ] {
                assert!(
                    source_is_named(s),
                    "Talos {} has an unsourced fact",
                    r.minor
                );
            }
        }
        for r in &t.cilium {
            for s in [
                &r.latest_source,
                &r.kubernetes_tested.source,
                &r.gateway_api.source,
                &r.crds_source,
                &r.encryption_types_source,
            ] {
                assert!(
                    source_is_named(s),
                    "Cilium {} has an unsourced fact",
                    r.minor
                );
            }
        }
        for g in &t.gateway_api_releases {
            assert!(source_is_named(&g.source), "Gateway API {}", g.version);
        }
        for v in &t.removed_values {
            assert!(source_is_named(&v.source), "removed value {}", v.key);
        }
        for c in &t.default_changes {
            assert!(source_is_named(&c.source), "default change {}", c.key);
        }
        let u = &t.upgrades;
        for s in [
            &u.cilium.source,
            &u.talos.source,
            &u.kubernetes.source,
            &u.gateway_api.source,
            &t.disruption.image_source,
            &t.disruption.commands_source,
            &t.disruption.expected_drop_reasons_source,
        ] {
            assert!(source_is_named(s), "upgrade fact without a source: {s}");
        }
    }

    #[test]
    fn upgrade_paths_are_consecutive_minors() {
        let u = &table().upgrades;
        let cilium = u.cilium.rule();
        assert_eq!(cilium.refuses("Cilium", Minor(1, 18), Minor(1, 19)), None);
        assert_eq!(cilium.refuses("Cilium", Minor(1, 19), Minor(1, 18)), None);
        assert_eq!(cilium.refuses("Cilium", Minor(1, 19), Minor(1, 19)), None);
        assert_eq!(
            cilium
                .refuses("Cilium", Minor(1, 18), Minor(1, 20))
                .unwrap(),
            "Cilium 1.18 to 1.20 skips a minor release: only consecutive minors are a tested path; go to 1.19 first"
        );
        assert_eq!(
            u.talos
                .refuses("Talos", Minor(1, 14), Minor(1, 13))
                .unwrap(),
            "Talos cannot go back from 1.14 to 1.13: downgrades are not a supported path"
        );
        assert!(
            u.kubernetes
                .refuses("Kubernetes", Minor(1, 35), Minor(1, 37))
                .is_some()
        );
        assert_eq!(
            u.kubernetes
                .refuses("Kubernetes", Minor(1, 36), Minor(1, 37)),
            None
        );
    }

    /// The disruption image is pinned by digest, so what runs is what the table names.
    #[test]
    fn the_disruption_image_is_pinned_by_digest() {
        let image = &table().disruption.image;
        let (reference, digest) = image.split_once('@').expect("a digest");
        assert!(reference.contains(':'), "{image} has no tag");
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    /// The stored Gateway API v1.5.1 bundle carries the admission policy the table's rule is
    /// about, refusing exactly the releases below the one the table names.
    #[test]
    fn gateway_api_no_downgrade_rule_matches_the_stored_policy() {
        let text = upstream::testdata::read_to_string(
            "schemas/gateway-api/v1.5.1/experimental/gateway.networking.k8s.io_vap_safeupgrades.yaml",
        );
        let rule = &table().upgrades.gateway_api.no_downgrade_below;
        assert!(text.contains(&format!(
            "Installing CRDs with version before {rule} is prohibited"
        )));
    }

    #[test]
    fn the_table_is_consistent_with_itself() {
        let t = table();
        for r in &t.talos {
            assert_eq!(Minor::from(r.latest.minor()), r.minor, "Talos {}", r.minor);
            assert_eq!(
                r.talosctl.minor(),
                r.latest.minor(),
                "talosctl of {}",
                r.minor
            );
            assert!(
                r.kubernetes.contains(&r.kubernetes.default),
                "Talos {} default Kubernetes outside its window",
                r.minor
            );
            assert!(
                t.kubernetes
                    .iter()
                    .any(|k| k.version == r.kubernetes.default),
                "Talos {}'s default Kubernetes {} is not among the known patches",
                r.minor,
                r.kubernetes.default
            );
        }
        for c in &t.cilium {
            assert_eq!(Minor::from(c.latest.minor()), c.minor);
            let g = &c.gateway_api;
            assert!(g.tolerates.min <= g.built_against && g.built_against < g.tolerates.below);
            assert!(t.knows_gateway_api(&g.built_against), "Cilium {}", c.minor);
            for crd in &c.crds {
                assert!(
                    crd.served.contains(&crd.preferred),
                    "{} {}",
                    c.minor,
                    crd.kind
                );
                assert!(crd.deprecated.iter().all(|d| crd.served.contains(d)));
            }
        }
    }

    /// talos-docker keeps its own per-version node layout (it must not depend on the harness);
    /// it has to be the one this table records for every release line.
    #[test]
    fn talos_docker_lays_out_nodes_as_the_table_says() {
        for r in &table().talos {
            let v = talos_docker::spec::TalosVersion::parse(&r.latest.to_string()).unwrap();
            assert_eq!(v.anonymous_volumes(), r.docker.volumes, "Talos {}", r.minor);
            assert_eq!(talos_docker::spec::TMPFS_MOUNTS.to_vec(), r.docker.tmpfs);
            assert_eq!(
                v.stop_grace().as_secs(),
                r.docker.stop_grace_seconds,
                "Talos {}",
                r.minor
            );
        }
    }

    #[test]
    fn unknown_versions_name_the_nearest_known_ones() {
        let t = table();
        let err = t
            .talos(&TalosVersion::parse("v1.15.0").unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Talos v1.15.0 is not in the release table (it knows Talos v1.11 to v1.14); the nearest \
             known releases are v1.14.0 and v1.13.9"
        );
        let err = t
            .cilium(&CiliumVersion::parse("1.17.10").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the nearest known releases are 1.18.14 and 1.19.8"),
            "{err}"
        );
        let err = t
            .cilium(&CiliumVersion::parse("1.20.9").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the newest 1.20 release it knows is 1.20.2"),
            "{err}"
        );
        assert!(
            t.talos(&TalosVersion::parse("v1.14.0-rc.1").unwrap())
                .is_ok()
        );
        assert!(t.cilium(&CiliumVersion::parse("1.19.6").unwrap()).is_ok());
    }

    #[test]
    fn kubernetes_pins_lie_in_both_windows() {
        let t = table();
        let talos = |m| t.talos.iter().find(|r| r.minor == m).unwrap();
        let cilium = |m| t.cilium.iter().find(|r| r.minor == m).unwrap();
        let pin = |a, b| t.kubernetes_for(talos(a), cilium(b)).map(|k| k.to_string());
        assert_eq!(pin(Minor(1, 14), Minor(1, 20)).as_deref(), Some("1.36.3"));
        assert_eq!(pin(Minor(1, 14), Minor(1, 18)).as_deref(), Some("1.33.6"));
        assert_eq!(pin(Minor(1, 13), Minor(1, 19)).as_deref(), Some("1.35.4"));
        assert_eq!(pin(Minor(1, 11), Minor(1, 20)).as_deref(), Some("1.34.1"));
    }

    #[test]
    fn served_versions_come_from_the_table() {
        let c = table().cilium_newest_first()[0];
        assert_eq!(c.lb_pool_api_version(), "cilium.io/v2");
        assert_eq!(c.l2_policy_api_version(), "cilium.io/v2alpha1");
        assert_eq!(
            c.serves("CiliumLoadBalancerIPPool", "cilium.io/v2alpha1"),
            Served::Deprecated {
                preferred: "cilium.io/v2".into()
            }
        );
        assert_eq!(
            c.serves("CiliumNetworkPolicy", "cilium.io/v2alpha1"),
            Served::No {
                preferred: "cilium.io/v2".into()
            }
        );
        assert_eq!(c.serves("CiliumNode", "cilium.io/v2"), Served::UnknownKind);
    }

    #[test]
    fn gateway_api_tolerance_has_reasons() {
        let t = table();
        let c = |m| t.cilium.iter().find(|r| r.minor == m).unwrap();
        let v = |s| GatewayApiVersion::parse(s).unwrap();
        assert!(
            c(Minor(1, 19))
                .gateway_api
                .refuses(&v("v1.5.1"))
                .unwrap()
                .contains("#44920")
        );
        assert_eq!(c(Minor(1, 19)).gateway_api.refuses(&v("v1.4.0")), None);
        assert!(
            c(Minor(1, 20))
                .gateway_api
                .refuses(&v("v1.4.1"))
                .unwrap()
                .contains("ReferenceGrant v1")
        );
        assert_eq!(c(Minor(1, 20)).gateway_api.refuses(&v("v1.6.1")), None);
    }

    #[test]
    fn chart_defaults_follow_the_minor() {
        let t = table();
        assert_eq!(
            t.chart_default("authentication.enabled", Minor(1, 18)),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            t.chart_default("authentication.enabled", Minor(1, 20)),
            Some(&Value::Bool(false))
        );
        assert!(
            t.removed_by(Minor(1, 18))
                .all(|r| r.removed_in <= Minor(1, 18))
        );
        assert!(
            t.removed_by(Minor(1, 20))
                .any(|r| r.key == "encryption.strictMode.enabled")
        );
    }

    #[test]
    fn a_chart_is_checked_against_its_recorded_digest() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("cilium-1.20.0.tgz");
        std::fs::write(&archive, b"not the chart").unwrap();
        let v = CiliumVersion::parse("1.20.0").unwrap();
        let err = check_chart(&v, &archive).unwrap_err();
        assert!(
            err.contains("c5f013912360d1a334f44ef25f36da59ba3414cdb48f466ee12d0c4fdff27883"),
            "{err}"
        );
        let unknown = CiliumVersion::parse("1.20.2").unwrap();
        assert!(matches!(
            check_chart(&unknown, &archive),
            Ok(ChartCheck::NoDigest { .. })
        ));
        assert!(check_chart(&v, &dir.path().join("missing.tgz")).is_err());
    }

    /// The published chart (through the test-data chain) verifies, so the check is not vacuous.
    #[test]
    fn a_published_chart_verifies() {
        let chart = upstream::testdata::path("charts/cilium-1.20.0.tgz");
        let v = CiliumVersion::parse("1.20.0").unwrap();
        assert!(matches!(
            check_chart(&v, &chart),
            Ok(ChartCheck::Verified { .. })
        ));
    }

    /// The committed digests are the index's rows for the minors the table knows
    /// (regenerate with harness/data/gen_cilium_charts.py).
    #[test]
    fn chart_digests_are_current() {
        let index = upstream::testdata::read_to_string("charts/cilium-index.tsv");
        let minors: Vec<String> = table()
            .cilium
            .iter()
            .map(|c| format!("{}.", c.minor))
            .collect();
        let wanted: Vec<&str> = index
            .lines()
            .skip(1)
            .filter(|l| minors.iter().any(|m| l.starts_with(m.as_str())))
            .collect();
        let committed: Vec<&str> = CHART_DIGESTS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(committed, wanted);
    }
}
