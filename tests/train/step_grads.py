"""Run by ``torchrun`` in test_micro_tokens.py: one training step of the recipe ``argv[1]`` on the global
batch of rows ``argv[3]`` (comma-separated), writing the step's gradient and each rank's plan to ``argv[2]``."""

import json
import sys

import numpy as np
import torch
from safetensors.torch import save_file

from nabra.config import load_config
from nabra.train import setup


def main(config: str, out: str, rows: str) -> None:
    loop = setup(load_config(config), log=lambda *_: None)
    batch = np.array([int(r) for r in rows.split(",")], dtype=np.int64)
    loop.schedule.next_batch = lambda: batch
    grads, clip = {}, loop._clip

    def record():
        grads.update({n: p.grad.detach().clone().contiguous() for n, p in loop.trained.named_parameters()
                      if p.grad is not None})
        return clip()

    loop._clip = record
    record_ = loop.train_step()
    plan = loop.micro_plan(batch)
    if loop.acc.is_main_process:
        save_file(grads, f"{out}/grads.safetensors")
        with open(f"{out}/plan.json", "w") as f:
            json.dump({"loss": record_["loss"], "ranks": [[None if m is None else m.tolist() for m in r] for r in plan]}, f)
    loop.acc.wait_for_everyone()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:4])
