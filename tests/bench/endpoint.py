#!/usr/bin/env python3
"""The loopback endpoint's benchmark (`make bench`): prints figures and ratios, asserts nothing.

Same machine, same run, against fake-entra:
  (a) tokentray endpoint, cached token, one keep-alive client: p50 / p99 latency (wrk)
  (b) 64 concurrent keep-alive clients: requests/s (wrk)
  (a0), (b0) the same against `bare-hyper` (tests/support/bin/bare_hyper.rs), a bare hyper server
      built by `make bench` and started here, answering with the endpoint's own body: the baseline
  (c) MSAL Python acquire_token_silent in-process from a warm cache (the same token)
  (d) `tokentray token` as a process, with the daemon running, and reading the cache itself
  (e) Python ManagedIdentityCredential().get_token through the endpoint, fresh credential each call
  (f) the az shim, `kube-token`, `git-credential get` and `docker-credential-tokentray get` (its
      registry token kept) as processes, as tools run them
  (g) DefaultAzureCredential (Python azure-identity, JS @azure/identity) with the SDKs' variables
      set and no account signed in: how long until it reaches its next credential (a stand-in
      `az`), with the port held as tokentray.socket holds it (systemd-socket-activate), and with
      nothing on the port (what `tokentray env --install` refuses to leave behind)
  plus the daemon's start to its first token served, and its resident memory with 1 account and
  with 1,000 accounts x 10 tokens (and the bytes each token adds).
"""
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
import fake_entra_helpers as fe  # noqa: E402
import tokentray_helpers as tt  # noqa: E402

BIN = os.environ.get("TOKENTRAY_BIN", str(ROOT / "target" / "release" / "tokentray"))
BARE = os.environ.get("BARE_HYPER_BIN", str(ROOT / "target" / "release" / "bare-hyper"))
ARM = "https://management.core.windows.net//.default"


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, round((len(s) - 1) * p))]


