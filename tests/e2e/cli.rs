//! The `tokentray` binary, black-box: accounts, token (json, az, raw), cache import/export/reset,
//! status, exit codes and `{code, message}` errors; a home, config or CA file another user owns
//! or can write is refused. Plaintext store: no keyring needed here (the store module covers the
//! encrypted ones).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde_json::Value;
use tokentray_tests::harness::{Home, workspace_root};

const TENANT_A: &str = "0b8c6f2e-7d41-4a9e-b3c5-1e2f3a4b5c6d";
const ARM: &str = "https://management.core.windows.net//.default";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The Azure CLI fixture with its access tokens valid for another hour.
fn fresh_azure_cli_cache(dir: &std::path::Path) -> std::path::PathBuf {
    let path = workspace_root().join("tests/fixtures/azure_cli_msal_token_cache.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for at in v["AccessToken"].as_object_mut().unwrap().values_mut() {
        at["expires_on"] = Value::String((now() + 3600).to_string());
        at["extended_expires_on"] = at["expires_on"].clone();
        at["refresh_on"] = Value::String((now() + 1800).to_string());
    }
    let out = dir.join("msal_token_cache.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    out
}

/// The `{code, message}` error: stderr's last line (warnings may come before it).
fn json_err(out: &std::process::Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|_| panic!("stderr's last line is not JSON: {stderr}"))
}

/// Where `cache reset` says it moved the cache (`... moved to PATH; ...`).
fn kept_aside(said: &str) -> &str {
    said.split("moved to ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no path in {said:?}"))
}

fn imported() -> Home {
    let home = Home::new("plaintext");
    let file = fresh_azure_cli_cache(home.path());
    let said = home.ok(&["cache", "import", file.to_str().unwrap()]);
    assert!(said.contains("(1 account)"), "{said}");
    home
}

#[test]
fn without_an_account_token_says_sign_in() {
    let home = Home::new("plaintext");
    let out = home.run(&["token", "--scope", ARM]);
    assert_eq!(out.status.code(), Some(3));
    let err = json_err(&out);
    assert_eq!(err["code"], "no_account");
    assert!(err["message"].as_str().unwrap().contains("tokentray login"));
    assert!(home.ok(&["accounts"]).contains("No accounts"));
}

#[test]
fn an_azure_cli_cache_imports_and_serves_tokens() {
    let home = imported();
    let accounts: Value = serde_json::from_str(&home.ok(&["accounts", "--json"])).unwrap();
    assert_eq!(accounts[0]["username"], "alice@contoso.example");
    assert_eq!(accounts[0]["home_tenant"], TENANT_A);

    let tok: Value = serde_json::from_str(&home.ok(&["token", "--scope", ARM])).unwrap();
    assert_eq!(tok["access_token"], "at-cli-arm-eyJ0eXAiOiJKV1Qi.fixture");
    assert_eq!(
        tok["tenant"], TENANT_A,
        "organizations realm reports the home tenant"
    );
    assert!(tok["expires_on"].as_i64().unwrap() > now());

    let by_resource = home.ok(&[
        "token",
        "--resource",
        "https://management.core.windows.net/",
        "--format",
        "raw",
    ]);
    assert_eq!(by_resource, "at-cli-arm-eyJ0eXAiOiJKV1Qi.fixture\n");

    let graph = home.ok(&[
        "token",
        "--scope",
        "https://graph.microsoft.com/.default",
        "--tenant",
        TENANT_A,
        "--account",
        "ALICE@contoso.example",
        "--format",
        "raw",
    ]);
    assert_eq!(graph.trim(), "at-cli-graph-eyJ0eXAiOiJKV1Qi.fixture");
}

#[test]
fn format_az_prints_what_az_account_get_access_token_prints() {
    let home = imported();
    let out = home
        .cmd(&["token", "--scope", ARM, "--format", "az"])
        .env("TZ", "Etc/GMT-2")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "accessToken",
            "expiresOn",
            "expires_on",
            "tenant",
            "tokenType"
        ]
    );
    assert!(
        text.find("\"accessToken\"") < text.find("\"tokenType\""),
        "az's field order"
    );
    let expires_on = v["expires_on"]
        .as_i64()
        .expect("an integer, as az >= 2.54 prints it");
    let local = chrono::DateTime::from_timestamp(expires_on, 0)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    assert_eq!(v["expiresOn"], local, "local naive time like az");
    assert_eq!(v["tokenType"], "Bearer");
    assert_eq!(v["tenant"], TENANT_A);
}

