"""``adaptive``: task shares moved by the dev losses toward the task that learns slowest, never below the floor."""

import numpy as np
import pytest

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError
from nabra.schedule import AdaptiveSchedule
from nabra.schedule.testing import random_table

COMMON = {"batch_size": 20, "seed": 0, "total_steps": 500}


@pytest.fixture(scope="module")
def table():
    return random_table(2000, probs=[0.5, 0.05, 0.05, 0.3, 0.1], seed=4)


def falling(step, stuck="ssum"):
    """Every task's loss halves over 10 evaluations, except ``stuck``'s, held at its start."""
    return {t: 2.0 if t == stuck else 2.0 * 0.5 ** (step / 100) for t in TASKS}


def test_weight_moves_to_the_task_whose_loss_is_held_high_and_never_below_the_floor(table):
    s = AdaptiveSchedule(table, **COMMON, floor=0.05)
    assert s.task_weights() == pytest.approx(dict.fromkeys(TASKS, 0.2))  # equal start
    history = []
    for step in range(0, 1001, 100):
        s.observe(step, falling(step))
        history.append(s.task_weights())
    ssum = [w["ssum"] for w in history]
    assert ssum[0] == pytest.approx(0.2) and all(b > a for a, b in zip(ssum[1:], ssum[2:], strict=False))
    assert ssum[-1] > 0.7
    for w in history:
        assert sum(w.values()) == pytest.approx(1.0)
        assert min(w.values()) >= 0.05 - 1e-12
    assert min(history[-1].values()) == pytest.approx(0.05, abs=1e-3)  # the others sit on the floor


def test_batches_follow_the_shares_exactly_with_labels_balanced(table):
    s = AdaptiveSchedule(table, **COMMON)
    s.observe(0, falling(0))
    s.observe(100, falling(100, stuck="did"))
    shares = s.task_weights()
    batches = [s.next_batch() for _ in range(50)]
    per_task = np.bincount(table.task[np.concatenate(batches)], minlength=5) / (50 * 20)
    for t, share in shares.items():
        assert per_task[TASKS.index(t)] == pytest.approx(share, abs=1 / 50)  # the carry: exact to a slot
    did = np.concatenate([b[table.task[b] == TASKS.index("did")] for b in batches])
    labels = np.bincount(table.label[did], minlength=5)
    assert labels.max() - labels.min() <= 5  # equal per label inside the task (rotating remainder)


def test_audio_guarantee_holds_when_text_tasks_take_the_weight():
    table = random_table(500, tasks=("asr", "tsum"), probs=[0.5, 0.5], seed=1)
    s = AdaptiveSchedule(table, batch_size=4, seed=0, total_steps=100, min_audio=4, floor=0.0)
    s.observe(0, {"asr": 1.0, "tsum": 1.0})
    s.observe(10, {"asr": 0.1, "tsum": 1.0})  # tsum gains nearly all weight
    assert s.task_weights()["tsum"] > 0.6
    for _ in range(20):
        assert table.has_audio[s.next_batch()].all()


def test_a_start_of_data_proportions_and_bad_settings(table):
    s = AdaptiveSchedule(table, **COMMON, start="data")
    w = s.task_weights()
    assert w["asr"] > w["ssum"] and w["ssum"] >= 0.05
    with pytest.raises(NabraError, match="floor"):
        AdaptiveSchedule(table, **COMMON, floor=0.3)
    with pytest.raises(NabraError, match="start"):
        AdaptiveSchedule(table, **COMMON, start="biggest")
    assert s.dev_loss_setting == "schedule.name: adaptive"
