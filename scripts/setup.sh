#!/usr/bin/env bash
# Idempotent setup for a fresh clone: system packages, a virtualenv in .venv, meshctl with its test extras.
# Re-running is cheap: each step checks whether it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# --- system packages (graphviz for SVG graphs, headless Chromium for HTML report screenshots, fonts) ---
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 || need+=(chromium-headless-shell)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing Debian packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    log "warning: apt-get not found; install ${need[*]} yourself (tests that need them will fail)"
  fi
fi

# --- virtualenv ---
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  $PY -m venv .venv
fi

# --- python packages: reinstall only when pyproject.toml changed ---
stamp=.venv/.meshctl-setup-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c "import meshctl" 2>/dev/null; then
  log "installing meshctl and its test dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi
log "ready: $(.venv/bin/meshctl --version 2>/dev/null || echo 'meshctl not importable')"
