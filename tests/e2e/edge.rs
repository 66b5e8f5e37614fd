//! Trust at the edge, played by another local user: `nobody` (uid 65534, via `setpriv
//! --reuid=65534 --regid=65534 --clear-groups`) runs tests/peers/hostile.py with Debian's
//! python3 against a real `tokentray daemon` of this user (root, in `make test`).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokentray_tests::fake_entra::{FakeConfig, FakeEntra};

use crate::serve::{ALICE, Daemon, MSI, PW, signed_in};

/// The other user's program. It is fed to python3 on stdin, so `nobody` needs no access to the
/// checkout (which may sit under a private home directory).
const HOSTILE: &str = include_str!("../peers/hostile.py");

/// `hostile.py ARGS`, as user `nobody` when `other_user`, else as this user; spawn it with
/// [`start`] or run it with [`run`].
fn hostile(other_user: bool, args: &[&str]) -> Command {
    let mut cmd = if other_user {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
        ]);
        c
    } else {
        Command::new("/usr/bin/python3")
    };
    cmd.arg("-").args(args).stdin(Stdio::piped());
    cmd
}

/// Starts `cmd` (from [`hostile`]) with its stdout piped, and hands it the script.
fn start(mut cmd: Command) -> Child {
    use std::io::Write as _;
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(HOSTILE.as_bytes())
        .unwrap();
    child
}

/// Runs `cmd` (from [`hostile`]) to its end; its stdout.
fn run(cmd: Command) -> String {
    let out = start(cmd).wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The first line `child` prints.
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_of(d: &Daemon) -> String {
    d.host().rsplit_once(':').unwrap().1.to_string()
}

/// A secret collected by squatting the endpoint's port while tokentray was down (the victim's
/// SDK sent it) gets another user nothing from the real endpoint; this user is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and setpriv (make test)"]
async fn another_users_process_is_refused_even_with_a_harvested_secret() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let mut home = signed_in(&fake, 0).await;
    let port = free_port().to_string();
    home.set_env("TOKENTRAY_PORT", &port);

    // tokentray is not running: nobody holds the port, and the victim's SDK calls it.
    let mut squatter = start(hostile(true, &["squat", &port]));
    assert_eq!(first_line(&mut squatter), "listening");
    let env = home.ok(&["env"]);
    let secret = env
        .lines()
        .find_map(|l| l.strip_prefix("export IDENTITY_HEADER="))
        .unwrap()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    let _ = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{MSI}"))
        .header("X-IDENTITY-HEADER", &secret)
        .send()
        .await;
    let harvested = first_line(&mut squatter);
    assert_eq!(harvested, secret, "the squatter has the secret");
    squatter.wait().unwrap();

    // tokentray starts on its port; the harvested secret is replayed by the other user.
    let d = Daemon::start(&home).await;
    let header = format!("X-IDENTITY-HEADER={harvested}");
    assert_eq!(
        run(hostile(true, &["request", &port, MSI, &header])),
        "closed",
        "refused before a byte is read"
    );
    assert_eq!(
        run(hostile(false, &["request", &port, MSI, &header])),
        "HTTP/1.1 200 OK",
        "this user's process is served"
    );
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(
        log.contains("refused a connection from another user's process (uid 65534)"),
        "{log}"
    );
}

