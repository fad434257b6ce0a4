#!/usr/bin/env bash
# Installs the headless browser the graph-editor tests drive: Debian's `chromium` package, used by Playwright
# through executable_path=/usr/bin/chromium (Playwright's own browser download is never used).
# Skipped when chromium is already present; needs root (CI runs as root) or passwordless sudo.
# Set FACELIFT_SKIP_BROWSER=1 to skip it (the browser tests then skip with a clear reason).
set -euo pipefail
if [ "${FACELIFT_SKIP_BROWSER:-0}" = "1" ]; then
  echo "[browser] FACELIFT_SKIP_BROWSER=1: not installing chromium"
  exit 0
fi
for exe in /usr/bin/chromium "${FACELIFT_CHROMIUM:-}"; do
  if [ -n "$exe" ] && [ -x "$exe" ]; then
    echo "[browser] chromium present ($exe)"
    exit 0
  fi
done
SUDO=()
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "[browser] not root and no passwordless sudo: cannot install chromium; browser tests will be skipped" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "[browser] no apt-get on this system: install Chromium yourself and set FACELIFT_CHROMIUM=/path/to/it" >&2
  exit 0
fi
echo "[browser] installing Debian chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "[browser] installed: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
