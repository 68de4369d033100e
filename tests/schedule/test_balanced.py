"""``balanced``: ADS's slots, filled at random — the ablation that isolates the aligner's diversity."""

import numpy as np

from nabra.corpus.manifest import TASKS
from nabra.schedule import ADSSchedule, BalancedSchedule, UniformSchedule, build_schedule
from nabra.schedule.testing import clustered_embeddings, mean_pairwise_distance, random_table

DID, SER = TASKS.index("did"), TASKS.index("ser")
COMMON = {"batch_size": 25, "seed": 0, "total_steps": 1000}


def counts(table, batch):
    """Per task, and per label inside did and ser."""
    labels = [np.bincount(table.label[batch[table.task[batch] == t]], minlength=5).tolist() for t in (DID, SER)]
    return np.bincount(table.task[batch], minlength=5).tolist(), labels


def test_same_task_and_label_counts_as_ads_batch_for_batch():
    # Skewed tasks and labels: the balance is the schedules' doing, not the data's.
    table = random_table(3000, probs=[0.5, 0.05, 0.05, 0.3, 0.1], seed=2)
    vectors, _ = clustered_embeddings(len(table), dim=16, n_clusters=8, seed=1)
    ads, bal = ADSSchedule(table, **COMMON), BalancedSchedule(table, **COMMON)
    ads.set_embeddings(vectors)
    for _ in range(40):
        a, b = ads.next_batch(), bal.next_batch()
        assert counts(table, a) == counts(table, b)
        assert max(counts(table, b)[0]) - min(counts(table, b)[0]) <= 1


def test_no_diversity_margin_over_random():
    # ADS's test, inverted: where ADS beats uniform by > 0.2 in mean pairwise cosine distance,
    # balanced is within noise of uniform (its fill ignores the aligner space).
    table = random_table(1000, balanced=True)
    vectors, _ = clustered_embeddings(len(table), dim=16, n_clusters=8, probs=[0.65] + [0.05] * 7)
    ads = ADSSchedule(table, **COMMON)
    ads.set_embeddings(vectors)
    bal, uni = BalancedSchedule(table, **COMMON), UniformSchedule(table, **COMMON)
    d = {name: mean_pairwise_distance(vectors, [s.next_batch() for _ in range(30)])
         for name, s in (("ads", ads), ("balanced", bal), ("uniform", uni))}
    assert d["ads"] > d["uniform"] + 0.2, d
    assert abs(d["balanced"] - d["uniform"]) < 0.05, d


def test_needs_no_embeddings_and_each_example_once_per_group_epoch():
    table = random_table(1000, balanced=True)  # 200 per task, 40 per label: 40 batches use every row once
    s = build_schedule("balanced", table, **COMMON)
    assert not s.uses_embeddings and not s.needs_embeddings(0) and s.refresh_every == 0
    assert s.stage() == "balanced" and s.dev_loss_setting is None
    rows = np.concatenate([s.next_batch() for _ in range(40)])
    assert sorted(rows.tolist()) == list(range(len(table)))


def test_max_repeats_as_ads():
    table = random_table(1000, probs=[0.4, 0.039, 0.2, 0.2, 0.161], seed=5)
    s = BalancedSchedule(table, **COMMON, max_repeats=2)
    ssum = table.task_indices("ssum")
    drawn = np.concatenate([s.next_batch() for _ in range(s.window)])
    assert np.bincount(drawn, minlength=len(table))[ssum].max() == 2
