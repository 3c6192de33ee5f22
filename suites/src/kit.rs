//! The probe kit every suite shares: test namespaces, placed workloads, pinned images, probes run
//! by exec (in pods, or on a client outside the cluster) with bounded retries, bounded watch-based waits, and the transcript that records it
//! all for the report.

pub mod api_log;
pub mod as_text;
pub mod check;
pub mod cilium;
pub mod errors;
pub mod exec;
pub mod hubble;
pub mod images;
pub mod namespace;
pub mod outside;
pub mod policy;
pub mod probe;
pub mod retry;
pub mod talos;
pub mod topology;
pub mod transcript;
pub mod verdict;
pub mod wait;
pub mod workload;

pub use api_log::{ApiLog, ApiRead};
pub use check::{CheckCtx, Env, Judged, Timeouts};
pub use errors::KitError;
pub use exec::{ExecOutput, Executor, KubeExecutor, PodRef};
pub use images::{ImageRef, Images};
pub use namespace::{KeepNamespaces, PsaLabels, PsaLevel, RunId};
pub use outside::{HostExec, OutsideExec};
pub use probe::{Origin, Probe};
pub use retry::{Leg, RetryPolicy, Series, Try};
pub use transcript::{Peer, ProbeLabel, Transcript};
pub use verdict::Verdict;
