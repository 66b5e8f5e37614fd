"""Approval of programs (`require_approval = true`) on the headless daemon, with the real
azure-identity SDK as the program asking.

The daemon has no window to ask in, so a program not approved yet is refused at once with an
error that names it and says how to approve it; `tokentray clients allow|deny|revoke` changes
that while the daemon runs; tokentray's own CLI is always served.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential

import tokentray_helpers as tt
from test_endpoint_azure_identity import ARM_SCOPE, use_tokentray_env
from tokentray_helpers import BIN

# This test process is the program asking; the OS names its executable by its real path.
ME = os.path.realpath(sys.executable)


@pytest.fixture
def daemon(tmp_path, fake_entra):
    home = tmp_path / "home"
    (home / "config").mkdir(mode=0o700, parents=True)
    (home / "config" / "config.toml").write_text("require_approval = true\n")
    env = tt.environment(home, fake_entra)

    def run(*args, check=True):
        p = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 or not check, p.stderr
        return p

    tt.sign_in(env, fake_entra)
    log = tmp_path / "daemon.log"
    process = tt.start_daemon(env, log)
    yield run, log
    process.terminate()
    assert process.wait(timeout=10) == 0, log.read_text()


def refusal(monkeypatch):
    """What ManagedIdentityCredential raises for this process, as text."""
    try:
        ManagedIdentityCredential().get_token(ARM_SCOPE)
    except (ClientAuthenticationError, CredentialUnavailableError) as refused:
        return str(refused)
    raise AssertionError("a token was served")


def eventually(check, what, timeout=5):
    """The daemon follows the cache file every 250 ms: a decision takes effect within a second."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (ClientAuthenticationError, CredentialUnavailableError, AssertionError):
            # Not yet: the daemon has not seen the decision.
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)


def test_the_daemon_refuses_programs_not_approved_and_follows_tokentray_clients(daemon, monkeypatch):
    run, log = daemon
    use_tokentray_env(lambda *a: run(*a).stdout, monkeypatch)
    # tokentray's own CLI, through the endpoint, is served.
    own = run("token", "--scope", ARM_SCOPE, "--format", "raw").stdout.strip()
    assert own.count(".") == 2

    # The SDK, from a program nobody approved: refused at once, with what to do.
    text = refusal(monkeypatch)
    assert "client_not_approved" in text or "not approved" in text, text
    assert f"tokentray clients allow {ME}" in text, text
    assert "without a window" in text, text

    # Allowed from a terminal while the daemon runs: the same SDK call now gets the token.
    allowed = run("--json", "clients", "allow", sys.executable)
    kept = json.loads(allowed.stdout)
    assert kept["path"] == ME and kept["verdict"] == "allow"
    assert kept["sha256"] == hashlib.sha256(open(ME, "rb").read()).hexdigest()
    token = eventually(lambda: ManagedIdentityCredential().get_token(ARM_SCOPE).token, "the allow")
    assert token == own
    listed = json.loads(run("--json", "clients").stdout)
    assert listed["require_approval"] is True
    assert [(c["path"], c["verdict"]) for c in listed["clients"]] == [(ME, "allow")]
    assert run("clients", "-o", "tsv").stdout.split("\t")[:3] == ["allow", ME, kept["sha256"][:12]]
    table = run("clients").stdout.splitlines()
    assert table[1].split() == ["VERDICT", "PROGRAM", "SHA256", "DECIDED", "NOW"], table
    assert table[2].split()[:3] == ["allow", ME, kept["sha256"][:12]], table

    # Denied: refused, naming how to undo it.
    run("clients", "deny", ME)

    def denied():
        text = refusal(monkeypatch)
        assert "was denied tokens" in text, text
        return text
    assert "tokentray clients revoke" in eventually(denied, "the deny")

    # Forgotten: not approved again (asked, if there were a window).
    assert "Forgot the decision" in run("clients", "revoke", ME).stdout
    eventually(lambda: assert_not_approved(refusal(monkeypatch)), "the revoke")
    assert json.loads(run("--json", "clients").stdout)["clients"] == []

    # Bad input gets a clear error and changes nothing.
    missing = run("clients", "allow", "/nonexistent/tool", check=False)
    assert missing.returncode == 2 and "/nonexistent/tool" in missing.stderr, missing.stderr
    unknown = run("clients", "revoke", "/usr/bin/nothing-here", check=False)
    assert unknown.returncode == 2 and "no decision is kept" in unknown.stderr, unknown.stderr
    # The token itself never reaches a log.
    assert own not in log.read_text()


def assert_not_approved(text):
    assert "not approved" in text, text
