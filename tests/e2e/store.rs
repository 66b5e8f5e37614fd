//! Encrypted persistence against the real kernel keyring and a real gnome-keyring: one cache
//! through every spelling of its path, caches written before key ids, reads that never move a
//! cache (key missing, key store unreachable or locked), concurrent and killed writers, and
//! every kind of bad file.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokentray_core::Error;
use tokentray_core::cache::{AtQuery, EXPIRY_SKEW_SECS, RealmPreference};
use tokentray_core::config::Config;
use tokentray_core::paths::Paths;
use tokentray_core::persist::KernelKey;
use tokentray_core::persist::{Backend, PersistedCache, StoreChoice, key_id};
use tokentray_core::secret::DataKey;
use tokentray_tests::harness::{
    Home, KeyCleanup, PrivateSecretService, sample_access_token, sample_target, workspace_root,
};

const NOW: i64 = 1_900_000_000;
const ARM: &str = "https://management.core.windows.net//.default";
/// The accounts of MSAL Python's golden cache.
const GOLDEN: [&str; 3] = [
    "alice@contoso.example",
    "bob@fabrikam.example",
    "carol@fabrikam.example",
];

fn open(paths: &Paths, backend: Backend) -> PersistedCache {
    let mut config = Config::defaults(&paths.config_file());
    config.store = StoreChoice::Only(backend);
    config.open_store(paths).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn has_token(store: &PersistedCache, prefix: &str, i: usize) -> bool {
    has_token_at(store, prefix, i, NOW)
}

/// Whether the entry `(prefix, i)` is there and valid at `at`.
fn has_token_at(store: &PersistedCache, prefix: &str, i: usize, at: i64) -> bool {
    let cache = store.read().unwrap();
    let scopes = vec![sample_target(prefix, i)];
    let hid = format!("{prefix}.tenant");
    let q = AtQuery {
        home_account_id: &hid,
        environment: "login.microsoftonline.com",
        client_id: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        realm: RealmPreference::Only("organizations"),
        scopes: &scopes,
    };
    cache
        .find_access_token(&q, at, EXPIRY_SKEW_SECS)
        .is_some_and(|t| t.entry.secret.as_ref().unwrap().expose() == format!("at-{prefix}-{i}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn keyutils_encrypts_at_rest_and_says_key_lost_after_a_reboot() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path());
    let key = KeyCleanup::for_home(home.path());
    let store = open(&paths, Backend::Keyutils);
    store
        .modify(NOW, |c| {
            c.put_access_token(sample_access_token("a", 0, NOW));
            Ok(())
        })
        .unwrap();

    let file = paths.encrypted_cache();
    let sealed = std::fs::read(&file).unwrap();
    assert!(
        !sealed.windows(6).any(|w| w == b"at-a-0"),
        "the token is not in clear on disk"
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&paths.data), 0o700);
    assert!(
        has_token(&open(&paths, Backend::Keyutils), "a", 0),
        "a new process reads it back"
    );

    // Reboot: the kernel forgets the key. A read says so and changes nothing.
    key.0.delete().unwrap();
    let err = open(&paths, Backend::Keyutils).read().unwrap_err();
    let Error::KeyLost { path, .. } = &err else {
        panic!("expected KeyLost, got {err:?}")
    };
    assert_eq!(path, &file);
    assert!(err.to_string().contains("locked: key lost"), "{err}");
    assert!(err.to_string().contains("reboot"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        sealed,
        "the file is left as it is"
    );
    assert!(moved_aside(&paths.data).is_empty());

    // The next write keeps the old file aside, untouched, and starts anew with a new key.
    let store = open(&paths, Backend::Keyutils);
    store
        .modify(NOW, |c| {
            c.put_access_token(sample_access_token("b", 0, NOW));
            Ok(())
        })
        .unwrap();
    let kept = moved_aside(&paths.data);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].to_string_lossy().contains(".key-lost-"), "{kept:?}");
    assert_eq!(store.status().unwrap().moved_aside, kept);
    assert!(has_token(&store, "b", 0));
    assert!(!has_token(&store, "a", 0));
    assert_eq!(std::fs::read(&kept[0]).unwrap(), sealed);
}

/// The files kept aside in a data directory (corrupt, key lost, reset).
fn moved_aside(data: &Path) -> Vec<PathBuf> {
    let mut kept: Vec<PathBuf> = std::fs::read_dir(data)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.contains(".corrupt-") || name.contains(".key-lost-") || name.contains(".reset-")
        })
        .collect();
    kept.sort();
    kept
}

