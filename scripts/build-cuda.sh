#!/usr/bin/env bash
# build-cuda.sh: build retort with the `cuda` feature on a machine with no GPU and no system CUDA,
# for NVIDIA H100/H200 machines (compute capability 9.0) with a CUDA 13 driver.
#
#   scripts/build-cuda.sh                      # -> target/cuda/retort-cuda (stripped)
#   CUDA_COMPUTE_CAP=80 scripts/build-cuda.sh  # another GPU generation (default 90 = Hopper)
#
# What it does, and why:
#  1. Toolkit. Debian's nvidia-cuda-toolkit is CUDA 11.8, the wrong major version for the GPU
#     machines (CUDA 13 driver and runtime), and NVIDIA's own site is not reachable from here. So
#     the CUDA 13.0 toolkit is installed from PyPI wheels (about 1.1 GB) into
#     target/cuda-toolkit/py with `pip install --target`, never system-wide, once: a stamp file
#     records the pinned set, and a rerun with the same pins installs nothing. The wheels unpack
#     under py/nvidia/cu13/{bin,include,lib}. Versions are pinned to the set of the `cuda-toolkit`
#     13.0.2 meta-package: the kernels' PTX must not be newer than the GPU driver's CUDA (see
#     WHEELS below), and every CUDA 13 runtime reads what 13.0 writes. The pins matter too for
#     cudarc 0.19.10 (candle-core 0.11.1), built with `cuda-version-from-build-system`: it reads
#     `nvcc --version` and accepts CUDA up to 13.4 only.
#  2. Link directory. The wheels ship only versioned libraries (libcudart.so.13, ...); the
#     linker wants lib<name>.so, so target/cuda-toolkit/lib holds unversioned symlinks.
#  3. libcuda stub. cudarc is built with `dynamic-linking`: the driver library libcuda.so is
#     linked at build time. The driver is not part of any toolkit wheel (it comes with the GPU
#     driver), so a stub is generated: one empty function per `cu*` entry point that cudarc's
#     driver bindings declare (cudarc-*/src/driver/sys/mod.rs), each returning
#     CUDA_ERROR_STUB_LIBRARY (34), compiled with SONAME libcuda.so.1. The binary then records
#     NEEDED libcuda.so.1, which the real driver provides on the GPU machine. The stub is rebuilt
#     only when the symbol list changes. It is never shipped.
#  4. Build. `cargo build --release --locked --features cuda --bin retort` with its own
#     CARGO_TARGET_DIR=target/cuda (so it never invalidates the normal CPU build in target/),
#     nvcc on PATH, CUDA_HOME pointing at the wheels' cu13 tree, CUDA_COMPUTE_CAP for
#     candle-kernels (there is no nvidia-smi here to detect it), and LIBRARY_PATH pointing at
#     the link directory. retort's own kernels (src/train/kernels.cu) become PTX in build.rs with
#     the same nvcc. A clean build takes about 10 minutes on 2 cores; a rerun is a no-op.
#  5. Output. A stripped copy goes to target/cuda/retort-cuda, and a gzip of it to
#     target/cuda/retort-cuda.gz (the binary is ~82 MB, mostly candle's sm_90a kernels, which is
#     over the 64 MiB the device tool carries; the .gz is ~22 MB). The script prints the size, the
#     shared libraries it needs and how to find them on the GPU machine.
#
# Environment: CUDA_COMPUTE_CAP (default 90), PYTHON (default python3, used for pip),
# RETORT_CUDA_TOOLKIT_DIR (default target/cuda-toolkit), CARGO (default cargo).
set -euo pipefail

