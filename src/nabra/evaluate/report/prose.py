"""The report's summary in words: who wins each task and whether it is beyond the seed spread
(:func:`nabra.evaluate.stats.compare`, the claims' test too), what was not learned, what the
baselines say, loops, languages and lengths."""

from __future__ import annotations

import numpy as np

from nabra.evaluate.claims import run_tasks as report_tasks
from nabra.evaluate.metrics import primary
from nabra.evaluate.report.plots import grad_norm_variance
from nabra.evaluate.report.runs import Run, pct, schedule_stats
from nabra.evaluate.stats import Stat, compare
from nabra.run.folder import BASELINES

# ============================================================================================
# the summary in words
# ============================================================================================

WER_NOT_LEARNED = 0.9
"""ASR whose test WER is at least this was not learned (a model that transcribes nothing scores 1.0)."""
KEEP_MARGIN = 0.02
"""A fine-tuned CER worse than the base's by at most this (or the seed spread, if larger) kept the base's ASR."""
ROUGE_NOT_LEARNED = 0.10
"""Without a baseline to compare with, a summary whose ROUGE-L is below this was not learned."""
CHANCE_MARGIN = 0.05
"""A DID/SER macro-F1 within this (or the seed spread, if larger) of chance (1 / labels) was not learned."""


def not_learned(task: str, stat: Stat, groups: dict[str, list[Run]]) -> str | None:
    """Why ``task`` counts as not learned at ``stat`` (the schedule's mean), or ``None`` (learned)."""
    key, _ = primary(task)
    if task == "asr" and stat.mean >= WER_NOT_LEARNED:
        why = f"WER {pct(stat.mean)}% ≥ {pct(WER_NOT_LEARNED)}%"
        base = schedule_stats({n: r for n, r in groups.items() if n == "base"}, task, key).get("base")
        if base is not None and base.mean < WER_NOT_LEARNED:  # it knew ASR: the fine-tuning broke it
            why += f", the pretrained base's {pct(base.mean)}% before fine-tuning"
        return why
    if key == "macro_f1":  # did, ser, a declared label task
        chance = 1 / n_labels(groups, task)
        if stat.mean <= chance + max(stat.std, CHANCE_MARGIN):
            return f"macro-F1 {pct(stat.mean)}% within {pct(max(stat.std, CHANCE_MARGIN))} of chance {pct(chance)}%"
    if task in ("ssum", "tsum"):
        floor = [st for name, st in schedule_stats(groups, task, key).items() if name in BASELINES]
        if not floor and stat.mean < ROUGE_NOT_LEARNED:
            return f"ROUGE-L {pct(stat.mean)}% < {pct(ROUGE_NOT_LEARNED)}%"
        knew = schedule_stats({n: r for n, r in groups.items() if n == "base"}, task, key).get("base")
        if knew is not None and knew.mean >= ROUGE_NOT_LEARNED:
            # the pretrained base summarizes already: a schedule keeps or loses it (baseline_sentences says which)
            return f"ROUGE-L {pct(stat.mean)}% < {pct(ROUGE_NOT_LEARNED)}%" if stat.mean < ROUGE_NOT_LEARNED else None
        if floor:
            base = max(floor, key=lambda st: st.mean)
            if stat.mean <= base.mean + max(stat.std, base.std, 0.01):
                return f"ROUGE-L {pct(stat.mean)}% no better than the baseline's {pct(base.mean)}%"
    return None


def n_labels(groups: dict[str, list[Run]], task: str) -> int:
    """The label count of ``task`` (from the runs' confusion matrices; 5 when none has one)."""
    for runs in groups.values():
        for r in runs:
            labels = (r.final or {}).get("metrics", {}).get(task, {}).get("confusion", {}).get("labels")
            if labels:
                return len(labels)
    return 5


