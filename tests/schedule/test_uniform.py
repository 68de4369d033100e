import numpy as np
import pytest

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError
from nabra.schedule import UniformSchedule
from nabra.schedule.base import task_probs
from nabra.schedule.testing import random_table

PROBS = [0.4, 0.1, 0.1, 0.25, 0.15]


def draw(schedule, n):
    return np.concatenate([schedule.next_batch() for _ in range(n)])


def task_shares(table, rows):
    counts = np.bincount(table.task[rows], minlength=len(TASKS))
    return dict(zip(TASKS, counts / counts.sum(), strict=True))


def test_plain_no_repeats_within_an_epoch_and_a_new_order_each_epoch():
    table = random_table(1000, probs=PROBS)
    s = UniformSchedule(table, batch_size=20, seed=1, total_steps=500)
    first, second = draw(s, 50), draw(s, 50)
    assert sorted(first.tolist()) == list(range(1000)) == sorted(second.tolist())
    assert not np.array_equal(first, second)
    assert s.epoch == 2 and s.stage() == "uniform"


def test_plain_proportions_follow_the_data():
    table = random_table(2000, probs=PROBS, seed=3)
    s = UniformSchedule(table, batch_size=32, seed=0, total_steps=1000)
    got = task_shares(table, draw(s, 300))
    want = {t: len(table.task_indices(t)) / len(table) for t in TASKS}
    for t in TASKS:
        assert got[t] == pytest.approx(want[t], abs=0.015)


def test_temperature_and_weights_formula():
    table = random_table(3000, probs=PROBS, seed=4)
    weights, temperature = {"asr": 0.5, "did": 2.0}, 2.0
    s = UniformSchedule(table, batch_size=32, seed=0, total_steps=1000, weights=weights, temperature=temperature)
    n = {t: len(table.task_indices(t)) for t in TASKS}
    raw = {t: weights.get(t, 1.0) * n[t] ** (1 / temperature) for t in TASKS}
    want = {t: raw[t] / sum(raw.values()) for t in TASKS}
    assert s.mix() == pytest.approx(want)
    got = task_shares(table, draw(s, 400))
    for t in TASKS:
        assert got[t] == pytest.approx(want[t], abs=0.02)


def test_weighted_mode_runs_per_task_epochs():
    table = random_table(500, probs=PROBS, seed=5)
    s = UniformSchedule(table, batch_size=16, seed=0, total_steps=100, temperature=3.0)
    rows = draw(s, 60)
    for t in ("ssum", "tsum"):  # small tasks: their first epoch is complete within 60 batches
        own = rows[table.task[rows] == TASKS.index(t)]
        size = len(table.task_indices(t))
        assert len(own) > size and len(set(own[:size].tolist())) == size


def test_task_probs_rejects_all_zero_weights():
    with pytest.raises(NabraError):
        task_probs({"asr": 10, "did": 5}, {"asr": 0, "did": 0}, 1.0)


@pytest.mark.parametrize("knobs", [{}, {"temperature": 2.0}])
def test_batches_hold_min_audio(knobs):
    table = random_table(400, probs=[0.05, 0.0, 0.9, 0.05, 0.0], seed=6)
    s = UniformSchedule(table, batch_size=16, seed=0, total_steps=100, min_audio=8, **knobs)
    for _ in range(30):
        assert table.has_audio[s.next_batch()].sum() >= 8


def test_text_only_data_is_refused():
    table = random_table(50, tasks=("tsum",))
    with pytest.raises(NabraError, match="audio"):
        UniformSchedule(table, batch_size=8, seed=0, total_steps=10)


def test_bad_config():
    table = random_table(50)
    with pytest.raises(NabraError):
        UniformSchedule(table, batch_size=8, seed=0, total_steps=10, weights={"xyz": 1.0})
    with pytest.raises(NabraError):
        UniformSchedule(table, batch_size=8, seed=0, total_steps=10, temperature=0)
    with pytest.raises(NabraError, match="unknown UniformConfig field"):
        UniformSchedule(table, batch_size=8, seed=0, total_steps=10, temprature=2)
