#!/usr/bin/env python3
"""retort's `openai` export against OpenAI's published schema for chat fine-tuning files.

    python tests/consumers/openai_check.py EXPORT_DIR...

Every line of every part must validate against `FineTuneChatRequestInput` from
openai/openai-openapi (openai_chat_finetune.schema.json beside this script, extracted by
make_openai_schema.py; no key the schema does not name), and meet what OpenAI's file validation
adds in its fine-tuning guide: at least one assistant message, no assistant message without
content or tool calls, and each tool message answering a tool call made before it. Exits 1
otherwise.
"""

import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))


def problems_of(line, validator):
    found = [f"{'/'.join(map(str, e.absolute_path)) or '(line)'}: {e.message}" for e in validator.iter_errors(line)]
    messages = line.get("messages", [])
    if not any(m.get("role") == "assistant" for m in messages):
        found.append("no assistant message")
    called = set()
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            if not m.get("content") and not m.get("tool_calls"):
                found.append(f"messages/{i}: an assistant message with no content and no tool calls")
            for call in m.get("tool_calls") or []:
                called.add(call.get("id"))
                json.loads(call["function"]["arguments"])  # a string holding the JSON object
        if m.get("role") == "tool" and m.get("tool_call_id") not in called:
            found.append(f"messages/{i}: tool_call_id {m.get('tool_call_id')!r} answers no earlier tool call")
    return found


def main():
    schema = json.load(open(os.path.join(HERE, "openai_chat_finetune.schema.json")))
    validator = jsonschema.Draft202012Validator(schema)
    failed = False
    for export_dir in sys.argv[1:]:
        manifest = json.load(open(os.path.join(export_dir, "manifest.json")))
        assert manifest["format"] == "openai", f"{export_dir} is a {manifest['format']} export"
        for part in manifest["parts"].values():
            path = os.path.join(export_dir, part["file"])
            lines = [json.loads(x) for x in open(path, encoding="utf-8") if x.strip()]
            bad = 0
            for n, line in enumerate(lines, 1):
                found = problems_of(line, validator)
                if found:
                    bad += 1
                    if bad <= 5:
                        print(f"        {path}:{n}: {found[0]}")
            tools = sum(1 for x in lines if x.get("tools"))
            calls = sum(len(m.get("tool_calls") or []) for x in lines for m in x["messages"])
            results = sum(1 for x in lines for m in x["messages"] if m["role"] == "tool")
            print(
                f"{'ok  ' if not bad else 'FAIL'}  {os.path.basename(export_dir)}/{part['file']}: "
                f"{len(lines) - bad}/{len(lines)} lines valid, {tools} with tools, {calls} tool calls, {results} tool results"
            )
            failed |= bad > 0
    print("OpenAI FineTuneChatRequestInput (openai-openapi@498c71d): " + ("every line valid" if not failed else "invalid lines"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
