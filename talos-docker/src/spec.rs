//! What to build: [`ClusterSpec`] with its defaults and the checks that need no Docker.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::errors::PreflightError;
use crate::run::{RunId, default_state_dir};
use crate::subnet::Ipv4Net;

pub const DEFAULT_TALOS_VERSION: &str = "v1.11.5";
pub const TALOS_IMAGE_REPO: &str = "ghcr.io/siderolabs/talos";
/// Talos' documented floor for a worker; control planes want 2 GiB.
pub const MIN_MEMORY_MIB: u64 = 1024;
/// Hostnames are `<name>-controlplane-<i>` and must stay a DNS label (63 characters).
pub const MAX_NAME_LEN: usize = 40;
/// A /24 has .2 to .254 for nodes.
pub const MAX_NODES: u32 = 253;

/// A Talos release, e.g. `v1.11.5`. Decides the image tag, the `--talos-version` contract of the
/// generated configs, the talosctl that may drive it and the container's volume list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TalosVersion(semver::Version);

impl TalosVersion {
    pub fn parse(s: &str) -> Result<Self, PreflightError> {
        let bare = s.trim().strip_prefix('v').unwrap_or(s.trim());
        semver::Version::parse(bare)
            .map(TalosVersion)
            .map_err(|e| PreflightError::InvalidValue {
                what: "Talos version",
                given: s.to_string(),
                why: e.to_string(),
                example: "v1.11.5",
            })
    }

    pub fn semver(&self) -> &semver::Version {
        &self.0
    }

    /// `v1.11`: what `talosctl gen config --talos-version` takes.
    pub fn minor_tag(&self) -> String {
        format!("v{}.{}", self.0.major, self.0.minor)
    }

    pub fn same_minor(&self, other: &TalosVersion) -> bool {
        (self.0.major, self.0.minor) == (other.0.major, other.0.minor)
    }

    pub fn default_image(&self) -> String {
        format!("{TALOS_IMAGE_REPO}:{self}")
    }

    /// The anonymous volumes of a node container. Talos v1.14 stopped overlaying /etc/cni,
    /// /etc/kubernetes and /usr/libexec/kubernetes, so their volumes went away. The harness's
    /// release table records the same lists (a harness test keeps them equal).
    pub fn anonymous_volumes(&self) -> &'static [&'static str] {
        if (self.0.major, self.0.minor) >= (1, 14) {
            &["/var", "/system/state", "/opt"]
        } else {
            &[
                "/var",
                "/system/state",
                "/etc/cni",
                "/etc/kubernetes",
                "/usr/libexec/kubernetes",
                "/opt",
            ]
        }
    }

    /// How long talosctl lets a node container shut down (`docker stop`) before removing it:
    /// from v1.14 it stops nodes gracefully for 30 s; before, it removed them by force.
    /// harness/data/releases.yaml records the same layout, and a harness test keeps them equal.
    pub fn stop_grace(&self) -> Duration {
        if (self.0.major, self.0.minor) >= (1, 14) {
            Duration::from_secs(30)
        } else {
            Duration::ZERO
        }
    }

    /// Before v1.12 talosctl tells Talos to leave eth0 to Docker in container mode.
    pub fn needs_eth0_ignore(&self) -> bool {
        (self.0.major, self.0.minor) < (1, 12)
    }
}

impl fmt::Display for TalosVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

pub const TMPFS_MOUNTS: [&str; 3] = ["/run", "/system", "/tmp"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeRole {
    ControlPlane,
    Worker,
}

impl NodeRole {
    /// The `talos.type` label value and the middle part of the node name.
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeRole::ControlPlane => "controlplane",
            NodeRole::Worker => "worker",
        }
    }
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchTarget {
    All,
    ControlPlane,
    Worker,
}

