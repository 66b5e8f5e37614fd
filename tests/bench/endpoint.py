#!/usr/bin/env python3
"""The loopback endpoint's benchmark (`make bench`): prints figures and ratios, asserts nothing.

Same machine, same run, against fake-entra:
  (a) tokentray endpoint, cached token, one keep-alive client: p50 / p99 latency (wrk)
  (b) 64 concurrent keep-alive clients: requests/s (wrk)
  (c) MSAL Python acquire_token_silent in-process from a warm cache (the same token)
  (d) `tokentray token` as a process
  (e) Python ManagedIdentityCredential().get_token through the endpoint, fresh credential each call
  plus the daemon's resident memory with 1 account and with 1,000 accounts x 10 tokens.
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

BIN = os.environ.get("TOKENTRAY_BIN", str(ROOT / "target" / "release" / "tokentray"))
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
    shared libraries (GTK/WebKit are linked into the one `tokentray` binary)."""
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

        def start_daemon():
            p = subprocess.Popen([BIN, "daemon"], env=env, stderr=subprocess.DEVNULL)
            ep = work / "home" / "run" / "endpoint.json"
            for _ in range(400):
                if ep.exists() and json.loads(ep.read_text())["pid"] == p.pid:
                    return p, json.loads(ep.read_text())
                time.sleep(0.05)
            raise SystemExit("daemon did not start")

        daemon, ep = start_daemon()
        host = ep["url"].removeprefix("http://")
        url = ep["url"] + "/msi/token?api-version=2019-08-01&resource=https://management.core.windows.net/"
        held = subprocess.run([BIN, "token", "--scope", ARM, "--format", "raw"], env=env,
                              capture_output=True, text=True, check=True).stdout.strip()

        a50, a99, _, errors_a = wrk(url, ep["secret"], host, 1, 1)
        _, _, rps, errors_b = wrk(url, ep["secret"], host, 2, 64)
        rss_one = rss_kib(daemon.pid)

        # (c) MSAL Python, warm in-process cache holding the same token.
        import msal
        import requests
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

        # (d) `tokentray token` as a process.
        d = []
        for _ in range(50):
            t = time.perf_counter()
            subprocess.run([BIN, "token", "--scope", ARM, "--format", "raw"], env=env, capture_output=True, check=True)
            d.append(time.perf_counter() - t)

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

        # Memory with 1,000 accounts x 10 tokens.
        big_cache(work / "big.json")
        subprocess.run([BIN, "cache", "import", str(work / "big.json")], env=env, check=True, capture_output=True)
        daemon.terminate()
        daemon.wait(10)
        daemon, ep = start_daemon()
        wrk(ep["url"] + "/msi/token?api-version=2019-08-01&resource=https://management.core.windows.net/",
            ep["secret"], ep["url"].removeprefix("http://"), 1, 1, secs=1)
        rss_big = rss_kib(daemon.pid)
    finally:
        if daemon:
            daemon.terminate()
            daemon.wait(10)
        fake.stop()

    c50, e50, d50 = statistics.median(c), statistics.median(e), statistics.median(d)
    print(f"| measurement | result | target |")
    print(f"|---|---|---|")
    print(f"| (a) endpoint, cached token, 1 keep-alive client | p50 {us(a50)}, p99 {us(a99)} | p50 <= 100 µs, p99 <= 1 ms |")
    print(f"| (b) endpoint, 64 keep-alive clients | {rps:,.0f} requests/s | >= 50,000 |")
    print(f"| (c) MSAL Python acquire_token_silent, warm in-process cache | p50 {us(c50)}, p99 {us(pct(c, 0.99))} | |")
    print(f"| (d) `tokentray token` as a process | p50 {us(d50)} | |")
    print(f"| (e) azure-identity ManagedIdentityCredential, fresh each call | p50 {us(e50)} | |")
    print(f"| daemon memory, 1 account / 1,000 accounts x 10 tokens | RSS {rss_one[0] / 1024:.1f} / {rss_big[0] / 1024:.1f} MB; "
          f"own (RssAnon) {rss_one[1] / 1024:.1f} / {rss_big[1] / 1024:.1f} MB | <= 20 MB with 1,000 |")
    print()
    print(f"ratios: (c)/(a) = {c50 / a50:.1f}x, (d)/(a) = {d50 / a50:,.0f}x, (e)/(a) = {e50 / a50:,.0f}x; "
          f"`az account get-access-token` takes 1-15 s per call (ENTRA-PROTOCOL.md 7.3)")
    if errors_a or errors_b:
        print(f"non-2xx answers during wrk: {errors_a + errors_b}")


if __name__ == "__main__":
    main()
