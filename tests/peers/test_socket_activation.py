"""Socket activation: the port belongs to the user before `tokentray daemon` runs.

`systemd-socket-activate` (Debian's systemd package) plays the packaged `tokentray.socket`: it
listens on the endpoint's loopback addresses and starts `tokentray daemon` with the listening
sockets (LISTEN_FDS) on the first connection. The real azure-identity, pointed at the port with
the lines `tokentray env` printed while nothing ran, gets Alice's token on that first connection;
the daemon stops cleanly on SIGTERM. A socket on a non-loopback address is refused, never served.
"""
import json
import os
import signal
import socket
import subprocess
import time

import pytest
from azure.identity import ManagedIdentityCredential

import tokentray_helpers as tt
from test_endpoint_azure_identity import ARM_SCOPE, OTHER_IDENTITY_VARS
from tokentray_helpers import BIN

ACTIVATE = "/usr/bin/systemd-socket-activate"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def home(tmp_path, fake_entra):
    """Alice signed in; the configured port is a free one; nothing serves yet."""
    port = free_port()
    env = tt.environment(tmp_path / "home", fake_entra, port, TOKENTRAY_LOG="warn,tokentray::audit=info")
    tt.sign_in(env, fake_entra)
    return env, port, tmp_path / "home" / "run" / "endpoint.json"


def activated(env, tmp_path, *listen):
    """`systemd-socket-activate -l ADDR... tokentray daemon`, once it listens."""
    log = tmp_path / "activate.log"
    # It starts the daemon with only the variables named here (and LISTEN_*).
    passed = [f"--setenv={k}" for k in env if k.startswith(("TOKENTRAY_", "XDG_", "DBUS_")) or k == "HOME"]
    args = [ACTIVATE, *[f"--listen={a}" for a in listen], *passed, BIN, "daemon"]
    process = subprocess.Popen(args, env=env, stderr=open(log, "w"))
    for _ in range(200):
        if log.read_text().count("Listening on") == len(listen):
            return process, log
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"systemd-socket-activate did not listen: {log.read_text()}")


def test_the_first_connection_starts_the_daemon_and_gets_a_token(home, tmp_path, monkeypatch):
    env, port, endpoint = home
    lines = subprocess.run([BIN, "env"], env=env, capture_output=True, text=True, check=True).stdout
    for var in OTHER_IDENTITY_VARS:
        monkeypatch.delenv(var, raising=False)
    for line in lines.splitlines():
        name, value = line.removeprefix("export ").split("=", 1)
        monkeypatch.setenv(name, value.strip("'"))
    assert os.environ["IDENTITY_ENDPOINT"] == f"http://127.0.0.1:{port}/msi/token"
    held = subprocess.run([BIN, "token", "--scope", ARM_SCOPE, "--format", "raw"], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()

    listen = [f"127.0.0.1:{port}"]
    if socket.has_ipv6:
        listen.append(f"[::1]:{port}")
    process, log = activated(env, tmp_path, *listen)
    try:
        assert not endpoint.exists(), "the daemon starts on the first connection, not before"
        token = ManagedIdentityCredential().get_token(ARM_SCOPE)
        assert token.token == held
        published = json.loads(endpoint.read_text())
        # systemd-socket-activate execs the daemon: same process, sockets passed in.
        assert published["pid"] == process.pid
        assert published["url"] == f"http://127.0.0.1:{port}"
        text = tt.logged(log, "served route=/msi/token")
        assert "served route=/msi/token" in text, text
        assert held not in text
        # tokentray's own CLI finds it through endpoint.json, like any instance.
        status = subprocess.run([BIN, "token", "--scope", ARM_SCOPE, "--format", "raw"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert status.stdout.strip() == held, status.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    assert code == 0, log.read_text()
    assert not endpoint.exists(), "endpoint.json withdrawn at exit"
    assert "panicked" not in log.read_text()


def test_a_socket_other_machines_can_reach_is_refused(home, tmp_path):
    env, _, endpoint = home
    port = free_port()
    process, log = activated(env, tmp_path, f"0.0.0.0:{port}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.settimeout(10)
            try:
                answer = s.recv(1024)
            except ConnectionResetError:
                answer = b""
            assert answer == b"", "closed unanswered"
        code = process.wait(timeout=10)
    finally:
        process.kill()
    text = log.read_text()
    assert code == 2, text
    assert "which other machines can reach" in text, text
    assert "ListenStream=127.0.0.1:" in text, text
    assert not endpoint.exists()
