#!/usr/bin/env python3
"""retort's sharegpt and alpaca exports through LLaMA-Factory's own data pipeline.

    python tests/consumers/llamafactory_check.py MODEL_DIR EXPORT_DIR...

For each entry of each export's dataset_info.json: LLaMA-Factory's `get_train_args`, then its
`_get_merged_dataset` (the converter: sharegpt or alpaca rows to its prompt/response/system/tools
columns) and `get_dataset` (template `qwen`, the tokenizer of MODEL_DIR; rows the converter or
the supervised processor finds broken are dropped there). Every line of the file must come out
as a row: converted, with its tool calls as `function` turns, its tool results as `observation`
turns and its tools, and tokenized. Exits 1 otherwise.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "WARN")

import llamafactory  # noqa: E402
from llamafactory.data import get_dataset, get_template_and_fix_tokenizer  # noqa: E402
from llamafactory.data.loader import _get_merged_dataset  # noqa: E402
from llamafactory.hparams import get_train_args  # noqa: E402
from llamafactory.model import load_tokenizer  # noqa: E402


def check(model_dir, export_dir, name, entry, out_dir):
    args = {
        "stage": "sft",
        "do_train": True,
        "model_name_or_path": model_dir,
        "dataset": name,
        "dataset_dir": export_dir,
        "template": "qwen",
        "cutoff_len": 1_000_000,
        "output_dir": out_dir,
        "overwrite_cache": True,
        "report_to": "none",
    }
    model_args, data_args, training_args, _, _ = get_train_args(args)
    path = os.path.join(export_dir, entry["file_name"])
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        lines = pq.read_table(path).to_pylist()
    else:
        lines = [json.loads(x) for x in open(path, encoding="utf-8") if x.strip()]
    aligned = _get_merged_dataset([name], model_args, data_args, training_args, "sft")
    problems = []
    if len(aligned) != len(lines):
        problems.append(f"{len(aligned)} rows converted of {len(lines)}")
    calls = results = with_tools = 0
    for i, (row, line) in enumerate(zip(aligned, lines)):
        roles = [m["role"] for m in row["_prompt"] + row["_response"]]
        if not row["_prompt"] or len(row["_response"]) != 1:
            problems.append(f"line {i + 1}: the converter found it broken ({roles})")
            continue
        if entry["formatting"] == "sharegpt":
            want = [t["from"] for t in line["conversations"]]
            n_calls, n_results = want.count("function_call"), want.count("observation")
            if roles.count("function") != n_calls or roles.count("observation") != n_results:
                problems.append(f"line {i + 1}: {n_calls} function calls and {n_results} observations became {roles}")
            for m in row["_prompt"] + row["_response"]:
                if m["role"] == "function":
                    json.loads(m["content"])  # LLaMA-Factory's FunctionFormatter parses it
            calls += n_calls
            results += n_results
            if line["tools"]:
                with_tools += 1
                if row["_tools"] != line["tools"]:
                    problems.append(f"line {i + 1}: the tools did not survive")
        if row["_system"] != line.get("system", ""):
            problems.append(f"line {i + 1}: the system prompt did not survive")
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    module = get_dataset(template, model_args, data_args, training_args, "sft", **tokenizer_module)
    tokenized = len(module["train_dataset"])
    if tokenized != len(lines):
        problems.append(f"get_dataset kept {tokenized} of {len(lines)} rows")
    summary = (
        f"{os.path.basename(export_dir)}/{entry['file_name']} ({entry['formatting']}): {tokenized}/{len(lines)} rows "
        f"converted and tokenized, {with_tools} with tools, {calls} function calls, {results} observations"
    )
    return summary, problems


def main():
    model_dir, exports = sys.argv[1], sys.argv[2:]
    failed = False
    with tempfile.TemporaryDirectory() as out_dir:
        for export_dir in exports:
            infos = json.load(open(os.path.join(export_dir, "dataset_info.json")))
            for name, entry in infos.items():
                summary, problems = check(model_dir, export_dir, name, entry, out_dir)
                print(("ok    " if not problems else "FAIL  ") + summary)
                for p in problems[:10]:
                    print(f"        {p}")
                failed |= bool(problems)
    print(f"LLaMA-Factory {llamafactory.__version__}: {'every row converted' if not failed else 'rows lost'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
