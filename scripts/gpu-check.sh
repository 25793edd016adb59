#!/usr/bin/env bash
# gpu-check.sh: prove retort's `cuda` build on a fresh NVIDIA machine that has only the binary,
# a PyTorch install (torch + transformers + peft, CUDA 13 pip libraries) and no internet.
#
#   scripts/gpu-check.sh [DIR]     DIR holds retort-cuda (or .xz/.gz), optionally
#                                  libcurand.so.10(.xz) and export/ (default target/gpu-check)
#
# It prints, and writes under $OUT (default ./gpu-check-out):
#  1. correctness: the step-0 loss of a tiny model on the CPU (f32) and on the GPU (bf16);
#  2. speed: a LoRA step (r 16 on every projection, bf16 base, f32 LoRA) on a random model of
#     Qwen2-0.5B's shape (24 layers, hidden 896, vocab 151,936), one 4,096-token row per step:
#     retort's tokens/s and peak GPU memory (nvidia-smi), where a step's time goes (forward,
#     loss head, backward, optimizer; attention alone) and how far the GPU's attention, RMSNorm
#     and SwiGLU backwards (retort's kernels) are from the CPU's; the step again with candle's ops
#     instead of retort's kernels (RETORT_KERNELS=0); then the same in PyTorch + PEFT
#     (scripts/peft_bench.py on the same weights) and the ratio; SCAN=1 adds step times at
#     other row lengths;
#  3. a real run: `retort train` on DIR/export (reasoning samples of 3–4.6k tokens) for a few
#     steps: tokens/s per step and the loss curve (metrics.jsonl);
#  4. the trained adapter decoding a validation prompt on the GPU.
# Build the binary with scripts/build-cuda.sh and prepare DIR as the README's "Training on a GPU"
# shows (the binary xz-compressed, a messages export of 3–4k-token reasoning samples).
set -uo pipefail

DIR="${1:-target/gpu-check}"
OUT="${OUT:-$PWD/gpu-check-out}"
STEPS="${STEPS:-10}"   # timed steps of the speed comparison; SKIP_PYTORCH=1 leaves PyTorch out
mkdir -p "$OUT"
WORK="$(mktemp -d)"
LOG="$OUT/gpu-check.log"
say() { echo "== $*" | tee -a "$LOG"; }
run() { echo "\$ $*" >>"$LOG"; "$@" 2>&1 | tee -a "$LOG"; return "${PIPESTATUS[0]}"; }

# A Python with torch (for its CUDA libraries and the PyTorch side).
PY=""
for p in "${PYTHON:-}" python3 python; do
    [[ -n "$p" ]] && command -v "$p" >/dev/null && "$p" -c "import torch" 2>/dev/null && PY="$p" && break
done
[[ -n "$PY" ]] || say "no Python with torch found: the PyTorch side and its CUDA libraries are missing"

unpack() { # FILE -> path of the unpacked copy in WORK
    local f="$1" name
    name="$(basename "${f%.xz}")"; name="${name%.gz}"
    case "$f" in
        *.xz | *.gz) "${PY:-python3}" -c "import gzip,lzma,shutil,sys; o=(lzma.open if sys.argv[1].endswith('.xz') else gzip.open)(sys.argv[1]); shutil.copyfileobj(o, open(sys.argv[2],'wb'))" "$f" "$WORK/$name" ;;
        *) cp "$f" "$WORK/$name" ;;
    esac
    echo "$WORK/$name"
}

BIN=""
for f in "$DIR/retort-cuda" "$DIR/retort-cuda.xz" "$DIR/retort-cuda.gz"; do
    [[ -f "$f" ]] && BIN="$(unpack "$f")" && break
done
[[ -n "$BIN" ]] || { say "no retort-cuda in $DIR: build it with scripts/build-cuda.sh"; exit 1; }
chmod +x "$BIN"

# CUDA libraries: PyTorch's pip packages, and a carried libcurand when they lack one.
LIBS="$WORK/lib"
mkdir -p "$LIBS"
if [[ -n "$PY" ]]; then
    NV="$("$PY" -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null || true)"
    [[ -n "$NV" ]] && LIBS="$LIBS:$NV/cu13/lib:$(printf '%s:' "$NV"/*/lib)"