#[test]
fn tokens_not_in_the_cache_and_account_choice_errors_are_typed() {
    let home = imported();
    // Not cached: a refresh is tried against the (unreachable) authority.
    let out = home.run(&["token", "--scope", "https://vault.azure.net/.default"]);
    assert_eq!(out.status.code(), Some(5));
    let err = json_err(&out);
    assert_eq!(err["code"], "authority_unavailable");
    assert!(
        err["message"].as_str().unwrap().contains("127.0.0.1:1"),
        "{err}"
    );

    let out = home.run(&["token", "--scope", ARM, "--account", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(2));
    let err = json_err(&out);
    assert_eq!(err["code"], "account_not_found");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("alice@contoso.example")
    );

    // No scope: Azure Resource Manager, as `az account get-access-token`.
    assert_eq!(
        home.ok(&["token", "--format", "raw"]),
        home.ok(&["token", "--scope", ARM, "--format", "raw"])
    );

    // A second account makes the choice ambiguous.
    let golden = workspace_root().join("tests/fixtures/msal_python/cache.json");
    home.ok(&["cache", "import", golden.to_str().unwrap()]);
    let out = home.run(&["token", "--scope", ARM]);
    assert_eq!(out.status.code(), Some(2));
    let err = json_err(&out);
    assert_eq!(err["code"], "ambiguous_account");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("bob@fabrikam.example")
    );
    // Text errors without --json, saying how to choose.
    let out = home.run(&["token", "--scope", ARM, "--format", "raw"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: several accounts") && last.contains("tokentray switch"),
        "{stderr}"
    );
    // A unique prefix of a username names that account; a shared one is ambiguous.
    assert!(home.ok(&["switch", "bob"]).contains("bob@fabrikam.example"));
    let accounts: Value = serde_json::from_str(&home.ok(&["accounts", "--json"])).unwrap();
    let default: Vec<&Value> = accounts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["is_default"] == true)
        .collect();
    assert_eq!(default[0]["username"], "bob@fabrikam.example");
    assert!(
        home.ok(&["switch", "ALICE"])
            .contains("alice@contoso.example")
    );
    let out = home.run(&["--json", "switch", "nobody"]);
    assert_eq!(json_err(&out)["code"], "account_not_found");
}

