import numpy as np
import pytest

from nabra.errors import NabraError
from nabra.schedule import SCHEDULE_NAMES, build_schedule, shard
from nabra.schedule.testing import random_table

# Mostly text-only (tsum): without redistribution, micro-batches would often lack audio.
TABLE = random_table(2000, probs=[0.1, 0.05, 0.7, 0.1, 0.05], seed=1)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
@pytest.mark.parametrize(("world_size", "micro_batches"), [(4, 1), (2, 4), (8, 2)])
def test_every_micro_batch_has_audio_and_ranks_partition_the_batch(name, world_size, micro_batches):
    cfg = {"batch_size": 32, "seed": 5, "total_steps": 40, "min_audio": world_size * micro_batches}
    ranks = [build_schedule(name, TABLE, **cfg) for _ in range(world_size)]  # one process each
    for _ in range(8):
        batches = [s.next_batch() for s in ranks]
        assert all(np.array_equal(b, batches[0]) for b in batches)  # same seed, same global batch
        micro = [m for r, b in enumerate(batches) for m in shard(b, TABLE, r, world_size, micro_batches)]
        assert len(micro) == world_size * micro_batches
        assert all(TABLE.has_audio[m].any() for m in micro)
        assert sorted(np.concatenate(micro).tolist()) == sorted(batches[0].tolist())


def test_redistribution_swaps_text_for_audio():
    text, audio = TABLE.task_indices("tsum")[:6], TABLE.task_indices("asr")[:2]
    batch = np.concatenate([audio, text])  # pieces of 2: [a a] [t t] [t t] [t t]... only 2 audio
    with pytest.raises(NabraError, match="min_audio=4"):
        shard(batch, TABLE, 0, 4)
    batch = np.concatenate([TABLE.task_indices("asr")[:4], text[:4]])
    pieces = [p for r in range(4) for p in shard(batch, TABLE, r, 4)]
    assert [int(TABLE.has_audio[p].sum()) for p in pieces] == [1, 1, 1, 1]


def test_uneven_split_is_refused():
    with pytest.raises(NabraError, match="equal micro-batches"):
        shard(np.arange(10), TABLE, 0, 4)
