#!/usr/bin/env python3
"""retort's kd export through axolotl's own KD loader: each teacher distribution lands where the
student predicts that token.

    python tests/consumers/axolotl_kd_check.py STUDENT_DIR KD_EXPORT_DIR

axolotl (installed without its training dependencies: its data code is what is checked) loads
each line as the dataset entry retort's manifest prints (`type:
axolotl.integrations.kd.chat_template`, `KDStrategyLoaderV2`): it tokenizes the conversation
with the student's chat template, computes its labels, and right-aligns the logprobs rows to
the tokens. Its KD loss compares row t with the student's logits at t, the prediction of token
t+1. So at every position axolotl trains (target_mask 1) there must be a row, every value finite,
and the token that row describes (the kd line's `token_ids`) must be input_ids[t+1]. Exits 1
otherwise.
"""

import json
import math
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from importlib.metadata import version  # noqa: E402

from transformers import AutoTokenizer  # noqa: E402

from axolotl.integrations.kd.chat_template import KDStrategyLoaderV2  # noqa: E402
from axolotl.utils.dict import DictDefault  # noqa: E402


def main():
    student, export_dir = sys.argv[1], sys.argv[2]
    manifest = json.load(open(os.path.join(export_dir, "manifest.json")))
    axolotl = manifest["train_with"]["axolotl"]
    tokenizer = AutoTokenizer.from_pretrained(student)
    cfg = DictDefault({"chat_template": "tokenizer_default", "sequence_len": 1_000_000, "train_on_inputs": False,
                       "kd_temperature": axolotl.get("kd_temperature", 1.0)})
    failed = False
    for ds_cfg in axolotl["datasets"]:
        strategy = KDStrategyLoaderV2()(tokenizer, cfg, DictDefault(ds_cfg))
        path = os.path.join(export_dir, ds_cfg["path"])
        lines = [json.loads(x) for x in open(path, encoding="utf-8") if x.strip()]
        trained_positions = teacher_positions = 0
        bad = []
        for n, line in enumerate(lines, 1):
            out = strategy.tokenize_prompt(dict(line))
            ids, mask, rows = out["input_ids"], out["target_mask"], out["target_logprobs"]
            predicted = line["token_ids"]
            offset = len(ids) - len(predicted)
            for t in range(len(ids) - 1):
                if not any(mask[t]):
                    continue
                trained_positions += 1
                if t < offset:
                    bad.append(f"line {n}: position {t} is trained but has no row (rows start at {offset})")
                    break
                if predicted[t - offset] != ids[t + 1]:
                    bad.append(f"line {n}: the row at position {t} describes token {predicted[t - offset]}, the student predicts {ids[t + 1]}")
                    break
                if not all(math.isfinite(v) for v in rows[t]):
                    bad.append(f"line {n}: the row at position {t} holds a non-finite log-prob")
                    break
                if rows[t][0] < -1e-3 or any(v > -20 for v in rows[t][1:]):
                    teacher_positions += 1  # not one of retort's true-next-token rows
        ok = not bad
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {os.path.basename(export_dir)}/{ds_cfg['path']}: {len(lines)} lines, "
              f"{trained_positions} trained positions each with its row; {teacher_positions} of them the teacher's")
        for b in bad[:10]:
            print(f"        {b}")
    print(f"axolotl {version('axolotl')} KDStrategyLoaderV2: " + ("every trained position predicts its row's token" if not failed else "misplaced"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
