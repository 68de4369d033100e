import numpy as np
import pytest

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError
from nabra.schedule import TPCSchedule
from nabra.schedule.testing import random_table


def tasks_of(table, batch):
    return {TASKS[c] for c in table.task[batch].tolist()}


@pytest.fixture(scope="module")
def table():
    return random_table(1500, balanced=True)  # 300 examples per task


def test_default_stages_in_order_with_boundaries(table):
    s = TPCSchedule(table, batch_size=16, seed=0, total_steps=90, blend_steps=0)  # hard switches
    assert s.boundaries == [30, 60]
    seen = [tasks_of(table, s.next_batch()) for _ in range(100)]
    assert set().union(*seen[:30]) == {"asr"}
    assert set().union(*seen[30:60]) == {"asr", "did", "ser"}
    assert set().union(*seen[60:]) == set(TASKS)  # the last stage also runs past total_steps
    assert [s.stage(k) for k in (0, 29, 30, 60, 95)] == [
        "tpc:1/3 asr", "tpc:1/3 asr", "tpc:2/3 asr+did+ser", "tpc:3/3 asr+did+ser+ssum+tsum",
        "tpc:3/3 asr+did+ser+ssum+tsum"]


def test_replay_weight(table):
    s = TPCSchedule(table, batch_size=32, seed=0, total_steps=900, replay=0.25, blend_steps=0)
    # Stage 2: asr is replayed (w = 0.25), did and ser are new (w = 1); equal task sizes.
    assert s.mix(300) == pytest.approx({"asr": 0.25 / 2.25, "ssum": 0, "tsum": 0, "did": 1 / 2.25, "ser": 1 / 2.25})
    s.step = 300  # jump to stage 2
    rows = np.concatenate([s.next_batch() for _ in range(300)])
    share = np.bincount(table.task[rows], minlength=5) / len(rows)
    assert share[TASKS.index("asr")] == pytest.approx(0.25 / 2.25, abs=0.015)
    assert share[TASKS.index("did")] == pytest.approx(1 / 2.25, abs=0.02)


def test_fractions_and_steps(table):
    s = TPCSchedule(table, batch_size=8, seed=0, total_steps=100, fractions=[0.5, 0.3, 0.2])
    assert s.boundaries == [50, 80]
    s = TPCSchedule(table, batch_size=8, seed=0, total_steps=100, steps=[10, 20, 5])
    assert s.boundaries == [10, 30]


def test_default_blend_is_20_steps_capped_at_the_shortest_stage(table):
    s = TPCSchedule(table, batch_size=8, seed=0, total_steps=300)  # stages of 100 steps
    assert s.blend_width == 20 and s.mix(89) == s.mix(0) and s.mix(90) != s.mix(0)
    assert s.stage(95).startswith("tpc:1/3 asr (blend")
    short = TPCSchedule(table, batch_size=8, seed=0, total_steps=30)  # stages of 10 steps
    assert short.blend_width == 10  # never longer than a stage: neighbouring windows do not overlap
    assert TPCSchedule(table, batch_size=8, seed=0, total_steps=3).blend_width == 1


def test_blend_moves_the_mix_linearly_across_the_boundary(table):
    s = TPCSchedule(table, batch_size=8, seed=0, total_steps=90, blend_steps=10)
    assert s.mix(24) == s.mix(0)  # before the window: stage 1 only
    assert s.mix(35) == s.mix(45)  # after it: stage 2 only
    did = [s.mix(k)["did"] for k in range(25, 35)]
    assert np.allclose(np.diff(did), did[1] - did[0]) and did[1] > did[0] > 0
    assert did[-1] < s.mix(45)["did"]
    assert s.stage(25) == "tpc:1/3 asr (blend 0.05)" and s.stage(30).startswith("tpc:2/3")


def test_absent_tasks_are_dropped_and_empty_stages_merged():
    table = random_table(300, tasks=("did", "ser", "tsum"))
    s = TPCSchedule(table, batch_size=8, seed=0, total_steps=90)
    assert [st.tasks for st in s.stages] == [("did", "ser"), ("did", "ser", "tsum")]
    assert s.boundaries == [60]  # stage 1 (asr only) gave its 30 steps to stage 2


def test_text_only_stage_still_gets_audio():
    table = random_table(300, tasks=("asr", "tsum"))
    s = TPCSchedule(table, batch_size=8, seed=0, total_steps=20, stages=[["tsum"], ["asr", "tsum"]], min_audio=2)
    for _ in range(10):
        assert table.has_audio[s.next_batch()].sum() >= 2


@pytest.mark.parametrize("knobs", [
    {"stages": [["asr"], ["xyz"]]}, {"stages": []}, {"fractions": [0.5, 0.5]},
    {"fractions": [0.5, 0.3, 0.3]}, {"fractions": [0.4, 0.3, 0.3], "steps": [1, 2, 3]},
    {"blend_steps": 40}, {"replay": -1},
])
def test_bad_config(table, knobs):
    with pytest.raises(NabraError):
        TPCSchedule(table, batch_size=8, seed=0, total_steps=90, **knobs)