fi
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! ldd "$BIN" | grep -q 'libcurand.so.10 => /'; then
    for f in "$DIR/libcurand.so.10" "$DIR/libcurand.so.10.xz"; do
        [[ -f "$f" ]] && mv "$(unpack "$f")" "$WORK/lib/libcurand.so.10" && break
    done
fi
ldd "$BIN" | grep -E 'cuda|cublas|curand|not found' | tee -a "$LOG"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"

say "1. correctness: step-0 loss, CPU f32 vs GPU bf16 (tiny random Qwen2)"
run "$BIN" train create-model --shape tiny --out "$WORK/tiny" >/dev/null
run "$BIN" bench train --dir "$WORK/tiny" --device cpu --steps 1 --warmup 0 --no-pytorch --threads 4
if ! run "$BIN" bench train --dir "$WORK/tiny" --device cuda --steps 1 --warmup 0 --no-pytorch; then
    # Without retort's kernels, so that the rest still measures something.
    say "the GPU step failed; again with candle's ops instead of retort's kernels (RETORT_KERNELS=0)"
    export RETORT_KERNELS=0
    run "$BIN" bench train --dir "$WORK/tiny" --device cuda --steps 1 --warmup 0 --no-pytorch
fi
# Rows longer than one attention block (1,024 queries on a GPU, 512 on a CPU): the blocked path.
run "$BIN" bench train --dir "$WORK/tiny" --device cpu --batch 1 --seq-len 1100 --steps 1 --warmup 0 --no-pytorch --threads 4
run "$BIN" bench train --dir "$WORK/tiny" --device cuda --batch 1 --seq-len 1100 --steps 1 --warmup 0 --no-pytorch

say "2. speed: Qwen2-0.5B shape, 1 x 4096 tokens a step, LoRA r 16 on every projection, bf16"
run "$BIN" train create-model --shape qwen2-0.5b --bf16 --out "$WORK/q05"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$OUT/retort-gpu-mem.csv" &
SMI=$!
run timeout 300 "$BIN" bench train --dir "$WORK/q05" --device cuda --batch 1 --seq-len 4096 --steps "$STEPS" --warmup 2 --r 16 --no-pytorch --profile
kill "$SMI" 2>/dev/null
# The same step with candle's ops instead of retort's kernels (src/train/kernels.cu).
RETORT_KERNELS=0 run timeout 120 "$BIN" bench train --dir "$WORK/q05" --device cuda --batch 1 --seq-len 4096 --steps 3 --warmup 1 --r 16 --no-pytorch | grep '^retort' | sed "s/^retort /retort (candle's ops) /"
if [[ -n "${SCAN:-}" ]]; then # SCAN=1: step time against row length (fixed cost vs attention)
    for shape in "1 512" "1 1024" "1 2048" "8 512"; do
        set -- $shape
        run timeout 120 "$BIN" bench train --dir "$WORK/q05" --device cuda --batch "$1" --seq-len "$2" --steps 3 --warmup 1 --no-pytorch | grep '^retort'
    done
fi
say "retort peak GPU memory: $(sort -n "$OUT/retort-gpu-mem.csv" | tail -1) MiB (nvidia-smi, whole GPU)"
if [[ -n "$PY" && -z "${SKIP_PYTORCH:-}" ]]; then
    run timeout 240 "$PY" scripts/peft_bench.py --model "$WORK/q05" --batch 1 --seq-len 4096 --steps "$STEPS" \
        --warmup-steps 2 --r 16 --alpha 32 --device cuda --dtype bfloat16 | tail -1 >"$OUT/pytorch.json"
    cat "$OUT/pytorch.json" >>"$LOG"
fi

say "3. retort train on $DIR/export, 20 steps"
if [[ -d "$DIR/export" ]]; then
    run timeout 240 "$BIN" --db "$WORK/s.db" train --model "$WORK/q05" --data "$DIR/export" --out "$WORK/run" --device cuda \
        --max-steps 20 --batch-tokens 4096 --max-len 4096 --r 16 --alpha 32 --lr 2e-4 --val-every 10
    cp "$WORK/run/metrics.jsonl" "$OUT/" 2>/dev/null
    say "4. the trained student decodes on the GPU (KV cache)"
    run timeout 60 "$BIN" generate-local --model "$WORK/q05" --adapter "$WORK/run" --data "$DIR/export" --n 1 \
        --max-new-tokens 16 --device cuda | tail -c 400
fi
say "done; logs in $OUT"
