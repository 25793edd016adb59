#!/usr/bin/env python3
"""PyTorch + PEFT side of retort's LoRA training speed comparison.

Trains LoRA adapters for a few steps on random tokens and prints ONE JSON line to stdout:

  {"tokens_per_s", "step_ms_median", "step_ms_mean", "steps", "warmup_steps", "batch", "seq_len",
   "loss_tokens_per_step", "device", "gpu", "dtype", "lora_dtype", "attn", "threads", "peak_mem_mib",
   "peak_mem_kind", "trainable_params", "losses", "model", "torch", "transformers", "peft"}

Examples:
  python scripts/peft_bench.py --model DIR --batch 8 --seq-len 64 --steps 20 --warmup-steps 3 \\
      --r 16 --alpha 32 --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \\
      --device cpu --dtype float32 --threads 1
  python scripts/peft_bench.py --shape qwen2-0.5b --batch 1 --seq-len 4096 --steps 10 \\
      --device cuda --dtype bfloat16

What a step is: zero_grad -> forward with labels -> backward -> AdamW step (lr 2e-4, torch defaults
otherwise: betas (0.9, 0.999), eps 1e-8, weight_decay 0.01), one optimizer step per batch, no
gradient accumulation, no clipping, no gradient checkpointing.
Data: one batch of uniform random token ids (seeded, --seed), reused every step; labels are the ids
with the first quarter of every sequence (seq_len // 4 positions) set to -100. transformers shifts
internally, so a step scores batch * (seq_len - 1 - seq_len // 4) tokens.
Timing: each step is timed with time.perf_counter() between two synchronisation points
(torch.cuda.synchronize() on cuda); the first --warmup-steps steps are run but not timed.
tokens_per_s = batch * seq_len * timed steps / total timed seconds (all tokens processed, not only
those with loss). "losses" holds the loss of every step, warmup steps included (first warmup_steps
entries), each the forward's loss before that step's update.
Precision: with --dtype bfloat16/float16 the base weights are loaded in that dtype; PEFT's
get_peft_model (autocast_adapter_dtype=True, its default) keeps the LoRA A/B weights in float32, and
the lora forward casts activations to the adapter dtype and back. "lora_dtype" reports what PEFT did.
Memory: peak_mem_mib is torch.cuda.max_memory_allocated() on cuda (peak_mem_kind "cuda_max_allocated");
on cpu it is the process's peak resident set size, ru_maxrss (peak_mem_kind "cpu_maxrss"), which
includes the Python interpreter and libraries.
Offline: --shape builds a randomly initialised model from a hard-coded config (no download); --model
loads a local directory only (HF_HUB_OFFLINE is set).
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

import peft  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, Qwen2Config  # noqa: E402

SHAPES = {
    # Qwen/Qwen2-0.5B's config.json, without the download
    "qwen2-0.5b": lambda: Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=131072,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=True,
        use_sliding_window=False,
        sliding_window=None,
        bos_token_id=151643,
        eos_token_id=151643,
    ),
}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="local Hugging Face model directory")
    src.add_argument("--shape", choices=sorted(SHAPES), help="random model with this shape")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="timed steps (after warmup)")
    ap.add_argument("--warmup-steps", type=int, default=2, help="untimed steps run first")
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa", help="attn_implementation")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(args, dtype, device):
    if args.model:
        model = AutoModelForCausalLM.from_pretrained(
            args.model, dtype=dtype, attn_implementation=args.attn, local_files_only=True
        )
        return model.to(device), os.path.basename(os.path.normpath(args.model))
    config = SHAPES[args.shape]()
    # initialise directly on the target device (fast on cuda), then cast
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, attn_implementation=args.attn, dtype=dtype)
    return model.to(device=device, dtype=dtype), args.shape


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            torch.set_num_interop_threads(args.threads)
        except RuntimeError:
            pass
    transformers.logging.set_verbosity_error()
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    torch.manual_seed(args.seed)

    model, model_name = build_model(args, dtype, device)
    model.config.use_cache = False
    attn = getattr(model.config, "_attn_implementation", None) or args.attn
    base_dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    lcfg = LoraConfig(
        r=args.r,
        lora_alpha=args.alpha,
        lora_dropout=0.0,
        target_modules=[t for t in args.targets.split(",") if t],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lcfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    lora_dtypes = sorted({str(p.dtype).replace("torch.", "") for p in params})
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=args.lr)

    g = torch.Generator().manual_seed(args.seed)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.batch, args.seq_len), generator=g)
    labels = ids.clone()
    labels[:, : args.seq_len // 4] = -100
    ids, labels = ids.to(device), labels.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    losses, times = [], []
    for step in range(args.warmup_steps + args.steps):
        sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        sync(device)
        dt = time.perf_counter() - t0
        losses.append(float(loss.detach()))
        if step >= args.warmup_steps:
            times.append(dt)
        print(f"step {step}: loss {losses[-1]:.5f} {dt * 1e3:.1f} ms"
              + (" (warmup)" if step < args.warmup_steps else ""), file=sys.stderr)

    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
        gpu = torch.cuda.get_device_name(device)
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cpu_maxrss"
        gpu = None
    tokens = args.batch * args.seq_len
    out = {
        "tokens_per_s": tokens * len(times) / sum(times) if times else None,
        "step_ms_median": statistics.median(times) * 1e3 if times else None,
        "step_ms_mean": statistics.fmean(times) * 1e3 if times else None,
        "steps": len(times),
        "warmup_steps": args.warmup_steps,
        "batch": args.batch,
        "seq_len": args.seq_len,
        "loss_tokens_per_step": int((labels[:, 1:] != -100).sum()),
        "device": args.device,
        "gpu": gpu,
        "dtype": args.dtype,
        "lora_dtype": ",".join(lora_dtypes),
        "base_dtype": base_dtype,
        "attn": attn,
        "r": args.r,
        "alpha": args.alpha,
        "targets": lcfg.target_modules and sorted(lcfg.target_modules),
        "trainable_params": trainable,
        "threads": torch.get_num_threads(),
        "peak_mem_mib": round(peak, 1),
        "peak_mem_kind": kind,
        "losses": losses,
        "model": model_name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
