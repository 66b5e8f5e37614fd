//! The loopback endpoint, black-box through `tokentray daemon`: every security rejection at the
//! HTTP level, the App Service and native routes, the daemon's lifecycle, and 1,000 concurrent
//! requests for an expired token causing one refresh.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokentray_core::clock::Clock;
use tokentray_core::paths::Paths;
use tokentray_core::tokens::Tokens;
use tokentray_tests::fake_entra::{Endpoint, FakeConfig, FakeEntra, Fault, FaultRule};
use tokentray_tests::harness::{Home, config_against};

pub(crate) const ALICE: &str = "alice@contoso.example";
pub(crate) const PW: &str = "pw";

/// A signed-in home (Alice, device code) whose clock ran `skew` seconds behind when it signed
/// in, so its tokens look `skew` seconds older to the daemon.
pub(crate) async fn signed_in(fake: &FakeEntra, skew: i64) -> Home {
    let mut home = Home::new("plaintext");
    let config = config_against(fake, home.path());
    let ca = config.ca_file.clone().unwrap();
    home.set_env("TOKENTRAY_AUTHORITY", fake.url());
    home.set_env("TOKENTRAY_CA_FILE", ca.to_str().unwrap());
    home.set_env("TOKENTRAY_PORT", "0");
    home.set_env("TOKENTRAY_LOG", "warn,tokentray::audit=info");
    let clock: Clock = Arc::new(move || tokentray_core::clock::now() - skew);
    let store = config.open_store(&Paths::under(home.path())).unwrap();
    let tokens = Tokens::new(config, store, clock).unwrap();
    let code = tokens
        .start_device_code(
            None,
            &["https://management.core.windows.net//.default".into()],
            None,
        )
        .await
        .unwrap();
    fake.approve_device_code(&code.user_code, ALICE, PW).await;
    tokens
        .finish_device_code(&code, std::future::pending())
        .await
        .unwrap();
    home
}

pub(crate) struct Daemon {
    child: Child,
    url: String,
    pub(crate) secret: String,
    addr: String,
    pub(crate) log: std::path::PathBuf,
}

