//! Running the `tokentray` binary in an isolated `TOKENTRAY_HOME`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target directory cargo builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The `tokentray` binary under test: `$TOKENTRAY_BIN`, else `target/debug/tokentray`.
///
/// The Tauri shell is not a default member (it needs webkit to build), so `make test` builds it
/// first; run `cargo build -p tokentray` if this fails.
pub fn tokentray_bin() -> PathBuf {
    let bin = std::env::var_os("TOKENTRAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug").join("tokentray"));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p tokentray` (or run `make test`)",
        bin.display()
    );
    bin
}

/// A private tokentray home for one test, and commands that run in it.
pub struct Home {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// Extra environment for every command.
    pub env: Vec<(String, String)>,
}

impl Home {
    /// A fresh home with the given store (`keyutils`, `secret-service`, `plaintext`, `auto`).
    pub fn new(store: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tokentray-test-")
            .tempdir()
            .unwrap();
        // Never the real Entra ID: a closed loopback port unless a test points it at fake-entra.
        let env = vec![
            ("TOKENTRAY_STORE".into(), store.into()),
            ("TOKENTRAY_AUTHORITY".into(), "https://127.0.0.1:1".into()),
        ];
        Self { dir, env }
    }

    /// Sets (or replaces) an environment variable for every command.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// `TOKENTRAY_HOME`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    /// A `tokentray` command in this home.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tokentray_bin());
        cmd.args(args)
            .env("TOKENTRAY_HOME", self.path())
            .env_remove("TOKENTRAY_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `tokentray ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs `tokentray ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tokentray {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The access token test writers store for `(prefix, i)`: its target is unique per entry.
pub fn sample_access_token(prefix: &str, i: usize, now: i64) -> tokentray_core::cache::AccessToken {
    let s = |v: &str| Some(v.to_string());
    tokentray_core::cache::AccessToken {
        credential_type: s("AccessToken"),
        secret: Some(tokentray_core::secret::Secret::new(format!(
            "at-{prefix}-{i}"
        ))),
        home_account_id: s(&format!("{prefix}.tenant")),
        environment: s("login.microsoftonline.com"),
        client_id: s("04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
        realm: s("organizations"),
        target: s(&sample_target(prefix, i)),
        token_type: s("Bearer"),
        cached_at: Some(now.to_string()),
        expires_on: Some((now + 3600).to_string()),
        extended_expires_on: Some((now + 3600).to_string()),
        ..Default::default()
    }
}

/// The target of [`sample_access_token`].
pub fn sample_target(prefix: &str, i: usize) -> String {
    format!("https://example.invalid/{prefix}/{i}/.default")
}

/// A configuration for an in-process tokentray under `home`, pointed at `fake` (its CA written
/// next to it and trusted) with the plaintext store: what the in-process tests run against.
pub fn config_against(
    fake: &crate::fake_entra::FakeEntra,
    home: &Path,
) -> tokentray_core::config::Config {
    use tokentray_core::persist::{Backend, StoreChoice};
    let paths = tokentray_core::paths::Paths::under(home);
    let ca = home.join("fake-entra-ca.pem");
    std::fs::write(&ca, fake.ca_pem()).unwrap();
    // Whatever the umask: tokentray refuses a CA file that others can write.
    #[cfg(unix)]
    std::fs::set_permissions(&ca, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut config = tokentray_core::config::Config::defaults(&paths.config_file());
    config.authority = fake.url().to_string();
    config.ca_file = Some(ca);
    config.store = StoreChoice::Only(Backend::Plaintext);
    config
}

/// Deletes a test home's kernel key (the keyutils store's) when dropped (Linux: the kernel
/// keyring).
#[cfg(target_os = "linux")]
pub struct KeyCleanup(pub tokentray_core::persist::KernelKey);

#[cfg(target_os = "linux")]
impl KeyCleanup {
    /// The kernel key of the tokentray home at `home`.
    pub fn for_home(home: &Path) -> Self {
        let paths = tokentray_core::paths::Paths::under(home);
        Self(tokentray_core::persist::KernelKey::new(
            &tokentray_core::persist::key_id(&paths),
        ))
    }
}

#[cfg(target_os = "linux")]
impl Drop for KeyCleanup {
    fn drop(&mut self) {
        let _ = self.0.delete();
    }
}

/// Sends `request` and returns the body as text, whatever the status.
pub async fn fetch_text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// `(action, fields)` of the first form in `html`: its `action` and each input's `(name,
/// value)`, unescaped, as a browser would submit them.
pub fn form(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(
            tag[start..]
                .split('"')
                .next()?
                .replace("&amp;", "&")
                .replace("&quot;", "\""),
        )
    };
    let action = html
        .split("<form")
        .nth(1)
        .and_then(|t| attr(t.split('>').next()?, "action"))
        .unwrap_or_default();
    let fields = html
        .split("<input")
        .skip(1)
        .filter_map(|t| {
            let tag = t.split('>').next()?;
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect();
    (action, fields)
}

/// A Secret Service of one test's own: a private D-Bus session bus with a real
/// gnome-keyring-daemon on it, its login keyring created and unlocked, its files in a
/// temporary directory. Tests may lock it without disturbing any other test. Both daemons are
/// stopped when it is dropped.
pub struct PrivateSecretService {
    bus: std::process::Child,
    keyring: std::process::Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl PrivateSecretService {
    /// Starts the bus and the keyring daemon; returns once the Secret Service answers.
    pub fn start() -> Self {
        use std::io::{BufRead as _, Write as _};
        use std::process::Stdio;
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        let quiet = |cmd: &mut Command| {
            // No display: an unlock prompt is dismissed at once instead of waiting for a person.
            cmd.env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY")
                .env("XDG_DATA_HOME", dir.path().join("data"))
                .env("XDG_RUNTIME_DIR", &runtime)
                .stderr(Stdio::null());
        };
        let mut bus = Command::new("dbus-daemon");
        bus.args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped());
        quiet(&mut bus);
        let mut bus = bus.spawn().expect("dbus-daemon (make test installs it)");
        let mut address = String::new();
        std::io::BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        let mut keyring = Command::new("gnome-keyring-daemon");
        keyring
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        quiet(&mut keyring);
        let mut keyring = match keyring.spawn() {
            Ok(keyring) => keyring,
            Err(e) => {
                let _ = bus.kill();
                let _ = bus.wait();
                panic!("gnome-keyring-daemon (make test installs it): {e}");
            }
        };
        let mut stdin = keyring.stdin.take().unwrap();
        stdin.write_all(b"private-keyring-password").unwrap();
        drop(stdin);
        let service = Self {
            bus,
            keyring,
            address,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !service.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "gnome-keyring-daemon did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        service
    }

    fn dbus_send(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("dbus-send");
        cmd.args(["--session", "--print-reply"])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        cmd.output().unwrap()
    }

    /// Whether the Secret Service answers and its login keyring exists, unlocked.
    fn answers(&self) -> bool {
        // Asked of the bus first: a message to the service's name before gnome-keyring-daemon
        // owns it would make the bus start another daemon (D-Bus activation).
        let owned = self.dbus_send(&[
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.secrets",
        ]);
        if !String::from_utf8_lossy(&owned.stdout).contains("boolean true") {
            return false;
        }
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets/collection/login",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.Secret.Collection",
            "string:Locked",
        ]);
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("boolean false")
    }

    /// Points `cmd` at this Secret Service.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
    }

    /// Locks the login keyring, as logging out of the desktop or a screen lock policy does.
    pub fn lock(&self) {
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ]);
        assert!(out.status.success(), "{out:?}");
        assert!(!self.answers(), "the login keyring is locked");
    }

    /// Deletes every secret with these attributes (`secret-tool clear`).
    pub fn clear(&self, attributes: &[&str]) {
        let mut cmd = Command::new("secret-tool");
        cmd.arg("clear").args(attributes);
        let out = self.apply(&mut cmd).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    /// What `secret-tool search --all ATTRIBUTES` lists.
    pub fn search(&self, attributes: &[&str]) -> String {
        let mut cmd = Command::new("secret-tool");
        cmd.args(["search", "--all"]).args(attributes);
        let out = self.apply(&mut cmd).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }
}

impl Drop for PrivateSecretService {
    fn drop(&mut self) {
        for child in [&mut self.keyring, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
