//! The Talos + Cilium conformance harness as a library: the CLI in `main.rs` is a thin shell
//! over these modules, and the benches and tests drive them directly.

pub mod capacity;
pub mod cli;
pub mod cluster;
pub mod errors;
pub mod github_matrix;
pub mod images;
pub mod install;
pub mod lb_ipam;
pub mod matrix;
pub mod partition;
pub mod plan;
pub mod preflight;
pub mod profile;
pub mod recording;
pub mod registry_mirror;
pub mod releases;
pub mod render;
pub mod report;
pub mod run;
pub mod tools;
pub mod upgrade;
pub mod values;
pub mod version;
pub mod yaml;
