"""retort's exports loaded by Hugging Face `datasets` (run by tests/consumers/run.sh).

Usage: python datasets_check.py DIR...  Each DIR is an export; its manifest says the format.
Loads every part with load_dataset("json", ...) as TRL, axolotl and LLaMA-Factory do, checks the
row count and sha256 against the manifest and the columns and message shapes each format has.

A Parquet export (`--container parquet`, sharded or not) is checked against its JSON Lines twin,
the export among the DIRs with the same options otherwise: both loaded as one DatasetDict
({"train": files, "validation": files}, as a trainer loads them), each split must have the same
column names and, row by row, the same Python objects; each shard's rows and sha256 are the
manifest's.
"""
import hashlib
import json
import pathlib
import sys

import pyarrow.parquet as pq
from datasets import load_dataset


def check_messages(messages, where):
    assert isinstance(messages, list) and messages, f"{where}: empty conversation"
    for m in messages:
        assert m["role"] in ("system", "user", "assistant", "tool"), f"{where}: role {m['role']!r}"
        # OpenAI's format leaves out the content of a turn that only calls tools.
        assert isinstance(m.get("content"), str) or m.get("tool_calls"), f"{where}: content is not a string"
        for call in m.get("tool_calls") or []:
            assert call["type"] == "function" and call["id"] and call["function"]["name"], f"{where}: tool call {call}"
        if m["role"] == "tool":
            assert m["tool_call_id"], f"{where}: a tool result without its tool_call_id"
    assert messages[-1]["role"] == "assistant", f"{where}: the last message is not the assistant's"


def files(d, info):
    """A part's files with their manifest entries: the part's own, or its shards'."""
    return [(d / f["file"], f) for f in info.get("shards") or [info]]


def layout(manifest):
    """The options that choose and shape the rows: all but the files they are written in."""
    return json.dumps({k: v for k, v in manifest["options"].items() if k not in ("container", "shard_rows")}, sort_keys=True)


def check_twin(d, manifest, twin_dir, twin):
    """The Parquet export d loads as its JSON Lines twin does, split by split, row by row."""
    parquet_files, json_files = {}, {}
    for part, info in manifest["parts"].items():
        shards = files(d, info)
        assert len(shards) >= 1
        for path, entry in shards:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == entry["sha256"], f"{path}: sha256 differs from the manifest"
            rows = pq.ParquetFile(path).metadata.num_rows
            assert rows == entry["samples"], f"{path}: {rows} rows, manifest says {entry['samples']}"
        assert sum(e["samples"] for _, e in shards) == info["samples"], f"{d.name}/{part}: the shards' rows are not the part's"
        parquet_files[part] = [str(p) for p, _ in shards]
        json_files[part] = [str(p) for p, _ in files(twin_dir, twin["parts"][part])]
    assert manifest["samples"] == twin["samples"] and manifest["tokens"] == twin["tokens"], f"{d.name}: counts differ from {twin_dir.name}"
    assert manifest["parts"].keys() == twin["parts"].keys()
    p = load_dataset("parquet", data_files=parquet_files)
    j = load_dataset("json", data_files=json_files)
    for split in j:
        where = f"{d.name}/{split} against {twin_dir.name}/{split}"
        assert p[split].column_names == j[split].column_names, f"{where}: columns {p[split].column_names} != {j[split].column_names}"
        assert len(p[split]) == len(j[split]) == manifest["parts"][split]["samples"], f"{where}: {len(p[split])} rows != {len(j[split])}"
        for n, (a, b) in enumerate(zip(p[split], j[split])):
            assert a == b, f"{where}: row {n} differs\n  parquet: {str(a)[:400]}\n  json:    {str(b)[:400]}"
        same = "same features" if p[split].features == j[split].features else f"features differ: {p[split].features} / {j[split].features}"
        n_files = len(parquet_files[split])
        print(f"ok    {where}: {len(p[split])} rows in {n_files} shard{'s' * (n_files != 1)}, {len(p[split].column_names)} columns, every row equal ({same})")


def main(dirs):
    checked = 0
    manifests = {d: json.loads((d / "manifest.json").read_text()) for d in map(pathlib.Path, dirs)}
    twins = {layout(m): d for d, m in manifests.items() if m["options"].get("container", "jsonl") == "jsonl"}
    for d, manifest in manifests.items():
        fmt = manifest["format"]
        if manifest["options"].get("container", "jsonl") == "parquet":
            twin_dir = twins.get(layout(manifest))
            assert twin_dir is not None, f"{d}: no JSON Lines export with the same options among the arguments"
            check_twin(d, manifest, twin_dir, manifests[twin_dir])
            checked += len(manifest["parts"])
            continue
        for part, info in manifest["parts"].items():
            for path, entry in files(d, info):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                assert digest == entry["sha256"], f"{path}: sha256 differs from the manifest"
                ds = load_dataset("json", data_files=str(path), split="train")
                assert len(ds) == entry["samples"], f"{path}: {len(ds)} rows, manifest says {entry['samples']}"
                where = f"{d.name}/{entry['file']}"
                if fmt in ("messages", "openai", "kd"):
                    assert "messages" in ds.column_names, f"{where}: no messages column ({ds.column_names})"
                    for row in ds:
                        check_messages(row["messages"], where)
                        if fmt == "kd":
                            n = len(row["target_token_ids"])
                            assert n and len(row["logprobs"]) == n and len(row["token_ids"]) == n, f"{where}: kd rows"
                elif fmt == "prompt-completion":
                    assert {"prompt", "completion"} <= set(ds.column_names), f"{where}: {ds.column_names}"
                    for row in ds:
                        assert row["prompt"] and row["prompt"][-1]["role"] in ("user", "tool"), f"{where}: prompt"
                        assert [m["role"] for m in row["completion"]] == ["assistant"], f"{where}: completion"
                elif fmt == "alpaca":
                    assert {"instruction", "input", "output", "system", "history"} <= set(ds.column_names), f"{where}: {ds.column_names}"
                elif fmt == "sharegpt":
                    infos = json.loads((d / "dataset_info.json").read_text())
                    info_entry = next(v for v in infos.values() if v["file_name"] == entry["file"])
                    assert info_entry["formatting"] == "sharegpt"
                    cols, tags = info_entry["columns"], info_entry["tags"]
                    assert cols["messages"] in ds.column_names, f"{where}: {ds.column_names}"
                    allowed = {tags["user_tag"], tags["assistant_tag"], tags["observation_tag"], tags["function_tag"]}
                    for row in ds:
                        turns = row[cols["messages"]]
                        assert turns, f"{where}: empty conversation"
                        assert {t[tags["role_tag"]] for t in turns} <= allowed, f"{where}: unknown role tag"
                        assert turns[-1][tags["role_tag"]] in (tags["assistant_tag"], tags["function_tag"]), f"{where}: last turn"
                        assert all(isinstance(t[tags["content_tag"]], str) for t in turns)
                checked += 1
    print("every export part loads with Hugging Face datasets in the shape TRL / LLaMA-Factory expect")
    print(f"exports: {checked} passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1:])
