//! fake-entra: a local Microsoft Entra ID authority for offline tests and demos.
//!
//! It speaks Entra's v2.0 protocol on loopback over TLS (with a CA made at start), closely
//! enough that unmodified MSAL Python and azure-identity sign in against it: discovery, the
//! authorization-code flow with PKCE (sign-in page, query / fragment / form_post delivery),
//! the device-code flow (with its `/devicelogin` page), refresh-token rotation, RS256 tokens,
//! and Entra-shaped errors. A `/_fake/` control API queues faults, revokes users, reads the
//! request log and moves the clock. tests/README.md documents the flags and the API.
//!
//! ```no_run
//! use tokentray_tests::fake_entra::{FakeConfig, FakeEntra};
//! let fake = FakeEntra::start(FakeConfig::default().user("alice@contoso.example", "pw")).unwrap();
//! println!("authority: {}/organizations, CA:\n{}", fake.url(), fake.ca_pem());
//! ```
//!
//! Layout:
//! - [`FakeEntra`] (here): start on a thread with its own runtime, handle for tests, stop on drop.
//! - `server`: TLS accept loop, per-connection HTTP/1.1, dropping a connection on demand.
//! - `app`: shared state and the route table; `observe`: request log + fault middleware.
//! - `discovery`, `authorize`, `device`, `token`, `control`: the endpoints; `arm`: ARM's
//!   subscription list; `issue`: token minting;
//!   `pages`: HTML.
//! - `directory` (users, tenants), `scopes` (grant rules), `store` (issued grants),
//!   `aad_error` (error bodies), `jwt`, `tls`, `clock`, `ids`, `params`, `faults`, `request_log`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod aad_error;
mod app;
mod arm;
mod authorize;
mod clock;
mod control;
mod device;
mod directory;
mod discovery;
mod faults;
mod ids;
mod issue;
mod jwt;
mod observe;
mod pages;
mod params;
mod request_log;
mod scopes;
mod server;
mod store;
mod tls;
mod token;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};

pub use app::Policy;
pub use directory::UserInfo;
pub use faults::{DEFAULT_CLAIMS, Endpoint, Fault, FaultRule};
pub use request_log::LogEntry;
pub use store::Revocation;

/// A user to create: `USERNAME:PASSWORD` on the command line.
#[derive(Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Sign-in name, e.g. `alice@contoso.example`.
    pub username: String,
    /// Password (never printed: `Debug` redacts it).
    pub password: String,
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl FromStr for UserSpec {
    type Err = String;

    /// Parses `USERNAME:PASSWORD` (the password may itself contain `:`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((u, p)) if !u.trim().is_empty() => Ok(Self {
                username: u.trim().to_string(),
                password: p.to_string(),
            }),
            _ => Err("expected USERNAME:PASSWORD".to_string()),
        }
    }
}

/// How to run a fake. [`Default`] gives Entra's usual lifetimes and no users.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The users who can sign in.
    pub users: Vec<UserSpec>,
    /// One home tenant id (a GUID) for every user, instead of one derived per username domain.
    pub tenant: Option<String>,
    /// Access-token lifetime, seconds (`expires_in`). Default 3599.
    pub access_token_lifetime: u64,
    /// Send `refresh_in` (half the lifetime) with every token. Entra sends it only with some
    /// (long-lived) tokens, so it is off by default.
    pub refresh_in: bool,
    /// Strict refresh-token rotation: a refresh token stops working once redeemed. Entra leaves
    /// redeemed refresh tokens valid (each until its own expiry), so it is off by default; tests
    /// of rotation races opt in.
    pub strict_rotation: bool,
    /// Refresh-token lifetime, seconds, renewed on each rotation. Default 90 days.
    pub refresh_token_lifetime: u64,
    /// Device-code lifetime, seconds. Default 900.
    pub device_code_lifetime: u64,
    /// Minimum seconds between device-code polls (`interval`). Default 5.
    pub device_code_interval: u64,
    /// Authorization-code lifetime, seconds. Default 600.
    pub code_lifetime: u64,
    /// Client ids in the family of client ids (FOCI): they get `foci: "1"` and share refresh tokens.
    pub foci_clients: Vec<String>,
    /// The address clients reach the fake at when a proxy stands in front of it (`https://host:port`,
    /// no trailing slash): every URL the fake gives out (discovery, issuer, device-code page, error
    /// links) names it. Default: the fake's own `https://127.0.0.1:PORT`.
    pub public_url: Option<String>,
    /// Entra's client-request-loop detection: more than this many refreshes of one client, user
    /// and scope within 5 minutes (fake clock) get AADSTS50196. Entra's own threshold is not
    /// published; off by default.
    pub loop_limit: Option<u32>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            port: 0,
            users: Vec::new(),
            tenant: None,
            access_token_lifetime: 3599,
            refresh_in: false,
            strict_rotation: false,
            refresh_token_lifetime: 90 * 24 * 3600,
            device_code_lifetime: 900,
            device_code_interval: 5,
            code_lifetime: 600,
            foci_clients: Vec::new(),
            public_url: None,
            loop_limit: None,
        }
    }
}

