"""fake-entra's sign-in page in a real browser: Debian's headless Chromium driven by Playwright
(never a downloaded browser), trusting exactly the fake's server key, completes the
authorization-code flow MSAL Python started, with query and form_post delivery."""
import base64
import hashlib
import http.server
import os
import ssl
import threading
import urllib.parse

import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import sync_playwright

from fake_entra_helpers import ALICE, ARM, AZURE_CLI

CHROMIUM = "/usr/bin/chromium"


class Loopback:
    """What MSAL's loopback listener would be: records the authorization response."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self, fields):
                if urllib.parse.urlsplit(self.path).path != "/callback":
                    # e.g. /favicon.ico: not an authorization response, as MSAL's listener sees it.
                    self.send_error(404)
                    return
                received.append((self.command, dict(urllib.parse.parse_qsl(fields))))
                body = b"<html><title>Done</title><body>Authentication complete.</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._record(urllib.parse.urlsplit(self.path).query)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                self._record(self.rfile.read(length).decode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # The Azure CLI's app registration lists http://localhost only (fake-entra refuses
        # 127.0.0.1 for it, as Entra does).
        self.url = f"http://localhost:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def spki_pin(fake):
    """base64 SHA-256 of the fake's server public key, fetched over TLS verified by its CA."""
    host, port = fake.host.split(":")
    pem = ssl.get_server_certificate((host, int(port)), ca_certs=str(fake.ca_path))
    key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.mark.parametrize("response_mode", [None, "form_post"])
def test_sign_in_page_in_headless_chromium(fake_entra, tmp_path, response_mode):
    loopback = Loopback()
    app = msal.PublicClientApplication(AZURE_CLI, authority=fake_entra.authority(),
                                       instance_discovery=False, http_client=fake_entra.session())
    flow = app.initiate_auth_code_flow(scopes=[ARM], redirect_uri=loopback.url,
                                       response_mode=response_mode)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--disable-quic",
                      # Trust exactly this run's server key, nothing else.
                      f"--ignore-certificate-errors-spki-list={spki_pin(fake_entra)}"],
                # Chromium's dot-files go to the test's directory, not the user's home.
                env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
                     "XDG_CACHE_HOME": str(tmp_path / "cache")},
            )
            try:
                page = browser.new_page()
                page.goto(flow["auth_uri"])
                assert page.title() == "Sign in to your account"

                page.fill("input[name=username]", ALICE[0])
                page.fill("input[name=password]", "not-the-password")
                page.click("button[value=signin]")
                assert "AADSTS50126" in page.inner_text("#error")

                page.fill("input[name=password]", ALICE[1])
                page.press("input[name=password]", "Enter")  # the default button signs in
                page.wait_for_url(loopback.url + "**")
                assert "Authentication complete" in page.content()
            finally:
                browser.close()
    finally:
        loopback.close()

    assert len(loopback.received) == 1, loopback.received
    method, response = loopback.received[0]
    assert method == ("POST" if response_mode == "form_post" else "GET")
    assert response["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == ALICE[0]
