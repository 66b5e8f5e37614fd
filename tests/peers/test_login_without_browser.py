"""`tokentray login` where no browser can do the sign-in: over SSH (the loopback redirect would
go to this machine, not the user's), a browser command that fails at once, no browser command
at all. Each fails at once, exit 2, saying to use `--device-code`; a browser command that does
its job and exits is reaped, not left defunct."""
import signal
import subprocess
import time
from pathlib import Path

import tokentray_helpers as tt
from tokentray_helpers import BIN


def login(env, **extra):
    started = time.monotonic()
    p = subprocess.run([BIN, "login"], env={**env, **extra}, capture_output=True, text=True, timeout=60)
    return p, time.monotonic() - started


def test_over_ssh_it_says_to_use_a_device_code(tmp_path, fake_entra):
    env = tt.environment(tmp_path / "home", fake_entra)
    p, took = login(env, SSH_CONNECTION="192.0.2.7 50000 192.0.2.1 22", BROWSER="true")
    assert p.returncode == 2 and took < 10, p
    assert "SSH session" in p.stderr and "tokentray login --device-code" in p.stderr, p.stderr
    assert "Opening your browser" not in p.stderr, "no browser is tried"


def test_a_browser_that_fails_at_once_or_is_missing_ends_the_sign_in(tmp_path, fake_entra):
    env = {k: v for k, v in tt.environment(tmp_path / "home", fake_entra).items() if not k.startswith("SSH_")}
    failing, took = login(env, BROWSER="false")
    assert failing.returncode == 2 and took < 15, failing
    assert "the browser did not start (`false` exited at once" in failing.stderr, failing.stderr
    assert "--device-code" in failing.stderr and "BROWSER" in failing.stderr
    assert "http" in failing.stderr, "the address was shown, to open by hand"
    missing, _ = login(env, BROWSER=str(tmp_path / "no-such-browser"))
    assert missing.returncode == 2 and "could not start a browser" in missing.stderr, missing
    assert "--device-code" in missing.stderr


def children(pid):
    return [c for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]


def test_a_browser_command_that_hands_the_page_on_is_reaped(tmp_path, fake_entra):
    env = {k: v for k, v in tt.environment(tmp_path / "home", fake_entra).items() if not k.startswith("SSH_")}
    p = subprocess.Popen([BIN, "login"], env={**env, "BROWSER": "true"}, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (tmp_path / "home").exists():
            time.sleep(0.05)
        time.sleep(1.5)  # `true` has exited by now; a process nobody waits for stays a zombie
        assert p.poll() is None, "still waiting for the redirect"
        assert children(p.pid) == [], "no defunct browser process"
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
    assert "cancelled" in p.stderr.read().lower()
