//! `cargo bench -p tokentray-core --bench cache`: the token cache at the size of a busy developer
//! machine times ten (1,000 accounts x 10 access tokens, realistic 1.6 KB JWTs), on the real
//! encrypted store (kernel keyring key + AES-256-GCM file). Prints figures; asserts nothing.
//!
//! Targets (2 cores): lookup p99 <= 20 us, load+decrypt <= 30 ms, encrypt+save <= 30 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tokentray_core::cache::{
    AccessToken, AtQuery, EXPIRY_SKEW_SECS, RealmPreference, RefreshToken, TokenCache,
};
use tokentray_core::config::Config;
use tokentray_core::paths::Paths;
use tokentray_core::persist::{self, Backend, StoreChoice};
use tokentray_core::secret::Secret;

const ACCOUNTS: usize = 1_000;
const TOKENS: usize = 10;
const CLIENT: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const ENV: &str = "login.microsoftonline.com";
const NOW: i64 = 1_900_000_000;

fn jwt_like(seed: usize, len: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = seed as u64 ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|i| {
            if i == 36 || i == len - 344 {
                return '.';
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % 64) as usize] as char
        })
        .collect()
}

fn hid(a: usize) -> String {
    format!("{a:08x}-1111-4222-8333-444455556666.0b8c6f2e-7d41-4a9e-b3c5-1e2f3a4b5c6d")
}

fn scope(t: usize) -> String {
    format!(
        "https://resource{t}.example.com/.default https://resource{t}.example.com/user_impersonation"
    )
}

fn build(accounts: usize) -> TokenCache {
    let s = |v: &str| Some(v.to_string());
    let mut json = String::from("{\"RefreshToken\":{");
    for a in 0..accounts {
        let rt = RefreshToken {
            credential_type: s("RefreshToken"),
            secret: Some(Secret::new(jwt_like(a + 1_000_000, 1100))),
            home_account_id: Some(hid(a)),
            environment: s(ENV),
            client_id: s(CLIENT),
            target: Some(scope(0)),
            last_modification_time: Some(NOW.to_string()),
            family_id: s("1"),
            ..RefreshToken::default()
        };
        if a > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "\"rt{a}\":{}",
            serde_json::to_string(&rt).unwrap_or_default()
        ));
    }
    json.push_str("}}");
    let mut cache = TokenCache::from_json(json.as_bytes(), "bench").unwrap_or_default();
    for a in 0..accounts {
        for t in 0..TOKENS {
            cache.put_access_token(AccessToken {
                credential_type: s("AccessToken"),
                secret: Some(Secret::new(jwt_like(a * TOKENS + t, 1600))),
                home_account_id: Some(hid(a)),
                environment: s(ENV),
                client_id: s(CLIENT),
                realm: s("organizations"),
                target: Some(scope(t)),
                token_type: s("Bearer"),
                cached_at: Some(NOW.to_string()),
                expires_on: Some((NOW + 3600 + t as i64).to_string()),
                extended_expires_on: Some((NOW + 3600).to_string()),
                refresh_on: Some((NOW + 1800).to_string()),
                ..AccessToken::default()
            });
        }
    }
    cache
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<28} p50 {:>10.3?}  p99 {:>10.3?}  max {:>10.3?}  (n={})",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
        samples.len()
    );
}

fn main() {
    let cache = build(ACCOUNTS);
    let bytes = cache.to_file_json();
    println!(
        "cache: {} accounts x {} access tokens, {:.1} MB of MSAL JSON",
        ACCOUNTS,
        TOKENS,
        bytes.len() as f64 / 1e6
    );

    // Lookup: random account and scope, the hot path of every served token.
    let scopes: Vec<Vec<String>> = (0..TOKENS)
        .map(|t| vec![format!("https://resource{t}.example.com/.default")])
        .collect();
    let hids: Vec<String> = (0..ACCOUNTS).map(hid).collect();
    let mut x: u64 = 42;
    let mut samples = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (a, t) = (
            (x % ACCOUNTS as u64) as usize,
            ((x >> 20) % TOKENS as u64) as usize,
        );
        let q = AtQuery {
            home_account_id: &hids[a],
            environment: ENV,
            client_id: CLIENT,
            realm: RealmPreference::Only("organizations"),
            scopes: &scopes[t],
        };
        let start = Instant::now();
        let found = cache.find_access_token(black_box(&q), NOW, EXPIRY_SKEW_SECS);
        samples.push(start.elapsed());
        assert!(found.is_some());
    }
    report("lookup", samples);

    persistence(&cache, "1,000 accounts");
    persistence(&build(5), "5 accounts (typical)");
}

/// load+decrypt and encrypt+save on the real encrypted store (kernel keyring key + file).
fn persistence(cache: &TokenCache, label: &str) {
    println!(
        "-- {label}: {:.2} MB",
        cache.to_file_json().len() as f64 / 1e6
    );
    let dir = std::env::temp_dir().join(format!("tokentray-bench-{}", std::process::id()));
    let paths = Paths::under(&dir);
    let mut config = Config::defaults(&paths.config_file());
    config.store = StoreChoice::Only(Backend::Keyutils);
    if let Err(e) = tokentray_core::files::ensure_private_dir(&paths.data) {
        println!("cannot create {}: {e}", paths.data.display());
        return;
    }
    let store = match persist::open(
        &paths,
        config.store,
        config.allow_unencrypted_storage,
        &config.path,
    ) {
        Ok(s) => s,
        Err(e) => {
            println!("persistence skipped: {e}");
            return;
        }
    };
    let mut serializes = Vec::new();
    let mut saves = Vec::new();
    let mut loads = Vec::new();
    let mut parses = Vec::new();
    // Baselines in the same run: the disk (an atomic write of as many bytes, fsync included)
    // and serde_json (reading the same JSON into nothing).
    let mut writes = Vec::new();
    let mut scans = Vec::new();
    let plain = cache.to_file_json();
    for _ in 0..15 {
        let start = Instant::now();
        let _ = tokentray_core::files::write_atomic(&dir.join("baseline"), &plain);
        writes.push(start.elapsed());
        let start = Instant::now();
        let _ = black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&plain));
        scans.push(start.elapsed());
        let start = Instant::now();
        let json = cache.to_file_json();
        serializes.push(start.elapsed());
        let _ = store.save(json);
        saves.push(start.elapsed());

        let start = Instant::now();
        let loaded = store.load().ok().flatten().unwrap_or_default();
        let decrypted = start.elapsed();
        let parsed = TokenCache::from_json(&loaded, "bench").unwrap_or_default();
        loads.push(start.elapsed());
        parses.push(start.elapsed() - decrypted);
        black_box(parsed);
    }
    report("encrypt+save (serialize)", saves);
    report("  of which serialize", serializes);
    report("  baseline: atomic write", writes);
    report("load+decrypt (parse)", loads);
    report("  of which parse", parses);
    report("  baseline: serde_json scan", scans);
    // Only Linux has the kernel keyring; elsewhere `open` failed above.
    #[cfg(target_os = "linux")]
    let _ = persist::KernelKey::new(&persist::key_id(&paths)).delete();
    let _ = std::fs::remove_dir_all(&dir);
}