impl PatchTarget {
    /// The `talosctl gen config` flag that applies a patch to these nodes.
    pub fn flag(&self) -> &'static str {
        match self {
            PatchTarget::All => "--config-patch",
            PatchTarget::ControlPlane => "--config-patch-control-plane",
            PatchTarget::Worker => "--config-patch-worker",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchSource {
    File(PathBuf),
    Inline(String),
}

/// A Talos machine config patch, as `talosctl gen config --config-patch*` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigPatch {
    pub target: PatchTarget,
    pub source: PatchSource,
}

impl ConfigPatch {
    /// `@path` names a file (as with talosctl); anything else is the patch itself.
    pub fn parse(target: PatchTarget, arg: &str) -> ConfigPatch {
        let source = match arg.strip_prefix('@') {
            Some(path) => PatchSource::File(PathBuf::from(path)),
            None => PatchSource::Inline(arg.to_string()),
        };
        ConfigPatch { target, source }
    }
}

/// Every wait is bounded; these are the bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Reaching the Docker daemon.
    pub docker: Duration,
    /// A whole image pull.
    pub pull: Duration,
    /// A pull that reports no progress for this long is given up.
    pub pull_stall: Duration,
    /// One `talosctl gen`/`config` call.
    pub talosctl: Duration,
    /// Until `talosctl bootstrap` is accepted (the first control plane boots meanwhile).
    pub bootstrap: Duration,
    /// Until `talosctl kubeconfig` succeeds.
    pub kubeconfig: Duration,
    /// Until the API server lists every node.
    pub ready: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            docker: Duration::from_secs(15),
            pull: Duration::from_secs(15 * 60),
            pull_stall: Duration::from_secs(60),
            talosctl: Duration::from_secs(120),
            bootstrap: Duration::from_secs(5 * 60),
            kubeconfig: Duration::from_secs(2 * 60),
            ready: Duration::from_secs(10 * 60),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Network name and node-name prefix; must be unique on the Docker host.
    pub name: String,
    pub talos_version: TalosVersion,
    /// Defaults to `ghcr.io/siderolabs/talos:<talos_version>`; set it for a mirror or a stand-in.
    pub image: Option<String>,
    /// Defaults to the Talos release's own default.
    pub kubernetes_version: Option<String>,
    pub control_planes: u32,
    pub workers: u32,
    /// Defaults to the first /24 of 10.5.0.0/16 no Docker network overlaps.
    pub subnet: Option<Ipv4Net>,
    pub mtu: u32,
    pub cpus: f64,
    pub memory_mib: u64,
    pub patches: Vec<ConfigPatch>,
    /// Defaults to `talosctl` on PATH.
    pub talosctl: Option<PathBuf>,
    /// Where the run directory goes: `<state_dir>/<run_id>/<name>`.
    pub state_dir: PathBuf,
    pub run_id: RunId,
    /// On failure, leave everything in place (and say so in [`crate::Error::Kept`]).
    pub keep_on_failure: bool,
    /// Talos nodes must be privileged. `false` exists only for stand-in images on Docker hosts
    /// that cannot start privileged containers (a daemon lacking capabilities); Talos will not
    /// boot that way.
    pub privileged: bool,
    pub timeouts: Timeouts,
}

impl ClusterSpec {
    /// Talos v1.11.5, one control plane and two workers of 2 CPUs / 2 GiB, MTU 1500.
    pub fn new(name: impl Into<String>) -> ClusterSpec {
        ClusterSpec {
            name: name.into(),
            talos_version: TalosVersion::parse(DEFAULT_TALOS_VERSION)
                .expect("the default Talos version parses"),
            image: None,
            kubernetes_version: None,
            control_planes: 1,
            workers: 2,
            subnet: None,
            mtu: 1500,
            cpus: 2.0,
            memory_mib: 2048,
            patches: Vec::new(),
            talosctl: None,
            state_dir: default_state_dir(),
            run_id: RunId::generate(),
            keep_on_failure: false,
            privileged: true,
            timeouts: Timeouts::default(),
        }
    }