impl Daemon {
    #[allow(clippy::zombie_processes)] // Drop kills and waits
    pub(crate) async fn start(home: &Home) -> Self {
        let log = home.path().join("daemon.log");
        let child = home
            .cmd(&["daemon"])
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let file = home.path().join("run/endpoint.json");
        for _ in 0..300 {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && v["pid"] == child.id()
            {
                let url = v["url"].as_str().unwrap().to_string();
                let addr = url.trim_start_matches("http://").to_string();
                let secret = v["secret"].as_str().unwrap().to_string();
                return Self {
                    child,
                    url,
                    secret,
                    addr,
                    log,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the daemon did not publish endpoint.json: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn signal(&mut self, signal: rustix::process::Signal) -> std::process::ExitStatus {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            signal,
        )
        .unwrap();
        self.child.wait().unwrap()
    }

    /// Sends raw HTTP/1.1 and returns (status, head, body).
    pub(crate) fn raw(&self, request: &str) -> (u16, String, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        let _ = s.read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }

    pub(crate) fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        self.raw(&(req + "\r\n"))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn host(&self) -> String {
        self.addr.clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) const MSI: &str =
    "/msi/token?api-version=2019-08-01&resource=https://management.core.windows.net/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_refuses_everything_but_authenticated_loopback_requests() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let host = d.host();
    let good = [
        ("Host", host.as_str()),
        ("X-IDENTITY-HEADER", d.secret.as_str()),
    ];

    let (status, _, body) = d.get(MSI, &good);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["expires_on"].is_string(),
        "App Service sends expires_on as a string: {v}"
    );
    for field in ["access_token", "resource", "token_type", "client_id"] {
        assert!(v[field].is_string(), "{field} in {v}");
    }
    let no_slash = MSI.trim_end_matches('/');
    assert_eq!(
        d.get(no_slash, &good).0,
        200,
        "resource without the trailing slash"
    );

    type Check<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let checks: Vec<Check> = vec![
        (
            "no secret",
            vec![("Host", host.as_str())],
            401,
            "unauthorized",
        ),
        (
            "wrong secret",
            vec![("Host", host.as_str()), ("X-IDENTITY-HEADER", "wrong")],
            401,
            "unauthorized",
        ),
        (
            "secret one byte short",
            vec![
                ("Host", host.as_str()),
                ("X-IDENTITY-HEADER", &d.secret[..d.secret.len() - 1]),
            ],
            401,
            "unauthorized",
        ),
        (
            "DNS rebinding",
            vec![
                ("Host", "evil.example:42117"),
                ("X-IDENTITY-HEADER", d.secret.as_str()),
            ],
            403,
            "forbidden_host",
        ),
        (
            "no Host",
            vec![("X-IDENTITY-HEADER", d.secret.as_str())],
            403,
            "forbidden_host",
        ),
        (
            "a host after the brackets",
            vec![
                ("Host", "[::1]evil.com"),
                ("X-IDENTITY-HEADER", d.secret.as_str()),
            ],
            403,
            "forbidden_host",
        ),
        (
            "two Host headers",
            vec![
                ("Host", host.as_str()),
                ("Host", "evil.example"),
                ("X-IDENTITY-HEADER", d.secret.as_str()),
            ],
            403,
            "forbidden_host",
        ),
        (
            "a web page",
            vec![
                ("Host", host.as_str()),
                ("X-IDENTITY-HEADER", d.secret.as_str()),
                ("Origin", "https://evil.example"),
            ],
            403,
            "forbidden_origin",
        ),
        (
            "null origin",
            vec![
                ("Host", host.as_str()),
                ("X-IDENTITY-HEADER", d.secret.as_str()),
                ("Origin", "null"),
            ],
            403,
            "forbidden_origin",
        ),
    ];
    for (what, headers, want, code) in checks {
        let (status, head, body) = d.get(MSI, &headers);
        assert_eq!(status, want, "{what}: {head}\n{body}");
        assert!(body.contains(code), "{what}: {body}");
        assert!(
            !head.to_ascii_lowercase().contains("access-control-allow"),
            "{what}: no CORS ever: {head}"
        );
        assert!(!body.contains("access_token"), "{what}");
    }
    let bearer = format!("Bearer {}", d.secret);
    assert_eq!(
        d.get(
            "/msi/token?api-version=2019-08-01&resource=x",
            &[("Host", &host), ("Authorization", &bearer)]
        )
        .0,
        401,
        "the MSI route takes only its header"
    );
    assert_eq!(
        d.get(
            "/v1/accounts",
            &[("Host", &host), ("X-IDENTITY-HEADER", &d.secret)]
        )
        .0,
        401,
        "the native API takes only Bearer"
    );
    assert_eq!(
        d.get(
            "/v1/accounts",
            &[("Host", "localhost"), ("Authorization", &bearer)]
        )
        .0,
        200
    );
    assert_eq!(
        d.get(
            "/v1/accounts",
            &[("Host", "[::1]:1"), ("Authorization", &bearer)]
        )
        .0,
        200
    );
    let lower = format!("bearer {}", d.secret);
    assert_eq!(
        d.get(
            "/v1/accounts",
            &[("Host", &host), ("Authorization", &lower)]
        )
        .0,
        200,
        "the auth scheme is case-insensitive (RFC 7235)"
    );
    let (status, _, body) = d.raw(&format!(
        "GET http://evil.example{MSI} HTTP/1.1\r\nHost: {host}\r\nX-IDENTITY-HEADER: {}\r\nConnection: close\r\n\r\n",
        d.secret
    ));
    assert_eq!(status, 403, "absolute-form targets are refused: {body}");
    assert_eq!(
        d.get("/admin", &[("Host", &host), ("Authorization", &bearer)])
            .0,
        404,
        "only the documented routes"
    );
    let long = format!("/v1/token?scope={}", "a".repeat(5000));
    assert_eq!(
        d.get(&long, &[("Host", &host), ("Authorization", &bearer)])
            .0,
        414
    );
    let huge = "x".repeat(40_000);
    let (status, _, _) = d.get(
        "/v1/status",
        &[
            ("Host", &host),
            ("Authorization", &bearer),
            ("X-Big", &huge),
        ],
    );
    assert!(
        status == 431 || status == 0,
        "oversized headers are refused ({status})"
    );
    let (status, head, body) = d.raw(&format!("POST {MSI} HTTP/1.1\r\nHost: {host}\r\nX-IDENTITY-HEADER: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", d.secret));
    assert_eq!(status, 405);
    assert!(
        head.to_ascii_lowercase().contains("\r\nallow: get"),
        "405 says which method the route answers: {head}"
    );
    assert!(body.contains("\"code\":\"method_not_allowed\""), "{body}");
    let (status, _, body) = d.raw(&format!(
        "GET /token HTTP/1.1\r\nHost: {host}\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(status, 405, "azd's route is POST only: {body}");
    // HEAD answers as GET does, without the body.
    let (status, head, body) = d.raw(&format!(
        "HEAD {MSI} HTTP/1.1\r\nHost: {host}\r\nX-IDENTITY-HEADER: {}\r\nConnection: close\r\n\r\n",
        d.secret
    ));
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty(), "a HEAD answer has no body");
    assert_eq!(
        d.get("/msi/token?resource=x", &good).0,
        400,
        "api-version is required"
    );
    let (status, _, body) = d.get(
        "/msi/token?api-version=2019-08-01&resource=x&client_id=abc",
        &good,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("object_id"), "{body}");

    let (status, _, body) = d.get("/v1/status", &[("Host", &host), ("Authorization", &bearer)]);
    assert_eq!(status, 200);
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        s["served"], 3,
        "only the good MSI requests served tokens (two GETs and the HEAD, which is counted and \
         audited like its GET): {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_api_selects_accounts_and_the_cli_uses_it() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let bearer = format!("Bearer {}", d.secret);
    let host = d.host();
    let (status, _, body) = d.get("/v1/token?scope=https://management.core.windows.net//.default&account=ALICE@contoso.example", &[("Host", &host), ("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["account"], ALICE);
    let (status, _, body) = d.get(
        "/v1/token?scope=x&account=nobody",
        &[("Host", &host), ("Authorization", &bearer)],
    );
    assert_eq!(status, 401);
    assert!(body.contains("account_not_found"), "{body}");

    let oid = fake.user(ALICE).unwrap().oid;
    let (status, _, body) = d.get(
        &format!("{MSI}&object_id={oid}"),
        &[("Host", &host), ("X-IDENTITY-HEADER", &d.secret)],
    );
    assert_eq!(status, 200, "{body}");

    // `tokentray token` goes through the running instance.
    let cli = home.ok(&[
        "token",
        "--scope",
        "https://management.core.windows.net//.default",
        "--format",
        "raw",
    ]);
    assert_eq!(cli.trim(), v["access_token"].as_str().unwrap());
    let (_, _, status) = d.get("/v1/status", &[("Host", &host), ("Authorization", &bearer)]);
    assert_eq!(serde_json::from_str::<Value>(&status).unwrap()["served"], 3);
}

/// tokentray's CLI asks the instance over its Unix socket, which `endpoint.json` names: a
/// socket, mode 0600, next to it. With the loopback URL there pointing at a closed port the CLI
/// is still served, and the activity names its very process (the pid the socket's credentials
/// gave). With the socket gone, the CLI uses the port.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_asks_over_the_instance_socket_and_falls_back_to_the_port() {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let file = home.path().join("run/endpoint.json");
    let published: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let socket = home.path().join("run/endpoint.sock");
    assert_eq!(published["socket"], socket.to_str().unwrap(), "{published}");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let status: Value = serde_json::from_str(&home.ok(&["--json", "status"])).unwrap();
    assert_eq!(
        status["instance"]["socket"], published["socket"],
        "{status}"
    );
    assert!(
        home.ok(&["status"])
            .contains(&format!("and {} (tokentray's own", socket.display())),
        "status names the socket"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut only_socket = published.clone();
    only_socket["url"] = format!("http://{closed}").into();
    std::fs::write(&file, only_socket.to_string()).unwrap();
    let token_args = [
        "token",
        "--scope",
        "https://management.core.windows.net//.default",
        "--format",
        "raw",
    ];
    let cli = home
        .cmd(&token_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = cli.id();
    let out = cli.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "served over the socket alone: {stderr}"
    );
    assert!(stderr.is_empty(), "no fallback was needed: {stderr}");
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(token.starts_with("ey"), "{token}");

    let bearer = format!("Bearer {}", d.secret);
    let host = d.host();
    // The audit thread records the activity after the answer went out.
    let mut activity = Value::Null;
    for _ in 0..100 {
        let (_, _, body) = d.get(
            "/v1/activity",
            &[("Host", &host), ("Authorization", &bearer)],
        );
        activity = serde_json::from_str(&body).unwrap();
        if activity[0]["client"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = activity[0]["client"].as_str().unwrap_or_default();
    assert!(
        client.starts_with(&format!("pid {pid} (")) && client.ends_with("tokentray)"),
        "the CLI's own process is named: {activity}"
    );

    std::fs::write(&file, published.to_string()).unwrap();
    std::fs::remove_file(&socket).unwrap();
    assert_eq!(
        home.ok(&token_args),
        token,
        "without the socket, over the port"
    );
    let (_, _, status) = d.get("/v1/status", &[("Host", &host), ("Authorization", &bearer)]);
    assert_eq!(serde_json::from_str::<Value>(&status).unwrap()["served"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_for_an_expired_token_cause_one_refresh() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 3500).await; // its token has < 5 minutes left for the daemon
    let d = Daemon::start(&home).await;
    fake.clear_log();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let url = format!("{}{MSI}", d.url);
    let calls: Vec<_> = (0..1000)
        .map(|_| {
            let (client, url, secret) = (client.clone(), url.clone(), d.secret.clone());
            tokio::spawn(async move {
                let r = client
                    .get(url)
                    .header("X-IDENTITY-HEADER", secret)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()["access_token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for c in calls {
        tokens.insert(c.await.unwrap());
    }
    assert_eq!(tokens.len(), 1, "1,000 correct answers, all the new token");
    let refreshes = fake
        .request_log()
        .iter()
        .filter(|e| e.grant_type.as_deref() == Some("refresh_token"))
        .count();
    assert_eq!(refreshes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authority_outage_still_serves_the_cached_token() {
    let fake = FakeEntra::start(
        FakeConfig {
            refresh_in: true,
            ..FakeConfig::default()
        }
        .user(ALICE, PW),
    )
    .unwrap();
    let home = signed_in(&fake, 2400).await; // past refresh_on, still valid
    let d = Daemon::start(&home).await;
    fake.queue_fault(FaultRule::once(Endpoint::Token, Fault::status(503, Some(60))).times(1000));
    fake.clear_log();
    let host = d.host();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let (status, _, body) = d.get(MSI, &[("Host", &host), ("X-IDENTITY-HEADER", &d.secret)]);
        assert_eq!(status, 200, "{body}");
        seen.insert(
            serde_json::from_str::<Value>(&body).unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(
        fake.request_log()
            .iter()
            .filter(|e| e.grant_type.is_some())
            .count(),
        1,
        "one try, then Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_stops_cleanly_replaces_stale_files_and_names_a_taken_port() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let mut home = signed_in(&fake, 0).await;
    let file = home.path().join("run/endpoint.json");

    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let mut d = Daemon::start(&home).await;
        let status = d.signal(signal);
        assert!(
            status.success(),
            "{signal:?}: {status} {}",
            std::fs::read_to_string(&d.log).unwrap_or_default()
        );
        assert!(!file.exists(), "{signal:?}: endpoint.json removed");
    }

    // A killed instance leaves a stale file: detected, replaced, and the CLI does not use it.
    let mut d = Daemon::start(&home).await;
    let _ = d.signal(rustix::process::Signal::KILL);
    assert!(file.exists());
    let stale: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let token = home.ok(&[
        "token",
        "--scope",
        "https://management.core.windows.net//.default",
        "--format",
        "raw",
    ]);
    assert!(token.len() > 100, "served from the cache directly");
    let d2 = Daemon::start(&home).await;
    let fresh: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_ne!(fresh["pid"], stale["pid"]);
    assert_eq!(
        fresh["secret"], stale["secret"],
        "the secret is stable across restarts"
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The port is taken by another program / by tokentray itself.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port().to_string();
    home.set_env("TOKENTRAY_PORT", &port);
    let out = home.run(&["daemon"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("another program"),
        "{stderr}"
    );
    let taken = d2.addr.rsplit(':').next().unwrap().to_string();
    home.set_env("TOKENTRAY_PORT", &taken);
    let out = home.run(&["daemon"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already runs"), "{stderr}");

    // Rotation: the old secret stops working within a second (the daemon follows the cache
    // file from its watcher, never on the request path), the new one works, env prints it.
    let env = home.ok(&["env", "--rotate"]);
    let rotated: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_ne!(rotated["secret"], stale["secret"]);
    assert!(env.contains(rotated["secret"].as_str().unwrap()));
    let host = d2.host();
    let rotated_at = std::time::Instant::now();
    let old_secret = || {
        d2.get(
            MSI,
            &[
                ("Host", &host),
                ("X-IDENTITY-HEADER", stale["secret"].as_str().unwrap()),
            ],
        )
        .0
    };
    while old_secret() != 401 {
        assert!(
            rotated_at.elapsed() < Duration::from_secs(1),
            "the old secret still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        d2.get(
            MSI,
            &[
                ("Host", &host),
                ("X-IDENTITY-HEADER", rotated["secret"].as_str().unwrap())
            ]
        )
        .0,
        200
    );
    for shell in ["fish", "powershell"] {
        let text = home.ok(&["env", "--shell", shell]);
        assert!(
            text.contains("IDENTITY_ENDPOINT")
                && text.contains(rotated["secret"].as_str().unwrap()),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_serves_a_token_with_minutes_left_to_the_cli_and_to_sdks() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 3600 - 260).await; // 4m20s left: inside the 5-minute skew
    fake.queue_fault(FaultRule::once(Endpoint::Token, Fault::status(503, Some(60))).times(1000));
    let arm = "https://management.core.windows.net//.default";
    let out = home.run(&["token", "--scope", arm, "--format", "raw"]);
    assert!(
        out.status.success(),
        "the CLI serves the still-valid token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Daemon::start(&home).await;
    let host = d.host();
    let (status, _, body) = d.get(MSI, &[("Host", &host), ("X-IDENTITY-HEADER", &d.secret)]);
    assert_eq!(status, 200, "and so does the endpoint: {body}");

    // The failed refresh shows: the daemon's /v1/accounts, and the CLI, which asks the daemon.
    let bearer = format!("Bearer {}", d.secret);
    let (status, _, body) = d.get(
        "/v1/accounts",
        &[("Host", &host), ("Authorization", &bearer)],
    );
    assert_eq!(status, 200, "{body}");
    let accounts: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(accounts[0]["username"], ALICE, "{body}");
    assert_eq!(accounts[0]["health"]["state"], "retrying", "{body}");
    assert_eq!(accounts[0]["health"]["attempt"], 2, "{body}");
    for command in ["accounts", "status"] {
        let text = home.ok(&[command]);
        assert!(
            text.contains("can't reach Entra ID, retrying at") && text.contains("(try 2)"),
            "{command}: {text}"
        );
        assert!(
            text.contains("cached tokens are served"),
            "{command}: {text}"
        );
    }
    let listed: Value = serde_json::from_str(&home.ok(&["--json", "accounts"])).unwrap();
    assert_eq!(listed[0]["health"]["state"], "retrying");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_cli_never_promises_a_retry_it_will_not_make() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 4000).await; // expired
    fake.queue_fault(FaultRule::once(Endpoint::Token, Fault::status(503, Some(60))).times(1000));
    let out = home.run(&[
        "token",
        "--scope",
        "https://management.core.windows.net//.default",
    ]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(tokentray_core::cli::exit::UNAVAILABLE))
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("next try"), "{stderr}");
    let told = stderr.lines().filter(|l| l.contains("unavailable")).count();
    assert_eq!(told, 1, "said once, as the error: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_lock_held_by_another_process_does_not_delay_requests() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let lock = home.path().join("data/cache.lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "20"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // the holder has it
    let bearer = format!("Bearer {}", d.secret);
    let host = d.host();
    let asked = std::time::Instant::now();
    let (status, _, body) = d.get(
        "/v1/token?scope=https://management.core.windows.net//.default",
        &[("Host", &host), ("Authorization", &bearer)],
    );
    let took = asked.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(status, 200, "{body}");
    // The old code waited for the lock (up to 30 s); 1 s leaves room for a loaded machine.
    assert!(
        took < Duration::from_secs(1),
        "served from the snapshot in {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_sees_a_sign_out_by_another_process_within_a_second() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let bearer = format!("Bearer {}", d.secret);
    let host = d.host();
    let accounts = || {
        let (status, _, body) = d.get(
            "/v1/accounts",
            &[("Host", &host), ("Authorization", &bearer)],
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(accounts(), 1);
    home.ok(&["logout"]);
    let signed_out = std::time::Instant::now();
    while accounts() != 0 {
        assert!(
            signed_out.elapsed() < Duration::from_secs(1),
            "the daemon still lists the account"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
