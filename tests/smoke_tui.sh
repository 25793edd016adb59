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

tmux new-session -d -s "$session" -x 100 -y 30 "cd '$dir' && '$bin'; echo \$? > '$dir/exit'; sleep 5"
wait_for "Samples"
wait_for "of 241"
tmux send-keys -t "$session" j        # move to sample #2
wait_for "#2 of 241"
tmux send-keys -t "$session" a        # accept it (and move on)
wait_for "accepted 1"
tmux send-keys -t "$session" /        # fuzzy search
tmux send-keys -t "$session" -l hexagon
wait_for "matches"
tmux send-keys -t "$session" Enter    # narrow the list to what matched
wait_for 'matching search "hexagon"'
tmux send-keys -t "$session" c        # every sample again
wait_for "of 241 │"
tmux send-keys -t "$session" '?'      # help opens
wait_for "Keys (any key closes)"
tmux send-keys -t "$session" Escape   # any key closes it
tmux send-keys -t "$session" Tab      # the Rules tab
wait_for "Saved rules"
tmux send-keys -t "$session" Tab Tab  # the Export tab, then the Train tab
wait_for "Train · enter changes"
tmux send-keys -t "$session" G Enter  # "start" with no model: the form says what is missing
wait_for "say which model"
tmux send-keys -t "$session" q
for _ in $(seq 1 100); do [ -f "$dir/exit" ] && break; sleep 0.1; done
[ "$(cat "$dir/exit")" = 0 ] || { echo "smoke: retort exited with $(cat "$dir/exit")" >&2; exit 1; }
accepted="$("$bin" --db "$dir/retort.db" list --where 'status = accepted' --json | grep -o '"id":[0-9]*' | tr '\n' ' ')"
[ "$accepted" = '"id":2 ' ] || { echo "smoke: expected sample 2 accepted, the store says: $accepted" >&2; exit 1; }
echo "tui smoke: start, move, accept, search, help, tabs, train form, quit; the decision is in the store"
echo "smoke: 1 passed, 0 failed"
