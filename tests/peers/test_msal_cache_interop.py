"""tokentray's cache against the real MSAL Python, both directions.

- A cache MSAL Python writes (SerializableTokenCache.add of token responses, no network) is
  imported, and its accounts and valid access tokens are served by `tokentray token`.
- A cache tokentray exports is deserialized by MSAL Python and `search()` finds the same accounts
  and tokens.
- ARM's spellings (`R//.default` as Azure CLI asks, `R/.default` as azure-identity asks) are one
  token to tokentray, which normalises at lookup and writes entries as MSAL wrote them, so MSAL
  Python still finds each under its own spelling.
- The golden fixtures in tests/fixtures/msal_python are still what the installed MSAL writes.
"""
import importlib.util
import json
import os
import subprocess
import time
from pathlib import Path

import msal
import pytest

from fake_entra_helpers import b64, id_token

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("TOKENTRAY_BIN", str(ROOT / "target" / "debug" / "tokentray"))
CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ARM = "https://management.core.windows.net//.default"
ARM_GRANTED = ARM + " https://management.core.windows.net//user_impersonation"
GRAPH = "https://graph.microsoft.com/.default"


USERS = {
    "alice@contoso.example": ("11111111-aaaa-4aaa-8aaa-111111111111", "aaaaaaaa-0000-4000-8000-00000000000a"),
    "bob@fabrikam.example": ("22222222-bbbb-4bbb-8bbb-222222222222", "bbbbbbbb-0000-4000-8000-00000000000b"),
}


def msal_cache(grants=None):
    """A cache written by MSAL Python: by default Alice (ARM + Graph, FOCI) and Bob (ARM);
    `grants` is a list of (username, granted scope, realm[, expires_in])."""
    cache = msal.SerializableTokenCache()
    for username, scope, realm, *life in grants or [
            ("alice@contoso.example", ARM_GRANTED, "organizations"),
            ("alice@contoso.example", GRAPH, USERS["alice@contoso.example"][1]),
            ("bob@fabrikam.example", ARM_GRANTED, "organizations")]:
        oid, tid = USERS[username]
        now = int(time.time())
        expires_in = life[0] if life else 3600
        cache.add({
            "client_id": CLIENT,
            "scope": scope.split(),
            "token_endpoint": f"https://login.microsoftonline.com/{realm}/oauth2/v2.0/token",
            "environment": "login.microsoftonline.com",
            "grant_type": "authorization_code",
            "response": {
                "token_type": "Bearer", "scope": scope, "expires_in": expires_in, "ext_expires_in": expires_in,
                "access_token": f"at|{username}|{scope.split()[0]}", "refresh_token": f"rt|{username}",
                "id_token": id_token(CLIENT, oid, tid, username, username.split("@")[0].title(),
                                     iat=now, exp=now + 3600),
                "client_info": b64({"uid": oid, "utid": tid}), "foci": "1",
            },
        })
    return cache


@pytest.fixture
def home(tmp_path):
    """Runs tokentray in a private TOKENTRAY_HOME with the default (auto: encrypted) store."""
    env = dict(os.environ, TOKENTRAY_HOME=str(tmp_path / "home"))
    env.pop("TOKENTRAY_STORE", None)
    env["TOKENTRAY_AUTHORITY"] = "https://127.0.0.1:1"  # never the real Entra ID

    def run(*args, check=True):
        p = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=60)
        if check:
            assert p.returncode == 0, f"tokentray {args} failed: {p.stderr}"
        return p

    run.tmp = tmp_path
    return run


def test_msal_python_cache_is_imported_and_served(home):
    path = home.tmp / "msal_cache.json"
    path.write_text(msal_cache().serialize())
    home("cache", "import", str(path))

    status = json.loads(home("status", "--json").stdout)
    assert status["store"]["encrypted"], status
    accounts = json.loads(home("accounts", "--json").stdout)
    assert sorted(a["username"] for a in accounts) == sorted(USERS)

    for user in USERS:
        tok = json.loads(home("token", "--scope", ARM, "--account", user).stdout)
        assert tok["access_token"] == f"at|{user}|{ARM}"
    graph = home("token", "--scope", GRAPH, "--account", "alice@contoso.example",
                 "--tenant", USERS["alice@contoso.example"][1], "--format", "raw").stdout.strip()
    assert graph == f"at|alice@contoso.example|{GRAPH}"
    az = json.loads(home("token", "--resource", "https://management.core.windows.net/",
                         "--account", "bob@fabrikam.example", "--format", "az").stdout)
    assert az["accessToken"] == f"at|bob@fabrikam.example|{ARM}"
    assert isinstance(az["expires_on"], int)


