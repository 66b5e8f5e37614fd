//! Encrypted persistence against the real kernel keyring and a real gnome-keyring, concurrent and
//! killed writers, and every kind of bad file.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokentray_core::Error;
use tokentray_core::cache::{AtQuery, EXPIRY_SKEW_SECS, RealmPreference};
use tokentray_core::config::Config;
use tokentray_core::paths::Paths;
use tokentray_core::persist::{Backend, PersistedCache, StoreChoice, key_id};
use tokentray_core::secret::DataKey;
use tokentray_tests::harness::{Home, KeyCleanup, sample_access_token, sample_target};

const NOW: i64 = 1_900_000_000;

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

    // Reboot: the kernel forgets the key.
    key.0.delete().unwrap();
    let err = open(&paths, Backend::Keyutils).read().unwrap_err();
    let Error::KeyLost { kept_at, .. } = &err else {
        panic!("expected KeyLost, got {err:?}")
    };
    assert!(err.to_string().contains("locked: key lost"), "{err}");
    assert!(err.to_string().contains("reboot"), "{err}");
    assert_eq!(
        std::fs::read(kept_at).unwrap(),
        sealed,
        "the old cache is kept, untouched"
    );
    assert!(!file.exists());

    // Life goes on with a new key; the kept file is never overwritten.
    let store = open(&paths, Backend::Keyutils);
    assert_eq!(store.status().unwrap().moved_aside, vec![kept_at.clone()]);
    store
        .modify(NOW, |c| {
            c.put_access_token(sample_access_token("b", 0, NOW));
            Ok(())
        })
        .unwrap();
    assert!(has_token(&store, "b", 0));
    assert!(!has_token(&store, "a", 0));
    assert_eq!(std::fs::read(kept_at).unwrap(), sealed);
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

/// Runs `tokentray accounts` on a damaged cache and checks the damage is reported, the file kept
/// aside byte-for-byte, and the next run starts clean.
fn assert_reported_and_kept(home: &Home, file: &Path, expect: &str) -> String {
    let damaged = std::fs::read(file).unwrap();
    let out = home.run(&["accounts"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expect), "expected {expect:?} in: {stderr}");
    assert!(stderr.contains("moved aside"), "{stderr}");
    let kept: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read(&kept[0]).unwrap(),
        damaged,
        "kept byte-for-byte"
    );
    assert!(home.ok(&["accounts"]).contains("No accounts"));
    stderr.into_owned()
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
