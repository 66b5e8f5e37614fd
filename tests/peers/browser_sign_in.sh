#!/bin/sh
# $BROWSER for tests: runs the Playwright driver with the project's venv, detached so the
# caller (the webbrowser crate) returns at once.
here=$(cd "$(dirname "$0")" && pwd)
python=${TOKENTRAY_PYTHON:-$here/../../.venv/bin/python}
nohup "$python" "$here/browser_sign_in.py" "$1" >/dev/null 2>&1 &
