#!/usr/bin/env python3
"""Logged exchanges of a Qwen teacher with its top-5 log-probs, as vLLM's OpenAI-compatible server
returns them, for the KD checks (teacher and student share the Qwen tokenizer).

    python tests/consumers/make_teacher_logprobs.py QWEN_TOKENIZER_DIR GSM8K_JSONL OUT.jsonl

Each line is an `exchange` record retort imports: the request (messages, temperature 0.7,
logprobs, top_logprobs 5) and a chat.completion whose `logprobs.content` has, per token of the
answer (a GSM8K worked solution, tokenized by the Qwen tokenizer), its text, bytes and log-prob
and five alternatives; some requests carry a system prompt or an earlier turn. Deterministic.
"""

import json
import random
import sys

from transformers import AutoTokenizer


def entry(tok, token_id, logprob):
    text = tok.decode([token_id])
    raw = tok.convert_ids_to_tokens(token_id)
    # Byte-level pieces: the token's own bytes (a piece may hold part of a character).
    table = {v: k for k, v in __import__("transformers").convert_slow_tokenizer.bytes_to_unicode().items()}
    data = [table[c] for c in raw] if all(c in table for c in raw) else list(text.encode())
    return {"token": text, "logprob": logprob, "bytes": data}


def main():
    tok = AutoTokenizer.from_pretrained(sys.argv[1])
    rows = [json.loads(x) for x in open(sys.argv[2], encoding="utf-8")][:40]
    rng = random.Random(7)
    vocab = 151643
    with open(sys.argv[3], "w", encoding="utf-8") as out:
        for i, row in enumerate(rows):
            answer = row["answer"].replace("<<", "").replace(">>", "")
            ids = tok(answer, add_special_tokens=False)["input_ids"]
            content = []
            for t in ids:
                sampled = -rng.uniform(0.01, 0.6)
                alternatives = sorted({t} | {rng.randrange(vocab) for _ in range(8)} - {t}, key=lambda _: rng.random())[:4]
                top = [entry(tok, t, sampled)] + [entry(tok, a, sampled - rng.uniform(0.5, 6.0)) for a in alternatives]
                content.append({**entry(tok, t, sampled), "top_logprobs": top})
            messages = [{"role": "user", "content": row["question"]}]
            if i % 3 == 1:
                messages.insert(0, {"role": "system", "content": "Solve the problem step by step."})
            if i % 4 == 2:
                messages = [{"role": "user", "content": "Can you help me with arithmetic?"},
                            {"role": "assistant", "content": "Of course. What is the problem?"}] + messages
            request = {"model": "Qwen2.5-7B-Instruct", "messages": messages, "temperature": 0.7, "logprobs": True, "top_logprobs": 5}
            response = {"id": f"chatcmpl-{i}", "object": "chat.completion", "model": "Qwen2.5-7B-Instruct",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": tok.decode(ids)},
                                     "logprobs": {"content": content}}]}
            out.write(json.dumps({"request": request, "response": response}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
