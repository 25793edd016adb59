#!/usr/bin/env python3
"""Extracts OpenAI's per-line schema for chat fine-tuning files, `FineTuneChatRequestInput`, with
every schema it references, from openai/openai-openapi's openapi.yaml (commit 498c71d,
2025-04-29, the last with it in one file; MIT) into JSON Schema 2020-12:

    python tests/consumers/make_openai_schema.py openapi.yaml > tests/consumers/openai_chat_finetune.schema.json

OpenAPI 3.0's `nullable: true` becomes "or null". Every object schema that lists its properties
gets `unevaluatedProperties: false`: a key the schema does not name is an error, as the
fine-tuning API refuses unknown keys (FunctionParameters, a JSON Schema of its own, stays open).
"""

import json
import sys

import yaml

ROOT = "FineTuneChatRequestInput"


def convert(node):
    if isinstance(node, list):
        return [convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("description", "title", "deprecated", "example", "default"):
            continue
        if key == "$ref":
            out["$ref"] = "#/$defs/" + value.split("/")[-1]
        elif key == "nullable":
            continue
        elif key in ("properties",):
            out[key] = {k: convert(v) for k, v in value.items()}
        else:
            out[key] = convert(value)
    if ("properties" in out or "allOf" in out) and out.get("additionalProperties") is not True:
        out["unevaluatedProperties"] = False
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def main(path):
    spec = yaml.safe_load(open(path))
    schemas = spec["components"]["schemas"]
    names, todo = [], [ROOT]
    while todo:
        name = todo.pop()
        if name in names:
            continue
        names.append(name)
        text = json.dumps(schemas[name])
        for part in text.split('"$ref": "#/components/schemas/')[1:]:
            todo.append(part.split('"')[0])
    defs = {n: convert(schemas[n]) for n in sorted(names) if n != ROOT}
    # The parts of an allOf are checked together, by the unevaluatedProperties of the schema that
    # holds the allOf: a part (or the schema it refers to) must not refuse the other parts' keys.
    for d in list(defs.values()):
        for part in d.get("allOf", []):
            part.pop("unevaluatedProperties", None)
            if "$ref" in part:
                defs[part["$ref"].split("/")[-1]].pop("unevaluatedProperties", None)
    root = convert(schemas[ROOT])
    root["required"] = ["messages"]
    out = {"$schema": "https://json-schema.org/draft/2020-12/schema",
           "$comment": "FineTuneChatRequestInput from openai/openai-openapi@498c71d openapi.yaml (MIT), "
                       "extracted by tests/consumers/make_openai_schema.py",
           **root, "$defs": defs}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
