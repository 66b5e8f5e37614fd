"""`make demo` (tests/demo.sh): fake-entra and the real tray app in a throwaway home, and the
lines it prints for a second terminal, which point the CLI and tools at the demo."""
import json
import os
import re
import signal
import subprocess

from conftest import ROOT, free_port


def test_the_demo_says_how_to_point_a_second_terminal_at_it(tmp_path):
    port = free_port()
    demo = subprocess.Popen(["bash", str(ROOT / "tests" / "demo.sh")], cwd=ROOT, text=True,
                            env={**os.environ, "TOKENTRAY_DEMO_PORT": str(port), "BROWSER": "true"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        printed = []
        for line in demo.stdout:
            printed.append(line)
            if line.strip() == 'eval "$(tokentray env)"':
                break
        text = "".join(printed)
        lines = text[text.index("  export TOKENTRAY_HOME="):]
        assert f"TOKENTRAY_PORT='{port}'" in lines, text
        # A second terminal: the session's environment, no TOKENTRAY_* but what the demo printed.
        terminal = {k: v for k, v in os.environ.items() if not k.startswith("TOKENTRAY_")}
        script = lines + ("\nuntil tokentray status --json | grep -q '\"pid\"'; do sleep 0.2; done"
                          "\ntokentray status --json\nenv | grep ^IDENTITY_ENDPOINT=\n")
        shell = subprocess.run(["timeout", "60", "bash", "-c", script], env=terminal,
                               capture_output=True, text=True, timeout=90)
        assert shell.returncode == 0, shell
        status_text, identity = shell.stdout.rsplit("}\n", 1)
        status = json.loads(status_text + "}")
        assert status["instance"]["url"] == f"http://127.0.0.1:{port}", shell
        demo_home = re.search(r"TOKENTRAY_HOME='([^']+)'", lines).group(1)
        assert status["config_file"].startswith(demo_home), "the demo's home, not the user's own"
        assert identity.strip() == f"IDENTITY_ENDPOINT=http://127.0.0.1:{port}/msi/token", shell
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        try:
            demo.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
