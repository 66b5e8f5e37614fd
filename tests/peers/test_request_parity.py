"""Request parity: tokentray puts on the wire what MSAL Python puts there, flow by flow.

A logging TLS proxy (wire_proxy.py) stands between each client and fake-entra. The same flow is
run with MSAL Python 1.39 (the reference implementation: Azure CLI and azure-identity ride on it)
and with tokentray; then every request of one is compared with the same request of the other:
which requests are made, the tenant in the path, every query and form parameter, every header and
their values. Values that are new per request (codes, verifiers, state, nonce, request ids) are
compared for presence only. Every other difference fails the test unless the allow-list below
names it with the reason; an allow-list entry that no longer matches anything fails too, so the
list stays short and true.
"""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

import msal
import pytest
import requests

import tokentray_helpers as tt
from fake_entra_helpers import ALICE, ARM, AZURE_CLI
from wire_proxy import WireProxy

GRAPH = "https://graph.microsoft.com/.default"
VAULT = "https://vault.azure.net/.default"
# Azure PowerShell's client id, another member of the family of client ids.
POWERSHELL = "1950a258-227b-4e31-a9cf-717495945fc2"

DEVICECODE = "POST /oauth2/v2.0/devicecode"
DEVICE_GRANT = "POST /oauth2/v2.0/token urn:ietf:params:oauth:grant-type:device_code"
CODE_GRANT = "POST /oauth2/v2.0/token authorization_code"
REFRESH_GRANT = "POST /oauth2/v2.0/token refresh_token"
AUTHORIZE = "GET /oauth2/v2.0/authorize"
OIDC = "GET /v2.0/.well-known/openid-configuration"
TOKEN_STEPS = {DEVICECODE, DEVICE_GRANT, CODE_GRANT, REFRESH_GRANT}
# The test's own browser posting fake-entra's sign-in form: not a client's request.
SIGN_IN_FORM = "POST /oauth2/v2.0/authorize"

# New in every request: compared for presence, never for value.
PER_REQUEST = {"code", "code_verifier", "code_challenge", "state", "nonce", "device_code",
               "refresh_token", "client-request-id", "content-length"}

# What may differ, where, and why. Each entry: (the steps it applies to, "param NAME" /
# "header NAME" / "step" / "tenant", the reason). Keep it short: every line is a place where
# Entra sees tokentray differently from MSAL.
ALLOWED = [
    ({OIDC}, "step",
     "MSAL reads the tenant's OpenID configuration before its first request of a process; "
     "tokentray builds the endpoints from the authority (Entra's fixed v2.0 layout) and skips "
     "the round trip"),
    ({AUTHORIZE}, "param prompt",
     "tokentray asks select_account, as `az login` does (azure-cli auth/identity.py), so the "
     "browser offers its other signed-in accounts; MSAL's default sends no prompt"),
    (TOKEN_STEPS, "header x-client-sku",
     "the library's name: MSAL.Python there, tokentray here (Entra logs it; nothing keys on it)"),
    (TOKEN_STEPS, "header x-client-ver", "the library's version, as above"),
    (TOKEN_STEPS, "header user-agent",
     "python-requests/… there, tokentray/… here; Entra does not read it"),
    (TOKEN_STEPS, "header x-client-current-telemetry",
     "MSAL's server-side telemetry counters (schema 4: API id and force-refresh flag); "
     "optional, tokentray keeps no such counters"),
    (TOKEN_STEPS, "header x-client-last-telemetry",
     "MSAL's telemetry of its previous failed calls; optional, as above"),
    ({DEVICECODE}, "header accept",
     "MSAL's device-code request goes out with requests' default */*; its token requests, and "
     "all of tokentray's, ask for application/json; Entra answers JSON either way"),
    ({DEVICE_GRANT}, "param code",
     "MSAL repeats the device code as `code` (its 2018 workaround for the v1 endpoint); Entra's "
     "v2.0 endpoint reads `device_code` (RFC 8628 3.4)"),
    (TOKEN_STEPS, "header connection",
     "transport: requests says keep-alive; reqwest speaks HTTP/1.1, where that is the default"),
    (TOKEN_STEPS, "header accept-encoding",
     "transport: requests offers gzip and deflate; tokentray's client takes answers as they "
     "come (a token answer is ~4 KB)"),
]


def step_of(request):
    """What a request does, without its tenant: e.g. "POST /oauth2/v2.0/token refresh_token"."""
    parts = request.path.split("/", 2)
    rest = "/" + parts[2] if len(parts) > 2 else request.path
    grant = request.form.get("grant_type")
    return f"{request.method} {rest}" + (f" {grant}" if grant else "")


def tenant_of(request):
    return request.path.split("/")[1]


def canonical(name, value, users):
    """A value as it is compared: scope sets, claims as JSON, the loopback port left out, and
    each test user's tenant and object id by role."""
    if name == "scope":
        return sorted(value.split())
    if name == "claims":
        return json.loads(value)
    if name == "redirect_uri":
        return re.sub(r":\d+", ":PORT", value)
    for role, actual in users.items():
        value = value.replace(actual, role)
    return value


