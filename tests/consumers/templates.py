#!/usr/bin/env python3
"""Every chat template in TRL's wheel, rendered by transformers and by retort, compared.

    python tests/consumers/templates.py RETORT_BIN QWEN_TOKENIZER_DIR WORK_DIR [TEMPLATE_DIR]

For each `*.jinja` under TRL's `trl/chat_templates/` (or TEMPLATE_DIR) a model directory is made
with that template as `chat_template.jinja` beside a real Qwen tokenizer (make_qwen_tokenizer.py),
and each conversation below is rendered:

  * by transformers: `AutoTokenizer.from_pretrained(dir).apply_chat_template(messages,
    tools=tools, tokenize=False, add_generation_prompt=...)`; for templates with `{% generation
    %}` blocks also `tokenize=True, return_dict=True, return_assistant_tokens_mask=True`;
  * by retort: `retort template render --model dir FILE --json` (and `--add-generation-prompt`
    for the prompts).

The text must be byte-identical, the input ids equal, and, where the template has generation
blocks, retort's assistant_mask equal to transformers' assistant_masks. Where transformers raises
(a template's raise_exception), retort must fail on that conversation with the same message.
Prints each template that differs (and, with VERBOSE=1, each that does not) and the totals;
exits 1 on any difference. ONLY=qwen,llama checks the templates whose names start so.
"""

