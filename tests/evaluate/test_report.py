import math
import re

import numpy as np

from nabra.cli import main
from nabra.evaluate.report import average, make_report, read_run, smooth
from nabra.testing import write_run

DIDS = ["EGY", "GLF", "LAV", "NOR", "MSA"]


def fake_run(folder, schedule, seed, *, wer, rouge, f1, steps=60, volatility=1.0, test=True, looped=None):
    """A run folder as training and evaluation write it: config.yaml, metrics.jsonl, eval-test/."""
    rng = np.random.default_rng(seed + 17 * len(schedule))
    lines = []
    for step in range(1, steps + 1):
        decay = math.exp(-step / 20)
        task_loss = {"asr": 3 * decay + 1 + 0.1 * rng.standard_normal(), "did": 2 * decay + 0.5}
        if step > steps // 3:  # a later stage adds the summaries
            task_loss["ssum"] = 4 * decay + 1.5
        norm = 1 + volatility * abs(rng.standard_normal())
        lines.append({"step": step, "loss": sum(task_loss.values()) / len(task_loss), "task_loss": task_loss,
                      "lr": 1e-4, "grad_norm": norm, "grad_norm_var": volatility ** 2 * (0.5 + 0.1 * decay),
                      "loss_var": {}, "stage": "all"})
        if step % 10 == 0:
            lines.append({"step": step, "event": "dev", "dev_loss": {t: v + 0.2 for t, v in task_loss.items()}})
            lines.append({"step": step, "event": "dev_eval", "composite": 0.5,
                          "metrics": {"asr": {"wer": wer + decay}, "did": {"macro_f1": f1 * (1 - decay)}}})
    result = None
    if test:
        confusion = np.eye(5, 6, dtype=int) * 4
        confusion[1, 5] = 2  # GLF twice unparsed
        metrics = {"asr": {"wer": wer, "cer": wer / 3, "n": 30, **({} if looped is None else {"looped": looped})},
                   "ssum": {"rouge1": rouge + 0.1, "rouge2": rouge / 2, "rougeL": rouge, "n": 5},
                   "did": {"accuracy": f1 + 0.02, "macro_f1": f1, "unparsed_rate": 0.1, "n": 22,
                           "confusion": {"labels": DIDS, "columns": DIDS + ["unparsed"], "matrix": confusion.tolist()}}}
        result = {"metrics": metrics, "composite": ((1 - wer) + rouge + f1) / 3}
    return write_run(folder, schedule, seed, records=lines, test=result)


def two_schedules(tmp_path):
    return [fake_run(tmp_path / "uniform-s0", "uniform", 0, wer=0.30, rouge=0.20, f1=0.50),
            fake_run(tmp_path / "uniform-s1", "uniform", 1, wer=0.34, rouge=0.22, f1=0.52),
            fake_run(tmp_path / "ads-s0", "ads", 0, wer=0.25, rouge=0.21, f1=0.70, volatility=3.0)]


