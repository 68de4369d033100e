"""Decoded audio for batches: read in a few threads, kept in memory between epochs within a budget.

Audio is decoded once per utterance and reused (the hot path of a multi-epoch run on a small corpus
would otherwise decode every clip every epoch); past ``budget_mb`` the oldest entries are evicted.
A file that fails to decode (unreadable, vanished, empty, NaN) is left out of the batch and kept
in :attr:`AudioStore.failures` with its reason, for the caller to count and write down; it is not
tried again.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nabra.corpus.audio import check_samples, load_audio
from nabra.errors import AudioError
from nabra.tasks import Example


class AudioStore:
    """Waveforms by (path, offset, duration), decoded on demand, LRU-cached within a byte budget."""

    def __init__(self, budget_mb: int = 1024, workers: int = 4):
        self.budget = budget_mb * (1 << 20)
        self.used = 0
        self.cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.pool = ThreadPoolExecutor(max(1, workers))
        self.decoded = 0
        self.bad: dict[tuple, str] = {}
        """Spans that failed to decode, with the reason."""
        self.failures: list[tuple[Example, str]] = []
        """Examples left out of :meth:`samples` since the last :meth:`take_failures`, with the reason."""

    def samples(self, examples: list[Example]) -> list[tuple[Example, np.ndarray | None]]:
        """``(example, waveform)`` pairs (text-only examples get ``None``), without the examples whose
        audio fails to decode: those go to :attr:`failures`."""
        keys = [(ex.audio, ex.offset, ex.duration) if ex.audio else None for ex in examples]
        missing = list(dict.fromkeys(k for k in keys if k is not None and k not in self.cache and k not in self.bad))
        fresh = {}
        for key, (wave, reason) in zip(missing, self.pool.map(self._decode, missing), strict=True):
            if wave is None:
                self.bad[key] = reason
            else:
                fresh[key] = wave
        self.decoded += len(fresh)
        out = []
        for ex, k in zip(examples, keys, strict=True):
            if k is None:
                out.append((ex, None))
            elif k in self.bad:
                self.failures.append((ex, self.bad[k]))
            else:
                out.append((ex, fresh[k] if k in fresh else self._hit(k)))
        for key, wave in fresh.items():
            self._put(key, wave)
        return out

    def take_failures(self) -> list[tuple[Example, str]]:
        """The failures since the last call (and forget them)."""
        failures, self.failures = self.failures, []
        return failures

    def _decode(self, key: tuple) -> tuple[np.ndarray | None, str]:
        path, offset, duration = key
        try:
            wave = load_audio(path, offset=offset, duration=duration)  # a segment when shorter than the file
            check_samples(path, wave)
        except AudioError as e:
            return None, str(e)
        return wave, ""

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

    def clear(self) -> None:
        """Forget every decoded waveform and failure (a server's uploads are gone after their batch)."""
        self.cache.clear()
        self.used = 0
        self.bad.clear()
        self.failures = []

    def close(self) -> None:
        self.pool.shutdown(wait=False)
