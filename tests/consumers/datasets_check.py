"""retort's exports loaded by Hugging Face `datasets` (run by tests/consumers/run.sh).

Usage: python datasets_check.py DIR...  Each DIR is an export; its manifest says the format.
Loads every part with load_dataset("json", ...) as TRL, axolotl and LLaMA-Factory do, checks the
row count and sha256 against the manifest and the columns and message shapes each format has.
"""
import hashlib
import json
import pathlib
import sys

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


def main(dirs):
    checked = 0
    for d in map(pathlib.Path, dirs):
        manifest = json.loads((d / "manifest.json").read_text())
        fmt = manifest["format"]
        for part, info in manifest["parts"].items():
            path = d / info["file"]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == info["sha256"], f"{path}: sha256 differs from the manifest"
            ds = load_dataset("json", data_files=str(path), split="train")
            assert len(ds) == info["samples"], f"{path}: {len(ds)} rows, manifest says {info['samples']}"
            where = f"{d.name}/{info['file']}"
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
                entry = next(v for v in infos.values() if v["file_name"] == info["file"])
                assert entry["formatting"] == "sharegpt"
                cols, tags = entry["columns"], entry["tags"]
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
