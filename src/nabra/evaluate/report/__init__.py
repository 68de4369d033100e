"""The schedule-comparison report: ``report.md`` + a self-contained ``report.html`` + PNG plots.

From run folders (``config.yaml``, ``metrics.jsonl``, ``eval-test/metrics.json``) it builds:

- the final metrics per task, per schedule (mean ± sample std over the seeds given) and per run;
- learning curves per task: smoothed train loss, dev loss and the dev metric against the step, one
  line per schedule (seeds averaged, a band of ± one std);
- gradient-norm volatility (the sliding-window variance the trainer logs) per schedule;
- DID and SER confusion matrices of the best run of each schedule;
- a plain-language summary: which schedule wins which task, by how much, and whether the gap is
  larger than the spread between seeds.

The document is a list of blocks rendered twice (Markdown and HTML), so both say the same.
"""

from nabra.evaluate.report.plots import COLORS, average, smooth
from nabra.evaluate.report.prose import ranked, summary, winner_sentence
from nabra.evaluate.report.render import make_report
from nabra.evaluate.report.runs import SCHEDULE_ORDER, Run, by_schedule, read_run

__all__ = ["COLORS", "SCHEDULE_ORDER", "Run", "average", "by_schedule", "make_report", "ranked", "read_run", "smooth",
           "summary", "winner_sentence"]
