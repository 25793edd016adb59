#!/usr/bin/env bash
# Real-terminal smoke test: retort in tmux on a fresh store (the demo set), a few keys, quit;
# the decision must be in the store afterwards. Run by .ci/run after the tests built the binary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# The binary `cargo test` built: under CARGO_TARGET_DIR when it is set.
bin="${RETORT_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/retort}"
dir="$(mktemp -d)"
session="retort-smoke-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$dir"' EXIT

screen() { tmux capture-pane -p -t "$session"; }
wait_for() {
  for _ in $(seq 1 300); do
    if screen | grep -q -- "$1"; then return 0; fi
    sleep 0.1
  done
  echo "smoke: timed out waiting for '$1'; the screen was:" >&2
  screen >&2
  return 1
}

# A pager that keeps what it was shown, and tmux taking OSC 52 copies into its paste buffer.
printf '#!/bin/sh\ncat > "%s/paged"\n' "$dir" > "$dir/pager.sh" && chmod +x "$dir/pager.sh"
# An editor that rewrites the answer it is given.
printf '#!/bin/sh\nprintf "The answer is 42." > "$1"\n' > "$dir/editor.sh" && chmod +x "$dir/editor.sh"
tmux new-session -d -s "$session" -x 100 -y 30 "cd '$dir' && PAGER='$dir/pager.sh' EDITOR='$dir/editor.sh' '$bin'; echo \$? > '$dir/exit'; sleep 5"
tmux set-option -t "$session" -g set-clipboard on
wait_for "Samples"
wait_for "of 241"
tmux send-keys -t "$session" j        # move to sample #2
wait_for "2 of 241 · #2"
tmux send-keys -t "$session" a        # accept it (and move on)
wait_for "accepted 1"
tmux send-keys -t "$session" /        # fuzzy search
tmux send-keys -t "$session" -l hexagon
wait_for "matches"
tmux send-keys -t "$session" Enter    # narrow the list to what matched
wait_for 'matching search "hexagon"'
tmux send-keys -t "$session" c        # every sample again
wait_for "of 241 · #"
tmux send-keys -t "$session" '?'      # help opens, every tab's keys in it
wait_for "Keys · any other key closes"
tmux send-keys -t "$session" q        # q closes the help, and only the help
wait_for "? help"
tmux send-keys -t "$session" :        # the palette jumps to a sample by id
tmux send-keys -t "$session" -l '#140'
tmux send-keys -t "$session" Enter
wait_for "140 of 241 · #140"
tmux send-keys -t "$session" l        # read it: the pane has the keys
wait_for "▶ 140 of 241"
tmux send-keys -t "$session" /        # search inside the trace
tmux send-keys -t "$session" -l wait
tmux send-keys -t "$session" Enter
wait_for "match 1 of"
tmux send-keys -t "$session" G        # the end of the trace, not past it
wait_for "lines [0-9]*–\([0-9]*\) of \1 "
tmux send-keys -t "$session" y a      # copy the answer over OSC 52
wait_for "copied the answer of #140"
answer="$("$bin" --db "$dir/retort.db" list --where 'status = pending' --json | python3 -c '
import json, sys
for line in sys.stdin:
    s = json.loads(line)
    if s["id"] == 140:
        print(s["answer"], end="")')"
for _ in $(seq 1 50); do [ "$(tmux show-buffer 2>/dev/null)" = "$answer" ] && break; sleep 0.1; done
[ "$(tmux show-buffer)" = "$answer" ] || { echo "smoke: the clipboard does not hold #140's answer: $(tmux show-buffer | head -c 200)" >&2; exit 1; }
tmux send-keys -t "$session" P        # the sample in $PAGER: the TUI steps aside and comes back
for _ in $(seq 1 50); do [ -s "$dir/paged" ] && break; sleep 0.1; done
grep -q "^sample #140 " "$dir/paged" || { echo "smoke: the pager was not shown sample #140" >&2; exit 1; }
wait_for "Samples · by id"
tmux send-keys -t "$session" E        # edit the answer in $EDITOR: it becomes the hard label
wait_for "the edited answer is its hard label"
edited="$("$bin" --db "$dir/retort.db" list --where 'label = hard' --json | python3 -c '
import json, sys
print(" ".join(str(s["id"]) + ":" + s["answer"] for s in map(json.loads, sys.stdin)))')"
[ "$edited" = "140:The answer is 42." ] || { echo "smoke: expected #140 edited and hard, the store says: $edited" >&2; exit 1; }
tmux send-keys -t "$session" u        # undo restores the teacher's answer
wait_for "undid"
tmux send-keys -t "$session" h v      # the group view of its prompt
wait_for "Group · prompt"
tmux send-keys -t "$session" p        # pick it: accept it, reject its siblings
wait_for "picked #140"
tmux send-keys -t "$session" u        # one undo reverts the pick
wait_for "undid pick #140"
tmux send-keys -t "$session" v Tab    # close the group; the Rules tab
wait_for "Saved rules"
tmux send-keys -t "$session" Tab Tab  # the Export tab, then the Train tab
wait_for "Train · enter changes"
tmux send-keys -t "$session" G Enter  # "start" with no model: the form says what is missing
wait_for "say which model"
tmux send-keys -t "$session" Tab      # the Stats tab scrolls
wait_for "Charts"
tmux send-keys -t "$session" G
wait_for "lines [0-9]*–\([0-9]*\) of \1 "
tmux send-keys -t "$session" q
for _ in $(seq 1 100); do [ -f "$dir/exit" ] && break; sleep 0.1; done
[ "$(cat "$dir/exit")" = 0 ] || { echo "smoke: retort exited with $(cat "$dir/exit")" >&2; exit 1; }
accepted="$("$bin" --db "$dir/retort.db" list --where 'status = accepted' --json | grep -o '"id":[0-9]*' | tr '\n' ' ')"
[ "$accepted" = '"id":2 ' ] || { echo "smoke: expected sample 2 accepted, the store says: $accepted" >&2; exit 1; }
echo "tui smoke: start, move, accept, search, help, palette, pane search and end, OSC 52 copy, pager, \$EDITOR edit and undo, group pick and undo, tabs, train form, stats scroll, quit; the decision is in the store"
echo "smoke: 1 passed, 0 failed"