die() {
    echo "build-cuda.sh: error: $*" >&2
    exit 1
}
note() { echo "build-cuda.sh: $*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -f Cargo.toml ]] || die "no Cargo.toml in $ROOT (the script must stay in the repo's scripts/)"

CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
[[ "$CUDA_COMPUTE_CAP" =~ ^[0-9]+[af]?$ ]] ||
    die "CUDA_COMPUTE_CAP must look like 90 (H100/H200), 80 (A100) or 90a, got '$CUDA_COMPUTE_CAP'"
PYTHON="${PYTHON:-python3}"
CARGO="${CARGO:-cargo}"
TOOLKIT_DIR="${RETORT_CUDA_TOOLKIT_DIR:-$ROOT/target/cuda-toolkit}"
TARGET_DIR="$ROOT/target/cuda"
OUT_BIN="$TARGET_DIR/retort-cuda"

# The CUDA 13.0 toolkit, as pinned by the cuda-toolkit==13.0.2 meta-package. 13.0, not newer:
# candle's kernels ship as PTX that the driver compiles at load time, and a driver only reads
# the PTX of its own CUDA version or older. The H200 machine's driver 580 is CUDA 13.0; a 13.2
# build failed there with CUDA_ERROR_UNSUPPORTED_PTX_VERSION. Its PyTorch is 2.11 (cu130).
WHEELS=(
    "nvidia-cuda-nvcc==13.0.88"    # nvcc, ptxas
    "nvidia-cuda-crt==13.0.88"     # nvcc's crt/ headers
    "nvidia-nvvm==13.0.88"         # cicc, libnvvm
    "nvidia-cuda-runtime==13.0.96" # cuda_runtime.h, libcudart.so.13
    "nvidia-cuda-cccl==13.0.85"    # CCCL (cub/thrust/libcu++) headers used by candle's kernels
    "nvidia-cuda-nvrtc==13.0.88"   # libnvrtc.so.13 (cudarc's nvrtc feature)
    "nvidia-cublas==13.1.0.3"      # libcublas.so.13, libcublasLt.so.13
    "nvidia-curand==10.4.0.35"     # libcurand.so.10
)

# ---------------------------------------------------------------- prerequisites
command -v "$CARGO" >/dev/null 2>&1 || die "$CARGO not found on PATH (install Rust: https://rustup.rs, or set CARGO)"
command -v gcc >/dev/null 2>&1 ||
    die "gcc not found on PATH (nvcc needs it as host compiler, and it builds the libcuda stub): apt-get install gcc g++"
command -v g++ >/dev/null 2>&1 || die "g++ not found on PATH (nvcc needs a C++ host compiler): apt-get install g++"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (needed to run pip); set PYTHON=/path/to/python3"
"$PYTHON" -m pip --version >/dev/null 2>&1 ||
    die "pip not available for $PYTHON (apt-get install python3-pip, or set PYTHON to a python with pip)"
command -v readelf >/dev/null 2>&1 || die "readelf not found (apt-get install binutils)"
command -v gzip >/dev/null 2>&1 || die "gzip not found (apt-get install gzip)"
if command -v strip >/dev/null 2>&1; then
    STRIP=(strip --strip-all)
elif command -v objcopy >/dev/null 2>&1; then
    STRIP=(objcopy --strip-all)
else
    die "neither strip nor objcopy found (apt-get install binutils)"
fi

# ---------------------------------------------------------------- 1. toolkit (once)
PY_DIR="$TOOLKIT_DIR/py"
STAMP="$TOOLKIT_DIR/installed.txt"
WANT="$(printf '%s\n' "${WHEELS[@]}")"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$PY_DIR/nvidia/cu13/bin/nvcc" ]]; then
    note "CUDA toolkit already installed in $PY_DIR"
else
    note "installing the CUDA 13.0 toolkit wheels (~1.1 GB download) into $PY_DIR"
    mkdir -p "$TOOLKIT_DIR"
    rm -rf "$PY_DIR.tmp"
    "$PYTHON" -m pip install --disable-pip-version-check --no-cache-dir --no-input \
        --only-binary=:all: --target "$PY_DIR.tmp" "${WHEELS[@]}" ||
        die "pip could not install the CUDA wheels (is PyPI reachable? see the pip output above)"
    rm -rf "$PY_DIR"
    mv "$PY_DIR.tmp" "$PY_DIR"
    printf '%s\n' "$WANT" >"$STAMP"
fi

CU13="$PY_DIR/nvidia/cu13"
NVCC_BIN="$CU13/bin/nvcc"
[[ -x "$NVCC_BIN" ]] || die "nvcc missing at $NVCC_BIN after the wheel install (remove $TOOLKIT_DIR and rerun)"
[[ -d "$CU13/include" ]] || die "no CUDA headers in $CU13/include"
nvcc_release="$("$NVCC_BIN" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
[[ "$nvcc_release" == 13.* ]] || die "expected nvcc 13.x in $CU13, got '$nvcc_release'"

# ---------------------------------------------------------------- 2. link directory
LINK_DIR="$TOOLKIT_DIR/lib"
mkdir -p "$LINK_DIR"
for name in cudart cublas cublasLt curand nvrtc; do
    versioned=""
    for f in "$CU13/lib/lib$name.so."[0-9]*; do
        [[ -e "$f" ]] && { versioned="$f"; break; }
    done
    [[ -n "$versioned" ]] || die "lib$name.so.* not found in $CU13/lib (incomplete wheel install? remove $TOOLKIT_DIR and rerun)"
    ln -sfn "$versioned" "$LINK_DIR/lib$name.so"
done

# ---------------------------------------------------------------- 3. libcuda stub
# Where is cudarc's source? Ask cargo (this also downloads the crates if needed).
"$CARGO" fetch --locked >/dev/null || die "cargo fetch --locked failed (see above)"
CUDARC_DIR="$("$CARGO" metadata --locked --format-version 1 --features cuda 2>/dev/null |
    "$PYTHON" -c '
import json, os, sys
pkgs = [p for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc"]
if pkgs:
    print(os.path.dirname(pkgs[0]["manifest_path"]))
')" || true
[[ -n "$CUDARC_DIR" && -d "$CUDARC_DIR/src/driver/sys" ]] ||
    die "could not locate cudarc's sources via cargo metadata (is candle-core's cuda feature in Cargo.toml?)"

STUB_DIR="$TOOLKIT_DIR/stub"
mkdir -p "$STUB_DIR"
stub_c="$(mktemp)"
trap 'rm -f "$stub_c"' EXIT
{
    echo "/* Link-time stub of the CUDA driver API, generated by scripts/build-cuda.sh from"
    echo "   $(basename "$CUDARC_DIR")/src/driver/sys. Every entry point returns"
    echo "   CUDA_ERROR_STUB_LIBRARY; the real libcuda.so.1 comes with the GPU driver. */"
    grep -ohE '\bfn cu[A-Z][A-Za-z0-9_]*\(' "$CUDARC_DIR"/src/driver/sys/*.rs |
        sed -E 's/^fn (cu[A-Za-z0-9_]+)\($/\1/' | sort -u |
        while read -r sym; do echo "int $sym(void) { return 34; }"; done
} >"$stub_c"
nsyms="$(grep -c '^int cu' "$stub_c" || true)"
[[ "$nsyms" -gt 100 ]] || die "found only $nsyms cu* symbols in $CUDARC_DIR/src/driver/sys (cudarc layout changed?)"
if [[ -f "$STUB_DIR/libcuda.so.1" && -f "$STUB_DIR/libcuda_stub.c" ]] && cmp -s "$stub_c" "$STUB_DIR/libcuda_stub.c"; then
    note "libcuda stub up to date ($nsyms symbols)"
else
    note "building the libcuda.so.1 link stub ($nsyms symbols)"
    cat "$stub_c" >"$STUB_DIR/libcuda_stub.c"
    gcc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 -o "$STUB_DIR/libcuda.so.1.tmp" "$STUB_DIR/libcuda_stub.c" ||
        die "gcc failed to build the libcuda stub"
    mv "$STUB_DIR/libcuda.so.1.tmp" "$STUB_DIR/libcuda.so.1"
fi
ln -sfn libcuda.so.1 "$STUB_DIR/libcuda.so"
ln -sfn "$STUB_DIR/libcuda.so.1" "$LINK_DIR/libcuda.so"

# ---------------------------------------------------------------- 4. build
# Clear variables that would point cudarc or cudaforge at another toolkit.
unset CUDA_PATH CUDA_ROOT CUDA_TOOLKIT_ROOT_DIR CUDNN_LIB NVCC CUDARC_CUDA_VERSION
export CUDA_HOME="$CU13"
export PATH="$CU13/bin:$PATH"
export CUDA_COMPUTE_CAP
export LIBRARY_PATH="$LINK_DIR${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CARGO_TARGET_DIR="$TARGET_DIR"

# cargo does not notice a different toolkit: the crates that compile kernels or bind CUDA are
# rebuilt when the pinned set (or the compute capability) changed since the last build.
BUILT_WITH="$TARGET_DIR/toolkit.txt"
if [[ -f "$BUILT_WITH" && "$(cat "$BUILT_WITH")" != "$WANT sm_$CUDA_COMPUTE_CAP" ]]; then
    note "the toolkit changed since the last build: rebuilding candle-kernels, cudarc and candle"
    "$CARGO" clean --release --target-dir "$TARGET_DIR" -p candle-kernels -p cudarc -p candle-core -p candle-nn
fi
mkdir -p "$TARGET_DIR"
note "cargo build --release --locked --features cuda --bin retort (CUDA $nvcc_release, sm_$CUDA_COMPUTE_CAP, target dir $TARGET_DIR)"
"$CARGO" build --release --locked --features cuda --bin retort &&
    printf '%s sm_%s' "$WANT" "$CUDA_COMPUTE_CAP" >"$BUILT_WITH" ||
    die "cargo build failed (see above). Toolkit: $CU13; link dir: $LINK_DIR"

BUILT="$TARGET_DIR/release/retort"
[[ -x "$BUILT" ]] || die "cargo reported success but $BUILT is missing"

# ---------------------------------------------------------------- 5. stripped copy + report
if [[ ! -f "$OUT_BIN" || "$BUILT" -nt "$OUT_BIN" ]]; then
    "${STRIP[@]}" -o "$OUT_BIN.tmp" "$BUILT" || die "${STRIP[0]} failed on $BUILT"
    chmod +x "$OUT_BIN.tmp"
    mv "$OUT_BIN.tmp" "$OUT_BIN"
fi
# The stripped binary is ~82 MB, over the 64 MiB a device-tool call can carry; gzip makes it ~22 MB.
if [[ ! -f "$OUT_BIN.gz" || "$OUT_BIN" -nt "$OUT_BIN.gz" ]]; then
    gzip -6 -n -c "$OUT_BIN" >"$OUT_BIN.gz.tmp" || die "gzip failed on $OUT_BIN"
    mv "$OUT_BIN.gz.tmp" "$OUT_BIN.gz"
fi

size_bytes="$(stat -c %s "$OUT_BIN")"
needed="$(readelf -d "$OUT_BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
glibc="$(readelf -V "$OUT_BIN" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)*' | sort -uV | tail -n1 || true)"

echo
echo "retort (cuda, sm_$CUDA_COMPUTE_CAP, CUDA $nvcc_release) built:"
echo "  binary: $OUT_BIN"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo "  size:   $size_bytes bytes ($(mb "$size_bytes"))"
echo "  gzip:   $OUT_BIN.gz ($(mb "$(stat -c %s "$OUT_BIN.gz")"); gunzip -c it on the GPU machine)"
echo "  needs:  ${glibc:-glibc} or newer, and these shared libraries:"
while read -r lib; do
    [[ -n "$lib" ]] || continue
    case "$lib" in
    libcuda.so*) echo "    $lib   (GPU driver)" ;;
    libcu* | libnvrtc*) echo "    $lib   (CUDA 13 toolkit libraries: PyTorch's pip packages carry them)" ;;
    *) echo "    $lib" ;;
    esac
done <<<"$needed"
echo
echo "On the GPU machine, point LD_LIBRARY_PATH at the nvidia pip libraries of a PyTorch install:"
echo "  NV=\$(python -c 'import nvidia; print(list(nvidia.__path__)[0])')"
echo "  export LD_LIBRARY_PATH=\"\$NV/cu13/lib:\$(printf '%s:' \"\$NV\"/*/lib)\${LD_LIBRARY_PATH:-}\""
echo "  ldd retort-cuda | grep 'not found'   # should print nothing"
echo "(nvidia is a namespace package: nvidia.__file__ is None, hence __path__.) PyTorch 2.15's"
echo "cuda-toolkit dependency has no cuRAND: if libcurand.so.10 is missing, copy it from"
echo "  $CU13/lib/libcurand.so.10"
echo "or run 'pip install nvidia-curand==10.4.0.35' there."
