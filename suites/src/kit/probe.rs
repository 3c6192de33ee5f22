//! A probe is one command run in one container, named for the transcript. The tool modules build
//! the argv and read the output into plain data; judging that data is the checks' business.

pub mod curl;
pub mod ping;

use crate::kit::exec::PodRef;
use crate::kit::transcript::ProbeLabel;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub label: ProbeLabel,
    pub pod: PodRef,
    pub argv: Vec<String>,
}
