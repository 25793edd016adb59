"""Cuts the demo set from ../shared/data (run from the repository root: python3 assets/demo/cut.py).

Every file here is real data written by others, cut to a few hundred samples; see README.md."""
import json, re, pathlib

data = pathlib.Path("../shared/data")
out = pathlib.Path("assets/demo")

def head(src, dst, n):
    lines = (data / src).read_text(encoding="utf-8").splitlines(keepends=True)[:n]
    (out / dst).write_text("".join(lines), encoding="utf-8")

def head_array(src, dst, n):
    rows = json.loads((data / src).read_text(encoding="utf-8"))[:n]
    (out / dst).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

head("skythought/sky-t1-27b_math500.jsonl", "sky-t1-27b_math500.jsonl", 60)
head("skythought/qwen2.5-14b-instruct_math500.jsonl", "qwen2.5-14b-instruct_math500.jsonl", 60)
head("skythought/sky-t1-14b_amc23.jsonl", "sky-t1-14b_amc23.jsonl", 10)
head("skythought/sky-t1-wrong-14b_amc23.jsonl", "sky-t1-wrong-14b_amc23.jsonl", 10)
head("gsm8k/test.jsonl", "gsm8k_test.jsonl", 40)
head_array("chat-formats/llamafactory_alpaca_en_demo.json", "alpaca_en_demo.jsonl", 60)
head_array("chat-formats/llamafactory_glaive_toolcall_en_demo.json", "glaive_toolcall_en_demo.jsonl", 40)

# The OpenAI log-probs example: the request body of the curl example with its recorded response.
curl = (data / "wire-formats/openai_chat_completion_logprobs.request.curl.txt").read_text()
request = json.loads(re.search(r"-d '(.*)'", curl, re.S).group(1))
response = json.loads((data / "wire-formats/openai_chat_completion_logprobs.json").read_text())
(out / "openai_logprobs_exchange.jsonl").write_text(json.dumps({"request": request, "response": response}) + "\n")
