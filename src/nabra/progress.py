"""The one progress bar of every long job (synthesis, imports, training, evaluation): rich, on
stderr, with counts, elapsed time and an ETA; a spinner with a running count when the total is unknown."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_bar(label: str, total: int | None, *, enabled: bool = True, completed: int = 0,
                 unit: str = "", transient: bool = False) -> Iterator[Callable[..., None]]:
    """Show a bar named ``label`` while the block runs; yields ``advance(n=1, info="")``, which moves
    it ``n`` steps (to ``n`` with no total: the running count) and shows ``info`` after it.

    ``total=None`` shows a spinner and the count (e.g. rows read from a stream). Nothing is drawn
    when ``enabled`` is false, or, with no total, when stderr is not a terminal."""
    if not enabled or (total is None and not sys.stderr.isatty()):
        yield lambda n=1, info="": None
        return
    if total is None:
        columns = (SpinnerColumn(), TextColumn(f"[bold]{label}[/]: {{task.completed:,}} {unit}"), TimeElapsedColumn(),
                   TextColumn("{task.fields[info]}"))
    else:
        columns = (TextColumn(f"[bold]{label}"), BarColumn(bar_width=24), MofNCompleteColumn(), TextColumn(unit),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, console=Console(stderr=True), transient=transient) as bar:
        task = bar.add_task(label, total=total, completed=completed, info="")
        if total is None:
            yield lambda n=1, info="": bar.update(task, completed=n, info=info)
        else:
            yield lambda n=1, info="": bar.update(task, advance=n, info=info)
