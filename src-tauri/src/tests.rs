//! The shell's own decisions that need no window.

use std::path::Path;

#[test]
fn app_id_is_the_bundle_identifier() {
    let config: serde_json::Value =
        serde_json::from_str(include_str!("../tauri.conf.json")).unwrap_or_default();
    assert_eq!(config["identifier"], super::APP_ID);
}

#[test]
fn installed_is_anywhere_but_a_cargo_build_directory() {
    for built in [
        "/home/dev/tokentray/target/debug/tokentray-app",
        "/home/dev/tokentray/target/release/tokentray-app.exe",
        "C:/src/tokentray/target/x86_64-pc-windows-msvc/release/tokentray-app.exe",
    ] {
        assert!(!super::installed(Path::new(built)), "{built}");
    }
    for installed in [
        "C:/Users/dev/AppData/Local/tokentray/tokentray-app.exe",
        "C:/Program Files/tokentray/tokentray-app.exe",
        "/usr/bin/tokentray-app",
        // A directory merely called release is not a build directory.
        "C:/tools/release/tokentray-app.exe",
        "tokentray-app",
    ] {
        assert!(super::installed(Path::new(installed)), "{installed}");
    }
}
