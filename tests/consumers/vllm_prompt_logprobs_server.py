#!/usr/bin/env python3
"""A vLLM-shaped teacher for `retort score-logprobs`: a loopback server answering
`POST /v1/completions` with `prompt_logprobs` as vLLM's OpenAI-compatible server does, the
log-probs from a real causal LM's forward pass teacher-forced over the prompt's token ids.

    python tests/consumers/vllm_prompt_logprobs_server.py TOKENIZER_DIR [--model NAME]

The model is a tiny Qwen2ForCausalLM (hidden 64, 2 layers, 4 heads, the tokenizer's vocabulary),
randomly initialised from a fixed seed: the same weights on every run and in every process that
calls `tiny_teacher` (scored_kd_check.py recomputes its numbers with it). Its weights are drawn
wide enough that its distributions are far from uniform, so each position's top-K is distinct.

For `{"model", "prompt": [ids], "max_tokens": 1, "prompt_logprobs": K}` the answer is vLLM's
(entrypoints/openai/completion serving, with clamp_prompt_logprobs): `choices[0].prompt_logprobs`
has `null` at position 0, and at position i > 0 a dict keyed by token-id strings: the prompt's own
token i first, with its rank in the whole vocabulary (1 + the tokens more likely than it), then the
K most likely tokens (ranks 1..K), each `{"logprob", "rank", "decoded_token"}`; the log-probs are
log_softmax of the raw logits at position i - 1 (temperature 1), -inf sent as -9999.0. The one
completion token is the greedy one. `GET /v1/models` lists the model. Errors are vLLM's: 404 for
another model, 400 for K above --max-logprobs (20, vLLM's default) or a prompt that is not ids.

It binds 127.0.0.1 on a free port and prints the port alone on stdout's first line; it logs to
stderr, and exits when its stdin closes or on SIGTERM.
"""

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM  # noqa: E402

MODEL = "tiny-qwen2-teacher"
SEED = 20260301


def tiny_teacher(tokenizer):
    """The seeded tiny Qwen2 over `tokenizer`'s vocabulary, in eval mode, float32."""
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768,
                         initializer_range=0.4, tie_word_embeddings=True, rms_norm_eps=1e-6)
    torch.manual_seed(SEED)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    model.eval()
    return model


def prompt_logprobs(model, ids):
    """log_softmax of the logits, float32: row i is the model's distribution over token i + 1."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0].float()
        return torch.log_softmax(logits, dim=-1)


def clamp(lp):
    return -9999.0 if lp == -math.inf else lp


class Teacher:
    def __init__(self, tokenizer_dir, name, max_logprobs):
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        self.model = tiny_teacher(self.tokenizer)
        self.name, self.max_logprobs = name, max_logprobs
        self.lock = threading.Lock()  # one forward pass at a time: flat memory, two cores
        self.requests = self.positions = 0
        self.pieces = {}

    def decoded(self, token):
        text = self.pieces.get(token)
        if text is None:
            text = self.pieces[token] = self.tokenizer.decode([token])
        return text

    def complete(self, body):
        """(status, answer) for a completions request."""
        if body.get("model") != self.name:
            return 404, error(f"The model `{body.get('model')}` does not exist.", "NotFoundError", 404)
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompt = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not (isinstance(prompt, list) and prompt and all(isinstance(t, int) and 0 <= t < len(self.tokenizer) for t in prompt)):
            return 400, error("prompt must be a string or a non-empty list of token ids in the vocabulary", "BadRequestError", 400)
        k = body.get("prompt_logprobs")
        if k is not None and (not isinstance(k, int) or k < -1 or k > self.max_logprobs):
            return 400, error(f"Requested prompt logprobs of {k}, which is greater than max allowed: {self.max_logprobs}",
                              "BadRequestError", 400)
        with self.lock:
            lp = prompt_logprobs(self.model, prompt)
            self.requests += 1
            self.positions += len(prompt)
            number = self.requests
        entries = [None]
        if k is not None:
            k = lp.shape[-1] if k == -1 else k
            top_lp, top_ids = torch.topk(lp[:-1], k, dim=-1)
            targets = torch.tensor(prompt[1:], dtype=torch.long)
            own = lp[:-1].gather(1, targets[:, None])
            ranks = ((lp[:-1] > own).sum(dim=-1) + 1).tolist()
            own, top_lp, top_ids = own[:, 0].tolist(), top_lp.tolist(), top_ids.tolist()
            for i in range(1, len(prompt)):
                token = prompt[i]
                entry = {str(token): {"logprob": clamp(own[i - 1]), "rank": ranks[i - 1], "decoded_token": self.decoded(token)}}
                for r, (t, v) in enumerate(zip(top_ids[i - 1], top_lp[i - 1]), 1):
                    entry.setdefault(str(t), {"logprob": clamp(v), "rank": r, "decoded_token": self.decoded(t)})
                entries.append(entry)
        greedy = int(torch.argmax(lp[-1]))
        return 200, {
            "id": f"cmpl-{number:032x}", "object": "text_completion", "created": int(time.time()), "model": self.name,
            "choices": [{"index": 0, "text": self.decoded(greedy), "logprobs": None, "finish_reason": "length",
                         "stop_reason": None, "prompt_logprobs": entries if k is not None else None}],
            "usage": {"prompt_tokens": len(prompt), "total_tokens": len(prompt) + 1, "completion_tokens": 1,
                      "prompt_tokens_details": None},
        }

    def models(self):
        return {"object": "list", "data": [{"id": self.name, "object": "model", "created": 0, "owned_by": "vllm",
                                            "root": self.name, "parent": None, "max_model_len": 32768, "permission": []}]}


def error(message, kind, code):
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def handler(teacher):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self.reply(200, teacher.models())
            else:
                self.reply(404, {"detail": "Not Found"})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/completions":
                return self.reply(404, {"detail": "Not Found"})
            try:
                request = json.loads(body)
            except ValueError as e:
                return self.reply(400, error(f"invalid JSON: {e}", "BadRequestError", 400))
            try:
                status, answer = teacher.complete(request)
            except Exception as e:  # noqa: BLE001 - a server error is an answer, as vLLM's is
                status, answer = 500, error(repr(e), "InternalServerError", 500)
            self.reply(status, answer)

        def log_message(self, fmt, *args):
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tokenizer_dir")
    p.add_argument("--model", default=MODEL)
    p.add_argument("--max-logprobs", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    teacher = Teacher(args.tokenizer_dir, args.model, args.max_logprobs)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(teacher))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(server.server_address[1], flush=True)
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.shutdown()
        server.server_close()
        sys.stderr.write(f"{teacher.requests} requests, {teacher.positions} prompt tokens scored\n")


if __name__ == "__main__":
    main()
