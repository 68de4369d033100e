"""Every schedule, saved mid-run and restored into a fresh object, continues the exact same batches
(after lhotse's test_sampler_restoring.py)."""

import io

import numpy as np
import pytest
import torch

from nabra.errors import NabraError
from nabra.schedule import build_schedule
from nabra.schedule.testing import clustered_embeddings, random_table

TABLE = random_table(300, probs=[0.4, 0.1, 0.1, 0.25, 0.15], seed=7)
VECTORS, _ = clustered_embeddings(len(TABLE), dim=8)
COMMON = {"batch_size": 16, "seed": 3, "total_steps": 60, "min_audio": 2}

CASES = {
    "uniform mid-epoch": ("uniform", {}, 7),
    "uniform after an epoch": ("uniform", {}, 23),
    "uniform weighted": ("uniform", {"temperature": 2.0, "weights": {"asr": 0.5}}, 11),
    "tpc across a stage": ("tpc", {"blend_steps": 6}, 18),
    "ads without embeddings": ("ads", {}, 9),
    "ads with embeddings": ("ads", {"n_clusters": 4}, 9),
    "tpc_ads across the switch": ("tpc_ads", {"ads": {"n_clusters": 4}}, 27),
    "tpc_ads after the switch": ("tpc_ads", {}, 33),
    "ads with a repeat cap, mid-window": ("ads", {"max_repeats": 1}, 13),
    "tpc_ads on the plateau switch": ("tpc_ads", {"switch": "plateau"}, 21),
    "balanced mid-epoch": ("balanced", {}, 14),
    "balanced with a repeat cap": ("balanced", {"max_repeats": 1}, 13),
    "adaptive after an update": ("adaptive", {}, 17),
}


def build(name, knobs, embeddings, observed=True):
    s = build_schedule(name, TABLE, **COMMON, **knobs)
    if embeddings:
        s.set_embeddings(VECTORS)
    if name == "adaptive" and observed:  # the shares have moved off their start: the state must carry them
        s.observe(0, {"asr": 2.0, "ssum": 3.0, "tsum": 3.0, "did": 1.0, "ser": 1.0})
        s.observe(5, {"asr": 1.0, "ssum": 2.9, "tsum": 2.0, "did": 0.3, "ser": 0.5})
    return s


def roundtrip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("case", CASES)
def test_save_restore_continue(case):
    name, knobs, k = CASES[case]
    embeddings = name == "tpc_ads" or "with embeddings" in case
    whole = build(name, knobs, embeddings)
    expected = [whole.next_batch() for _ in range(k + 30)]

    first = build(name, knobs, embeddings)
    for _ in range(k):
        first.next_batch()
    state = roundtrip(first.state_dict())
    fresh = build(name, knobs, embeddings, observed=False)  # what it observed comes from the state
    fresh.load_state_dict(state)
    assert fresh.step == k and fresh.stage() == whole.stage(k)
    for want in expected[k:]:
        np.testing.assert_array_equal(fresh.next_batch(), want)


def test_state_of_other_data_or_schedule_is_refused():
    state = build_schedule("uniform", TABLE, **COMMON).state_dict()
    with pytest.raises(NabraError, match="different training data"):
        build_schedule("uniform", random_table(301), **COMMON).load_state_dict(state)
    with pytest.raises(NabraError, match="not 'tpc'"):
        build_schedule("tpc", TABLE, **COMMON).load_state_dict(state)
