//! Helpers shared by the harness's binary tests.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this helper"
)]

#[path = "../../../suites/tests/common/mod.rs"]
pub mod api;
pub mod http_api;
pub mod values_keys;
