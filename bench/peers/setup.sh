#!/usr/bin/env bash
# The peer bench's own virtualenv (default .venv-peers): torch 2.13.0 (CPU) first, then ms-swift from the
# registry, then torchvision 0.28.0 without its CUDA dependencies (see shim/sitecustomize.py). Nabra's
# own .venv is not touched. Idempotent: a stamp file records a finished set-up.
set -euo pipefail
VENV=${1:-.venv-peers}
STAMP="$VENV/.peers-installed"
SWIFT_VERSION=${SWIFT_VERSION:-4.6.0}
WANT="ms-swift==$SWIFT_VERSION $(md5sum "$0" | cut -d' ' -f1)"  # a changed set-up script sets up again
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "$VENV: ms-swift $SWIFT_VERSION already set up"; exit 0
fi
PY=${PYTHON:-python3.11}
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "torch==2.13.0"
# jieba, nltk, rouge: what ms-swift's generation metrics (--predict_with_generate, eval_metric nlg) import
"$VENV/bin/pip" install -q "ms-swift==$SWIFT_VERSION" "qwen-omni-utils==0.0.9" jieba nltk rouge
"$VENV/bin/pip" install -q --no-deps "torchvision==0.28.0"
PYTHONPATH="$(dirname "$0")/shim" "$VENV/bin/python" -c "import swift, torchvision; print('ms-swift', swift.__version__, 'torchvision', torchvision.__version__)"
echo "$WANT" > "$STAMP"