def test_report_files_table_and_self_contained_html(tmp_path):
    runs = two_schedules(tmp_path)
    page = make_report(runs, tmp_path / "report")
    out = tmp_path / "report"
    for name in ("report.md", "report.html", "curves-asr.png", "curves-did.png", "curves-ssum.png",
                 "grad-norm-volatility.png", "confusion-did.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert page == out / "report.html"
    md = (out / "report.md").read_text()
    # Schedules grouped: uniform's two seeds as mean ± sample std (WER 30 and 34 -> 32.0 ± 2.8).
    assert "| asr | WER | 32.0 ± 2.8 | **25.0** |" in md
    assert "uniform (n=2)" in md and "ads (n=1)" in md
    assert "| did | macro-F1 | 51.0 ± 1.4 | **70.0** |" in md
    # Per-run table holds every run's own numbers.
    assert re.search(r"\| asr \| WER \| 30\.0 \| 34\.0 \| \*\*25\.0\*\* \|", md)
    # The summary names the winner and says the seed spread is unknown for a single seed.
    assert "DID (macro-F1): **ads** wins with 70.0% vs uniform 51.0%" in md
    assert "seed-to-seed spread is unknown" in md
    assert "highest for **ads**" in md  # gradient-norm volatility
    html = page.read_text()
    pngs = [p for p in out.glob("*.png")]
    assert html.count("data:image/png;base64,") == len(pngs) == 5
    assert not re.search(r'<img src="(?!data:)', html)  # nothing linked from outside the page


def test_untrained_baseline_is_compared_with_not_ranked(tmp_path):
    runs = two_schedules(tmp_path)
    # An untrained model that babbles (WER 5.0) but, by luck, has the best DID F1: it must not "win".
    runs.append(fake_run(tmp_path / "untrained", "untrained", 0, wer=5.0, rouge=0.0, f1=0.9, test=True))
    md = (make_report(runs, tmp_path / "report").parent / "report.md").read_text()
    assert "DID (macro-F1): **ads** wins with 70.0% vs uniform 51.0%" in md
    assert "Against the untrained model: CER 166.7% untrained: every schedule does better (best ads 8.3%)" in md
    worse = fake_run(tmp_path / "tpc", "tpc", 0, wer=6.0, rouge=0.1, f1=0.3)
    md = (make_report([*runs, worse], tmp_path / "report2").parent / "report.md").read_text()
    assert "CER 166.7% untrained: **tpc** does not beat it" in md
    assert "| untrained (n=1) |" in md  # its numbers are still in the table


def test_repetition_loops_are_counted_per_schedule(tmp_path):
    runs = [fake_run(tmp_path / f"u{s}", "uniform", s, wer=1.2, rouge=0.2, f1=0.5, looped=n)
            for s, n in enumerate((4, 5, 5))]
    runs += [fake_run(tmp_path / "a0", "ads", 0, wer=0.6, rouge=0.2, f1=0.5, looped=1),
             fake_run(tmp_path / "base", "base", 0, wer=0.5, rouge=0.0, f1=0.2, looped=0)]
    md = (make_report(runs, tmp_path / "r").parent / "report.md").read_text()
    assert "repetition loop" in md and "mean over seeds: uniform 4.7 of 30, ads 1 of 30, base 0 of 30." in md
    quiet = [fake_run(tmp_path / "q0", "tpc", 0, wer=0.4, rouge=0.2, f1=0.5, looped=0),
             fake_run(tmp_path / "q1", "ads", 0, wer=0.4, rouge=0.2, f1=0.5)]  # an older run: no count
    assert "repetition loop" not in (make_report(quiet, tmp_path / "r2").parent / "report.md").read_text()


def test_within_seed_spread_is_said(tmp_path):
    runs = [fake_run(tmp_path / f"u{s}", "uniform", s, wer=0.30 + 0.1 * s, rouge=0.2, f1=0.5) for s in (0, 1)]
    runs += [fake_run(tmp_path / f"t{s}", "tpc", s, wer=0.32 + 0.1 * s, rouge=0.2, f1=0.5) for s in (0, 1)]
    make_report(runs, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "ASR (WER, lower is better): **uniform** wins with 35.0% vs tpc 37.0% (2.0 points), within the seed spread" in md


def test_runs_without_test_metrics_fall_back_to_dev(tmp_path):
    run = read_run(fake_run(tmp_path / "a", "tpc_ads", 3, wer=0.3, rouge=0.2, f1=0.5, test=False))
    assert (run.schedule, run.seed, run.final_source) == ("tpc_ads", 3, "dev")
    assert len(run.train) == 60 and len(run.dev) == len(run.dev_eval) == 6
    assert run.value("asr", "wer") == 0.3 + math.exp(-3) and any("last dev evaluation" in n for n in run.notes)


def test_series_helpers():
    steps = np.arange(1.0, 7.0)
    avg = average([(steps, steps), (steps[1:], steps[1:] + 2)])
    assert avg[0].tolist() == [2, 3, 4, 5, 6] and np.allclose(avg[1], steps[1:] + 1)
    assert np.allclose(smooth(np.ones(90)), 1.0)


def test_report_cli(tmp_path, capsys):
    runs = two_schedules(tmp_path)
    assert main(["report", *map(str, runs), "--out", str(tmp_path / "out")]) == 0
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "out2")]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def _condition(run, name, slug, f1, wer):
    import json

    kind, _, rest = name.partition(":")
    folder = run / "eval-test" / slug
    folder.mkdir(parents=True)
    params = dict(p.split("=") for p in rest.split(",")) if rest else {}
    metrics = {"asr": {"wer": wer, "cer": wer / 3, "n": 30}, "did": {"macro_f1": f1, "accuracy": f1, "n": 22}}
    (folder / "metrics.json").write_text(json.dumps({"condition": {"name": name, "kind": kind, **params},
                                                     "metrics": metrics, "composite": 0.4}))


