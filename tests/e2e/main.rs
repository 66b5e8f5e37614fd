//! tokentray's black-box suite: one binary, a module per area.
//!
//! Tests marked `#[ignore]` need real OS services (the kernel keyring, a Secret Service);
//! `make test` provides them and runs with `--include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// MSAL Python's golden cache equals what tokentray's ingest writes from the same responses.
mod cache_interop;
// The `tokentray` binary: accounts, token formats, import/export, status, exit codes; refusing
// a home, config or CA file another user controls.
mod cli;
// Another local user (uid 65534 via setpriv) against a real daemon: refused at accept; floods.
mod edge;
// fake-entra itself: discovery, sign-in flows, rotation, Entra's errors, faults, log hygiene.
mod fake_entra;
// The fuzz targets' corpora and fixed crash inputs (tests/fuzz), replayed on stable Rust.
mod fuzz_corpora;
// Real Entra's answers: claims challenges answered by the next sign-in, each refusal with its
// own code and cure.
mod fidelity;
// Resilient token state: outages, rotation races, failures scoped to one request, other processes.
mod resilience;
// The loopback endpoint through `tokentray daemon`: security edge, routes, lifecycle, load.
mod serve;
// Sign-in (browser, device code), silent refresh, accounts, switch and sign-out against fake-entra.
mod sign_in;
// Encrypted persistence on the real keyrings: any spelling of the path, caches from before key
// ids, reads that never move a cache; concurrent writers; killed writers; bad files.
mod store;