    pub fn image(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| self.talos_version.default_image())
    }

    pub fn node_count(&self) -> u32 {
        self.control_planes + self.workers
    }

    /// The checks that need neither Docker nor talosctl.
    pub fn validate(&self) -> Result<(), PreflightError> {
        validate_name(&self.name)?;
        if let Some(k8s) = &self.kubernetes_version {
            let bare = k8s.strip_prefix('v').unwrap_or(k8s);
            semver::Version::parse(bare).map_err(|e| PreflightError::InvalidValue {
                what: "Kubernetes version",
                given: k8s.clone(),
                why: e.to_string(),
                example: "1.34.1",
            })?;
        }
        let invalid = |what, given: String, why: &str, example| PreflightError::InvalidValue {
            what,
            given,
            why: why.to_string(),
            example,
        };
        if self.control_planes == 0 {
            return Err(invalid(
                "control plane count",
                "0".into(),
                "a cluster needs at least one control plane",
                "--control-planes 1",
            ));
        }
        if self.node_count() > MAX_NODES {
            return Err(invalid(
                "node count",
                self.node_count().to_string(),
                "one /24 network holds at most 253 nodes",
                "--control-planes 1 --workers 2",
            ));
        }
        if let Some(subnet) = self.subnet
            && subnet.size() < u64::from(self.node_count()) + 3
        {
            return Err(invalid(
                "subnet",
                subnet.to_string(),
                &format!(
                    "it has no room for {} nodes after the network, gateway (.1) and broadcast addresses",
                    self.node_count()
                ),
                "10.5.0.0/24",
            ));
        }
        if !(1280..=9000).contains(&self.mtu) {
            return Err(invalid(
                "MTU",
                self.mtu.to_string(),
                "it must lie between 1280 (the IPv6 minimum) and 9000",
                "1500 (or 1430 behind a tunnel)",
            ));
        }
        if !self.cpus.is_finite() || self.cpus < 0.01 {
            return Err(invalid(
                "CPUs per node",
                self.cpus.to_string(),
                "it must be at least 0.01",
                "2",
            ));
        }
        if self.memory_mib < MIN_MEMORY_MIB {
            return Err(invalid(
                "memory per node",
                format!("{} MiB", self.memory_mib),
                "Talos needs at least 1024 MiB per node (2048 MiB for control planes)",
                "--memory 2GiB",
            ));
        }
        for patch in &self.patches {
            if let PatchSource::File(path) = &patch.source {
                std::fs::File::open(path).map_err(|source| PreflightError::PatchUnreadable {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Node names and static IPs: control planes first, from .2 upward.
    pub fn layout(&self, subnet: Ipv4Net) -> Vec<NodePlan> {
        let roles = (1..=self.control_planes)
            .map(|i| (NodeRole::ControlPlane, i))
            .chain((1..=self.workers).map(|i| (NodeRole::Worker, i)));
        roles
            .enumerate()
            .map(|(n, (role, i))| NodePlan {
                name: format!("{}-{}-{i}", self.name, role.as_str()),
                role,
                ip: subnet
                    .nth(2 + n as u32)
                    .expect("validate() checked that the subnet holds every node"),
            })
            .collect()
    }
}

/// One node to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlan {
    /// Container name and hostname.
    pub name: String,
    pub role: NodeRole,
    pub ip: Ipv4Addr,
}

pub fn validate_name(name: &str) -> Result<(), PreflightError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is too long for the node hostnames derived from it")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lowercase letter")
    } else if name.ends_with('-') {
        Some("it must not end with '-'")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("it has characters a hostname cannot hold")
    } else {
        None
    };
    match why {
        Some(why) => Err(PreflightError::InvalidName {
            name: name.to_string(),
            why,
            max: MAX_NAME_LEN,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_talosctl() {
        let spec = ClusterSpec::new("c");
        assert_eq!(spec.image(), "ghcr.io/siderolabs/talos:v1.11.5");
        assert_eq!((spec.control_planes, spec.workers), (1, 2));
        assert_eq!(spec.talos_version.minor_tag(), "v1.11");
        assert!(spec.privileged);
        spec.validate().unwrap();
    }

    #[test]
    fn layout_puts_control_planes_first_from_dot_two() {
        let mut spec = ClusterSpec::new("c");
        spec.control_planes = 2;
        let nodes = spec.layout("10.5.9.0/24".parse().unwrap());
        let got: Vec<_> = nodes
            .iter()
            .map(|n| (n.name.as_str(), n.role, n.ip.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "c-controlplane-1",
                    NodeRole::ControlPlane,
                    "10.5.9.2".into()
                ),
                (
                    "c-controlplane-2",
                    NodeRole::ControlPlane,
                    "10.5.9.3".into()
                ),
                ("c-worker-1", NodeRole::Worker, "10.5.9.4".into()),
                ("c-worker-2", NodeRole::Worker, "10.5.9.5".into()),
            ]
        );
    }

    #[test]
    fn volume_list_follows_the_talos_version() {
        let v = |s| TalosVersion::parse(s).unwrap();
        assert_eq!(v("v1.11.5").anonymous_volumes().len(), 6);
        assert_eq!(v("1.13.9").anonymous_volumes().len(), 6);
        assert_eq!(
            v("v1.14.0-rc.1").anonymous_volumes(),
            ["/var", "/system/state", "/opt"]
        );
        assert_eq!(v("v1.13.9").stop_grace(), Duration::ZERO);
        assert_eq!(v("v1.14.0").stop_grace(), Duration::from_secs(30));
        assert!(v("v1.11.5").needs_eth0_ignore());
        assert!(!v("v1.12.0").needs_eth0_ignore());
    }

    #[test]
    fn bad_input_is_named() {
        let check = |f: &dyn Fn(&mut ClusterSpec)| {
            let mut spec = ClusterSpec::new("ok");
            f(&mut spec);
            spec.validate().unwrap_err().to_string()
        };
        assert!(check(&|s| s.name = "Bad_Name".into()).contains("cluster name 'Bad_Name'"));
        assert!(check(&|s| s.name = "a".repeat(41)).contains("too long"));
        assert!(check(&|s| s.control_planes = 0).contains("at least one control plane"));
        assert!(check(&|s| s.memory_mib = 512).contains("1024 MiB"));
        assert!(check(&|s| s.mtu = 100).contains("MTU"));
        assert!(check(&|s| s.cpus = 0.0).contains("CPUs"));
        assert!(check(&|s| s.kubernetes_version = Some("one".into())).contains("1.34.1"));
        assert!(check(&|s| s.subnet = Some("10.5.0.0/30".parse().unwrap())).contains("no room"));
        let missing = check(&|s| {
            s.patches = vec![ConfigPatch::parse(PatchTarget::All, "@/nonexistent/p.yaml")]
        });
        assert!(missing.contains("/nonexistent/p.yaml"), "{missing}");
    }

    #[test]
    fn patches_parse_like_talosctl() {
        assert_eq!(
            ConfigPatch::parse(PatchTarget::Worker, "@p.yaml").source,
            PatchSource::File("p.yaml".into())
        );
        assert_eq!(
            ConfigPatch::parse(PatchTarget::All, "machine: {}").source,
            PatchSource::Inline("machine: {}".into())
        );
    }
}
