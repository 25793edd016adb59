#!/usr/bin/env bash
# Exports of the demo set (multi-turn, tool calls, system prompts, reasoning) and of accepted
# Sky-T1 traces, in every format, loaded by Hugging Face `datasets` as TRL and LLaMA-Factory
# load them. Run by .ci/run with the Python that has `datasets`.
set -euo pipefail
python="${1:?usage: export_ci.sh PYTHON}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/debug/retort"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
export RETORT_DB="$dir/retort.db"
"$bin" > /dev/null 2>&1                      # the demo set, imported into an empty store
"$bin" rules apply --expr 'accept where score.imported >= 1 or kind = general' > /dev/null
dirs=()
for format in messages prompt-completion sharegpt alpaca; do
  for reasoning in inline field; do
    out="$dir/$format-$reasoning"
    # Alpaca has no place for tool use: retort refuses those samples in it.
    where=()
    if [ "$format" = alpaca ]; then where=(--where 'not has_tools'); fi
    "$bin" export --format "$format" --reasoning "$reasoning" --val 0.1 "${where[@]}" --out "$out" > /dev/null
    dirs+=("$out")
  done
done
"$python" "$root/tests/export_check.py" "${dirs[@]}"