def winner_sentence(task: str, stats: dict[str, Stat], failed: dict[str, str] | None = None) -> str | None:
    """One sentence: who wins ``task`` on its primary metric, by how much, and whether it is noise.
    ``failed``: schedules that did not learn the task (with why): never named the winner."""
    key, higher = primary(task)
    if not stats:
        return None
    failed = {name: why for name, why in (failed or {}).items() if name in stats}
    label = {"asr": "ASR (WER, lower is better)", "composite": "Composite score"}.get(
        task, f"{task.upper()} ({'ROUGE-L' if key == 'rougeL' else 'macro-F1'})")
    if len(failed) == len(stats):
        best = min(failed, key=lambda n: stats[n].mean * (-1 if higher else 1))
        return f"{label}: **not learned** by any schedule (best {best}: {failed[best]}): no winner named."
    tail = f" Not learned: {'; '.join(f'{n} ({why})' for n, why in failed.items())}." if failed else ""
    ranked = sorted(((n, st) for n, st in stats.items() if n not in failed), key=lambda kv: kv[1].mean, reverse=higher)
    (best, b), rest = ranked[0], ranked[1:]
    if not rest:
        return f"{label}: only {best} has results ({pct(b.mean)}%)." + tail
    second, s = rest[0]
    c = compare(b, s, higher)  # the claims' spread test
    if c.tie:
        tied = [name for name, st in ranked if compare(st, b, higher).tie]
        return f"{label}: {' and '.join(tied)} tie at {pct(b.mean)}%." + tail
    text = f"{label}: **{best}** wins with {pct(b.mean)}% vs {second} {pct(s.mean)}% ({100 * abs(c.diff):.1f} points)"
    if c.spread is None:
        return text + "; one seed on at least one side, so the seed-to-seed spread is unknown." + tail
    if not c.beyond_spread():
        return text + f", within the seed spread (std up to {pct(c.spread)}): not a clear win." + tail
    return text + f", larger than the seed spread (std up to {pct(c.spread)})." + tail


def volatility_sentence(groups: dict[str, list[Run]]) -> str | None:
    """Which schedule's gradient norm varies most over the second half of training."""
    level = {}
    for schedule, runs in groups.items():
        values = []
        for run in runs:
            steps, var = grad_norm_variance(run)
            if len(steps):
                values.append(float(np.mean(var[steps >= steps.max() / 2])))
        if values:
            level[schedule] = float(np.mean(values))
    if len(level) < 2:
        return None
    hi, lo = max(level, key=level.get), min(level, key=level.get)
    return (f"Gradient-norm volatility (mean sliding-window variance over the second half of training) is highest "
            f"for **{hi}** ({level[hi]:.3g}) and lowest for **{lo}** ({level[lo]:.3g}).")


KEPT_METRICS = (("asr", "cer", "CER", False), ("ser", "macro_f1", "SER macro-F1", True),
                ("did", "macro_f1", "DID macro-F1", True), ("tsum", "rougeL", "TSUM ROUGE-L", True),
                ("ssum", "rougeL", "SSUM ROUGE-L", True))
"""What the pretrained base is compared on, when it was scored on the task: (task, key, label, higher is better)."""
UNTRAINED_METRICS = (("asr", "cer", "CER", False), ("composite", "composite", "composite", True))
"""What the untrained model is compared on: the floor a trained one must clear."""


def baseline_sentences(groups: dict[str, list[Run]]) -> list[str]:
    """How every schedule compares with each baseline: the untrained model is the floor a trained one
    must clear (CER and composite); against the pretrained ``base``, per task it was pre-trained on
    (CER, SER/DID macro-F1), a score worse than the base's by more than the seed spread means the
    fine-tuning lost what the base knew."""
    out = []
    for baseline in (b for b in BASELINES if b in groups):
        parts = []
        checks = KEPT_METRICS if baseline == "base" else UNTRAINED_METRICS
        for task, key, label, higher in checks:
            stats = schedule_stats({n: r for n, r in groups.items() if n == baseline or n not in BASELINES}, task, key)
            base = stats.pop(baseline, None)
            if base is None or not stats:
                continue
            if baseline == "base":  # scored on the tasks it was pre-trained on: its composite is not comparable
                parts.append(_kept_or_lost(base, stats, task.upper(), label, higher))
                continue
            beat = [name for name, st in stats.items() if (st.mean > base.mean if higher else st.mean < base.mean)]
            missed = [name for name in stats if name not in beat]
            text = f"{label} {pct(base.mean)}% {baseline}: " + (
                "every schedule does better" if not missed else
                f"**{', '.join(missed)}** {'does' if len(missed) == 1 else 'do'} not beat it")
            best = max(stats, key=lambda n: stats[n].mean if higher else -stats[n].mean)
            parts.append(text + f" (best {best} {pct(stats[best].mean)}%)")
        if parts:
            what = "the untrained model" if baseline == "untrained" else "the pretrained base (before fine-tuning)"
            out.append(f"Against {what}: " + "; ".join(parts) + ".")
    return out


def _kept_or_lost(base: Stat, stats: dict[str, Stat], task: str, label: str, higher: bool) -> str:
    """Per schedule: whether the fine-tuning kept what the base scored (not worse beyond the spread)."""
    kept, lost = [], []
    for name, st in stats.items():
        worse = (base.mean - st.mean) if higher else (st.mean - base.mean)
        if worse > max(st.std, base.std, KEEP_MARGIN):
            lost.append(f"{name} {pct(st.mean)}% ({'-' if higher else '+'}{100 * worse:.1f})")
        else:
            kept.append(f"{name} {pct(st.mean)}%")
    text = f"{label} {pct(base.mean)}% base: "
    if kept:
        text += f"kept its {task}: " + ", ".join(kept)
    if lost:
        text += ("; " if kept else "") + f"**lost** {task} (negative transfer): " + ", ".join(lost)
    return text


