"""Fixtures of the window suite: fake-entra, the app's environment, tauri-driver, sessions.

tests/gui/run.sh provides the X server, the D-Bus session, the unlocked keyring and dunst.
tauri-driver starts the app (TOKENTRAY_BIN) for each WebDriver session, with tauri-driver's
own environment: that is how the app gets pointed at fake-entra and a throwaway home.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.options import ArgOptions

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
import fake_entra_helpers as fe  # noqa: E402

# The tray app, and the CLI (`tokentray`) that starts it when run without a subcommand.
APP = Path(os.environ.get("TOKENTRAY_APP", ROOT / "target" / "debug" / "tokentray-app"))
CLI = Path(os.environ.get("TOKENTRAY_BIN", ROOT / "target" / "debug" / "tokentray"))
TAURI_DRIVER = Path(os.environ.get("TAURI_DRIVER", ROOT / ".tools" / "bin" / "tauri-driver"))
OUT = Path(os.environ.get("TOKENTRAY_TEST_OUTPUT", ROOT / "target" / "test-output" / "gui"))
ALICE = ("alice@contoso.example", "Correct-Horse-7")
BOB = ("bob@fabrikam.example", "Battery-Staple-9")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """fake-entra with Alice and Bob; device codes may be polled every second."""
    started = fe.start(tmp_path_factory.mktemp("fake-entra"),
                       "--user", f"{ALICE[0]}:{ALICE[1]}", "--user", f"{BOB[0]}:{BOB[1]}",
                       "--device-code-interval", "1")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The app's TOKENTRAY_HOME: kept across the sessions of a module (restarts)."""
    return tmp_path_factory.mktemp("tokentray-home")


@pytest.fixture(scope="module")
def app_env(fake, home):
    """The environment tauri-driver hands the app: fake-entra as the authority and ARM, the Secret
    Service store, a free endpoint port, and $BROWSER = headless Chromium signing in as Bob."""
    OUT.mkdir(parents=True, exist_ok=True)
    return {
        "TOKENTRAY_HOME": str(home),
        "TOKENTRAY_AUTHORITY": fake.url,
        # fake-entra's ARM too: the app lists tenant names and subscriptions there.
        "TOKENTRAY_ARM_ENDPOINT": fake.url,
        "TOKENTRAY_CA_FILE": str(fake.ca_path),
        "TOKENTRAY_STORE": "secret-service",
        "TOKENTRAY_PORT": str(free_port()),
        "BROWSER": str(ROOT / "tests" / "peers" / "browser_sign_in.sh"),
        "SIGNIN_USER": BOB[0],
        "SIGNIN_PASSWORD": BOB[1],
        # "Sign in again" for Alice hints her: the browser signs in as the hinted account.
        "SIGNIN_ACCOUNTS": json.dumps({ALICE[0]: ALICE[1], BOB[0]: BOB[1]}),
        "SIGNIN_LOG": str(OUT / "browser.log"),
        "TOKENTRAY_LOG": "warn,tokentray::audit=info",
    }


@pytest.fixture(scope="module")
def driver_url(app_env):
    """tauri-driver on a free port, with the app's environment."""
    if not TAURI_DRIVER.exists():
        pytest.fail(f"{TAURI_DRIVER} is missing: `make test` installs it "
                    "(cargo install tauri-driver --version ^2 --locked --root .tools)")
    port, native = free_port(), free_port()
    log = open(OUT / "tauri-driver.log", "ab")
    process = subprocess.Popen([str(TAURI_DRIVER), "--port", str(port), "--native-port", str(native)],
                               env={**os.environ, **app_env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(url + "/status", timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"tauri-driver did not start; see {OUT / 'tauri-driver.log'}")
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture
def launch(driver_url, home):
    """Starts the app in a WebDriver session; every session is ended after the test, and the
    app with it (see `stop_leftover_app`)."""
    sessions = []

    def start():
        options = ArgOptions()
        options.set_capability("browserName", "wry")
        options.set_capability("tauri:options", {"application": str(APP), "args": []})
        driver = webdriver.Remote(command_executor=driver_url, options=options)
        sessions.append(driver)
        return driver

    yield start
    for driver in sessions:
        try:
            driver.quit()
        except Exception:  # noqa: BLE001 - already ended by the test
            pass
    if sessions:
        stop_leftover_app(home)


def stop_leftover_app(home):
    """Waits for the app of an ended session to exit (it withdraws endpoint.json), and stops
    it if it does not: the next test's app would otherwise find it running and, being a
    single instance, only focus it and exit."""
    endpoint = home / "run" / "endpoint.json"
    deadline = time.monotonic() + 10
    while endpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not endpoint.exists():
        return
    pid = json.loads(endpoint.read_text())["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while endpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
