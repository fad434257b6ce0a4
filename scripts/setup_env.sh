#!/usr/bin/env bash
# Creates ./.venv with everything the pack, its tests and the local ComfyUI host need.
# Idempotent: a second run only checks that the pinned packages are present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FACELIFT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
CONSTRAINTS="$ROOT/scripts/constraints-dev.txt"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS")
stamp="$VENV/.facelift-setup-$(cat "$CONSTRAINTS" "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "[setup] environment up to date ($VENV)"
  exit 0
fi
echo "[setup] installing torch/torchvision (a matching pair; takes a few minutes the first time)"
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1
echo "[setup] installing the pack's requirements and the test tools"
"${PIP[@]}" torch==2.14.1 -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt"
touch "$stamp"
echo "[setup] done ($VENV)"
