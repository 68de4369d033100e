"""Manifest statistics: utterances, hours, per-task and per-label counts, duration percentiles.

Streaming: counts are dictionaries and durations a compact float32 array, so a million-line
manifest costs a few megabytes.
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from nabra.corpus.manifest import TASKS, iter_manifest

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)
MAX_FIELD_VALUES = 20
"""An extra field is counted like a label (``l1``, ``gender``, ``style``) while it has at most this many
distinct values; one with more (paths, chapter numbers) is not shown."""


@dataclass
class ManifestStats:
    """Summary of one manifest."""

    utterances: int = 0
    seconds: float = 0.0
    missing_duration: int = 0
    tasks: Counter = field(default_factory=Counter)
    splits: Counter = field(default_factory=Counter)
    dialects: Counter = field(default_factory=Counter)
    emotions: Counter = field(default_factory=Counter)
    label_splits: Counter = field(default_factory=Counter)
    """(field, label, split) -> count: shows whether every split is balanced."""
    languages: Counter = field(default_factory=Counter)
    fields: dict[str, Counter] = field(default_factory=dict)
    """Label-like extra fields (at most :data:`MAX_FIELD_VALUES` values): name -> value -> count."""
    speakers: int = 0
    long_utterances: int = 0
    """Utterances over 30 s (split into segments for the model)."""
    duration_percentiles: dict[str, float] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def to_dict(self) -> dict:
        return {
            "utterances": self.utterances,
            "hours": round(self.hours, 4),
            "missing_duration": self.missing_duration,
            "speakers": self.speakers,
            "long_utterances_over_30s": self.long_utterances,
            "tasks": {t: self.tasks.get(t, 0) for t in TASKS},
            "splits": dict(sorted(self.splits.items())),
            "dialects": dict(sorted(self.dialects.items())),
            "emotions": dict(sorted(self.emotions.items())),
            "languages": dict(sorted(self.languages.items())),
            "fields": {name: dict(sorted(c.items())) for name, c in sorted(self.fields.items())},
            "duration_percentiles": self.duration_percentiles,
        }


def manifest_stats(path: str | os.PathLike) -> ManifestStats:
    """Compute :class:`ManifestStats` in one streaming pass over the manifest."""
    st = ManifestStats()
    durations = array("f")
    speakers: set[str] = set()
    too_many: set[str] = set()
    for utt in iter_manifest(path, resolve=False):
        st.utterances += 1
        st.languages[utt.language or "(none)"] += 1
        for name, value in utt.extra.items():
            if name in too_many or not isinstance(value, str | bool):
                continue
            counts = st.fields.setdefault(name, Counter())
            counts[str(value)] += 1
            st.label_splits[name, str(value), utt.split or "(none)"] += 1
            if len(counts) > MAX_FIELD_VALUES:
                too_many.add(name)
                del st.fields[name]
        st.tasks.update(utt.tasks())
        st.splits[utt.split or "(none)"] += 1
        if utt.dialect is not None:
            st.dialects[utt.dialect] += 1
            st.label_splits["dialect", utt.dialect, utt.split or "(none)"] += 1
        if utt.emotion is not None:
            st.emotions[utt.emotion] += 1
            st.label_splits["emotion", utt.emotion, utt.split or "(none)"] += 1
        if utt.speaker is not None:
            speakers.add(utt.speaker)
        if utt.duration is None:
            st.missing_duration += utt.audio is not None
        else:
            durations.append(utt.duration)
    st.speakers = len(speakers)
    if durations:
        d = np.frombuffer(durations, dtype=np.float32).astype(np.float64)
        st.seconds = float(d.sum())
        st.long_utterances = int((d > 30.0).sum())
        st.duration_percentiles = {f"p{p}": round(float(v), 3) for p, v in zip(PERCENTILES, np.percentile(d, PERCENTILES), strict=True)}
    return st


def render_stats(st: ManifestStats, title: str) -> None:
    """Print the statistics as readable tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = Table(title=title, show_header=False, title_justify="left")
    head.add_row("utterances", f"{st.utterances:,}")
    head.add_row("hours", f"{st.hours:.2f}")
    head.add_row("speakers", f"{st.speakers:,}")
    head.add_row("over 30 s", f"{st.long_utterances:,}")
    if st.missing_duration:
        head.add_row("without duration", f"{st.missing_duration:,}")
    head.add_row("splits", ", ".join(f"{k} {v:,}" for k, v in sorted(st.splits.items())))
    console.print(head)
    console.print(_counts_table("task", {t: st.tasks.get(t, 0) for t in TASKS}, st.utterances))
    splits = sorted(st.splits) if len(st.splits) > 1 else []
    if len(st.languages) > 1:
        console.print(_counts_table("language", dict(sorted(st.languages.items())), st.utterances))
    for name, counts in (("dialect", st.dialects), ("emotion", st.emotions), *sorted(st.fields.items())):
        if counts:
            by_split = {label: [st.label_splits[name, label, s] for s in splits] for label in counts}
            console.print(_counts_table(name, dict(sorted(counts.items())), sum(counts.values()), splits, by_split))
    if st.duration_percentiles:
        dur = Table(title="duration (s)", title_justify="left")
        for key in st.duration_percentiles:
            dur.add_column(key, justify="right")
        dur.add_row(*(f"{v:.2f}" for v in st.duration_percentiles.values()))
        console.print(dur)


def _counts_table(name: str, counts: dict[str, int], total: int, splits=(), by_split=None):
    from rich.table import Table

    table = Table(title=f"per {name}", title_justify="left")
    table.add_column(name)
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for split in splits:
        table.add_column(split, justify="right")
    for key, n in counts.items():
        per_split = [f"{v:,}" for v in (by_split or {}).get(key, [])]
        table.add_row(key, f"{n:,}", f"{100 * n / total:.1f}%" if total else "-", *per_split)
    return table
