"""The one shape of every bench's figures, so that ``bench/run_all.py`` can put them in one table.

A bench calls :func:`record` beside the line it prints: a name, the value, its unit and, where the
bench has one, its target (``at_least`` / ``at_most``). With ``NABRA_BENCH_JSON`` set (run_all does)
each figure is also appended to that file as a JSON line; run alone, a bench only prints.
"""

from __future__ import annotations

import json
import os

ENV = "NABRA_BENCH_JSON"


def record(bench: str, name: str, value: float, unit: str, *, at_least: float | None = None,
           at_most: float | None = None, note: str = "") -> bool | None:
    """Keep one figure; returns whether it meets its target (None: no target)."""
    if at_least is not None and at_most is not None:
        raise ValueError("a figure has one target: at_least or at_most")
    target = f">= {at_least:g}" if at_least is not None else f"<= {at_most:g}" if at_most is not None else None
    met = None if target is None else bool(value >= at_least if at_least is not None else value <= at_most)
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"bench": bench, "name": name, "value": float(value), "unit": unit, "target": target,
                                "met": met, "note": note}, ensure_ascii=False) + "\n")
    return met


def verdict(met: bool | None) -> str:
    return "no target" if met is None else "met" if met else "NOT met"
