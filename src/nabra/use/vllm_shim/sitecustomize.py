"""Loaded at start-up by vLLM's own virtualenv when Nabra starts it and its torchvision cannot load.

vLLM's CPU build from the registry pulls in torchvision 0.28.0, whose only wheel for torch 2.13 is a
CUDA build: importing it fails at ``torch.library.register_fake("torchvision::nms")`` because its C
extension (which defines the operator) cannot load on a CPU-only machine. Declaring the two schemas it
registers fake kernels for lets the pure-Python parts import; the audio path never calls them.
(``nabra.use.vllm_engine.needs_shim`` decides: a working torchvision is never shadowed.)
"""

import torch

_lib = torch.library.Library("torchvision", "DEF")
for _op in ("nms", "qnms"):
    _lib.define(f"{_op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
