#!/usr/bin/env bash
# One-shot set-up for a fresh machine: system packages (eSpeak NG), a virtualenv, torch (CPU build,
# installed first so nothing pulls a CUDA build), then Nabra with all its extras.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "nabra setup: Python 3.11+ is required ($PYTHON is $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi

if ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "nabra setup: installing eSpeak NG (Debian package espeak-ng) ..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "nabra setup: eSpeak NG is missing; install it first: sudo apt-get install espeak-ng" >&2
    exit 1
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
# Pinned and first: a bare `torch` would pull a multi-GB CUDA build.
"$VENV/bin/python" -c 'import torch' 2>/dev/null || "${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -e ".[all,dev]"
# Optional: headless Chromium for the test of the server's page (skipped with the reason without it).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "nabra setup: installing Chromium (Debian package chromium) for the page test ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || echo "nabra setup: chromium could not be installed; the page test will be skipped" >&2
fi
# Optional: the tests of the lhotse round trip skip (with the reason) where it cannot install.
"${PIP[@]}" -e ".[docs]" || echo "nabra setup: mkdocs could not be installed; make docs and its build test will be skipped" >&2
"${PIP[@]}" -e ".[lhotse]" || echo "nabra setup: lhotse could not be installed; its round-trip tests will be skipped" >&2
echo "nabra setup: done ($VENV)."