def differences(msal_requests, ours, users):
    """Every difference between MSAL's requests and tokentray's, as (step, field, text). Each
    step is compared on its last request (device-code polling repeats one)."""
    theirs = {step_of(r): r for r in msal_requests if step_of(r) != SIGN_IN_FORM}
    mine = {step_of(r): r for r in ours if step_of(r) != SIGN_IN_FORM}
    found = []
    for step in sorted(set(theirs) | set(mine)):
        if step not in theirs or step not in mine:
            who = "MSAL" if step in theirs else "tokentray"
            found.append((step, "step", f"only {who} makes this request"))
            continue
        a, b = theirs[step], mine[step]
        if canonical("tenant", tenant_of(a), users) != canonical("tenant", tenant_of(b), users):
            found.append((step, "tenant", f"MSAL {tenant_of(a)!r}, tokentray {tenant_of(b)!r}"))
        for kind, left, right in (("param", a.params, b.params), ("header", a.headers, b.headers)):
            for name in sorted(set(left) | set(right)):
                if name not in left or name not in right:
                    where = "MSAL" if name in left else "tokentray"
                    found.append((step, f"{kind} {name}", f"only {where} sends it"))
                elif name not in PER_REQUEST and name != "host":
                    x, y = canonical(name, left[name], users), canonical(name, right[name], users)
                    if x != y:
                        found.append((step, f"{kind} {name}", f"MSAL {x!r}, tokentray {y!r}"))
    return found


def assert_parity(msal_requests, ours, users, expect_steps):
    """No difference outside the allow-list, no allow-list entry unused for the steps compared,
    and the flow made at least `expect_steps` (so an empty capture cannot pass)."""
    theirs, mine = {step_of(r) for r in msal_requests}, {step_of(r) for r in ours}
    assert expect_steps <= mine, ours
    assert expect_steps <= theirs, msal_requests
    used, unexplained = set(), []
    for step, field, text in differences(msal_requests, ours, users):
        hits = {i for i, (where, f, _) in enumerate(ALLOWED) if step in where and f == field}
        used |= hits
        print(f"{step}: {field}: {text}" + (" (allowed)" if hits else ""))
        if not hits:
            unexplained.append(f"{step}: {field}: {text}")
    # An entry could have matched here if its steps were made (by both, for a field's entry).
    stale = [f"{field} for {sorted(where)}" for i, (where, field, _) in enumerate(ALLOWED)
             if i not in used and where & (theirs | mine if field == "step" else theirs & mine)]
    assert not unexplained, "requests differ from MSAL Python's:\n" + "\n".join(unexplained)
    assert not stale, "allow-list entries that match nothing any more:\n" + "\n".join(stale)


@pytest.fixture
def wire(tmp_path, fake_entra_factory, monkeypatch):
    """(proxy, fake, env): fake-entra behind the proxy (Azure CLI and Azure PowerShell in the
    family), requests trusting both, and tokentray's environment pointed at the proxy."""
    proxy = WireProxy(tmp_path / "proxy")
    fake = fake_entra_factory("--public-url", proxy.url, "--device-code-interval", "1",
                              "--foci-client", AZURE_CLI, "--foci-client", POWERSHELL)
    proxy.upstream = fake
    bundle = tmp_path / "both-cas.pem"
    bundle.write_text(proxy.ca_path.read_text() + fake.ca_path.read_text())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    env = tt.environment(tmp_path / "home", fake, TOKENTRAY_AUTHORITY=proxy.url,
                         TOKENTRAY_CA_FILE=str(proxy.ca_path))
    yield proxy, fake, env
    proxy.close()


def roles(fake):
    """The test user's tenant and object id, by role, for comparing values that name them."""
    alice = fake.users()[ALICE[0]]
    return {"{tid}": alice["tenant_id"], "{oid}": alice["oid"]}


def msal_app(proxy, client_id=AZURE_CLI, cache=None):
    return msal.PublicClientApplication(client_id, authority=proxy.url + "/organizations",
                                        instance_discovery=False, http_client=requests.Session(),
                                        token_cache=cache)


def msal_device_code(app, fake, scopes, claims=None):
    flow = app.initiate_device_flow(scopes=scopes, claims_challenge=claims)
    assert "user_code" in flow, flow
    fake.approve_device_code(flow["user_code"], *ALICE)
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    return result


