#!/usr/bin/env python3
"""A `$BROWSER` for tests: signs in on fake-entra's page in real headless Chromium.

tokentray (via the `webbrowser` crate) runs `browser_sign_in.sh URL`. This opens URL in Debian's
Chromium driven by Playwright, fills the sign-in form with $SIGNIN_USER / $SIGNIN_PASSWORD (or
clicks cancel when $SIGNIN_ACTION=cancel; a page whose login_hint names an account of
$SIGNIN_ACCOUNTS, a JSON object of username -> password, signs in as that one), submits, and waits until the browser lands on
tokentray's loopback page. Everything is logged to $SIGNIN_LOG (webbrowser discards output).
With $SIGNIN_INTERFERE=1 it first plays another program that found the listener's port: a
forged answer (wrong state; tokentray must refuse it with 400 and keep waiting) and a request
whose headers are never finished, held open for two minutes by a detached process.
Never downloads a browser: executable_path is /usr/bin/chromium.
"""
import json
import os
import socket
import subprocess
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        # fake-entra's CA is generated per run; this throwaway test profile trusts it blindly.
        "--ignore-certificate-errors"]


def log(msg):
    with open(os.environ.get("SIGNIN_LOG", "/tmp/tokentray-browser.log"), "a") as f:
        f.write(msg + "\n")


HOLD = """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /?code=x&state=y HTTP/1.1\\r\\nHost: loc")
time.sleep(120)
"""


def interfere(url):
    redirect = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["redirect_uri"][0]
    port = urllib.parse.urlparse(redirect).port
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/?code=forged&state=forged", timeout=10)
        log("forged answer: accepted (it must be refused)")
    except urllib.error.HTTPError as e:
        log(f"forged answer: refused with {e.code}: {e.read().decode(errors='replace')[:200]}")
    subprocess.Popen([sys.executable, "-c", HOLD, str(port)], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log("half-sent request: held open")


def main(url):
    if os.environ.get("SIGNIN_INTERFERE") == "1":
        interfere(url)
    user = os.environ.get("SIGNIN_USER", "")
    password = os.environ.get("SIGNIN_PASSWORD", "")
    action = os.environ.get("SIGNIN_ACTION", "approve")
    shot = os.environ.get("SIGNIN_SCREENSHOT")
    claims = urllib.parse.parse_qs(urllib.parse.urlparse(url).query).get("claims", [""])[0]
    log(f"opening authorize page (action={action}, claims={claims or 'none'})")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        page = browser.new_page(ignore_https_errors=True)
        page.goto(url)
        if shot:
            page.screenshot(path=shot)
        if action == "cancel":
            page.locator("[name=cancel], #cancel, a:has-text('Cancel'), button:has-text('Cancel')").first.click()
        else:
            # A sign-in for a known account (its login_hint prefills the page) signs in as it.
            hinted = page.input_value("input[name=username]")
            accounts = json.loads(os.environ.get("SIGNIN_ACCOUNTS") or "{}")
            if hinted in accounts:
                user, password = hinted, accounts[hinted]
            log(f"signing in as {user}")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            page.locator("form[method=post] [type=submit]").first.click()
        page.wait_for_url("http://localhost:*/**", timeout=30_000)
        page.wait_for_load_state()
        body = page.inner_text("body")
        log(f"landed on {page.url.split('?')[0]}: {body[:200]!r}")
        browser.close()


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception:  # noqa: BLE001 - the log is the only channel back to the test
        log("FAILED\n" + traceback.format_exc())
        sys.exit(1)
