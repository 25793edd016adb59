#!/usr/bin/env python3
"""retort's messages and prompt-completion exports trained by TRL's SFTTrainer.

    python tests/consumers/trl_check.py QWEN_TOKENIZER_DIR MESSAGES_EXPORT PROMPT_COMPLETION_EXPORT

A tiny random Qwen2 model is made with the real Qwen tokenizer (make_qwen_tokenizer.py) and TRL's
own Qwen2.5 training template (`{% generation %}` blocks). For each export, `datasets` loads
train.jsonl as TRL's docs load JSON (a `--container parquet` export's train shards with the
parquet loader); TRL must see it as conversational; SFTTrainer tokenizes it with the tools of
each line (messages: `assistant_only_loss=True`; prompt-completion: `completion_only_loss=True`),
keeps every row with tokens to learn from, and trains 2 steps on the CPU with a finite loss.
Exits 1 otherwise.
"""

import json
import math
import os
import shutil
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(2)

import trl  # noqa: E402
from datasets import load_dataset  # noqa: E402
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402
from trl.data_utils import is_conversational  # noqa: E402


def tiny_model(tokenizer_dir, out):
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tokenizer_dir, f), os.path.join(out, f))
    template = os.path.join(os.path.dirname(trl.__file__), "chat_templates", "qwen2_5_training.jinja")
    shutil.copy(template, os.path.join(out, "chat_template.jinja"))
    tok = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768,
                         tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(out)
    return tok


def check(model_dir, tok, export_dir, loss, work):
    # The train part's files as the manifest names them: train.jsonl, or Parquet shards.
    manifest = json.load(open(os.path.join(export_dir, "manifest.json")))
    part = manifest["parts"]["train"]
    paths = [os.path.join(export_dir, f["file"]) for f in part.get("shards") or [part]]
    container = manifest["options"].get("container", "jsonl")
    dataset = load_dataset("json" if container == "jsonl" else container, data_files=paths, split="train")
    if container == "jsonl":
        lines = [json.loads(x) for path in paths for x in open(path, encoding="utf-8") if x.strip()]
    else:
        lines = dataset.to_list()
    problems = []
    if not is_conversational(dataset[0]):
        problems.append("TRL does not see the rows as conversational")
    args = SFTConfig(output_dir=work, max_steps=2, per_device_train_batch_size=2, max_length=None, logging_steps=1,
                     save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0, seed=0,
                     **{loss: True})
    trainer = SFTTrainer(model=model_dir, args=args, train_dataset=dataset, processing_class=tok)
    processed = trainer.train_dataset
    if len(processed) != len(lines):
        problems.append(f"{len(processed)} rows after tokenizing, of {len(lines)}")
    # TRL turns the mask into labels (-100 where no loss is taken).
    untrained = [i + 1 for i, row in enumerate(processed) if all(t == -100 for t in row["labels"])]
    if untrained:
        problems.append(f"lines with no token to learn from: {untrained[:10]}")
    with_tools = sum(1 for x in lines if x.get("tools"))
    calls = sum(len(m.get("tool_calls") or []) for x in lines for m in x.get("messages", x.get("prompt", []) + x.get("completion", [])))
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    if trainer.state.global_step != 2 or not all(math.isfinite(v) for v in losses):
        problems.append(f"training: {trainer.state.global_step} steps, losses {losses}")
    summary = (f"{os.path.basename(export_dir)}: {len(processed)}/{len(lines)} rows tokenized with {loss} "
               f"({with_tools} with tools, {calls} tool calls), 2 steps, loss {result.training_loss:.4f}")
    return summary, problems


def main():
    tokenizer_dir, messages_dir, pc_dir = sys.argv[1:4]
    failed = False
    with tempfile.TemporaryDirectory() as work:
        model_dir = os.path.join(work, "model")
        os.makedirs(model_dir)
        tok = tiny_model(tokenizer_dir, model_dir)
        for export_dir, loss in ((messages_dir, "assistant_only_loss"), (pc_dir, "completion_only_loss")):
            summary, problems = check(model_dir, tok, export_dir, loss, os.path.join(work, "out"))
            print(("ok    " if not problems else "FAIL  ") + summary)
            for p in problems:
                print(f"        {p}")
            failed |= bool(problems)
    print(f"TRL {trl.__version__} SFTTrainer: " + ("trains on every row" if not failed else "rows lost or training failed"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
