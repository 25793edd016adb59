#!/usr/bin/env python3
"""Samples `retort score-logprobs` scored through vllm_prompt_logprobs_server.py are soft, and the
kd export of them holds that server's numbers, at the places they belong.

    python tests/consumers/scored_kd_check.py STUDENT_DIR KD_EXPORT_DIR --report SCORE.json \
        --rerun RESCORE.json --soft SOFT.jsonl --pseudo PSEUDO.jsonl --teacher NAME --k K

SCORE.json is score-logprobs' --json report: every selected sample scored, none failed, each
relabelled soft; RESCORE.json the same command's rerun's, which selects nothing (a rerun asks only
for what is missing). SOFT.jsonl and PSEUDO.jsonl are `retort list --json` of the selection as
soft with log-probs (all of them) and as still pseudo (none). The manifest must say top_k K,
temperature 1, and under soft_labels.by_source "NAME k=K T=1" for every scored sample.

Each line's conversation is rendered with the student's chat template (transformers'
apply_chat_template) and tokenized; its rows are right-aligned to those ids (row t is the
distribution over token t + 1, the layout the manifest states and axolotl reads). The tiny
teacher (the same seeded model the server builds) is run over the ids: every row that is not
one of retort's fillers (the true next token at log-prob 0, the rest -30) must sit where its
`token_ids` entry is the next token of the conversation, and hold the model's top K at that
position: K distinct tokens, each among the model's K most likely (up to near-ties) and with
the model's log-prob to within 2e-3 (retort stores them to 1/1024 nat). The teacher rows must
number the answer tokens score-logprobs reported, and the manifest's teacher_rows. With --retort,
each sample's mean_logprob and min_logprob in the store (retort list --where) must be the mean and
least of the model's log-probs of the trace's own tokens (vLLM's entry for the prompt's token, with
its rank), to within 2e-3 (RETORT_DB names the store). Exits 1 otherwise.
"""

import argparse
import json
import math
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from vllm_prompt_logprobs_server import prompt_logprobs, tiny_teacher  # noqa: E402

TOLERANCE = 2e-3