impl FakeConfig {
    /// Adds a user.
    pub fn user(mut self, username: &str, password: &str) -> Self {
        self.users.push(UserSpec {
            username: username.to_string(),
            password: password.to_string(),
        });
        self
    }

    /// Adds a FOCI client id.
    pub fn foci_client(mut self, client_id: &str) -> Self {
        self.foci_clients.push(client_id.to_string());
        self
    }

    fn check(&self) -> Result<(), StartError> {
        if let Some(t) = &self.tenant
            && !ids::is_guid(t)
        {
            return Err(StartError::Config(format!(
                "--tenant must be a GUID, got '{t}'"
            )));
        }
        for (name, secs) in [
            ("access-token-lifetime", self.access_token_lifetime),
            ("refresh-token-lifetime", self.refresh_token_lifetime),
            ("device-code-lifetime", self.device_code_lifetime),
            ("code-lifetime", self.code_lifetime),
        ] {
            if secs == 0 || secs > 100 * 365 * 24 * 3600 {
                return Err(StartError::Config(format!(
                    "--{name} must be between 1 second and 100 years, got {secs}"
                )));
            }
        }
        if let Some(url) = &self.public_url
            && (!url.starts_with("https://") || url.ends_with('/'))
        {
            return Err(StartError::Config(format!(
                "--public-url must be https://HOST:PORT with no trailing slash, got '{url}'"
            )));
        }
        if self.device_code_interval > 3600 {
            return Err(StartError::Config(
                "--device-code-interval is at most 3600".into(),
            ));
        }
        Ok(())
    }
}

/// Why a fake did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Binding the port or starting the runtime failed.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// The CA or server certificate could not be made.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The token-signing key could not be made.
    #[error(transparent)]
    Key(#[from] jwt::KeyError),
}