#[test]
#[ignore = "needs a Secret Service (make test runs gnome-keyring)"]
fn secret_service_holds_the_key_and_auto_prefers_it() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path());
    let store = Config::defaults(&paths.config_file())
        .open_store(&paths)
        .unwrap();
    assert_eq!(
        store.backend(),
        Backend::SecretService,
        "auto picks the Secret Service first"
    );
    store
        .modify(NOW, |c| {
            c.put_access_token(sample_access_token("ss", 1, NOW));
            Ok(())
        })
        .unwrap();
    assert!(has_token(&open(&paths, Backend::SecretService), "ss", 1));

    // The key really is in gnome-keyring, 32 bytes, under our service.
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", "tokentray"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        listing.contains(&format!("cache-key:{}", key_id(&paths))),
        "{listing}"
    );

    // A process that cannot reach the Secret Service fails closed, naming it, and the cache
    // is left alone.
    let before = std::fs::read(paths.encrypted_cache()).unwrap();
    let mut home_cmd = Home::new("auto");
    home_cmd.dir = home;
    let out = home_cmd
        .cmd(&["accounts"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("secret-service"), "{stderr}");
    assert_eq!(std::fs::read(paths.encrypted_cache()).unwrap(), before);
}

#[test]
fn an_unreachable_secret_service_is_a_clear_error() {
    let home = Home::new("secret-service");
    let out = home
        .cmd(&["--json", "status"])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let err: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(err["code"], "store_unavailable");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("secret-service") && msg.contains("TOKENTRAY_STORE=plaintext"),
        "{msg}"
    );

    // doctor still reports everything else, the store as one problem with its message.
    let out = home
        .cmd(&["--json", "doctor"])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let account = findings.iter().find(|f| f["check"] == "account").unwrap();
    assert_eq!(account["state"], "problem");
    let detail = account["detail"].as_str().unwrap();
    assert!(
        detail.contains("cannot be opened") && detail.contains("TOKENTRAY_STORE=plaintext"),
        "{detail}"
    );
    assert!(
        findings.iter().any(|f| f["check"] == "endpoint"),
        "{stdout}"
    );
    assert!(
        findings.iter().any(|f| f["check"] == "this shell"),
        "{stdout}"
    );
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn two_processes_writing_500_entries_each_lose_nothing() {
    let home = Home::new("keyutils");
    let _key = KeyCleanup::for_home(home.path());
    let writer = |prefix: &str| {
        Command::new(env!("CARGO_BIN_EXE_cache-writer"))
            .args([prefix, "500"])
            .env("TOKENTRAY_HOME", home.path())
            .env("TOKENTRAY_STORE", "keyutils")
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (writer("p1"), writer("p2"));
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let store = open(&Paths::under(home.path()), Backend::Keyutils);
    assert_eq!(store.read().unwrap().counts().access_tokens, 1000);
    for i in 0..500 {
        assert!(
            has_token_at(&store, "p1", i, now()) && has_token_at(&store, "p2", i, now()),
            "entry {i} lost"
        );
    }
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn a_writer_killed_at_random_moments_never_corrupts_the_cache() {
    use std::io::{BufRead as _, BufReader};
    let home = Home::new("keyutils");
    let paths = Paths::under(home.path());
    let _key = KeyCleanup::for_home(home.path());
    let mut completed: Vec<(String, usize)> = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let prefix = format!("k{round}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cache-writer"))
            .args([&prefix, "1000"])
            .env("TOKENTRAY_HOME", home.path())
            .env("TOKENTRAY_STORE", "keyutils")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    l.strip_prefix("done ")
                        .and_then(|n| n.parse::<usize>().ok())
                })
                .collect::<Vec<usize>>()
        });
        std::thread::sleep(Duration::from_micros(5_000 + seed % 60_000));
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .ok();
        child.wait().unwrap();
        completed.extend(
            reader
                .join()
                .unwrap()
                .into_iter()
                .map(|i| (prefix.clone(), i)),
        );
        // The cache always opens.
        open(&paths, Backend::Keyutils).read().unwrap();
    }
    let store = open(&paths, Backend::Keyutils);
    assert!(
        completed.len() > 20,
        "the writers got some work done ({})",
        completed.len()
    );
    for (prefix, i) in &completed {
        assert!(
            has_token_at(&store, prefix, *i, now()),
            "completed write {prefix}/{i} lost"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&paths.data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "nothing was ever found corrupt: {leftovers:?}"
    );
}

