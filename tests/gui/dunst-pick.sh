#!/bin/sh
# dunst's "dmenu": given the context menu's lines ("#Label (summary) [id,action]") on stdin,
# picks the action named in $XDG_RUNTIME_DIR/dunst-choice of the newest notification offering
# it, as a user clicking it would.
choice=$(cat "$XDG_RUNTIME_DIR/dunst-choice" 2>/dev/null)
grep -F ",$choice]" | sed 's/.*\[\([0-9]*\),.*/\1 &/' | sort -n | tail -n 1 | cut -d' ' -f2-
