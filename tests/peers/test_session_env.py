"""`tokentray env --install` / `--uninstall`: the SDKs' variables for every program of the
session, in a throwaway HOME and XDG_CONFIG_HOME.

What reads the file is systemd's own environment.d generator (the program the user manager runs
at login to build the session's environment), run here as it runs there; the program that then
gets a token is the real azure-identity, started with that environment alone, from a daemon that
systemd-socket-activate (playing tokentray.socket) starts on its first connection. No user
manager runs here, so `systemctl --user import-environment` is skipped (the test's XDG_RUNTIME_DIR
has no bus), as it is on any machine without one.
"""
import json
import os
import signal
import socket
import stat
import subprocess

import pytest

import tokentray_helpers as tt
from test_endpoint_azure_identity import ARM_SCOPE, OTHER_IDENTITY_VARS
from test_socket_activation import activated, free_port
from tokentray_helpers import BIN, ROOT, enable_socket

GENERATOR = "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator"


@pytest.fixture
def session(tmp_path, fake_entra):
    """Alice signed in, a fixed free port, and a session of our own: HOME, XDG_CONFIG_HOME and an
    XDG_RUNTIME_DIR with no user manager behind it."""
    port = free_port()
    config = tmp_path / "xdg-config"
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    env = tt.environment(tmp_path / "home", fake_entra, port, HOME=str(tmp_path), XDG_CONFIG_HOME=str(config),
                         XDG_RUNTIME_DIR=str(runtime), TOKENTRAY_LOG="warn,tokentray::audit=info")
    tt.sign_in(env, fake_entra)
    return env, port, config


def tokentray(env, *args):
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=60)


def generated(env):
    """The session environment systemd's generator builds from environment.d, as a dict."""
    out = subprocess.run([GENERATOR], env=env, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_without_the_socket_it_refuses_and_writes_nothing(session):
    env, port, config = session
    p = tokentray(env, "env", "--install")
    assert p.returncode == 2, p.stderr
    assert "tokentray.socket is not enabled" in p.stderr and "systemctl --user enable" in p.stderr, p.stderr
    assert not (config / "environment.d").exists()
    # A socket on another port is no better: it says which port to move.
    enable_socket(config, port + 1)
    p = tokentray(env, "env", "--install")
    assert p.returncode == 2 and f"port is {port}" in p.stderr, p.stderr
    assert not (config / "environment.d").exists()


def test_a_program_of_the_next_login_gets_tokens_and_uninstall_leaves_nothing(session, tmp_path):
    env, port, config = session
    enable_socket(config, port)
    p = tokentray(env, "env", "--install")
    assert p.returncode == 0, p.stderr
    written = config / "environment.d" / "60-tokentray.conf"
    assert f"wrote {written}" in p.stdout
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    secret = json.loads(tokentray(env, "env", "--json").stdout)["variables"]["IDENTITY_HEADER"]
    session_vars = generated(env)
    assert session_vars["IDENTITY_ENDPOINT"] == f"http://127.0.0.1:{port}/msi/token"
    assert session_vars["IDENTITY_HEADER"] == secret
    assert secret not in p.stdout + p.stderr, "the secret is never printed"

    # Installing again replaces the file; rotating the secret rewrites it.
    assert tokentray(env, "env", "--install").returncode == 0
    rotated = tokentray(env, "env", "--rotate")
    assert rotated.returncode == 0 and "new secret" in rotated.stderr, rotated.stderr
    session_vars = generated(env)
    assert session_vars["IDENTITY_HEADER"] != secret

    # A program started with the session's environment only (none of this test's variables):
    # azure-identity's DefaultAzureCredential, while nothing but the socket holds the port.
    listen = [f"127.0.0.1:{port}"] + ([f"[::1]:{port}"] if socket.has_ipv6 else [])
    process, log = activated(env, tmp_path, *listen)
    try:
        program = {k: v for k, v in os.environ.items() if k not in OTHER_IDENTITY_VARS}
        program.update(session_vars)
        got = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-c",
             "import sys; from azure.identity import DefaultAzureCredential as C; "
             "print(C().get_token(sys.argv[1]).token)", ARM_SCOPE],
            env=program, capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == tt.held(env, ARM_SCOPE)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    p = tokentray(env, "env", "--uninstall")
    assert p.returncode == 0 and f"removed {written}" in p.stdout, p.stderr
    assert not (config / "environment.d").exists(), "the directory it created goes too"
    assert "IDENTITY_ENDPOINT" not in generated(env)
    again = tokentray(env, "env", "--uninstall")
    assert again.returncode == 0 and "nothing to remove" in again.stdout, again.stdout


def test_uninstall_keeps_what_others_put_in_environment_d(session):
    env, port, config = session
    enable_socket(config, port)
    theirs = config / "environment.d" / "50-mine.conf"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("EDITOR=vim\n")
    assert tokentray(env, "env", "--install").returncode == 0
    assert generated(env)["EDITOR"] == "vim"
    assert tokentray(env, "env", "--uninstall").returncode == 0
    assert theirs.read_text() == "EDITOR=vim\n" and sorted(os.listdir(theirs.parent)) == ["50-mine.conf"]