def filler(ids, lps, token):
    return ids[0] == token and lps[0] == 0.0 and all(v == -30.0 for v in lps[1:])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("student")
    p.add_argument("export_dir")
    for flag in ("--report", "--rerun", "--soft", "--pseudo", "--teacher"):
        p.add_argument(flag, required=True)
    p.add_argument("--k", type=int, required=True)
    p.add_argument("--retort", help="the retort binary: check each sample's stored mean_logprob and min_logprob too")
    args = p.parse_args()
    export_dir, k = args.export_dir, args.k
    report, rerun = json.load(open(args.report)), json.load(open(args.rerun))
    soft = [json.loads(x) for x in open(args.soft) if x.strip()]
    pseudo = [json.loads(x) for x in open(args.pseudo) if x.strip()]
    manifest = json.load(open(os.path.join(export_dir, "manifest.json")))
    soft_labels = manifest["soft_labels"]
    store = []
    if not (report["selected"] == report["scored"] == report["relabelled"] == len(soft) > 0 and report["failures"] == 0):
        store.append(f"score-logprobs: {report}; {len(soft)} now soft with log-probs")
    if pseudo:
        store.append(f"still pseudo: {[s['id'] for s in pseudo]}")
    if rerun["selected"] != 0:
        store.append(f"the rerun selected {rerun['selected']} samples again")
    label = f"{args.teacher} k={k} T=1"
    by_source = soft_labels["by_source"]
    if soft_labels["top_k"] != k or soft_labels["temperatures"] != ["1"] or manifest["samples"] != report["scored"] \
            or any(list(v) != [label] for v in by_source.values()) or sum(v.get(label, 0) for v in by_source.values()) != report["scored"]:
        store.append(f"the manifest: {manifest['samples']} samples, top_k {soft_labels['top_k']}, temperatures "
                     f"{soft_labels['temperatures']}, by_source {by_source}; want {report['scored']} x {label!r}")
    print(f"{'ok  ' if not store else 'FAIL'}  score-logprobs: {report['scored']} of {report['selected']} selected traces scored "
          f"({report['tokens']} answer tokens), {len(soft)} now soft with log-probs, {len(pseudo)} still pseudo; "
          f"the rerun selected {rerun['selected']}; manifest: {by_source}")
    for b in store:
        print(f"        {b}")
    want_rows = report["tokens"]
    tokenizer = AutoTokenizer.from_pretrained(args.student)
    torch.set_num_threads(2)
    model = tiny_teacher(tokenizer)
    bad = []
    lines = teacher_rows = fillers = exact_order = 0
    confidence = []
    worst = 0.0
    for ds_cfg in manifest["train_with"]["axolotl"]["datasets"]:
        path = os.path.join(export_dir, ds_cfg["path"])
        for n, raw in enumerate(open(path, encoding="utf-8"), 1):
            if not raw.strip():
                continue
            lines += 1
            line = json.loads(raw)
            text = tokenizer.apply_chat_template(line["messages"], tokenize=False)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            predicted, rows_ids, rows_lp = line["token_ids"], line["target_token_ids"], line["logprobs"]
            if not len(predicted) == len(rows_ids) == len(rows_lp) <= len(ids):
                bad.append(f"line {n}: {len(predicted)} token_ids, {len(rows_ids)} rows of ids, {len(rows_lp)} of log-probs, {len(ids)} tokens")
                continue
            offset = len(ids) - len(predicted)
            lp = prompt_logprobs(model, ids)
            own = []  # the model's log-prob of each token of the trace, whatever its rank
            top_lp, top_ids = torch.topk(lp, k, dim=-1)
            for j, (row_ids, row_lp) in enumerate(zip(rows_ids, rows_lp)):
                t = offset + j
                if filler(row_ids, row_lp, predicted[j]):
                    fillers += 1
                    continue
                teacher_rows += 1
                where = f"line {n}: row {j} (position {t})"
                if t + 1 >= len(ids) or predicted[j] != ids[t + 1]:
                    bad.append(f"{where} describes token {predicted[j]}, the conversation's next token is "
                               f"{ids[t + 1] if t + 1 < len(ids) else 'past the end'}")
                    break
                if len(row_ids) != k or len(set(row_ids)) != k or not all(math.isfinite(v) for v in row_lp):
                    bad.append(f"{where}: {row_ids} {row_lp} is not {k} distinct tokens with finite log-probs")
                    break
                kth = float(top_lp[t, -1])
                model_lp = lp[t, row_ids].tolist()
                diff = max(abs(a - b) for a, b in zip(row_lp, model_lp))
                worst = max(worst, diff)
                if diff > TOLERANCE or min(model_lp) < kth - TOLERANCE:
                    bad.append(f"{where}: retort has {list(zip(row_ids, row_lp))}, the model's top {k} is "
                               f"{list(zip(top_ids[t].tolist(), [round(v, 4) for v in top_lp[t].tolist()]))}")
                    break
                exact_order += row_ids == top_ids[t].tolist()
                own.append(float(lp[t, predicted[j]]))
            else:  # every row of the line as it should be: the sample's confidence is checked below
                if args.retort and own:
                    confidence.append((n, line, sum(own) / len(own), min(own)))
    # The trace's own tokens (the entry vLLM sends first, with its rank, most of them far outside
    # the top K): retort keeps their log-probs as the sample's mean_logprob and min_logprob.
    for n, line, mean, low in confidence:
        user = next(m["content"] for m in line["messages"] if m["role"] == "user")
        mine = {s["id"] for s in soft if s["prompt"] == user}
        near = f"has_logprobs and mean_logprob > {mean - TOLERANCE} and mean_logprob < {mean + TOLERANCE} " \
               f"and min_logprob > {low - TOLERANCE} and min_logprob < {low + TOLERANCE}"
        listed = subprocess.run([args.retort, "list", "--json", "--where", near], check=True, capture_output=True, text=True).stdout
        if not mine & {json.loads(x)["id"] for x in listed.splitlines() if x.strip()}:
            bad.append(f"line {n}: no sample {sorted(mine)} has the mean_logprob {mean:.4f} and min_logprob {low:.4f} of its tokens")
    if teacher_rows != want_rows or teacher_rows != manifest["soft_labels"]["teacher_rows"]:
        bad.append(f"{teacher_rows} teacher rows, where score-logprobs stored {want_rows} and the manifest says "
                   f"{manifest['soft_labels']['teacher_rows']}")
    ok = not bad
    print(f"{'ok  ' if ok else 'FAIL'}  {os.path.basename(export_dir)}: {lines} lines, {teacher_rows} teacher rows each the tiny "
          f"teacher's top {k} at its position ({exact_order} in the model's exact order), {fillers} fillers; "
          f"max |retort - model| = {worst:.2e} nat" + (f"; {len(confidence)} samples' mean_logprob and min_logprob the model's" if confidence else ""))
    for b in bad[:10]:
        print(f"        {b}")
    sys.exit(0 if ok and not store else 1)


if __name__ == "__main__":
    main()
