//! Talos-in-Docker clusters, made the way `talosctl cluster create` (docker provisioner) makes
//! them, but with the Docker objects created here through the engine API (so the cluster never
//! waits for node Ready, which a CNI-less cluster does not reach) and `talosctl` used only for
//! secrets, machine configs, bootstrap and kubeconfig.
//!
//! Every Docker object carries labels naming the run and the cluster ([`labels`]), so that
//! [`cleanup`] can remove whatever a crashed or killed run left behind.
//!
//! ```no_run
//! # async fn demo() -> Result<(), talos_docker::Error> {
//! use talos_docker::{ApiServerReadiness, Cluster, ClusterSpec};
//! let spec = ClusterSpec::new("e2e");
//! let cluster = Cluster::create(spec, &ApiServerReadiness).await?;
//! println!("{}", cluster.kubeconfig().display());
//! cluster.destroy().await?;
//! # Ok(()) }
//! ```

pub mod child;
pub mod cleanup;
mod cluster;
pub mod docker;
mod errors;
mod kubeconfig;
pub mod labels;
pub mod outside;
mod preflight;
pub mod replace;
mod run;
pub mod spec;
pub mod subnet;
pub mod talosctl;
pub mod wait;

pub use cluster::{Cluster, Node};
pub use errors::{Error, PreflightError};
pub use outside::OutsideClient;
pub use run::{RunDir, RunDirInfo, RunId, default_state_dir};
pub use spec::{
    ClusterSpec, ConfigPatch, NodeRole, PatchSource, PatchTarget, TalosVersion, Timeouts,
};
pub use subnet::Ipv4Net;
pub use wait::{ApiServerReadiness, Readiness, ReadinessTarget};

/// The engine API client, re-exported so callers need no direct bollard dependency.
pub use testcontainers::bollard;
