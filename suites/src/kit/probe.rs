//! A probe is one command run in one container, named for the transcript. The tool modules build
//! the argv and read the output into plain data; judging that data is the checks' business.

pub mod curl;
pub mod neigh;
pub mod ping;

use crate::kit::exec::PodRef;
use crate::kit::transcript::ProbeLabel;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub label: ProbeLabel,
    pub origin: Origin,
    pub argv: Vec<String>,
}

/// Where a probe runs: in a pod's container (exec over the API server), or on the run's
/// outside client ([`crate::kit::outside`]), a machine on the nodes' network that is no node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Pod(PodRef),
    Outside,
}

impl From<PodRef> for Origin {
    fn from(p: PodRef) -> Origin {
        Origin::Pod(p)
    }
}
