"""Loaded at start-up by the peer bench's virtualenv only (``PYTHONPATH=bench/peers/shim``).

ms-swift's Qwen2.5-Omni processor needs torchvision (qwen-omni-utils imports it at module level;
transformers' Qwen2.5-Omni processor wants its video processor). The only torchvision wheel for
torch 2.13 on the registry is a CUDA build (``0.28.0+cu130``) whose C extension cannot load on a
CPU-only machine, and importing it then fails at ``torch.library.register_fake("torchvision::nms")``:
the operator was never defined. Declaring the two schemas it registers fake kernels for lets the
pure-Python parts import; the audio path never calls an operator of torchvision's.
"""

import torch

_lib = torch.library.Library("torchvision", "DEF")
for _op in ("nms", "qnms"):
    _lib.define(f"{_op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
