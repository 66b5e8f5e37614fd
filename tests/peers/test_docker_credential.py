"""`docker-credential-tokentray`, docker's credential helper for Azure Container Registry.

A small HTTPS server plays a registry's `/oauth2/exchange`: it hands out a refresh token only for
the ARM token fake-entra issued to Alice, for its own `service` name and Alice's tenant, as ACR
does. tokentray, run by the helper's name as docker runs it, answers `get` for that registry with
the registry's token under ACR's token user name, says "credentials not found" for other hosts,
and answers `list`, `store`, `erase` and `version` as the protocol asks. The registry's token (a
JWT with ACR's three-hour `exp`) is kept, encrypted, until 10 minutes before it expires: a second
`get` asks the registry nothing; one that expires sooner, or one with no `exp`, is not kept.
"""
import base64
import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

import fake_entra_helpers as fe
import tokentray_helpers as tt

ARM = "https://management.core.windows.net//.default"
TOKEN_USER = "00000000-0000-0000-0000-000000000000"


class Registry(tt.JsonHandler):
    """ACR's token exchange: `expected` (access token, tenant); `issued` counts."""
    expected = None
    service = None
    issued = []
    lifetime = 3 * 3600
    jwt = True

    @classmethod
    def token(cls):
        """A refresh token shaped like ACR's: a JWT whose `exp` is `lifetime` from now."""
        n = len(cls.issued) + 1
        if not cls.jwt:
            return f"acr-refresh-{n}"
        part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
        claims = {"jti": f"acr-refresh-{n}", "exp": int(time.time()) + cls.lifetime,
                  "grant_type": "refresh_token", "aud": cls.service}
        return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        cls = type(self)
        ok = (self.path == "/oauth2/exchange" and form.get("grant_type") == "access_token"
              and form.get("service") == cls.service
              and (form.get("access_token"), form.get("tenant")) == cls.expected)
        if ok:
            cls.issued.append(cls.token())
            status, body = 200, {"refresh_token": cls.issued[-1]}
        else:
            status, body = 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad exchange"}]}
        self.send_json(status, body)


@pytest.fixture
def registry(tmp_path, fake_entra):
    """Alice signed in, the registry configured: (helper, env, registry host)."""
    server, cert = tt.https_server(tmp_path / "registry", Registry)
    host = f"127.0.0.1:{server.server_address[1]}"
    home = tmp_path / "home"
    (home / "config").mkdir(mode=0o700, parents=True)
    (home / "config" / "config.toml").write_text(f'[docker]\nhosts = ["{host}"]\n')
    bundle = tmp_path / "roots.pem"
    bundle.write_text(fake_entra.ca_path.read_text() + cert.read_text())
    env = tt.environment(home, fake_entra, TOKENTRAY_CA_FILE=str(bundle))
    tt.sign_in(env, fake_entra)
    arm = subprocess.run([tt.BIN, "token", "--scope", ARM, "--format", "raw"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    Registry.expected, Registry.service, Registry.issued = (arm, fe.jwt_claims(arm)["tid"]), host, []
    Registry.lifetime, Registry.jwt = 3 * 3600, True
    helper = tmp_path / "bin" / "docker-credential-tokentray"
    helper.parent.mkdir()
    os.symlink(tt.BIN, helper)
    yield helper, env, host
    server.shutdown()


def run(helper, env, action, stdin=""):
    return subprocess.run([str(helper), action], env=env, input=stdin, capture_output=True, text=True,
                          timeout=60)


def test_get_answers_with_the_registry_s_token_for_alice(registry):
    helper, env, host = registry
    for sent in (host, f"https://{host}"):
        got = run(helper, env, "get", sent + "\n")
        assert got.returncode == 0, got.stdout + got.stderr
        answer = json.loads(got.stdout)
        assert answer == {"ServerURL": sent, "Username": TOKEN_USER, "Secret": Registry.issued[0]}
    assert len(Registry.issued) == 1, "the second get answers with the kept token"
    kept = (Path(env["TOKENTRAY_HOME"]) / "data" / "registry-tokens.bin").read_bytes()
    assert kept.startswith(b"TOKTRAY"), "kept encrypted, as the token cache is"
    assert Registry.issued[0].encode() not in kept and b"acr-refresh" not in kept


@pytest.mark.parametrize("lifetime, jwt", [(300, True), (3 * 3600, False)],
                         ids=["expiring-within-10-minutes", "no-exp"])
def test_a_token_that_cannot_last_is_not_kept(registry, lifetime, jwt):
    helper, env, host = registry
    Registry.lifetime, Registry.jwt = lifetime, jwt
    for n in (1, 2):
        got = run(helper, env, "get", host + "\n")
        assert got.returncode == 0, got.stdout + got.stderr
        assert json.loads(got.stdout)["Secret"] == Registry.issued[-1]
        assert len(Registry.issued) == n


def test_other_hosts_are_not_found_and_the_other_actions_answer(registry):
    helper, env, _ = registry
    other = run(helper, env, "get", "ghcr.io\n")
    assert (other.returncode, other.stdout) == (1, "credentials not found in native keychain\n")
    assert Registry.issued == [], "nothing was exchanged for another host"
    assert run(helper, env, "list").stdout == "{}\n"
    for action, stdin in (("store", json.dumps({"ServerURL": "x", "Username": "u", "Secret": "s"})),
                          ("erase", "x\n")):
        p = run(helper, env, action, stdin)
        assert (p.returncode, p.stdout) == (0, ""), p.stderr
    assert run(helper, env, "version").stdout.startswith("tokentray ")


def test_a_refused_exchange_says_what_to_check_on_stdout(registry):
    helper, env, host = registry
    Registry.expected = ("someone else's token", "t")
    refused = run(helper, env, "get", host + "\n")
    assert refused.returncode == 1
    assert refused.stdout.startswith("tokentray: ") and "AcrPull" in refused.stdout, refused.stdout
    assert Registry.issued == []
