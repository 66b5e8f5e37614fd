//! The fuzz targets' corpora and fixed crash inputs (`tests/fuzz/corpus/TARGET/`,
//! `tests/fuzz/artifacts/TARGET/`) replayed through the same entry points
//! (`tokentray_core::fuzzing`), on stable Rust and without libFuzzer: each input must be handled
//! without a panic. A target without a corpus fails, so this cannot pass on nothing.

use std::path::{Path, PathBuf};

use tokentray_core::fuzzing;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

/// Every fuzz target (`tests/fuzz/fuzz_targets/NAME.rs`) and the function it calls.
const TARGETS: [(&str, Target); 5] = [
    ("cache_json", fuzzing::cache_json),
    ("claims", fuzzing::claims),
    ("endpoint_request", fuzzing::endpoint_request),
    ("entra_response", fuzzing::entra_response),
    ("envelope", fuzzing::envelope),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files in `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs every corpus file and crash input of `target` through it.
fn replay(target: &str) {
    let (_, run) = TARGETS.iter().find(|(name, _)| *name == target).unwrap();
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "tests/fuzz/corpus/{target}/ is missing or empty: seed it (tests/README.md, Fuzzing)"
    );
    let artifacts = files(&fuzz_dir().join("artifacts").join(target));
    for path in corpus.iter().chain(&artifacts) {
        let data = std::fs::read(path).unwrap();
        let handled = std::panic::catch_unwind(|| run(&data));
        assert!(
            handled.is_ok(),
            "{target} panicked on {}; reproduce with \
             `cargo +nightly fuzz run --fuzz-dir tests/fuzz {target} {}`",
            path.display(),
            path.display()
        );
    }
}

#[test]
fn every_target_is_replayed() {
    let names = |dir: &str, strip: &str| -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(fuzz_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(strip).map(str::to_string))
            .collect();
        out.sort();
        out
    };
    let replayed: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        names("fuzz_targets", ".rs"),
        replayed,
        "fuzz_targets/ vs TARGETS"
    );
    assert_eq!(names("corpus", ""), replayed, "corpus/ vs TARGETS");
}

#[test]
fn cache_json() {
    replay("cache_json");
}

#[test]
fn claims() {
    replay("claims");
}

#[test]
fn endpoint_request() {
    replay("endpoint_request");
}

#[test]
fn entra_response() {
    replay("entra_response");
}

#[test]
fn envelope() {
    replay("envelope");
}
