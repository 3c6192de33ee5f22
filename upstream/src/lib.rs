//! Files from upstream projects that the project reads but does not commit: the schemas and
//! charts its tests check against, and the tool releases `harness tools install` puts in place.
//! Everything is verified against a sha256 known in advance before anyone may use it, and a
//! download appears under its final name only once it has passed.

pub mod download;
mod sha256;
#[cfg(feature = "test-server")]
pub mod test_server;
pub mod testdata;

pub use download::{Client, Error};
pub use sha256::Sha256;
