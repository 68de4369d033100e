import numpy as np
import pytest

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError
from nabra.schedule import TPCADSSchedule, build_schedule
from nabra.schedule.testing import clustered_embeddings, random_table


@pytest.fixture(scope="module")
def table():
    return random_table(500, balanced=True)


def test_switch_step(table):
    s = TPCADSSchedule(table, batch_size=10, seed=0, total_steps=60, switch=0.5)
    assert s.switch_step == 30 and s.tpc.boundaries == [10, 20]
    assert [s.stage(k) for k in (0, 10, 29)] == ["tpc:1/3 asr", "tpc:2/3 asr+did+ser", "tpc:3/3 asr+did+ser+ssum+tsum"]
    assert s.stage(30) == "ads (no embeddings)"
    assert not s.needs_embeddings(29) and s.needs_embeddings(30)
    batches = [s.next_batch() for _ in range(30)]
    assert set(table.task[np.concatenate(batches[:10])].tolist()) == {TASKS.index("asr")}
    s.set_embeddings(clustered_embeddings(len(table))[0])
    assert s.stage() == "ads" and s.ads.step == 0
    for _ in range(5):  # ADS from here: exactly balanced tasks on balanced data
        assert np.bincount(table.task[s.next_batch()], minlength=5).tolist() == [2] * 5
    assert s.ads.step == 5 and s.tpc.step == 30


def test_nested_configs_are_checked(table):
    s = build_schedule("tpc_ads", table, batch_size=10, seed=0, total_steps=100, switch=0.8,
                       tpc={"fractions": [0.5, 0.25, 0.25]}, ads={"refresh_every": 10})
    assert s.switch_step == 80 and s.tpc.boundaries == [40, 60] and s.refresh_every == 10
    assert not s.needs_embeddings(79) and s.needs_embeddings(80)
    s.set_embeddings(clustered_embeddings(len(table))[0])
    assert [s.needs_embeddings(k) for k in (80, 85, 90)] == [False, False, True]
    for knobs in ({"switch": 0}, {"switch": 1.5}, {"tpc": {"stagez": []}}, {"ads": {"pool_size": 0}}):
        with pytest.raises(NabraError):
            build_schedule("tpc_ads", table, batch_size=10, seed=0, total_steps=100, **knobs)
