"""Micro-batches by token budget and packed micro-batches in the training step: the step's gradient
does not depend on how the global batch is laid out (one process, and two gloo processes where one
rank runs a stand-in)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nabra.config import load_config
from nabra.errors import NabraError
from nabra.train import setup


def _step(cfg, batch=None):
    """The gradient and record of one step (on ``batch`` when given), and the loop."""
    loop = setup(cfg, log=lambda *_: None)
    if batch is not None:
        loop.schedule.next_batch = lambda: batch
    grads, clip = {}, loop._clip

    def record():
        grads.update({n: p.grad.clone() for n, p in loop.trained.named_parameters() if p.grad is not None})
        return clip()

    loop._clip = record
    return loop, grads, loop.train_step()


def _budget(loop, batch):
    """A budget that cuts ``batch`` into several micro-batches (and holds the longest example of the data)."""
    return int(max(loop.data.lengths.max(), 2 * loop.data.lengths[batch].max()))


def _same(a, b, atol=1e-6):
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.allclose(a[name], b[name], atol=atol, rtol=1e-4), (name, (a[name] - b[name]).abs().max())


@pytest.mark.parametrize("packing", [False, True])
def test_token_budget_gives_the_whole_batch_gradient(make_config, packing):
    first = _first_batch(make_config)
    whole, ref, _ = _step(load_config(make_config("whole")), first)  # the global batch in one forward
    budget = _budget(whole, first)
    loop, grads, record = _step(load_config(make_config(
        f"budget{packing}", train={"micro_batch_tokens": budget}, collate={"packing": packing})), first)
    assert record["micro_batches"] >= 2
    plan = loop.micro_plan(first)[0]
    assert all(loop.data.table.has_audio[m].any() for m in plan)  # every micro-batch holds audio
    _same(ref, grads)


def _first_batch(make_config):
    loop = setup(load_config(make_config("peek")), log=lambda *_: None)
    return loop.schedule.next_batch()


def test_a_budget_below_the_longest_example_is_refused(make_config):
    with pytest.raises(NabraError, match=r"micro_batch_tokens 10 is below the longest training example"):
        setup(load_config(make_config("small", train={"micro_batch_tokens": 10})), log=lambda *_: None)


def test_micro_batch_size_and_tokens_are_exclusive(make_config):
    with pytest.raises(NabraError, match="set one"):
        load_config(make_config("both", train={"micro_batch_tokens": 4096, "micro_batch_size": 4}))


def test_a_family_that_cannot_pack_refuses_in_one_line(make_config, tiny_nemotron):
    cfg = load_config(make_config("pack", model={"path": str(tiny_nemotron)}, collate={"packing": True}))
    with pytest.raises(NabraError, match=r"collate.packing: .*Mamba-2.*set collate.packing false"):
        setup(cfg, log=lambda *_: None)


@pytest.mark.slow
@pytest.mark.parametrize("packing", [False, True])
def test_two_processes_with_unequal_loads_match_one(make_config, tmp_path, packing):
    # A batch whose plan gives an odd number of micro-batches: one rank runs a stand-in at zero weight.
    peek = setup(load_config(make_config("peek2")), log=lambda *_: None)
    lengths, audio = peek.data.lengths, peek.data.table.has_audio
    from nabra.schedule.micro import plan_micro_batches

    rows = np.flatnonzero(audio)[np.argsort(-lengths[audio], kind="stable")[:7]]  # the longest: several micro-batches
    budget = next(b for b in range(int(lengths.max()), int(lengths[rows].sum()) + 1, 8)
                  if any(m is None for r in plan_micro_batches(rows, lengths, audio, 2, b, packing=packing).ranks
                         for m in r))
    _, ref, _ = _step(load_config(make_config("one", train={"batch_size": 7})), rows)
    config = make_config("two", train={"batch_size": 7, "micro_batch_tokens": budget}, collate={"packing": packing})
    out = tmp_path / "out"
    out.mkdir()
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", str(29551 + packing),
                           str(Path(__file__).parent / "step_grads.py"), str(config), str(out),
                           ",".join(map(str, rows))], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = json.loads((out / "plan.json").read_text())["ranks"]
    assert len(plan[0]) == len(plan[1]) and any(m is None for r in plan for m in r)  # equal counts, a stand-in
    _same(ref, load_file(str(out / "grads.safetensors")))