/// The instance's Unix socket admits this user only, by the peer credentials the kernel gives:
/// reachable by everyone (a hard link in an open directory, then mode 0666), it closes another
/// user's connection unanswered, secret and all, and serves this user's. Before the mode was
/// opened, the other user could not even connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and setpriv (make test)"]
async fn another_users_process_is_refused_on_the_instance_socket() {
    use std::os::unix::fs::PermissionsExt as _;
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let open = tempfile::tempdir_in(home.path().parent().unwrap()).unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = open.path().join("endpoint.sock");
    std::fs::hard_link(home.path().join("run/endpoint.sock"), &link).unwrap();
    let link = link.to_str().unwrap();
    let header = format!("Authorization=Bearer {}", d.secret);
    let ask = |other_user| {
        run(hostile(
            other_user,
            &["request", link, "/v1/status", &header],
        ))
    };
    assert!(
        ask(true) == "cannot connect: Permission denied",
        "the socket is this user's alone (0600)"
    );
    std::fs::set_permissions(link, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(ask(true), "closed", "refused by its credentials");
    assert_eq!(ask(false), "HTTP/1.1 200 OK");
    assert!(
        std::fs::read_to_string(&d.log)
            .unwrap()
            .contains("refused a connection from another user's process (uid 65534)"),
        "the refusal is logged"
    );
}

/// 300 connections that pipeline requests and never read, from another user and from this
/// one, leave a legitimate request served within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and setpriv (make test)"]
async fn non_reading_pipelined_connections_do_not_hold_the_endpoint() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let port = port_of(&d);
    let mut holders = Vec::new();
    for other_user in [true, false] {
        let mut h = start(hostile(other_user, &["pipeline", &port, "300", "60"]));
        assert_eq!(first_line(&mut h), "holding");
        holders.push(h);
    }
    let bearer = format!("Bearer {}", d.secret);
    let host = d.host();
    let started = Instant::now();
    let (status, _, body) = d.get(
        "/v1/token?scope=https://management.core.windows.net//.default",
        &[("Host", &host), ("Authorization", &bearer)],
    );
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(took < Duration::from_secs(1), "served in {took:?}");
    for mut h in holders {
        let _ = h.kill();
        let _ = h.wait();
    }
}

/// Another user's connect flood costs a lookup per connection and never reaches the audit: a
/// real token served meanwhile is audited at once, naming its client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and setpriv (make test)"]
async fn a_connect_flood_leaves_the_audit_on_time_with_the_right_client() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let port = port_of(&d);
    let flood = start(hostile(true, &["flood", &port, "8"]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let host = d.host();
    let started = Instant::now();
    let (status, _, body) = d.get(MSI, &[("Host", &host), ("X-IDENTITY-HEADER", &d.secret)]);
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let me = format!("client=\"pid {} (", std::process::id());
    let audited = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_to_string(&d.log).is_ok_and(|l| l.contains(&me))
    });
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(audited, "audited within 2 s, naming this process: {log}");
    let out = flood.wait_with_output().unwrap();
    let connects: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(connects > 1000, "a real flood: {connects} connections");
    // Each is refused: as another user's, or (closed before it was looked up) as unknown.
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(log.contains("endpoint: refused a connection"), "{log}");
    let lines = log.matches("refused a connection").count() as u64;
    assert!(
        lines <= connects / 1000 + 2,
        "one log line per thousand refusals, not one each: {lines} for {connects}"
    );
}

/// After the cache is quarantined under a running daemon, the secret it takes and the one in
/// `endpoint.json` agree, and the CLI through it gets a known error (no account), not 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_json_follows_the_secret_after_a_quarantine() {
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    std::fs::write(home.data().join("cache.json"), b"{ not json").unwrap();
    let endpoint = home.path().join("run/endpoint.json");
    let agreed = (0..60).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        let published: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&endpoint).unwrap()).unwrap();
        let bearer = format!("Bearer {}", published["secret"].as_str().unwrap());
        let host = d.host();
        let (status, _, _) = d.get("/v1/status", &[("Host", &host), ("Authorization", &bearer)]);
        status == 200 && published["secret"] != d.secret.as_str()
    });
    assert!(
        agreed,
        "a new secret, published: {}",
        std::fs::read_to_string(&d.log).unwrap()
    );
    let out = home.run(&[
        "--json",
        "token",
        "--scope",
        "https://management.core.windows.net//.default",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"code\":\"no_account\""), "{stderr}");
}

/// A wedged instance (stopped with SIGSTOP: it takes connections and never answers) does not
/// hang `tokentray token`: after its answer timeout the CLI uses the cache directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_falls_back_to_the_cache_when_the_instance_is_wedged() {
    use rustix::process::{Pid, Signal, kill_process};
    let fake = FakeEntra::start(FakeConfig::default().user(ALICE, PW)).unwrap();
    let home = signed_in(&fake, 0).await;
    let d = Daemon::start(&home).await;
    let pid = Pid::from_raw(i32::try_from(d.pid()).unwrap()).unwrap();
    kill_process(pid, Signal::STOP).unwrap();
    let started = Instant::now();
    let out = home.run(&[
        "token",
        "--scope",
        "https://management.core.windows.net//.default",
        "--format",
        "raw",
    ]);
    let took = started.elapsed();
    kill_process(pid, Signal::CONT).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().len() > 100,
        "a token"
    );
    assert!(stderr.contains("using the cache directly"), "{stderr}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}