import glob
import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from transformers import AutoTokenizer  # noqa: E402

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "description": "How many days ahead"},
                "hourly": {"type": "boolean"},
                "hours": {"type": "array", "items": {"type": "integer"}},
            },
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "description": "The local time in a time zone",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}
CALL = {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
CALL_TYPED = {"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": {"city": "São Paulo", "days": 3, "hourly": True, "hours": [9, 12]}}}
CALL_TIME = {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": {"zone": "Europe/Paris"}}}
SYSTEM = {"role": "system", "content": "You are a careful assistant. Answer briefly."}
Q1 = {"role": "user", "content": "What is 2 + 2?"}
A1 = {"role": "assistant", "content": "2 + 2 = 4."}
Q2 = {"role": "user", "content": "And 3 × 3? 答えてください。"}
A2 = {"role": "assistant", "content": "3 × 3 = 9."}
WQ = {"role": "user", "content": "What's the weather in Paris?"}
WCALL = {"role": "assistant", "content": "", "tool_calls": [CALL]}
WRESULT = {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": "{\"temperature\": 20, \"unit\": \"celsius\"}"}
WANSWER = {"role": "assistant", "content": "It is 20 °C in Paris."}
WCALLS = {"role": "assistant", "content": "Let me check both.", "tool_calls": [CALL_TYPED, CALL_TIME]}
WRESULTS = [
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"temperature\": 25}"},
    {"role": "tool", "tool_call_id": "call_2", "name": "get_time", "content": "14:05"},
]
WANSWER2 = {"role": "assistant", "content": "25 °C in São Paulo; it is 14:05 in Paris."}
QUOTED = {"role": "user", "content": "Quote this: \"it's <b>bold</b> & \\back\\slash\" — ok?\n\tindented"}
THINK_INLINE = {"role": "assistant", "content": "<think>\nTwo plus two: count on from two.\n</think>\n\n2 + 2 = 4."}
THINK_FIELD = {"role": "assistant", "content": "2 + 2 = 4.", "reasoning_content": "Two plus two: count on from two."}
THINK_FIELD2 = {"role": "assistant", "content": "3 × 3 = 9.", "reasoning_content": "Three threes are nine."}

# (name, line, add_generation_prompt): lines as retort's exports write them.
CONVERSATIONS = [
    ("single_turn", {"messages": [Q1, A1]}, False),
    ("system_prompt", {"messages": [SYSTEM, Q1, A1]}, False),
    ("multi_turn", {"messages": [SYSTEM, Q1, A1, Q2, A2]}, False),
    ("tool_use", {"messages": [WQ, WCALL, WRESULT, WANSWER], "tools": [WEATHER]}, False),
    ("tool_call_answer", {"messages": [SYSTEM, WQ, WCALL], "tools": [WEATHER]}, False),
    ("parallel_tool_calls", {"messages": [SYSTEM, WQ, WCALLS, *WRESULTS, WANSWER2], "tools": [WEATHER, TIME]}, False),
    ("special_characters", {"messages": [QUOTED, {"role": "assistant", "content": "\"it's <b>bold</b> & \\back\\slash\""}]}, False),
    ("reasoning_inline", {"messages": [Q1, THINK_INLINE]}, False),
    ("reasoning_content", {"messages": [Q1, THINK_FIELD]}, False),
    ("reasoning_multi_turn", {"messages": [Q1, THINK_FIELD, Q2, THINK_FIELD2]}, False),
    ("prompt", {"messages": [Q1]}, True),
    ("prompt_system", {"messages": [SYSTEM, Q1]}, True),
    ("prompt_multi_turn", {"messages": [Q1, A1, Q2]}, True),
    ("prompt_tools", {"messages": [WQ], "tools": [WEATHER]}, True),
    ("prompt_after_tool_result", {"messages": [WQ, WCALL, WRESULT], "tools": [WEATHER]}, True),
]


def transformers_side(tok, line, agp, with_mask):
    """What transformers renders, or the message it raises."""
    try:
        text = tok.apply_chat_template(line["messages"], tools=line.get("tools"), tokenize=False, add_generation_prompt=agp)
    except Exception as e:  # noqa: BLE001 - any failure is compared with retort's
        return {"raised": type(e).__name__, "message": str(e)}
    out = {"text": text, "input_ids": tok(text, add_special_tokens=False)["input_ids"]}
    if with_mask and not agp:
        enc = tok.apply_chat_template(
            line["messages"], tools=line.get("tools"), tokenize=True, return_dict=True,
            return_assistant_tokens_mask=True, add_generation_prompt=False,
        )
        out["assistant_mask"] = list(enc["assistant_masks"])
    return out


def retort_side(retort, model_dir, path, agp):
    cmd = [retort, "template", "render", "--model", model_dir, path, "--json"]
    if agp:
        cmd.append("--add-generation-prompt")
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [json.loads(x) for x in run.stdout.splitlines() if x.strip()]
    return lines, run


def main():
    retort, tokenizer_dir, work = sys.argv[1], sys.argv[2], sys.argv[3]
    if len(sys.argv) > 4:
        template_dir = sys.argv[4]
    else:
        import trl

        template_dir = os.path.join(os.path.dirname(trl.__file__), "chat_templates")
    templates = sorted(glob.glob(os.path.join(template_dir, "*.jinja")))
    if os.environ.get("ONLY"):
        templates = [t for t in templates if any(os.path.basename(t).startswith(o) for o in os.environ["ONLY"].split(","))]
    os.makedirs(work, exist_ok=True)
    totals = {"templates": 0, "equal": 0, "renders": 0, "renders_equal": 0, "raises": 0, "raises_equal": 0, "masks": 0, "masks_equal": 0}
    failures = []
    for path in templates:
        name = os.path.basename(path)[: -len(".jinja")]
        model = os.path.join(work, name)
        os.makedirs(model, exist_ok=True)
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
        with open(os.path.join(model, "chat_template.jinja"), "w", encoding="utf-8") as fh:
            fh.write(source)
        link = os.path.join(model, "tokenizer.json")
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(tokenizer_dir, "tokenizer.json")), link)
        config = json.load(open(os.path.join(tokenizer_dir, "tokenizer_config.json")))
        config["bos_token"] = "<|endoftext|>"
        json.dump(config, open(os.path.join(model, "tokenizer_config.json"), "w"))
        tok = AutoTokenizer.from_pretrained(model)
        has_generation = "generation" in source and "{% generation" in source.replace("{%-", "{%")
        problems = []
        for agp in (False, True):
            chosen = [(n, line) for n, line, a in CONVERSATIONS if a == agp]
            file = os.path.join(model, "prompts.jsonl" if agp else "train.jsonl")
            with open(file, "w", encoding="utf-8") as fh:
                for _, line in chosen:
                    fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            ours, run = retort_side(retort, model, file, agp)
            if len(ours) != len(chosen):
                problems.append(f"retort printed {len(ours)} lines for {len(chosen)} ({run.stderr.strip()[:300]})")
                continue
            for (kind, line), got in zip(chosen, ours):
                want = transformers_side(tok, line, agp, has_generation)
                if "raised" in want:
                    totals["raises"] += 1
                    if "error" not in got:
                        problems.append(f"{kind}: transformers raises {want['raised']}: {want['message'][:200]}; retort renders")
                    elif want["raised"] == "TemplateError" and want["message"] not in got["error"]:
                        problems.append(f"{kind}: transformers raises {want['message']!r}; retort: {got['error'][:300]!r}")
                    else:
                        totals["raises_equal"] += 1
                    continue
                totals["renders"] += 1
                if "error" in got:
                    problems.append(f"{kind}: retort fails: {got['error'][:400]}")
                    continue
                if got["text"] != want["text"]:
                    i = next((k for k, (a, b) in enumerate(zip(got["text"], want["text"])) if a != b), min(len(got["text"]), len(want["text"])))
                    problems.append(
                        f"{kind}: text differs at char {i}: transformers {want['text'][max(0, i - 40):i + 60]!r}"
                        f" retort {got['text'][max(0, i - 40):i + 60]!r}"
                    )
                    continue
                if got["input_ids"] != want["input_ids"]:
                    problems.append(f"{kind}: input ids differ")
                    continue
                totals["renders_equal"] += 1
                if "assistant_mask" in want:
                    totals["masks"] += 1
                    if got["assistant_mask"] != want["assistant_mask"]:
                        diff = [k for k, (a, b) in enumerate(zip(got["assistant_mask"], want["assistant_mask"])) if a != b]
                        problems.append(f"{kind}: assistant mask differs at tokens {diff[:10]}")
                    else:
                        totals["masks_equal"] += 1
        totals["templates"] += 1
        if problems:
            failures.append((name, problems))
            print(f"DIFF  {name}")
            for p in problems:
                print(f"        {p}")
        else:
            totals["equal"] += 1
            if os.environ.get("VERBOSE"):
                print(f"ok    {name}")
    print(
        f"templates: {totals['equal']}/{totals['templates']} render equal to transformers; "
        f"renderings byte-identical with equal input ids {totals['renders_equal']}/{totals['renders']}, "
        f"assistant masks equal {totals['masks_equal']}/{totals['masks']}, "
        f"refusals raised alike {totals['raises_equal']}/{totals['raises']}"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