def us(seconds):
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def wrk(url, secret, host, threads, conns, secs=5):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--latency",
                          "-H", f"X-IDENTITY-HEADER: {secret}", "-H", f"Host: {host}", url],
                         capture_output=True, text=True, check=True).stdout
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0}

    def latency(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * unit[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return latency("50"), latency("99"), rps, int(errors.group(1)) if errors else 0


def rss_kib(pid):
    """(VmRSS, RssAnon) in KiB: all resident pages, and the process's own memory without the
    pages of the binary and shared libraries."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["RssAnon"].split()[0])


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def big_cache(path, accounts=1000, tokens=10):
    """1,000 accounts x 10 access tokens with realistic 1.6 KB JWT-sized secrets (MSAL JSON)."""
    client, env = fe.AZURE_CLI, "login.microsoftonline.com"
    cache = {"AccessToken": {}, "RefreshToken": {}, "IdToken": {}, "Account": {}, "AppMetadata": {}}
    now = int(time.time())
    for a in range(accounts):
        hid = f"{a:08x}-0000-4000-8000-000000000000.0b8c6f2e-7d41-4a9e-b3c5-1e2f3a4b5c6d"
        for t in range(tokens):
            target = f"https://resource{t}.example.com/.default"
            cache["AccessToken"][f"{hid}-{env}-accesstoken-{client}-organizations-{target}"] = {
                "credential_type": "AccessToken", "secret": "x" * 1600, "home_account_id": hid,
                "environment": env, "client_id": client, "realm": "organizations", "target": target,
                "token_type": "Bearer", "cached_at": str(now), "expires_on": str(now + 3600),
                "extended_expires_on": str(now + 3600)}
        cache["RefreshToken"][f"{hid}-{env}-refreshtoken-{client}--"] = {
            "credential_type": "RefreshToken", "secret": "r" * 1100, "home_account_id": hid,
            "environment": env, "client_id": client, "target": ARM, "last_modification_time": str(now)}
        cache["Account"][f"{hid}-{env}-organizations"] = {
            "home_account_id": hid, "environment": env, "realm": "organizations",
            "local_account_id": hid[:36], "username": f"user{a}@example.com", "authority_type": "MSSTS"}
    path.write_text(json.dumps(cache))


class Registry(tt.JsonHandler):
    """A registry's `/oauth2/exchange`: a refresh token shaped like ACR's (a JWT, three hours)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        claims = {"exp": int(time.time()) + 3 * 3600, "grant_type": "refresh_token"}
        self.send_json(200, {"refresh_token": f"{b64({'alg': 'none'})}.{b64(claims)}.c2ln"})


def fall_through(work, fake):
    """(g): {(held, language): (outcome, seconds)}, held True when systemd-socket-activate holds
    the port and starts the daemon (no account) on the first connection."""
    import signal

    from test_socket_activation import activated, free_port
    port = free_port()
    env = tt.environment(work / "nobody", fake, port, HOME=str(work), XDG_CONFIG_HOME=str(work / "xdg"))
    for name in ("MSI_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "AZURE_CLIENT_ID",
                 "AZURE_TENANT_ID", "AZURE_TOKEN_CREDENTIALS"):
        env.pop(name, None)
    tt.stand_in_az(work / "next-bin", "next")
    sdk = dict(env, **tt.env_for(env, "sdk"), PATH=f"{work / 'next-bin'}:{os.environ['PATH']}")
    results = {}
    for held in (True, False):
        process = activated(env, work, f"127.0.0.1:{port}")[0] if held else None
        try:
            for language in ("python", "node"):
                token, seconds, _ = tt.default_azure_credential(ARM, sdk, language)
                results[held, language] = ("next credential" if token == "next" else "stopped", seconds or 0.0)
        finally:
            if process:
                process.send_signal(signal.SIGTERM)
                process.wait(10)
    return results


def main():
    work = Path(tempfile.mkdtemp(prefix="tokentray-bench-"))
    fake = fe.start(work / "fake", "--user", f"{fe.ALICE[0]}:{fe.ALICE[1]}", "--device-code-interval", "1")
    os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_path)
    env = dict(os.environ, TOKENTRAY_HOME=str(work / "home"), TOKENTRAY_AUTHORITY=fake.url,
               TOKENTRAY_CA_FILE=str(fake.ca_path), TOKENTRAY_PORT="0",
               TOKENTRAY_STORE=os.environ.get("TOKENTRAY_STORE", "keyutils"))
    daemon = None
    try:
        login = subprocess.Popen([BIN, "--json", "login", "--device-code"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        fake.approve_device_code(json.loads(login.stdout.readline())["user_code"], *fe.ALICE)
        assert login.wait(60) == 0

        import requests

        def start_daemon():
            """The daemon, once it has served its first token; and how long that took."""
            started = time.perf_counter()
            p = subprocess.Popen([BIN, "daemon"], env=env, stderr=subprocess.DEVNULL)
            ep_file = work / "home" / "run" / "endpoint.json"
            while time.perf_counter() - started < 20:
                try:
                    ep = json.loads(ep_file.read_text())
                    if ep["pid"] == p.pid:
                        r = requests.get(ep["url"] + "/msi/token", params={
                            "api-version": "2019-08-01", "resource": "https://management.core.windows.net/"},
                            headers={"X-IDENTITY-HEADER": ep["secret"]}, timeout=5)
                        if r.status_code == 200:
                            return p, ep, time.perf_counter() - started, r.content
                except (OSError, ValueError, KeyError, requests.RequestException):
                    pass
                time.sleep(0.001)
            raise SystemExit("daemon did not start")

        daemon, ep, first_token, body = start_daemon()
        host = ep["url"].removeprefix("http://")
        url = ep["url"] + "/msi/token?api-version=2019-08-01&resource=https://management.core.windows.net/"
        held = subprocess.run([BIN, "token", "--scope", ARM, "--format", "raw"], env=env,
                              capture_output=True, text=True, check=True).stdout.strip()

        a50, a99, _, errors_a = wrk(url, ep["secret"], host, 1, 1)
        _, _, rps, errors_b = wrk(url, ep["secret"], host, 2, 64)
        rss_one = rss_kib(daemon.pid)

        # (a0), (b0): the bare hyper server with the same body, in the same run.
        (work / "body.json").write_bytes(body)
        bare = subprocess.Popen([BARE, str(work / "body.json")], stdout=subprocess.PIPE, text=True)
        try:
            bare_url = bare.stdout.readline().strip()
            a0_50, a0_99, _, _ = wrk(bare_url + "/msi/token", "-", bare_url.removeprefix("http://"), 1, 1)
            _, _, rps0, _ = wrk(bare_url + "/msi/token", "-", bare_url.removeprefix("http://"), 2, 64)
        finally:
            bare.kill()
            bare.wait()

        # (c) MSAL Python, warm in-process cache holding the same token.
        import msal
        cache = msal.SerializableTokenCache()
        subprocess.run([BIN, "cache", "export", "--out", str(work / "export.json")], env=env,
                       check=True, capture_output=True)
        cache.deserialize((work / "export.json").read_text())
        session = requests.Session()
        session.verify = str(fake.ca_path)
        app = msal.PublicClientApplication(fe.AZURE_CLI, authority=fake.authority(), token_cache=cache,
                                           instance_discovery=False, http_client=session)
        account = app.get_accounts()[0]
        c = []
        for _ in range(2000):
            t = time.perf_counter()
            r = app.acquire_token_silent([ARM], account=account)
            c.append(time.perf_counter() - t)
        assert r["access_token"] == held

        # (d) `tokentray token` as a process: asking the daemon, then reading the cache itself.
        def token_process():
            d = []
            for _ in range(50):
                t = time.perf_counter()
                subprocess.run([BIN, "token", "--scope", ARM, "--format", "raw"], env=env,
                               capture_output=True, check=True)
                d.append(time.perf_counter() - t)
            return statistics.median(d)
        d50 = token_process()

        # (f) the helpers other tools run, as those tools run them, with the daemon running.
        def process_median(args, stdin=None, runs=50, run_env=None):
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                subprocess.run(args, env=run_env or helper_env, input=stdin, capture_output=True, check=True)
                times.append(time.perf_counter() - t)
            return statistics.median(times)
        subprocess.run([BIN, "az-shim", "--install"], env=env, check=True, capture_output=True)
        registry, registry_ca = tt.https_server(work / "registry", Registry)
        registry_host = f"127.0.0.1:{registry.server_address[1]}"
        (work / "roots.pem").write_text(fake.ca_path.read_text() + registry_ca.read_text())
        (work / "home" / "config").mkdir(mode=0o700, exist_ok=True)
        (work / "home" / "config" / "config.toml").write_text(
            f'[git]\nhosts = ["example.invalid"]\n[docker]\nhosts = ["{registry_host}"]\n')
        helper_env = dict(env, TOKENTRAY_CA_FILE=str(work / "roots.pem"), KUBERNETES_EXEC_INFO=json.dumps(
            {"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1", "spec": {"interactive": False}}))
        docker_helper = work / "docker-credential-tokentray"
        docker_helper.symlink_to(BIN)
        shim = str(work / "home" / "data" / "bin" / "az")
        f_az = process_median([shim, "account", "get-access-token", "-o", "json"])
        f_kube = process_median([BIN, "kube-token"])
        f_git = process_median([BIN, "git-credential", "get"],
                               stdin=b"protocol=https\nhost=example.invalid\npath=org/p/_git/r\n\n")
        f_docker = process_median([str(docker_helper), "get"], stdin=registry_host.encode())
        # What starting a process costs here, whatever it does: the floor under (d) and (f).
        d0_true = process_median(["/bin/true"])
        d0_version = process_median([BIN, "--version"])
        registry.shutdown()
        # ... and the real Azure CLI's own `az account get-access-token` (from its MSAL cache), the
        # call the shim replaces, signed in to the same fake-entra.
        real_az = ROOT / ".venv-azcli" / "bin" / "az"
        f_real = None
        if real_az.exists():
            az_env = tt.az_login(real_az, fake, fe.ALICE, dict(env, AZURE_CONFIG_DIR=str(work / "azure")))
            f_real = process_median([str(real_az), "account", "get-access-token", "-o", "json"], runs=10,
                                    run_env=az_env)

        # (e) ManagedIdentityCredential, fresh each call.
        from azure.identity import ManagedIdentityCredential
        os.environ["IDENTITY_ENDPOINT"] = ep["url"] + "/msi/token"
        os.environ["IDENTITY_HEADER"] = ep["secret"]
        e = []
        for _ in range(200):
            t = time.perf_counter()
            tok = ManagedIdentityCredential().get_token("https://management.core.windows.net/.default")
            e.append(time.perf_counter() - t)
        assert tok.token == held

        daemon.terminate()
        daemon.wait(10)
        d_alone50 = token_process()

        # Memory with 1,000 accounts x 10 tokens.
        big_cache(work / "big.json")
        subprocess.run([BIN, "cache", "import", str(work / "big.json")], env=env, check=True, capture_output=True)
        daemon, ep, first_token_big, _ = start_daemon()
        wrk(ep["url"] + "/msi/token?api-version=2019-08-01&resource=https://management.core.windows.net/",
            ep["secret"], ep["url"].removeprefix("http://"), 1, 1, secs=1)
        rss_big = rss_kib(daemon.pid)
        g = fall_through(work, fake)
    finally:
        if daemon:
            daemon.terminate()
            daemon.wait(10)
        fake.stop()

    c50, e50 = statistics.median(c), statistics.median(e)
    per_token = (rss_big[1] - rss_one[1]) * 1024 / 10_000
    print("| measurement | result | baseline, same run | target |")
    print("|---|---|---|---|")
    print(f"| (a) endpoint, cached token, 1 keep-alive client | p50 {us(a50)}, p99 {us(a99)} | "
          f"bare hyper: p50 {us(a0_50)}, p99 {us(a0_99)} | p50 <= 50 µs, p99 <= 500 µs |")
    print(f"| (b) endpoint, 64 keep-alive clients | {rps:,.0f} requests/s | bare hyper: {rps0:,.0f} "
          f"({rps / rps0:.2f}x) | >= 0.8x bare hyper |")
    print(f"| (c) MSAL Python acquire_token_silent, warm in-process cache | p50 {us(c50)}, p99 {us(pct(c, 0.99))} | | |")
    print(f"| (d) `tokentray token` as a process, daemon running / reading the cache itself | "
          f"p50 {us(d50)} / {us(d_alone50)} | process start: `/bin/true` {us(d0_true)}, "
          f"`tokentray --version` {us(d0_version)} | <= 3 ms / <= 5 ms |")
    print(f"| (e) azure-identity ManagedIdentityCredential, fresh each call | p50 {us(e50)} | | |")
    print(f"| (f) helpers as a process, daemon running: az shim `account get-access-token` / `kube-token` / "
          f"`git-credential get` / `docker-credential-tokentray get` | {f_az * 1000:.1f} / {f_kube * 1000:.1f} / "
          f"{f_git * 1000:.1f} / {f_docker * 1000:.1f} ms | "
          + (f"`az account get-access-token` (Azure CLI from PyPI, cached token): {f_real * 1000:.0f} ms "
             f"({f_real / f_az:.0f}x the shim)" if f_real else
             "`az account get-access-token`: no .venv-azcli (`make venv`); 1-15 s in the field")
          + " | |")
    print("| (g) DefaultAzureCredential, SDK variables set, no account: port held by tokentray.socket / nothing "
          "on the port, Python / JS | " + " / ".join(
              f"{g[held, lang][0]} after {g[held, lang][1] * 1000:,.0f} ms" for held in (True, False)
              for lang in ("python", "node")) + " | | reaches the next credential |")
    print(f"| daemon start to first token served, 1 account / 1,000 accounts x 10 tokens | "
          f"{us(first_token)} / {us(first_token_big)} | | <= 100 ms |")
    print(f"| daemon memory, 1 account / 1,000 accounts x 10 tokens | RSS {rss_one[0] / 1024:.1f} / {rss_big[0] / 1024:.1f} MB; "
          f"own (RssAnon) {rss_one[1] / 1024:.1f} / {rss_big[1] / 1024:.1f} MB; {per_token:,.0f} bytes per token "
          f"(1.6 KB secret each) | | <= 10 MB / <= 20 MB |")
    print()
    print(f"ratios: (a)/(a0) = {a50 / a0_50:.1f}x, (b)/(b0) = {rps / rps0:.2f}x, (c)/(a) = {c50 / a50:.1f}x, "
          f"(d)/(a) = {d50 / a50:,.0f}x, (e)/(a) = {e50 / a50:,.0f}x; "
          f"`az account get-access-token` takes 1-15 s per call (ENTRA-PROTOCOL.md 7.3)")
    if errors_a or errors_b:
        print(f"non-2xx answers during wrk: {errors_a + errors_b}")


if __name__ == "__main__":
    main()