def tokentray(env, *args, check=True):
    p = subprocess.run([tt.BIN, *args], env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert not check or p.returncode == 0, p.stderr
    return p


def test_device_code_sign_in(wire):
    proxy, fake, env = wire
    msal_device_code(msal_app(proxy), fake, [ARM])
    theirs = proxy.take()
    tt.sign_in(env, fake)
    ours = proxy.take()
    assert_parity(theirs, ours, roles(fake), {DEVICECODE, DEVICE_GRANT})


def browser_sign_in(tmp_path, run, fake):
    """Runs `run(env_extra)` (a client's interactive sign-in, in a thread) with $BROWSER a script
    that records the URL; signs in on that page through the proxy as a browser would and delivers
    the answer to the client's loopback listener."""
    url_file = tmp_path / "opened-url"
    url_file.unlink(missing_ok=True)
    browser = tmp_path / "record-url.sh"
    browser.write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > '{url_file}'\n")
    browser.chmod(0o755)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(done=run({"BROWSER": str(browser)})))
    thread.start()
    for _ in range(600):
        if url_file.exists() and url_file.read_text():
            break
        time.sleep(0.05)
    url = url_file.read_text()
    response = fake.sign_in(url, *ALICE, session=requests.Session())
    action = response.pop("_action", None)
    redirect = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["redirect_uri"][0]
    if action:
        requests.post(action, data=response, timeout=30)
    else:
        requests.get(redirect, params=response, timeout=30)
    thread.join(timeout=120)
    return outcome.get("done")


MSAL_INTERACTIVE = """
import json, sys, msal, requests
app = msal.PublicClientApplication(sys.argv[1], authority=sys.argv[2] + "/organizations",
                                   instance_discovery=False, http_client=requests.Session())
result = app.acquire_token_interactive([sys.argv[3]], timeout=90)
print(json.dumps(sorted(result)))
sys.exit(0 if "access_token" in result else 1)
"""


def test_browser_sign_in(wire, tmp_path):
    proxy, fake, env = wire

    def run_msal(extra):
        return subprocess.run([sys.executable, "-c", MSAL_INTERACTIVE, AZURE_CLI, proxy.url, ARM],
                              env={**os.environ, **extra}, capture_output=True, text=True,
                              timeout=120)

    done = browser_sign_in(tmp_path, run_msal, fake)
    assert done is not None and done.returncode == 0, done and (done.stdout + done.stderr)
    theirs = proxy.take()
    done = browser_sign_in(tmp_path, lambda extra: tokentray({**env, **extra}, "login", "--timeout",
                                                             "90", check=False), fake)
    assert done is not None and done.returncode == 0, done and done.stderr
    ours = proxy.take()
    assert_parity(theirs, ours, roles(fake), {AUTHORIZE, CODE_GRANT})


def test_refresh_for_a_second_resource(wire):
    proxy, fake, env = wire
    app = msal_app(proxy)
    msal_device_code(app, fake, [ARM])
    tt.sign_in(env, fake)
    proxy.take()
    result = app.acquire_token_silent([GRAPH], account=app.get_accounts()[0])
    assert result and "access_token" in result, result
    theirs = proxy.take()
    tokentray(env, "token", "--scope", GRAPH)
    ours = proxy.take()
    assert_parity(theirs, ours, roles(fake), {REFRESH_GRANT})


def test_family_refresh_token_for_another_client(wire):
    """FOCI: a sibling app (Azure PowerShell's id) redeems the Azure CLI's family refresh token."""
    proxy, fake, env = wire
    cache = msal.TokenCache()
    msal_device_code(msal_app(proxy, cache=cache), fake, [ARM])
    tt.sign_in(env, fake)
    proxy.take()
    sibling = msal_app(proxy, POWERSHELL, cache=cache)
    result = sibling.acquire_token_silent([VAULT], account=sibling.get_accounts()[0])
    assert result and "access_token" in result, result
    theirs = proxy.take()
    tokentray({**env, "TOKENTRAY_CLIENT_ID": POWERSHELL}, "token", "--scope", VAULT)
    ours = proxy.take()
    assert_parity(theirs, ours, roles(fake), {REFRESH_GRANT})
    assert {r.form.get("client_id") for r in ours if step_of(r) == REFRESH_GRANT} == {POWERSHELL}


def test_claims_round_trip(wire):
    """Key Vault requires MFA (Conditional Access): the refresh is refused with a claims
    challenge, and the sign-in that answers it sends the challenge as `claims`."""
    proxy, fake, env = wire
    app = msal_app(proxy)
    msal_device_code(app, fake, [ARM])
    tt.sign_in(env, fake)
    status, body = fake.control("POST", "policy", {"resource": "https://vault.azure.net",
                                                  "policy": "mfa"})
    assert status == 201, body
    proxy.take()

    refused = app.acquire_token_silent_with_error([VAULT], account=app.get_accounts()[0])
    assert refused and refused.get("claims"), refused
    msal_device_code(app, fake, [VAULT], claims=refused["claims"])
    theirs = proxy.take()

    assert tokentray(env, "token", "--scope", VAULT, check=False).returncode != 0
    login = subprocess.Popen([tt.BIN, "--json", "login", "--device-code"], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fake.approve_device_code(json.loads(login.stdout.readline())["user_code"], *ALICE)
    _, err = login.communicate(timeout=60)
    assert login.returncode == 0, err
    tokentray(env, "token", "--scope", VAULT)
    ours = proxy.take()
    assert_parity(theirs, ours, roles(fake), {REFRESH_GRANT, DEVICECODE, DEVICE_GRANT})
    asked = [r for r in ours if step_of(r) == DEVICECODE]
    assert asked and json.loads(asked[-1].form["claims"]) == json.loads(refused["claims"])
