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
    s = TPCADSSchedule(table, batch_size=10, seed=0, total_steps=60, switch=0.5, tpc={"blend_steps": 0})
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


def _plateau(table, **knobs):
    return TPCADSSchedule(table, batch_size=10, seed=0, total_steps=100, switch="plateau", plateau_window=2,
                          plateau_threshold=0.05, **knobs)


def test_plateau_switch_fires_when_the_asr_dev_loss_stops_improving(table):
    s = _plateau(table)
    assert s.switch_step == 80 and s.tpc.boundaries == [27, 53]  # TPC laid over the guard (max_switch 0.8)
    curve = {10: 5.0, 20: 4.0, 30: 3.0, 40: 2.5, 50: 2.45, 60: 2.44, 70: 2.43}
    said = {}
    for step, loss in curve.items():
        for _ in range(step - s.step):
            s.next_batch()
        said[step] = s.observe(step, {"asr": loss, "did": 1.0})
    # step 50: best of the last 2 (2.45) vs before (3.0): 18 % better; step 60: 2.44 vs 2.5: 2.4 % < 5 %
    assert [k for k, v in said.items() if v] == [60] and "ADS from step 60" in said[60]
    assert s.switch_step == s.switched_at == 60 and s.needs_embeddings(60) and s.stage(60).startswith("ads")
    assert s.observe(70, {"asr": 9.0}) is None  # once switched, it stays switched


def test_plateau_guard_and_exact_resume(table):
    improving = _plateau(table)
    for step in range(10, 80, 10):
        assert improving.observe(step, {"asr": 10.0 / step}) is None  # always improving: no switch
    assert improving.switch_step == 80 and improving.switched_at is None  # the guard
    a = _plateau(table)
    for step, loss in ((10, 5.0), (20, 4.0), (30, 3.0)):
        a.observe(step, {"asr": loss})
    b = _plateau(table)
    b.load_state_dict(a.state_dict())
    for s in (a, b):  # the same course from the same state
        s.observe(40, {"asr": 2.99}), s.observe(50, {"asr": 2.98})
    assert a.switch_step == b.switch_step == 50 and a.history == b.history


def test_plateau_config_is_checked(table):
    from nabra.config import load_config

    for knobs in ({"switch": "plateaux"}, {"switch": "plateau", "max_switch": 1.0},
                  {"switch": "plateau", "plateau_window": 0}, {"switch": "plateau", "plateau_task": "mt"}):
        with pytest.raises(NabraError):
            build_schedule("tpc_ads", table, batch_size=10, seed=0, total_steps=100, **knobs)
    cfg = load_config("demo", ["schedule.name=tpc_ads", "schedule.tpc_ads.switch=plateau"])
    assert cfg.schedule.tpc_ads.switch == "plateau"
    assert load_config("demo", ["schedule.tpc_ads.switch=0.3"]).schedule.tpc_ads.switch == 0.3
