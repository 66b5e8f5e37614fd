//! Support for tokentray's black-box tests: locating the binaries under test, isolated homes,
//! and the test servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fake_entra;
pub mod harness;