def test_the_robustness_section_tables_plots_and_says_who_loses_least(tmp_path):
    # Two schedules, two seeds each, scored clean and in white noise at 10 and 0 dB (`nabra evaluate --condition`):
    # uniform loses 30 points of DID at 0 dB, ads 10 — beyond the seed spread.
    import json

    runs = []
    for schedule, clean_f1, loss in (("uniform", 0.60, 0.30), ("ads", 0.62, 0.10)):
        for seed in (0, 1):
            f1 = clean_f1 + 0.01 * seed
            run = fake_run(tmp_path / f"{schedule}-s{seed}", schedule, seed, wer=0.30, rouge=0.2, f1=f1)
            _condition(run, "noise:snr=10,source=white", "noise-snr_10-white", f1 - loss / 3, 0.40)
            _condition(run, "noise:snr=0,source=white", "noise-snr_0-white", f1 - loss, 0.70)
            saved = json.loads((run / "eval-test" / "metrics.json").read_text())
            saved["by"] = {"l1": {"arabic": {"did": {"macro_f1": f1 + 0.05, "n": 12}},
                                  "hindi": {"did": {"macro_f1": f1 - 0.05, "n": 10}}}}
            (run / "eval-test" / "metrics.json").write_text(json.dumps(saved))
            runs.append(run)
    # a baseline that holds up better is in the tables, never named best (compared with, not ranked)
    base = fake_run(tmp_path / "base", "base", 0, wer=0.2, rouge=0.2, f1=0.9)
    _condition(base, "noise:snr=0,source=white", "noise-snr_0-white", 0.85, 0.3)
    out = tmp_path / "report"
    make_report([*runs, base], out)
    md = (out / "report.md").read_text()
    assert "## Robustness: the test split under other listening conditions" in md
    assert "best **base**" not in md and "| noise:snr=0,source=white | 30.5 ± 0.7 (-30.0) | 52.5 ± 0.7 (-10.0) | 85.0 (-5.0) |" in md
    assert md.index("noise:snr=10,source=white") < md.index("| noise:snr=0,source=white")  # SNR high to low
    # DID at 0 dB: uniform 60.5 ± 0.7 clean -> 30.5 ± 0.7 (-30.0); ads 62.5 -> 52.5 (-10.0)
    # ASR's WER rises: its change is a loss, negative
    assert "| noise:snr=0,source=white | 70.0 ± 0.0 (-40.0) | 70.0 ± 0.0 (-40.0) |" in md
    assert (out / "robustness-did-macro_f1.png").stat().st_size > 0 and (out / "robustness-asr-cer.png").is_file()
    assert "- **uniform** clean → noise:snr=0,source=white: asr wer 30.0 ± 0.0 → 70.0 ± 0.0; did macro_f1 60.5 ± 0.7 " \
           "→ 30.5 ± 0.7." in md
    assert ("did macro_f1 under noise:snr=0,source=white: best **ads** 52.5 ± 0.7 against uniform's 30.5 ± 0.7 "
            "(beyond the seed spread); least lost from clean: **ads** -10.0 points against uniform's -30.0 "
            "(beyond the seed spread).") in md
    # the --by breakdown: a row per value, most examples first
    assert "### did macro_f1 by l1" in md
    assert "| arabic | 12 | 65.5 ± 0.7 | 67.5 ± 0.7 | – |" in md and md.index("| arabic |") < md.index("| hindi |")
    # no condition scored: no section
    make_report(two_schedules(tmp_path / "plain"), tmp_path / "plain-report")
    assert "Robustness" not in (tmp_path / "plain-report" / "report.md").read_text()