def test_tokentray_export_is_read_by_msal_python(home):
    original = msal_cache()
    path = home.tmp / "msal_cache.json"
    path.write_text(original.serialize())
    home("cache", "import", str(path))
    out = home.tmp / "export.json"
    home("cache", "export", "--out", str(out))

    cache = msal.SerializableTokenCache()
    cache.deserialize(out.read_text())
    AT, RT, ACC = (msal.TokenCache.CredentialType.ACCESS_TOKEN, msal.TokenCache.CredentialType.REFRESH_TOKEN,
                   msal.TokenCache.CredentialType.ACCOUNT)

    def secrets(c, kind, **query):
        return sorted(e["secret"] for e in c.search(kind, query=query or None))

    for kind in (AT, RT):
        assert secrets(cache, kind) == secrets(original, kind)
    assert sorted(a["username"] for a in cache.search(ACC)) == sorted(a["username"] for a in original.search(ACC))
    # MSAL's own lookups (field matching, scope superset) find tokentray's entries.
    oid, tid = USERS["alice@contoso.example"]
    found = list(cache.search(AT, target=[ARM], query={
        "client_id": CLIENT, "environment": "login.microsoftonline.com", "realm": "organizations",
        "home_account_id": f"{oid}.{tid}"}))
    assert [e["secret"] for e in found] == [f"at|alice@contoso.example|{ARM}"]


ARM_SDK = "https://management.core.windows.net/.default"  # azure-identity's spelling


def test_arms_two_spellings_are_one_token_and_msal_still_finds_each(home):
    """MSAL wrote one token under each spelling. tokentray serves either request from the cache
    (the authority is unreachable, so a refresh would fail) with the longer-lived token, and its
    export keeps both entries as MSAL wrote them."""
    alice = "alice@contoso.example"
    path = home.tmp / "msal_cache.json"
    path.write_text(msal_cache([(alice, ARM, "organizations", 1800),
                                (alice, ARM_SDK, "organizations", 3600)]).serialize())
    home("cache", "import", str(path))
    served = {
        spelling: home("token", "--scope", spelling, "--format", "raw").stdout.strip()
        for spelling in (ARM, ARM_SDK)
    }
    by_resource = home("token", "--resource", "https://management.core.windows.net",
                       "--format", "raw").stdout.strip()
    assert set(served.values()) == {f"at|{alice}|{ARM_SDK}"} == {by_resource}, served

    # Only one spelling cached: the other request is served it too.
    path.write_text(msal_cache([(alice, ARM, "organizations")]).serialize())
    home("cache", "reset")
    home("cache", "import", str(path))
    assert home("token", "--scope", ARM_SDK, "--format", "raw").stdout.strip() == f"at|{alice}|{ARM}"

    # What tokentray writes back, MSAL Python finds under the spelling it was granted for.
    path.write_text(msal_cache([(alice, ARM, "organizations", 1800),
                                (alice, ARM_SDK, "organizations", 3600)]).serialize())
    home("cache", "reset")
    home("cache", "import", str(path))
    out = home.tmp / "export.json"
    home("cache", "export", "--out", str(out))
    cache = msal.SerializableTokenCache()
    cache.deserialize(out.read_text())
    AT = msal.TokenCache.CredentialType.ACCESS_TOKEN
    for spelling in (ARM, ARM_SDK):
        found = [e["secret"] for e in cache.search(AT, target=[spelling], query={"client_id": CLIENT})]
        assert f"at|{alice}|{spelling}" in found, (spelling, found)


def test_golden_fixtures_are_what_this_msal_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make", ROOT / "tests" / "fixtures" / "make_msal_fixtures.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    make.main.__globals__["sys"].argv = ["make", str(tmp_path)]
    make.main()
    committed = json.loads((ROOT / "tests/fixtures/msal_python/cache.json").read_text())
    fresh = json.loads((tmp_path / "cache.json").read_text())
    assert fresh == committed, "MSAL Python now writes a different cache: regenerate the fixtures and check tokentray"


def test_msal_python_finds_the_tokens_of_a_sign_in_to_a_tenant_domain(fake_entra, tmp_path):
    """`login --tenant contoso.example` records the tokens under the tenant's id, as MSAL does
    (its discovery turns the domain into the id's token endpoint), so MSAL Python, asked for
    that tenant by domain, finds tokentray's token without a request."""
    env = dict(os.environ, TOKENTRAY_HOME=str(tmp_path / "home"), TOKENTRAY_AUTHORITY=fake_entra.url,
               TOKENTRAY_CA_FILE=str(fake_entra.ca_path))
    env.pop("TOKENTRAY_STORE", None)

    def run(*args):
        p = subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    login = subprocess.Popen([BIN, "--json", "login", "--device-code", "--tenant", "contoso.example"],
                             env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fake_entra.approve_device_code(json.loads(login.stdout.readline())["user_code"],
                                   "alice@contoso.example", "Correct-Horse-7")
    assert login.wait(timeout=60) == 0, login.stderr.read()
    held = run("token", "--scope", ARM, "--tenant", "contoso.example", "--format", "raw").strip()

    cache = msal.SerializableTokenCache()
    cache.deserialize(run("cache", "export"))
    app = msal.PublicClientApplication(CLIENT, authority=fake_entra.authority("contoso.example"),
                                       instance_discovery=False, http_client=fake_entra.session(),
                                       token_cache=cache)
    fake_entra.clear_log()
    [account] = app.get_accounts(username="alice@contoso.example")
    result = app.acquire_token_silent([ARM], account=account)
    assert result and result.get("access_token") == held, result
    assert result.get("token_source") == "cache", result
    grants = [e for e in fake_entra.log() if e.get("grant_type")]
    assert grants == [], f"no token request: {grants}"