#[test]
fn logout_with_nothing_signed_in_says_so_and_succeeds() {
    let home = Home::new("plaintext");
    assert!(home.ok(&["logout"]).contains("Nothing to sign out"));
    assert!(
        home.ok(&["logout", "--all"])
            .contains("Nothing to sign out")
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let home = imported();
    // A pipe whose reading end is closed before tokentray writes a byte (as `| head` does once
    // it has its lines): closing it after the start would race with a small export.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = home
        .cmd(&["cache", "export"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("error") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

#[test]
fn env_json_is_json_and_env_says_when_nothing_listens() {
    let home = imported();
    let out = home.run(&["--json", "env"]);
    assert!(out.status.success());
    let env: Value = serde_json::from_slice(&out.stdout).unwrap();
    let endpoint = env["variables"]["IDENTITY_ENDPOINT"].as_str().unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:") && endpoint.ends_with("/msi/token"));
    assert!(env["path_first"].is_null());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing listens at"), "{stderr}");
    let posix = home.ok(&["env"]);
    let header = env["variables"]["IDENTITY_HEADER"].as_str().unwrap();
    assert!(!header.is_empty());
    assert_eq!(
        posix,
        format!("export IDENTITY_ENDPOINT='{endpoint}'\nexport IDENTITY_HEADER='{header}'\n"),
        "the same variables as the shell lines"
    );
}

#[test]
fn expired_access_tokens_are_not_served() {
    let home = Home::new("plaintext");
    let stale = workspace_root().join("tests/fixtures/azure_cli_msal_token_cache.json");
    home.ok(&["cache", "import", stale.to_str().unwrap()]);
    let out = home.run(&["token", "--scope", ARM]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "expired: refresh needed, authority unreachable"
    );
    assert_eq!(json_err(&out)["code"], "authority_unavailable");
    assert!(out.stdout.is_empty(), "no stale token printed");
}

#[test]
fn bad_import_files_are_refused_and_the_cache_untouched() {
    let home = imported();
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, b"{\"AccessToken\": {\"k\": \"x\"").unwrap();
    for (file, expect) in [
        (bad.to_str().unwrap(), "invalid JSON"),
        ("/nonexistent/cache.json", "cannot read it"),
    ] {
        let out = home.run(&["--json", "cache", "import", file]);
        assert_eq!(out.status.code(), Some(2));
        let err = json_err(&out);
        assert_eq!(err["code"], "invalid_input");
        assert!(err["message"].as_str().unwrap().contains(expect), "{err}");
    }
    assert!(
        home.ok(&["token", "--scope", ARM, "--format", "raw"])
            .starts_with("at-cli-arm")
    );
}

#[test]
fn export_warns_writes_0600_and_keeps_unknown_fields_byte_for_byte() {
    let home = Home::new("plaintext");
    let future = home.path().join("future.json");
    std::fs::write(
        &future,
        r#"{"Account": {"x": {"home_account_id": "u.t", "environment": "login.microsoftonline.com",
            "realm": "organizations", "local_account_id": "u", "username": "dana@example.com",
            "authority_type": "MSSTS", "new_profile": {"given_name": "Dana", "ids": [1, 2.50]}}},
           "AuthorityMetadata": {"login.microsoftonline.com": {"aliases": ["a", "b"], "v": 1e3}}}"#,
    )
    .unwrap();
    home.ok(&["cache", "import", future.to_str().unwrap()]);
    let out_file = home.path().join("export.json");
    let out = home.run(&["cache", "export", "--out", out_file.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("clear text"));
    assert_eq!(
        std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        text.contains(r#"{"given_name": "Dana", "ids": [1, 2.50]}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"{"aliases": ["a", "b"], "v": 1e3}"#),
        "{text}"
    );
    // stdout export is the same document
    assert_eq!(home.ok(&["cache", "export"]), text);
}

#[test]
fn status_and_reset() {
    let home = imported();
    let status: Value = serde_json::from_str(&home.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["store"]["backend"], "plaintext");
    assert_eq!(status["store"]["encrypted"], false);
    assert_eq!(status["store"]["counts"]["accounts"], 1);
    assert_eq!(status["client_id"], "04b07795-8ddb-461a-bbee-02f9e1bf7b46");

    let said = home.ok(&["cache", "reset"]);
    assert!(said.contains("moved to"), "{said}");
    assert!(home.ok(&["accounts"]).contains("No accounts"));
    let text = home.ok(&["status"]);
    assert!(
        text.contains("Kept aside:") && text.contains(".reset-"),
        "{text}"
    );
    // The way back: the file kept aside imports again.
    let kept = kept_aside(&said);
    assert!(home.ok(&["cache", "import", kept]).contains("(1 account)"));
    assert!(home.ok(&["accounts"]).contains("alice@contoso.example"));
}

#[test]
fn a_file_with_no_account_is_not_imported() {
    let home = imported();
    let empty = home.path().join("not-a-cache.json");
    std::fs::write(&empty, b"{\"settings\": {\"theme\": \"dark\"}}").unwrap();
    let out = home.run(&["--json", "cache", "import", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = json_err(&out);
    assert_eq!(err["code"], "invalid_input");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("holds no account"),
        "{err}"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The uid and gid the tests play another local user with (`nobody`).
const OTHER_USER: u32 = 65534;

fn give_to_other_user(path: &Path) {
    std::os::unix::fs::chown(path, Some(OTHER_USER), Some(OTHER_USER)).unwrap();
}

/// Asserts `out` is the typed refusal `code` (exit 4) naming `path` and `fix`.
fn assert_refused(out: &std::process::Output, code: &str, path: &Path, fix: &str) {
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = json_err(out);
    assert_eq!(err["code"], code, "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(fix), "{msg}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_home_or_config_another_user_owns_or_can_write_is_refused() {
    // Another user's TOKENTRAY_HOME (say one they created in /tmp first), with their config in it.
    let home = Home::new("plaintext");
    let config_dir = home.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    let config = config_dir.join("config.toml");
    std::fs::write(
        &config,
        "authority = \"https://evil.example\"\ntenant = \"evil.example\"\n",
    )
    .unwrap();
    give_to_other_user(home.path());
    let out = home.run(&["--json", "status"]);
    assert_refused(
        &out,
        "not_owner",
        home.path(),
        &format!("chown 0 {}", home.path().display()),
    );
    assert!(!home.data().exists(), "nothing was created in it");
    std::os::unix::fs::chown(home.path(), Some(0), Some(0)).unwrap();

    // Our home, but the config file or its directory is another user's.
    for owned_by_other in [&config, &config_dir] {
        give_to_other_user(owned_by_other);
        let out = home.run(&["--json", "status"]);
        assert_refused(&out, "not_owner", owned_by_other, "chown");
        std::os::unix::fs::chown(owned_by_other, Some(0), Some(0)).unwrap();
    }

    // Ours, but writable by group or others.
    for (path, wide, fine) in [
        (&config, 0o620, 0o600),
        (&config, 0o602, 0o600),
        (&config_dir, 0o770, 0o700),
        (&config_dir, 0o777, 0o700),
        (&home.path().to_path_buf(), 0o757, 0o700),
    ] {
        chmod(path, wide);
        let out = home.run(&["--json", "status"]);
        assert_refused(
            &out,
            "writable_by_others",
            path,
            &format!("chmod go-w {}", path.display()),
        );
        assert_eq!(mode(path), wide, "refused, never chmodded");
        chmod(path, fine);
    }

    // The user's own, private or merely readable by others, is used.
    for (dir_mode, file_mode) in [(0o700, 0o600), (0o755, 0o644)] {
        chmod(home.path(), dir_mode);
        chmod(&config_dir, dir_mode);
        chmod(&config, file_mode);
        let status: Value = serde_json::from_str(&home.ok(&["status", "--json"])).unwrap();
        assert_eq!(status["tenant"], "evil.example", "the config file was read");
        assert_eq!(mode(home.path()), dir_mode, "the home is never chmodded");
    }
}

#[test]
fn a_ca_file_another_user_owns_or_can_write_is_refused() {
    let home = imported();
    let fake = tokentray_tests::fake_entra::FakeEntra::start(Default::default()).unwrap();
    let ca = home.path().join("ca.pem");
    std::fs::write(&ca, fake.ca_pem()).unwrap();
    chmod(&ca, 0o644);
    let token = |home: &Home| {
        home.cmd(&["token", "--scope", ARM, "--format", "raw"])
            .env("TOKENTRAY_CA_FILE", &ca)
            .output()
            .unwrap()
    };
    let out = token(&home);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("at-cli-arm"));

    give_to_other_user(&ca);
    let mut json = home.cmd(&["--json", "token", "--scope", ARM]);
    let out = json.env("TOKENTRAY_CA_FILE", &ca).output().unwrap();
    assert_refused(&out, "not_owner", &ca, "chown");
    std::os::unix::fs::chown(&ca, Some(0), Some(0)).unwrap();

    chmod(&ca, 0o664);
    let mut json = home.cmd(&["--json", "token", "--scope", ARM]);
    let out = json.env("TOKENTRAY_CA_FILE", &ca).output().unwrap();
    assert_refused(&out, "writable_by_others", &ca, "chmod go-w");
}

#[test]
fn export_creates_a_private_file_and_leaves_the_directory_alone() {
    let home = imported();
    let expected = home.ok(&["cache", "export"]);
    let work = tempfile::tempdir().unwrap();
    chmod(work.path(), 0o755);

    // A bare file name, relative to the current directory (the README's example).
    let export = |args: &[&str], cwd: &Path| home.cmd(args).current_dir(cwd).output().unwrap();
    let out = export(&["cache", "export", "--out", "backup.json"], work.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = work.path().join("backup.json");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), expected);
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(
        mode(work.path()),
        0o755,
        "the current directory is left alone"
    );

    // DIR/x.json: DIR keeps its mode, whatever it is.
    for dir_mode in [0o755, 0o750, 0o711] {
        let dir = work.path().join(format!("dir{dir_mode:o}"));
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, dir_mode);
        let out = export(
            &[
                "cache",
                "export",
                "--out",
                &format!("dir{dir_mode:o}/x.json"),
            ],
            work.path(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(&dir), dir_mode);
        assert_eq!(mode(&dir.join("x.json")), 0o600);
    }

    // An existing file is refused without --force, and left as it was.
    std::fs::write(&backup, "keep me").unwrap();
    chmod(&backup, 0o644);
    let out = export(
        &["--json", "cache", "export", "--out", "backup.json"],
        work.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = json_err(&out);
    assert_eq!(err["code"], "file_exists");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("backup.json exists; pass --force to replace it"),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), "keep me");
    assert_eq!(mode(&backup), 0o644);

    // A symlink there is not followed either.
    let elsewhere = work.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, work.path().join("link.json")).unwrap();
    let out = export(
        &["--json", "cache", "export", "--out", "link.json"],
        work.path(),
    );
    assert_eq!(json_err(&out)["code"], "file_exists");
    assert!(!elsewhere.exists());

    // --force replaces it, with a 0600 file.
    let out = export(
        &["cache", "export", "--out", "backup.json", "--force"],
        work.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), expected);
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(mode(work.path()), 0o755);
    let names: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(names.is_empty(), "no temp files left: {names:?}");
}

/// The shared libraries `bin` loads, directly or through another (`ldd`).
fn linked_libraries(bin: &Path) -> String {
    let out = std::process::Command::new("ldd").arg(bin).output().unwrap();
    assert!(out.status.success(), "ldd {}: {:?}", bin.display(), out);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_links_no_gui_library_and_the_app_does() {
    let cli = tokentray_tests::harness::tokentray_bin();
    let libs = linked_libraries(&cli);
    assert!(libs.contains("libc.so"), "{libs}");
    for gui in [
        "gtk",
        "gdk",
        "webkit",
        "javascriptcore",
        "appindicator",
        "soup",
        "cairo",
    ] {
        assert!(!libs.contains(gui), "tokentray links {gui}:\n{libs}");
    }
    // The tray app next to it is the one that does: the check above reads real output.
    let app = cli.with_file_name("tokentray-app");
    if app.exists() {
        assert!(linked_libraries(&app).contains("libwebkit2gtk"));
    }
}

#[test]
fn without_a_display_tokentray_says_what_to_use_instead() {
    let home = Home::new("plaintext");
    let mut cmd = home.cmd(&[]);
    cmd.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: no display"), "{stderr}");
    assert!(stderr.contains("tokentray daemon"), "{stderr}");
    assert!(stderr.contains("tokentray login --device-code"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());

    let mut cmd = home.cmd(&["--json"]);
    cmd.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_err(&out)["code"], "no_display");
}

#[test]
fn with_a_display_and_no_app_beside_it_tokentray_says_so() {
    // A copy of the CLI alone in a directory: the app it would start is not there.
    let home = Home::new("plaintext");
    let lone = home.path().join("bin");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(
        tokentray_tests::harness::tokentray_bin(),
        lone.join("tokentray"),
    )
    .unwrap();
    // Another test's child forked while the copy was open for writing holds it until that child
    // execs: "text file busy" for a moment (ETXTBSY), so that is tried again.
    let out = (0..100)
        .find_map(|_| {
            match std::process::Command::new(lone.join("tokentray"))
                .env("TOKENTRAY_HOME", home.path())
                .env("DISPLAY", ":999")
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    None
                }
                other => Some(other.unwrap()),
            }
        })
        .expect("the copy stayed busy for 5 s");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the tray app is not installed"), "{stderr}");
    assert!(
        stderr.contains(&lone.join("tokentray-app").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("tokentray daemon"), "{stderr}");
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn an_encrypted_cache_kept_aside_by_reset_imports_again() {
    let home = Home::new("keyutils");
    let file = fresh_azure_cli_cache(home.path());
    home.ok(&["cache", "import", file.to_str().unwrap()]);
    let said = home.ok(&["cache", "reset"]);
    let kept = kept_aside(&said);
    assert!(
        std::fs::read(kept).unwrap().starts_with(b"TOKTRAY"),
        "kept encrypted"
    );
    assert!(home.ok(&["cache", "import", kept]).contains("(1 account)"));
    assert_eq!(
        home.ok(&["token", "--format", "raw"]),
        "at-cli-arm-eyJ0eXAiOiJKV1Qi.fixture\n"
    );
}
