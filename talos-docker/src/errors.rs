//! Every error a caller can see, each naming the problem and the fix.
//!
//! [`PreflightError`] is the subset found before anything is created: bad input or a missing
//! part (daemon, image, talosctl). Callers map it to "bad input" (the harness exits 2).
//! [`Error`] is everything else; by the time it is returned, what was created has been removed
//! (unless the caller asked to keep it, see [`Error::Kept`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::Cluster;
use crate::bollard::errors::Error as DockerError;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "cluster name '{name}' is invalid: {why}; use lowercase letters, digits and '-', starting with a letter, at most {max} characters (for example --name talos-e2e)"
    )]
    InvalidName {
        name: String,
        why: &'static str,
        max: usize,
    },

    #[error("{what} '{given}' is invalid: {why}; write it like {example}")]
    InvalidValue {
        what: &'static str,
        given: String,
        why: String,
        example: &'static str,
    },

    #[error(
        "subnet {subnet} is already used by docker network '{network}' ({network_subnet}); pass another --subnet, or leave it out to get the first free /24 in 10.5.0.0/16"
    )]
    SubnetTaken {
        subnet: String,
        network: String,
        network_subnet: String,
    },

    #[error(
        "no /24 in 10.5.0.0/16 is free: every one overlaps an existing docker network; remove unused networks (`harness gc`, `docker network prune`) or pass --subnet"
    )]
    NoFreeSubnet,

    #[error(
        "cannot read config patch {}: {source}; pass an existing file as @PATH, or the patch YAML itself",
        path.display()
    )]
    PatchUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "talosctl not found ({searched}); install the pinned {version}: `curl -Lo talosctl {url} && chmod +x talosctl`, then put it on PATH or pass --talosctl PATH"
    )]
    TalosctlMissing {
        searched: String,
        version: String,
        url: String,
    },

    #[error(
        "{} is talosctl {found}, but the Talos image is {wanted} and their minor versions must match; install talosctl {wanted}: `curl -Lo talosctl {url} && chmod +x talosctl`, then pass --talosctl PATH",
        path.display()
    )]
    TalosctlWrongVersion {
        path: PathBuf,
        found: String,
        wanted: String,
        url: String,
    },

    #[error(
        "cannot tell the version of {}: {reason}; check that it is a talosctl binary (`talosctl version --client --short`), or install {wanted}: {url}",
        path.display()
    )]
    TalosctlUnusable {
        path: PathBuf,
        reason: String,
        wanted: String,
        url: String,
    },

    #[error(
        "cannot reach the Docker daemon at {host}: {reason}; start the daemon (e.g. `sudo systemctl start docker`) or set DOCKER_HOST to one that runs"
    )]
    DockerUnreachable { host: String, reason: String },

    #[error(
        "the image {image} is not present locally and cannot be pulled ({reason}); pre-load it: on a machine with internet run `docker pull {image} && docker save {image} -o talos.tar`, copy talos.tar here, then run `docker load -i talos.tar`"
    )]
    ImageUnavailable { image: String, reason: String },

    #[error(
        "a cluster named '{name}' already exists ({objects}); pick another --name, or remove it with `harness down {name}` (or `talosctl cluster destroy --name {name}` if talosctl made it)"
    )]
    NameClash { name: String, objects: String },

    #[error(
        "not enough memory: {nodes} node(s) x {per_node_mib} MiB = {total_mib} MiB, but the Docker host has {host_mib} MiB in total; lower --memory or the number of nodes (--control-planes, --workers)"
    )]
    NotEnoughMemory {
        nodes: u32,
        per_node_mib: u64,
        total_mib: u64,
        host_mib: u64,
    },

    #[error(
        "{requested} CPUs per node is more than the {host} CPUs of the Docker host; lower --cpus to at most {host}"
    )]
    TooManyCpus { requested: f64, host: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Preflight(#[from] PreflightError),

    #[error("docker: cannot {action}: {source}{hint}")]
    Docker {
        action: String,
        source: DockerError,
        hint: &'static str,
    },

    #[error("talosctl {step} failed ({status}): {output}")]
    Talosctl {
        step: &'static str,
        status: String,
        output: String,
    },

    #[error("cannot run {} for `{step}`: {source}", path.display())]
    TalosctlSpawn {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("timed out after {} waiting for {what}; last seen: {last_seen}", humanize(*timeout))]
    WaitTimeout {
        what: String,
        timeout: Duration,
        last_seen: String,
    },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{}: {why}; is it the kubeconfig `talosctl kubeconfig` wrote?", path.display())]
    Kubeconfig { path: PathBuf, why: String },

    #[error("a node container has no published port {port}: {why}")]
    NoPublishedPort { port: &'static str, why: String },

    #[error("could not remove everything: {0}; run `harness gc` to retry")]
    Cleanup(String),

    /// Provisioning failed and the caller asked to keep what was made.
    #[error("{source}")]
    Kept {
        cluster: Box<Cluster>,
        source: Box<Error>,
    },
}

impl Error {
    pub(crate) fn docker(action: impl Into<String>, source: DockerError) -> Self {
        let hint = match &source {
            DockerError::DockerResponseServerError { message, .. }
                if message.contains("apply caps") =>
            {
                "; this Docker daemon cannot start privileged containers (it lacks capabilities, \
                 e.g. it runs inside a container without CAP_SYS_RESOURCE); Talos nodes need a \
                 daemon that has all of them"
            }
            _ => "",
        };
        Error::Docker {
            action: action.into(),
            source,
            hint,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Found before anything was created, so the caller can treat it as bad input.
    pub fn as_preflight(&self) -> Option<&PreflightError> {
        match self {
            Error::Preflight(p) => Some(p),
            _ => None,
        }
    }
}

pub(crate) fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 && secs < 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 120 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}