/// Runs `tokentray accounts` on a damaged cache and checks the damage is reported and the file
/// left as it is; then that the next write keeps it aside byte-for-byte and starts clean.
fn assert_reported_and_kept(home: &Home, file: &Path, expect: &str) -> String {
    let damaged = std::fs::read(file).unwrap();
    let data = file.parent().unwrap();
    let mut stderr = String::new();
    for _ in 0..2 {
        let out = home.run(&["accounts"]);
        stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expect), "expected {expect:?} in: {stderr}");
        assert!(stderr.contains("left as it is"), "{stderr}");
        assert!(stderr.contains("tokentray cache reset"), "{stderr}");
        assert_eq!(
            std::fs::read(file).unwrap(),
            damaged,
            "a read changes nothing"
        );
        assert!(moved_aside(data).is_empty());
    }

    let fixture = tokentray_tests::harness::workspace_root()
        .join("tests/fixtures/azure_cli_msal_token_cache.json");
    let out = home.run(&["cache", "import", fixture.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let kept = moved_aside(data);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].to_string_lossy().contains(".corrupt-"), "{kept:?}");
    assert!(said.contains(&kept[0].display().to_string()), "{said}");
    assert_eq!(
        std::fs::read(&kept[0]).unwrap(),
        damaged,
        "kept byte-for-byte"
    );
    assert!(home.ok(&["accounts"]).contains("alice@contoso.example"));
    stderr
}