def loop_sentence(groups: dict[str, list[Run]]) -> str | None:
    """How many ASR answers of each schedule (baselines included) are caught in a repetition loop
    (``looped`` in the test metrics, mean over seeds), when any is: the reason a CER passes 100 %."""
    counts = {}
    for schedule, runs in groups.items():
        asr = [m for r in runs if (m := (r.final or {}).get("metrics", {}).get("asr")) and "looped" in m]
        if asr:
            counts[schedule] = (float(np.mean([m["looped"] for m in asr])), int(asr[0].get("n", 0)))
    if not any(looped for looped, _ in counts.values()):
        return None
    parts = [f"{name} {round(looped, 1):g} of {n}" for name, (looped, n) in sorted(counts.items(), key=lambda kv: -kv[1][0])]
    return ("ASR answers caught in a repetition loop (the same piece of text over and over: what a model does "
            "when it loses its place in long audio; `looped` in predictions.jsonl), mean over seeds: "
            + ", ".join(parts) + ".")


def language_sentence(groups: dict[str, list[Run]]) -> str | None:
    """WER per speech language of each schedule (mean over seeds), when the test set mixes languages
    (``by_language`` in the ASR metrics): English under Whisper's English normalizer, Arabic under the
    run's scheme. ``None`` for a one-language test set."""
    parts = []
    for schedule, runs in groups.items():
        tables = [m["by_language"] for r in runs if (m := (r.final or {}).get("metrics", {}).get("asr"))
                  and "by_language" in m]
        if tables:
            langs = sorted({lang for t in tables for lang in t})
            wers = ", ".join(f"{lang} {100 * float(np.mean([t[lang]['wer'] for t in tables if lang in t])):.1f}%"
                             for lang in langs)
            parts.append(f"{schedule}: {wers}")
    if not parts:
        return None
    return "ASR WER per language of the speech (English normalised as Whisper's evaluations do, Arabic by the " \
           "run's scheme), mean over seeds — " + "; ".join(parts) + "."


def duration_sentence(groups: dict[str, list[Run]]) -> str | None:
    """ASR CER per audio length of each schedule and baseline (mean over seeds; ``by_duration`` in the
    ASR metrics), when the test clips span several lengths: where long audio is lost. ``None`` otherwise."""
    parts = []
    for schedule, runs in groups.items():
        tables = [m["by_duration"] for r in runs if (m := (r.final or {}).get("metrics", {}).get("asr"))
                  and "by_duration" in m]
        if tables:
            cells = []
            for bucket in dict.fromkeys(b for t in tables for b in t):
                cer = float(np.mean([t[bucket]["cer"] for t in tables if bucket in t]))
                share = tables[0].get(bucket, {}).get("n")
                cells.append(f"{bucket} {100 * cer:.1f}%" + (f" ({share} clip{'' if share == 1 else 's'})" if share is not None else ""))
            parts.append(f"{schedule}: " + ", ".join(cells))
    if not parts:
        return None
    return "ASR CER by audio length (`by_duration` in metrics.json), mean over seeds — " + "; ".join(parts) + "."


def _weight(sentence: str) -> int:
    """Order of a winner sentence in the summary (stable within a rank)."""
    if "larger than the seed spread" in sentence:
        return 0
    if "not learned** by any schedule" in sentence:
        return 3
    if "one seed on at least one side" in sentence or "only " in sentence:
        return 1
    return 2


def ranked(groups: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """The groups that compete: every schedule but the baselines."""
    return {name: runs for name, runs in groups.items() if name not in BASELINES}


def summary(groups: dict[str, list[Run]]) -> list[str]:
    """The report's summary sentences. The baselines are compared with, never ranked."""
    lines = []
    for task in ("composite", *report_tasks(groups)):
        stats = schedule_stats(ranked(groups), task, primary(task)[0])
        failed = {n: why for n, st in stats.items() if task != "composite" and (why := not_learned(task, st, groups))}
        if sentence := winner_sentence(task, stats, failed):
            lines.append(sentence)
    lines.sort(key=_weight)  # what differs first: clear wins, then one-seed gaps, ties, tasks nobody learned
    if not lines:
        lines.append("No run has final metrics (eval-test/metrics.json or dev evaluations): nothing to rank.")
    lines += baseline_sentences(groups)
    if loops := loop_sentence(groups):
        lines.append(loops)
    if languages := language_sentence(groups):
        lines.append(languages)
    if lengths := duration_sentence(groups):
        lines.append(lengths)
    vol = volatility_sentence(groups)
    if vol:
        lines.append(vol)
    return lines