/// A running fake. Dropping it stops the server and waits for its thread.
pub struct FakeEntra {
    app: Arc<app::App>,
    addr: SocketAddr,
    ca_pem: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeEntra {
    /// Starts a fake on 127.0.0.1 on its own thread and runtime; it is accepting connections
    /// when this returns.
    ///
    /// # Errors
    /// Bad configuration, a port that cannot be bound, or key/certificate generation failure.
    pub fn start(config: FakeConfig) -> Result<Self, StartError> {
        config.check()?;
        let signer = jwt::TokenSigner::shared()?;
        let tls = tls::generate()?;
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let base_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("https://{addr}"));

        let users = config
            .users
            .iter()
            .map(|u| directory::User::new(&u.username, &u.password, config.tenant.as_deref()))
            .collect();
        let directory = directory::Directory::new(users, config.tenant.as_deref());
        let app = Arc::new(app::App::new(base_url, config, directory, signer));

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = app::router(app.clone());
        let server_tls = tls.server.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-entra-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(server::serve(listener, server_tls, router, async {
                    let _ = rx.await;
                }));
            })?;
        Ok(Self {
            app,
            addr,
            ca_pem: tls.ca_pem,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The base URL it gives out: `https://127.0.0.1:PORT`, or [`FakeConfig::public_url`] (no
    /// trailing slash).
    pub fn url(&self) -> &str {
        &self.app.base_url
    }

    /// `https://127.0.0.1:PORT/{tenant}`, an authority for MSAL.
    pub fn authority(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.app.base_url)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// An HTTPS client that trusts this fake's CA (and nothing else) and does not follow
    /// redirects: tests play the user's browser with it.
    pub fn client(&self) -> reqwest::Client {
        client_trusting(self.ca_pem.as_bytes())
    }

    /// Requests seen since the last [`clear_log`](Self::clear_log) (never `/_fake/` ones).
    pub fn request_log(&self) -> Vec<LogEntry> {
        self.app.log.entries()
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        self.app.log.clear();
    }

    /// From now on, `resource`'s tokens need the claims challenge
    /// [`DEFAULT_CLAIMS`] answered: refresh tokens of sign-ins that did not send it as
    /// `claims` get AADSTS50076 (`basic_action`) with that challenge ([`Policy::Mfa`]).
    pub fn require_claims(&self, resource: &str) {
        self.app.set_policy(resource, Policy::Mfa);
    }

    /// From now on, refreshes for `resource` are answered as `policy` says.
    pub fn set_policy(&self, resource: &str, policy: Policy) {
        self.app.set_policy(resource, policy);
    }

    /// Queues a fault rule.
    pub fn queue_fault(&self, rule: FaultRule) {
        self.app.faults.push(rule);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.app.faults.clear();
    }

    /// Revokes the user's refresh tokens and browser sessions; `None` for an unknown user.
    pub fn revoke(&self, username: &str) -> Option<Revocation> {
        let user = self.app.directory.find(username)?;
        Some(
            self.app
                .store()
                .revoke(&user.username, self.app.clock.now()),
        )
    }

    /// Moves the fake's clock forward (all expiries follow it).
    pub fn advance_clock(&self, secs: u64) {
        self.app.clock.advance(secs);
    }

    /// The fake's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.app.clock.now()
    }

    /// A user's stable identity.
    pub fn user(&self, username: &str) -> Option<UserInfo> {
        self.app.directory.find(username).map(directory::User::info)
    }

    /// Plays the user on `/devicelogin`: enters `user_code` and the credentials and presses
    /// Approve. Returns the page the fake answers with.
    ///
    /// # Panics
    /// If the request fails or the page is not a success (test support: fail loudly).
    pub async fn approve_device_code(
        &self,
        user_code: &str,
        username: &str,
        password: &str,
    ) -> String {
        self.device_login(&[
            ("user_code", user_code),
            ("username", username),
            ("password", password),
            ("action", "approve"),
        ])
        .await
    }

    /// Plays the user on `/devicelogin`: enters `user_code` and presses Decline. Returns the page.
    ///
    /// # Panics
    /// As [`approve_device_code`](Self::approve_device_code).
    pub async fn decline_device_code(&self, user_code: &str) -> String {
        self.device_login(&[("user_code", user_code), ("action", "decline")])
            .await
    }

    #[allow(clippy::expect_used)]
    async fn device_login(&self, form: &[(&str, &str)]) -> String {
        let response = self
            .client()
            .post(format!("{}/devicelogin", self.url()))
            .form(form)
            .send()
            .await
            .expect("/devicelogin answers");
        let status = response.status();
        let page = response.text().await.expect("a /devicelogin page");
        assert_eq!(status, 200, "{page}");
        assert!(
            !page.contains("id=\"error\""),
            "/devicelogin refused: {page}"
        );
        page
    }
}

impl Drop for FakeEntra {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An HTTPS client trusting only the CA certificates in `ca_pem`, not following redirects.
///
/// # Panics
/// If `ca_pem` holds no valid certificate (test support: fail loudly).
#[allow(clippy::expect_used)]
pub fn client_trusting(ca_pem: &[u8]) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("a usable CA certificate");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS 1.2/1.3 with ring")
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}
