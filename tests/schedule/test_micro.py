import numpy as np
import pytest

from nabra.errors import NabraError
from nabra.schedule.micro import cost, plan_micro_batches


def _mix(n=64, seed=0):
    """Lengths of the issue's mix (b): 1–20-s ASR segments, 2–10-s labels, 30 % 60–300-s articles
    (25 audio tokens a second + ~60 of prompt and answer), and text-only TSUM examples."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, n, p=[0.4, 0.2, 0.3, 0.1])
    seconds = np.where(kind == 0, rng.uniform(1, 20, n), np.where(kind == 1, rng.uniform(2, 10, n),
                                                                    rng.uniform(60, 300, n)))
    lengths = np.where(kind == 3, rng.integers(200, 900, n), (25 * seconds).astype(int) + 60)
    return lengths.astype(np.int64), kind != 3


@pytest.mark.parametrize("packing", [False, True])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_every_example_once_within_budget_with_audio_and_equal_counts(packing, world):
    lengths, audio = _mix()
    batch = np.random.default_rng(1).permutation(len(lengths))[:32]
    budget = 16_000
    plan = plan_micro_batches(batch, lengths, audio, world, budget, packing=packing)
    assert len(plan.ranks) == world and len({len(r) for r in plan.ranks}) == 1  # equal counts: ranks stay in step
    got = np.concatenate(plan.micro_batches())
    assert sorted(got.tolist()) == sorted(batch.tolist())  # each example exactly once
    for m in plan.micro_batches():
        assert audio[m].any()  # the FSDP rule: the audio tower runs in every forward
        assert cost(lengths[m].tolist(), packing) <= budget
    assert plan.over_budget == 0
    useful = int(lengths[batch].sum())
    if packing:  # as few micro-batches as the tokens need, give or take one a rank
        assert len(plan.micro_batches()) <= -(-useful // budget) + world
    else:  # padding cut: less than equal counts of 4 sorted would pad
        padded = sum(cost(lengths[m].tolist(), False) for m in plan.micro_batches())
        ordered = np.sort(lengths[batch])[::-1]
        equal = sum(4 * int(ordered[k]) for k in range(0, len(batch), 4))
        assert padded < equal
    again = plan_micro_batches(batch, lengths, audio, world, budget, packing=packing)  # a pure function
    assert all(np.array_equal(a, b) for a, b in zip(again.micro_batches(), plan.micro_batches(), strict=True))


def test_ranks_get_balanced_tokens_and_stand_ins_where_they_have_fewer():
    lengths = np.array([7000, 6900, 300, 200, 100], dtype=np.int64)
    audio = np.ones(5, dtype=bool)
    plan = plan_micro_batches(np.arange(5), lengths, audio, 2, 7500, packing=True)
    # Three micro-batches for two ranks: [7000, 300, 200] and [6900, 100] by first-fit decreasing... LPT puts them apart.
    loads = [sum(plan.costs[r]) for r in range(2)]
    assert max(loads) - min(loads) <= 500
    assert all(m is not None for m in plan.ranks[0])
    counts = [sum(m is not None for m in r) for r in plan.ranks]
    assert sum(counts) == len(plan.micro_batches()) and plan.per_rank == max(counts)


def test_a_stand_in_pads_the_rank_with_fewer():
    lengths = np.array([900, 800, 700], dtype=np.int64)
    plan = plan_micro_batches(np.arange(3), lengths, np.ones(3, bool), 2, 1000, packing=True)
    assert plan.per_rank == 2 and sum(m is None for r in plan.ranks for m in r) == 1


def test_text_only_micro_batches_take_an_audio_example():
    # Text examples that fit nowhere next to the audio would form a text-only micro-batch: it takes
    # an audio example from a micro-batch holding two.
    lengths = np.array([500, 60, 50, 480, 470], dtype=np.int64)
    audio = np.array([True, True, True, False, False])
    plan = plan_micro_batches(np.arange(5), lengths, audio, 1, 1000, packing=True)
    assert all(audio[m].any() for m in plan.micro_batches())
    assert sorted(np.concatenate(plan.micro_batches()).tolist()) == [0, 1, 2, 3, 4]


def test_fewer_micro_batches_than_ranks_are_split():
    lengths = np.full(8, 100, dtype=np.int64)
    plan = plan_micro_batches(np.arange(8), lengths, np.ones(8, bool), 4, 10_000, packing=True)
    assert all(m is not None for r in plan.ranks for m in r)  # every rank computes, none waits on a stand-in


def test_an_example_over_the_budget_goes_alone_and_is_counted():
    lengths = np.array([5000, 100], dtype=np.int64)
    plan = plan_micro_batches(np.arange(2), lengths, np.ones(2, bool), 1, 1000)
    assert plan.over_budget == 1


def test_padded_cost_counts_the_rectangle():
    assert cost([10, 3, 2], packing=False) == 30 and cost([10, 3, 2], packing=True) == 15


def test_bad_arguments_are_refused():
    with pytest.raises(NabraError, match="bad micro-batch plan"):
        plan_micro_batches(np.arange(2), np.ones(2, np.int64), np.ones(2, bool), 0, 10)


def test_token_batches_keep_the_order_and_the_budget():
    from nabra.schedule.micro import token_batches

    lengths = [7600, 900, 800, 300, 300, 300, 100]
    assert token_batches(lengths, 8000) == [[0], [1, 2, 3, 4, 5, 6]]
    assert token_batches(lengths, 2000) == [[0], [1, 2], [3, 4, 5, 6]]  # padded: 2 x 900; 4 x 300
    assert token_batches(lengths, 2000, packing=True) == [[0], [1, 2, 3], [4, 5, 6]]
    assert token_batches(lengths, None, max_count=3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert token_batches(lengths, 8000, max_count=2) == [[0], [1, 2], [3, 4], [5, 6]]
