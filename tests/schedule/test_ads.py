import numpy as np
import pytest

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError
from nabra.schedule import ADSSchedule, UniformSchedule
from nabra.schedule.queues import GroupQueues
from nabra.schedule.testing import clustered_embeddings, mean_pairwise_distance, random_table

DID, SER = TASKS.index("did"), TASKS.index("ser")


@pytest.fixture(scope="module")
def table():
    return random_table(1000, balanced=True)  # 200 per task, 40 per label inside did/ser


@pytest.fixture(scope="module")
def vectors(table):
    return clustered_embeddings(len(table), dim=16, n_clusters=8)


def ads(table, **kw):
    return ADSSchedule(table, **{"batch_size": 25, "seed": 0, "total_steps": 1000, **kw})


def label_counts(table, batch, task):
    own = batch[table.task[batch] == task]
    return np.bincount(table.label[own], minlength=5)


def test_exact_task_and_label_balance_on_balanced_data(table, vectors):
    s = ads(table)
    s.set_embeddings(vectors[0])
    for _ in range(20):
        b = s.next_batch()
        assert np.bincount(table.task[b], minlength=5).tolist() == [5] * 5
        assert label_counts(table, b, DID).tolist() == [1] * 5 == label_counts(table, b, SER).tolist()


def test_balance_within_one_slot_and_fair_over_batches():
    table = random_table(3000, probs=[0.5, 0.05, 0.05, 0.3, 0.1], seed=2)
    s = ADSSchedule(table, batch_size=32, seed=0, total_steps=100)
    totals = np.zeros(5, int)
    for _ in range(5):  # 32 = 5 x 6 + 2: the two extra slots rotate through the five tasks
        b = s.next_batch()
        per_task = np.bincount(table.task[b], minlength=5)
        assert per_task.max() - per_task.min() <= 1
        for task in (DID, SER):
            labels = label_counts(table, b, task)
            assert labels.max() - labels.min() <= 1
        totals += per_task
    assert totals.tolist() == [32] * 5


def test_no_repeats_within_an_epoch(table, vectors):
    s = ads(table)  # without embeddings every group is exhausted exactly after 40 batches
    rows = np.concatenate([s.next_batch() for _ in range(40)])
    assert sorted(rows.tolist()) == list(range(len(table)))
    s = ads(table)
    s.set_embeddings(vectors[0])
    rows = np.concatenate([s.next_batch() for _ in range(40)])
    labelled = rows[np.isin(table.task[rows], [DID, SER])]
    assert len(set(labelled.tolist())) == len(labelled) == 400


def test_batches_are_more_diverse_than_uniform(table):
    # Skewed clusters, as in real data: most examples sit in one region of the aligner space.
    vectors, _ = clustered_embeddings(len(table), dim=16, n_clusters=8, probs=[0.65] + [0.05] * 7)
    s = ads(table)
    s.set_embeddings(vectors)
    u = UniformSchedule(table, batch_size=25, seed=0, total_steps=1000)
    d_ads = mean_pairwise_distance(vectors, [s.next_batch() for _ in range(30)])
    d_uni = mean_pairwise_distance(vectors, [u.next_batch() for _ in range(30)])
    assert d_ads > d_uni + 0.2, (d_ads, d_uni)


def test_works_without_embeddings(table):
    s = ads(table)
    assert s.embeddings is None and s.stage() == "ads (no embeddings)" and s.needs_embeddings(0)
    assert {t: len(g) for t, g in s.groups.items()} == {"asr": 1, "ssum": 1, "tsum": 1, "did": 5, "ser": 5}
    assert len(s.next_batch()) == 25


def test_clusters_recomputed_on_set_embeddings(table, vectors):
    s = ads(table)
    s.set_embeddings(*vectors[:1])
    assert s.embeddings.dtype == np.float16 and s.stage() == "ads"
    assert np.allclose(np.linalg.norm(s.embeddings.astype(np.float32), axis=1), 1, atol=1e-2)
    assert len(s.groups["asr"]) == 8
    asr_rows = table.task_indices("asr")
    for g in s.groups["asr"]:  # each cluster is one true cluster of the synthetic data
        members = s.queues.order[s.queues.start[g]:s.queues.end[g]]
        assert len(set(vectors[1][members].tolist())) == 1
    new, cluster = clustered_embeddings(len(table), dim=16, n_clusters=8, seed=1)
    s.set_embeddings(new)
    assert s.refreshes == 2 and sum(s.queues.size(g) for g in s.groups["asr"]) == len(asr_rows)
    for g in s.groups["asr"]:  # the groups follow the new embeddings
        members = s.queues.order[s.queues.start[g]:s.queues.end[g]]
        assert len(set(cluster[members].tolist())) == 1


def test_regroup_keeps_used_rows_used():
    q, rng = GroupQueues(np.zeros(10, int), 1), np.random.default_rng(0)
    used = {q.take(0, rng) for _ in range(4)}
    q.regroup(np.arange(10) % 2, 2)  # evens and odds
    left = {g: sum(r % 2 == g and r not in used for r in range(10)) for g in (0, 1)}
    rest = {q.take(g, rng) for g in (0, 1) for _ in range(left[g])}
    assert rest == set(range(10)) - used


def test_refresh_every_and_needs_embeddings(table, vectors):
    s = ads(table, refresh_every=50)
    s.set_embeddings(vectors[0])
    assert s.refresh_every == 50
    assert [s.needs_embeddings(k) for k in (0, 1, 50, 75, 100)] == [False, False, True, False, True]


def test_text_slots_capped_for_audio():
    table = random_table(200, tasks=("asr", "tsum"))
    s = ADSSchedule(table, batch_size=8, seed=0, total_steps=10, min_audio=6)
    for _ in range(4):
        assert table.has_audio[s.next_batch()].sum() >= 6


def test_bad_embeddings_and_config(table):
    with pytest.raises(NabraError):
        ads(table).set_embeddings(np.zeros((3, 4), np.float16))
    with pytest.raises(NabraError):
        ads(table, pool_size=0)


def test_max_repeats_caps_draws_of_a_small_task_per_epoch_equivalent():
    # 40 summaries among 1,000 examples, as the demo's TSUM documents: a fifth of every batch
    tbl = random_table(1000, probs=[0.49, 0.0, 0.04, 0.24, 0.23], seed=1)
    tsum = TASKS.index("tsum")
    n_tsum = int((tbl.task == tsum).sum())
    for cap in (0, 2):
        s = ads(tbl, max_repeats=cap)
        window = s.window
        assert window == 40  # ceil(1000 / 25)
        per_window = [np.concatenate([s.next_batch() for _ in range(window)]) for _ in range(3)]
        for rows in per_window:
            draws = np.bincount(rows[tbl.task[rows] == tsum], minlength=len(tbl))[tbl.task == tsum]
            if cap:
                assert draws.max() <= cap and draws.sum() == cap * n_tsum  # capped, and used up to the cap
            else:
                assert draws.min() >= 5  # uncapped: every summary drawn 6 times a window (a quarter of each batch)
            assert len(rows) == window * 25  # the freed slots went to the other tasks
    with pytest.raises(NabraError, match="max_repeats"):
        ads(tbl, max_repeats=-1)