fn encrypted_home_with_a_token() -> (Home, KeyCleanup) {
    let home = Home::new("keyutils");
    let paths = Paths::under(home.path());
    let key = KeyCleanup::for_home(home.path());
    open(&paths, Backend::Keyutils)
        .modify(NOW, |c| {
            c.put_access_token(sample_access_token("x", 0, NOW));
            Ok(())
        })
        .unwrap();
    (home, key)
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn a_truncated_file_is_reported_and_kept() {
    let (home, _key) = encrypted_home_with_a_token();
    let file = home.data().join("cache.bin");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..20]).unwrap();
    let _ = assert_reported_and_kept(&home, &file, "truncated");
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn a_flipped_ciphertext_byte_is_reported_and_kept() {
    let (home, _key) = encrypted_home_with_a_token();
    let file = home.data().join("cache.bin");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let _ = assert_reported_and_kept(&home, &file, "modified or damaged");
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn a_wrong_key_is_reported_and_the_file_kept() {
    let (home, key) = encrypted_home_with_a_token();
    key.0.put(&DataKey::generate().unwrap()).unwrap();
    let _ = assert_reported_and_kept(&home, &home.data().join("cache.bin"), "different key");
}

#[test]
fn invalid_json_in_a_plaintext_cache_is_reported_and_kept() {
    let home = Home::new("plaintext");
    std::fs::create_dir_all(home.data()).unwrap();
    let file = home.data().join("cache.json");
    std::fs::write(
        &file,
        br#"{"AccessToken": {"k": {"secret": "do-not-print-me""#,
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stderr = assert_reported_and_kept(&home, &file, "truncated");
    assert!(!stderr.contains("do-not-print-me"), "{stderr}");
}

#[test]
fn plaintext_storage_warns_at_every_start_and_is_private() {
    let home = Home::new("plaintext");
    for _ in 0..2 {
        let out = home.run(&["status"]);
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("UNENCRYPTED"), "{stderr}");
    }
    let fixture = tokentray_tests::harness::workspace_root()
        .join("tests/fixtures/azure_cli_msal_token_cache.json");
    home.ok(&["cache", "import", fixture.to_str().unwrap()]);
    assert_eq!(mode(&home.data().join("cache.json")), 0o600);
    assert_eq!(mode(&home.data()), 0o700);
}

#[test]
fn a_world_readable_cache_is_fixed_and_the_user_told() {
    let home = Home::new("plaintext");
    let fixture = tokentray_tests::harness::workspace_root()
        .join("tests/fixtures/azure_cli_msal_token_cache.json");
    home.ok(&["cache", "import", fixture.to_str().unwrap()]);
    let file = home.data().join("cache.json");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(home.data(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = home.run(&["accounts"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("fixed permissions") && stderr.contains("0644") && stderr.contains("0600"),
        "{stderr}"
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&home.data()), 0o700);
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice@contoso.example"));
}

/// The Azure CLI fixture (alice) and MSAL Python's golden cache (alice, bob and carol).
fn alice() -> String {
    workspace_root()
        .join("tests/fixtures/azure_cli_msal_token_cache.json")
        .display()
        .to_string()
}

fn golden() -> String {
    workspace_root()
        .join("tests/fixtures/msal_python/cache.json")
        .display()
        .to_string()
}

/// The usernames `tokentray accounts --json` lists, sorted; panics with stderr if it fails.
fn usernames(out: &std::process::Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The `{code, message}` error: stderr's last line.
fn json_err(out: &std::process::Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    serde_json::from_str(stderr.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("stderr's last line is not JSON: {stderr}"))
}

/// How format version 1 named the key of the cache file written through `path`: 16 hex digits
/// of SHA-256 of the path's text (computed here, not with tokentray's code).
fn legacy_key_id(path: &Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(path.to_string_lossy().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `tokentray ARGS` in `home` with `TOKENTRAY_HOME` spelled `spelling` from `cwd`.
fn run_as(
    home: &Home,
    (spelling, cwd): (&Path, &Path),
    args: &[&str],
    via: &dyn Fn(&mut Command) -> &mut Command,
) -> std::process::Output {
    let mut cmd = home.cmd(args);
    cmd.env("TOKENTRAY_HOME", spelling).current_dir(cwd);
    via(&mut cmd).output().unwrap()
}

/// Signs in (imports alice) through the real path of `home`, then reads through a symlink to
/// it, a relative path and a relative path through the symlink, and writes (imports more)
/// through the symlink: every spelling lists the same accounts, and nothing is kept aside.
fn same_cache_through_every_spelling(home: &Home, via: &dyn Fn(&mut Command) -> &mut Command) {
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("home-link");
    std::os::unix::fs::symlink(home.path(), &link).unwrap();
    let parent = home.path().parent().unwrap();
    let name = Path::new(home.path().file_name().unwrap());
    let root = Path::new("/");
    let spellings = [
        (home.path(), root),
        (link.as_path(), root),
        (name, parent),
        (Path::new("home-link"), links.path()),
        (Path::new("./home-link/data/.."), links.path()),
    ];
    let file = home.data().join("cache.bin");
    assert!(
        run_as(home, spellings[0], &["cache", "import", &alice()], via)
            .status
            .success()
    );
    let written = std::fs::read(&file).unwrap();
    for spelling in spellings {
        let out = run_as(home, spelling, &["accounts", "--json"], via);
        assert_eq!(usernames(&out), ["alice@contoso.example"], "{spelling:?}");
        assert_eq!(std::fs::read(&file).unwrap(), written, "{spelling:?}");
        assert!(moved_aside(&home.data()).is_empty(), "{spelling:?}");
    }
    let out = run_as(home, spellings[1], &["cache", "import", &golden()], via);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for spelling in spellings {
        let out = run_as(home, spelling, &["accounts", "--json"], via);
        assert_eq!(usernames(&out), GOLDEN, "{spelling:?}");
    }
    assert!(moved_aside(&home.data()).is_empty());
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn a_symlinked_and_a_relative_home_open_the_same_cache_with_the_kernel_keyring() {
    let home = Home::new("keyutils");
    let _key = KeyCleanup::for_home(home.path());
    same_cache_through_every_spelling(&home, &|cmd| cmd);
}

#[test]
#[ignore = "needs gnome-keyring and dbus-daemon (make test)"]
fn a_symlinked_and_a_relative_home_open_the_same_cache_with_the_secret_service() {
    let secrets = PrivateSecretService::start();
    let home = Home::new("secret-service");
    same_cache_through_every_spelling(&home, &|cmd| secrets.apply(cmd));
    let listing = secrets.search(&["service", "tokentray"]);
    let keys: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("attribute.username = cache-key:"))
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "one key for the one cache, whatever the spelling: {keys:?}"
    );
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn a_cache_written_before_key_ids_still_opens_and_then_records_its_key() {
    // tests/fixtures/legacy_v1_keyutils: a cache.bin written by tokentray before key ids (alice
    // imported into a keyutils store), and the data key it was sealed with.
    let fixture = workspace_root().join("tests/fixtures/legacy_v1_keyutils");
    let hex = std::fs::read_to_string(fixture.join("key.hex")).unwrap();
    let bytes: Vec<u8> = (0..hex.trim().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap())
        .collect();
    let key = DataKey::from_slice(&bytes).unwrap();
    let sealed = std::fs::read(fixture.join("cache.bin")).unwrap();
    assert_eq!(&sealed[..8], b"TOKTRAY\x01", "a format version 1 file");
    let install = |home: &Home| {
        std::fs::create_dir_all(home.data()).unwrap();
        std::fs::set_permissions(home.data(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = home.data().join("cache.bin");
        std::fs::write(&file, &sealed).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        file
    };
    let link_to = |home: &Home, links: &Path| {
        let link = links.join("link");
        std::os::unix::fs::symlink(home.path(), &link).unwrap();
        link
    };
    let root = Path::new("/");
    let plain: &dyn Fn(&mut Command) -> &mut Command = &|cmd| cmd;

    // Written through the real path; opened through a symlink (its canonical path names the key).
    let home = Home::new("keyutils");
    let links = tempfile::tempdir().unwrap();
    let file = install(&home);
    let real_key = KeyCleanup(KernelKey::new(&legacy_key_id(&file)));
    real_key.0.put(&key).unwrap();
    let link = link_to(&home, links.path());
    for spelling in [home.path(), link.as_path()] {
        let out = run_as(&home, (spelling, root), &["accounts", "--json"], plain);
        assert_eq!(usernames(&out), ["alice@contoso.example"], "{spelling:?}");
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        sealed,
        "reads change nothing"
    );

    // Written through a symlink: that spelling opens it. Through the real path its key is under
    // none of the names the path gives, which is not "lost": nothing moves, and the error says
    // what to do.
    let home = Home::new("keyutils");
    let links = tempfile::tempdir().unwrap();
    let file = install(&home);
    let link = link_to(&home, links.path());
    let link_id = legacy_key_id(&link.join("data/cache.bin"));
    let link_key = KeyCleanup(KernelKey::new(&link_id));
    link_key.0.put(&key).unwrap();
    let _new_key = KeyCleanup::for_home(home.path());
    let out = run_as(&home, (&link, root), &["accounts", "--json"], plain);
    assert_eq!(usernames(&out), ["alice@contoso.example"]);
    let out = run_as(&home, (home.path(), root), &["--json", "accounts"], plain);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = json_err(&out);
    assert_eq!(err["code"], "key_not_found");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains(&file.display().to_string())
            && msg.contains("another path")
            && msg.contains("tokentray cache reset"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), sealed);
    assert!(moved_aside(&home.data()).is_empty());

    // One write through the symlink records the key's id in the file: every path opens it.
    let out = run_as(&home, (&link, root), &["cache", "import", &golden()], plain);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let upgraded = std::fs::read(&file).unwrap();
    assert_eq!(upgraded[7], 2, "format version 2");
    let recorded: String = upgraded[18..26]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        recorded, link_id,
        "the key it was found under, not a new one"
    );
    let parent = home.path().parent().unwrap();
    let name = Path::new(home.path().file_name().unwrap());
    for spelling in [(home.path(), root), (&link, root), (name, parent)] {
        let out = run_as(&home, spelling, &["accounts", "--json"], plain);
        assert_eq!(usernames(&out), GOLDEN, "{spelling:?}");
    }
    assert!(moved_aside(&home.data()).is_empty());
}

#[test]
#[ignore = "needs the kernel keyring (make test)"]
fn read_only_commands_never_move_a_cache_whose_key_is_missing() {
    let home = Home::new("keyutils");
    let key = KeyCleanup::for_home(home.path());
    home.ok(&["cache", "import", &alice()]);
    let file = home.data().join("cache.bin");
    let before = std::fs::read(&file).unwrap();
    key.0.delete().unwrap();

    for args in [
        &["--json", "accounts"][..],
        &["--json", "status"],
        &["--json", "cache", "export"],
        &["--json", "token", "--scope", ARM],
    ] {
        let out = home.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("locked: key lost"), "{args:?}: {stderr}");
        assert!(stderr.contains("left as it is"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?}");
        assert!(moved_aside(&home.data()).is_empty(), "{args:?}");
    }

    // A write keeps the old file aside, byte for byte, and starts a new cache.
    let out = home.run(&["cache", "import", &golden()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = moved_aside(&home.data());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].to_string_lossy().contains(".key-lost-"), "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), before);
    assert_eq!(usernames(&home.run(&["accounts", "--json"])), GOLDEN);
}

#[test]
#[ignore = "needs gnome-keyring and dbus-daemon (make test)"]
fn an_unreachable_or_locked_secret_service_or_a_missing_key_never_moves_the_cache() {
    let secrets = PrivateSecretService::start();
    let home = Home::new("auto");
    let via = |args: &[&str], secrets: &PrivateSecretService| {
        let mut cmd = home.cmd(args);
        secrets.apply(&mut cmd).output().unwrap()
    };
    let out = via(&["cache", "import", &alice()], &secrets);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value =
        serde_json::from_slice(&via(&["status", "--json"], &secrets).stdout).unwrap();
    assert_eq!(status["store"]["backend"], "secret-service");
    let file = home.data().join("cache.bin");
    let before = std::fs::read(&file).unwrap();
    let read_only: [&[&str]; 3] = [
        &["--json", "accounts"],
        &["--json", "status"],
        &["--json", "cache", "export"],
    ];
    let unchanged = |what: &str| {
        assert!(
            std::fs::read(&file).ok().as_ref() == Some(&before),
            "{what}: the cache file is where it was, unchanged"
        );
        assert!(moved_aside(&home.data()).is_empty(), "{what}");
    };

    // No Secret Service on the bus.
    for args in read_only {
        let out = home
            .cmd(args)
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{args:?} {out:?}");
        assert_eq!(json_err(&out)["code"], "store_unavailable");
        unchanged("unreachable");
    }

    // The keyring is locked (the key is in it, but cannot be read).
    secrets.lock();
    for args in read_only {
        let out = via(args, &secrets);
        assert_eq!(out.status.code(), Some(4), "{args:?} {out:?}");
        let err = json_err(&out);
        assert_eq!(err["code"], "store_unavailable");
        assert!(
            err["message"].as_str().unwrap().contains("secret-service"),
            "{err}"
        );
        unchanged("locked");
    }

    // A keyring that answers and holds no key for the cache: the key really is lost, and still
    // only a write moves the file.
    let fresh = PrivateSecretService::start();
    for args in read_only {
        let out = via(args, &fresh);
        assert_eq!(out.status.code(), Some(3), "{args:?} {out:?}");
        assert_eq!(json_err(&out)["code"], "key_lost");
        unchanged("key missing");
    }
    let out = via(&["cache", "import", &golden()], &fresh);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = moved_aside(&home.data());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), before);
    assert_eq!(usernames(&via(&["accounts", "--json"], &fresh)), GOLDEN);
}
