"""Decoded audio for batches: read in a few threads, kept in memory between epochs within a budget.

Audio is decoded once per utterance and reused (the hot path of a multi-epoch run on a small corpus
would otherwise decode every clip every epoch); past ``budget_mb`` the oldest entries are evicted.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nabra.corpus.audio import load_audio
from nabra.tasks import Example


class AudioStore:
    """Waveforms by (path, offset, duration), decoded on demand, LRU-cached within a byte budget."""

    def __init__(self, budget_mb: int = 1024, workers: int = 4):
        self.budget = budget_mb * (1 << 20)
        self.used = 0
        self.cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.pool = ThreadPoolExecutor(max(1, workers))
        self.decoded = 0

    def samples(self, examples: list[Example]) -> list[tuple[Example, np.ndarray | None]]:
        """``(example, waveform)`` pairs; text-only examples get ``None``."""
        keys = [(ex.audio, ex.offset, ex.duration) if ex.audio else None for ex in examples]
        missing = list(dict.fromkeys(k for k in keys if k is not None and k not in self.cache))
        fresh = dict(zip(missing, self.pool.map(self._decode, missing), strict=True))
        self.decoded += len(fresh)
        out = [(ex, fresh[k] if k in fresh else self._hit(k)) if k is not None else (ex, None)
               for ex, k in zip(examples, keys, strict=True)]
        for key, wave in fresh.items():
            self._put(key, wave)
        return out

    def _decode(self, key: tuple) -> np.ndarray:
        path, offset, duration = key
        return load_audio(path, offset=offset, duration=duration)  # a segment when the span is shorter than the file

    def _hit(self, key: tuple) -> np.ndarray:
        self.cache.move_to_end(key)
        return self.cache[key]

    def _put(self, key: tuple, wave: np.ndarray) -> None:
        if wave.nbytes > self.budget:
            return
        self.cache[key] = wave
        self.used += wave.nbytes
        while self.used > self.budget:
            _, old = self.cache.popitem(last=False)
            self.used -= old.nbytes

    def close(self) -> None:
        self.pool.shutdown(wait=False)
