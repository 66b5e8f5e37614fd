"""Running fake-entra (target/debug/fake-entra) and using it as a browser and a test would.

The fake prints its base URL as the first stdout line once it accepts connections, and has
written its CA (`--ca-out`) by then. Everything here trusts that CA explicitly.
"""
import base64
import json
import os
import queue
import subprocess
import threading
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("FAKE_ENTRA_BIN", ROOT / "target" / "debug" / "fake-entra"))

AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
ARM = "https://management.core.windows.net//.default"
ARM_GRANTED = ARM + " https://management.core.windows.net//user_impersonation"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ALICE = ("alice@contoso.example", "Correct-Horse-7")
BOB = ("bob@fabrikam.example", "Battery-Staple-9")


def b64(obj):
    """`obj` as JSON in unpadded base64url, as JWT parts and `client_info` carry it."""
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def id_token(client_id, oid, tid, username, name, iat, exp):
    """An id_token shaped like Entra's (issuer login.microsoftonline.com) with a dummy
    signature: for token responses fed to MSAL without a network."""
    claims = {"aud": client_id, "iss": f"https://login.microsoftonline.com/{tid}/v2.0", "iat": iat,
              "nbf": iat, "exp": exp, "oid": oid, "sub": "sub-" + oid, "tid": tid,
              "preferred_username": username, "name": name, "ver": "2.0"}
    return b64({"alg": "RS256", "typ": "JWT"}) + "." + b64(claims) + ".c2lnbmF0dXJl"


def jwt_claims(token):
    """The payload of a JWT (no verification: the Rust tests check signatures)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Forms(HTMLParser):
    """Every <form> on a page: method, action, fields (name -> value) and submit buttons."""

    def __init__(self, text):
        super().__init__()
        self.forms = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"method": (a.get("method") or "get").lower(),
                               "action": a.get("action") or "", "fields": {}, "buttons": []})
        elif self.forms and tag == "input" and a.get("name"):
            if a.get("type") == "submit":
                self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))
            else:
                self.forms[-1]["fields"][a["name"]] = a.get("value") or ""
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value", "")))


def only_form(text):
    forms = Forms(text).forms
    assert len(forms) == 1, f"expected one form, got {len(forms)}: {text}"
    return forms[0]


class FakeEntra:
    """A running fake-entra process."""

    def __init__(self, process, url, ca_path):
        self.process = process
        self.url = url
        self.host = url.removeprefix("https://")
        self.ca_path = ca_path

    def session(self):
        """A requests session that trusts only the fake's CA (see conftest for REQUESTS_CA_BUNDLE)."""
        s = requests.Session()
        s.verify = str(self.ca_path)
        return s

    def authority(self, tenant="organizations"):
        return f"{self.url}/{tenant}"

    # -- /_fake/ control API ------------------------------------------------------------------
    def control(self, method, path, body=None):
        r = self.session().request(method, self.url + "/_fake/" + path, json=body, timeout=10)
        return r.status_code, (r.json() if r.content else None)

    def log(self):
        return self.control("GET", "log")[1]["entries"]

    def clear_log(self):
        assert self.control("DELETE", "log")[0] == 204

    def queue_fault(self, rule):
        status, body = self.control("POST", "faults", rule)
        assert status == 201, body

    def revoke(self, username):
        status, body = self.control("POST", "revoke", {"username": username})
        assert status == 200, body
        return body

    def advance_clock(self, secs):
        return self.control("POST", "clock", {"advance_secs": secs})[1]

    def users(self):
        return {u["username"]: u for u in self.control("GET", "users")[1]["users"]}

    # -- what a user does in a browser ---------------------------------------------------------
    def approve_device_code(self, user_code, username, password, action="approve"):
        """Fills /devicelogin as a browser would and presses the `action` button."""
        s = self.session()
        page = s.get(self.url + "/devicelogin", timeout=10)
        page.raise_for_status()
        form = only_form(page.text)
        assert ("action", "approve") in form["buttons"] and ("action", "decline") in form["buttons"]
        fields = dict(form["fields"], user_code=user_code, username=username, password=password)
        fields["action"] = action
        r = s.post(urllib.parse.urljoin(page.url, form["action"]), data=fields, timeout=10)
        r.raise_for_status()
        assert 'id="error"' not in r.text, r.text
        return r.text

    def sign_in(self, auth_uri, username, password, action="signin", session=None):
        """Opens the sign-in page, submits the form as a browser would, and returns the
        authorization response delivered to the loopback redirect (query, fragment or
        form_post), without following it."""
        s = session or self.session()
        page = s.get(auth_uri, timeout=10)
        assert page.status_code == 200, page.text
        form = only_form(page.text)
        assert form["method"] == "post"
        assert {"username", "password"} <= set(form["fields"])
        fields = dict(form["fields"], username=username, password=password, action=action)
        r = s.post(urllib.parse.urljoin(page.url, form["action"]), data=fields,
                   allow_redirects=False, timeout=10)
        return self.authorization_response(r)

    @staticmethod
    def authorization_response(r):
        """The fields a loopback listener would receive from this response."""
        if r.status_code == 302:
            target = urllib.parse.urlsplit(r.headers["Location"])
            assert target.scheme == "http" and target.hostname in ("localhost", "127.0.0.1"), target
            return dict(urllib.parse.parse_qsl(target.query or target.fragment))
        assert r.status_code == 200, r.text
        form = only_form(r.text)  # form_post: an auto-submitting form to the redirect URI
        assert form["method"] == "post" and "document.forms[0].submit()" in r.text
        response = dict(form["fields"])
        response["_action"] = form["action"]
        return response

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


def start(workdir, *args, timeout=60):
    """Starts `fake-entra --port 0 --ca-out workdir/ca.pem ARGS` and waits for its URL."""
    if not BIN.exists():
        raise RuntimeError(f"{BIN} is missing: build it with "
                           "`cargo build -p tokentray-tests --bin fake-entra` (make test does)")
    workdir.mkdir(parents=True, exist_ok=True)
    ca_path = workdir / "fake-entra-ca.pem"
    process = subprocess.Popen([str(BIN), "--port", "0", "--ca-out", str(ca_path), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = queue.Queue()
    threading.Thread(target=lambda: first.put(process.stdout.readline()), daemon=True).start()
    try:
        line = first.get(timeout=timeout).strip()
    except queue.Empty:
        process.kill()
        raise RuntimeError("fake-entra printed no URL within %ss" % timeout)
    if not line.startswith("https://"):
        process.wait(timeout=10)
        raise RuntimeError(f"fake-entra did not start: {line!r} {process.stderr.read()}")
    return FakeEntra(process, line, ca_path)
