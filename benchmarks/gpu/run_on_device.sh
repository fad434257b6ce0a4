#!/usr/bin/env bash
# Issue 16 on the GPU machine, as ONE prepared device command (it has no network; see docs/benchmarks.md):
#   1. unpack what benchmarks/gpu/prepare_bundle.sh put in .gpubundle/ (carried with the call): the missing Python
#      packages onto PYTHONPATH (nothing is pip-installed), ComfyUI 0.3.75 into .cache/, the MTCNN weights;
#   2. bench:  benchmarks/bench_workflow_gpu.py --device gpu: full-size random weights written in the official
#      layout, gsplat's first use, the shipped photo workflow cold + warm at the official settings through ComfyUI
#      -> $OUT/gpu_workflow_e2e.json (+ bench.log, bench_comfyui.log);
#   3. tests:  the whole test suite with the test server on ComfyUI's own device choice (the GPU:
#      FACELIFT_TEST_SERVER_DEVICE=auto), GPU tests first -> $OUT/tests.log, tests.xml, tests_comfyui.log.
# Everything ends by DEADLINE_S (default 570 s after the start, inside the device's 600 s per command): the
# benchmark gets at most BENCH_MAX_S and always leaves TESTS_MIN_S (its JSON is saved after each stage, with
# "complete": false until the end); the tests stop at the deadline with SIGINT, so
# pytest still prints its summary. Run only one phase with `bench` or `tests` as the argument; TESTS (default
# "tests/test_cuda_pipeline.py tests") and PYTEST_ARGS narrow or extend the test run.
#
# The device call (from the repository root of the checkout the session was started in):
#   run(command="bash benchmarks/gpu/run_on_device.sh", carry=[".gpubundle"], timeout_s=600)
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
PHASE=${1:-all}
DEADLINE_S=${DEADLINE_S:-570}
BENCH_MAX_S=${BENCH_MAX_S:-400}
TESTS_MIN_S=${TESTS_MIN_S:-150}
OUT=${OUT:-$PWD/out/device}
PY=${PY:-python3}
B=.gpubundle
SITE=${SITE:-/tmp/facelift-site}
COMFY=.cache/comfyui-0.3.75
mkdir -p "$OUT"
left() { echo $(( DEADLINE_S - ($(date +%s) - T0) )); }
untar() {  # $1 archive (.tar.xz), $2 folder: tar + xz where the image has xz, else Python's tarfile (stdlib lzma)
  if command -v xz >/dev/null; then tar -C "$2" -xJf "$1"
  else "$PY" -c 'import sys, tarfile; t = tarfile.open(sys.argv[1]); t.extractall(sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))' "$1" "$2"
  fi
}
say() { echo "[run_on_device +$(( $(date +%s) - T0 ))s] $*"; }

# --------------------------------------------------------------------------------------------- 1. unpack
if [[ ! -s $B/site-core.tar.xz ]]; then
  echo "error: $B/site-core.tar.xz is missing: run bash benchmarks/gpu/prepare_bundle.sh first and name .gpubundle in carry" >&2
  exit 2
fi
mkdir -p "$SITE"
for f in "$B"/site-*.tar.xz; do untar "$f" "$SITE" || exit 3; done
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
mkdir -p .cache/mtcnn
[[ -f $COMFY/main.py ]] || untar "$B/comfyui-0.3.75.tar.xz" .cache || exit 3
cp "$B"/mtcnn/*.pt .cache/mtcnn/
# The host harness must not pip-install (no network); the Hub stays offline.
export FACELIFT_COMFYUI_SKIP_INSTALL=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
say "unpacked: $(ls "$B" | tr '\n' ' ')"

{
  date -u; nvidia-smi 2>&1 | head -20; echo
  "$PY" - <<'EOF'
import importlib.metadata as md, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for name in ("diffusers", "transformers", "huggingface_hub", "numpy", "numba", "av", "gsplat", "safetensors",
             "tokenizers", "aiohttp", "pillow", "scipy", "torchsde", "plyfile", "websocket-client", "pydantic",
             "sqlalchemy", "pytest", "pytest-timeout", "scikit-image"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
EOF
  echo "nvcc: $(command -v nvcc || echo none)"; nproc; free -g 2>/dev/null | head -2
} > "$OUT/env.txt" 2>&1
say "environment: $(grep '^python' "$OUT/env.txt")"

# ---------------------------------------------------------------------------------------------- 2. bench
if [[ $PHASE == all || $PHASE == bench ]]; then
  budget=$(( $(left) - TESTS_MIN_S ))
  (( budget > BENCH_MAX_S )) && budget=$BENCH_MAX_S
  [[ $PHASE == bench ]] && budget=$(left)
  say "benchmark (at most ${budget}s)"
  timeout --signal=INT --kill-after=15 "$budget" "$PY" benchmarks/bench_workflow_gpu.py --device gpu \
      --work-dir /tmp/facelift-bench --out "$OUT/gpu_workflow_e2e.json" --gsplat-timeout 240 \
      2>&1 | tee "$OUT/bench.log"
  say "benchmark exit ${PIPESTATUS[0]}"
  cp /tmp/facelift-bench/comfyui-server.log "$OUT/bench_comfyui.log" 2>/dev/null \
    || cp /tmp/facelift-bench/comfy_run/comfyui.log "$OUT/bench_comfyui.log" 2>/dev/null || true
fi

# ---------------------------------------------------------------------------------------------- 3. tests
if [[ $PHASE == all || $PHASE == tests ]]; then
  budget=$(left)
  say "test suite (stopped after ${budget}s)"
  # GPU-specific tests first, so they run even when the deadline cuts the suite; pytest drops the duplicate.
  FACELIFT_TEST_SERVER_DEVICE=auto timeout --signal=INT --kill-after=20 "$budget" \
      "$PY" -m pytest ${TESTS:-tests/test_cuda_pipeline.py tests} -q -ra -p no:cacheprovider \
      --junitxml="$OUT/tests.xml" ${PYTEST_ARGS:-} 2>&1 | tee "$OUT/tests.log"
  say "tests exit ${PIPESTATUS[0]}"
  cp test-artifacts/comfyui-server.log "$OUT/tests_comfyui.log" 2>/dev/null || true
fi
say "done; files in \$OUT: $(ls "$OUT" | tr '\n' ' ')"
