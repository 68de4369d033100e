"""The report's claims section: fake runs whose figures make each verdict known in advance."""

import math

from nabra.evaluate.claims import NOT_SUPPORTED, SPREAD, SUPPORTED, UNTESTABLE, check_claims, steps_to_reach
from nabra.evaluate.report import by_schedule, make_report, ranked, read_run
from nabra.testing import write_run as fake_run

STEPS = 60


def write_run(folder, schedule, seed, *, asr_tau=20.0, volatility=1.0, f1=0.5, composite=0.5, wer=0.4,
              stages=None, asr_dev_wer=None, weights=None):
    """A run folder as the trainer and `nabra evaluate` write it. ``stages``: (first step, stage) list;
    ``asr_dev_wer``: {step: WER} of the dev evaluations; ``weights``: {step: shares} schedule events."""
    jitter = 0.01 * (seed - 0.5)  # two seeds: a small, known spread
    lines = []
    for step in range(0, STEPS + 1):
        stage = schedule
        for first, name in stages or ():
            if step >= first:
                stage = name
        if step:
            tasks = {"asr": 1.0} if stage.endswith(" asr") else {"asr": 1.0, "did": 1.0, "ser": 1.0}
            lines.append({"step": step, "loss": 1.0, "task_loss": tasks, "grad_norm": 1.0,
                          "grad_norm_var": volatility + jitter, "stage": stage})
        if step % 10 == 0:
            lines.append({"step": step, "event": "dev", "dev_loss": {
                "asr": 1 + 2 * math.exp(-step / asr_tau) + jitter, "did": 1 + math.exp(-step / 20)}})
            dev_wer = (asr_dev_wer or {}).get(step, 0.5)
            lines.append({"step": step, "event": "dev_eval", "composite": composite,
                          "metrics": {"asr": {"wer": dev_wer + jitter}, "did": {"macro_f1": f1}}})
        if weights and step in weights:
            lines.append({"step": step, "event": "schedule", "message": "moved", "weights": weights[step]})
    f1_jitter = 2 * jitter  # DID and SER move together: a 1.4-point spread of their mean
    metrics = {"asr": {"wer": wer + jitter, "cer": (wer + jitter) / 2}, "did": {"macro_f1": f1 + f1_jitter},
               "ser": {"macro_f1": f1 + f1_jitter}, "ssum": {"rougeL": 0.3}}
    return fake_run(folder, schedule, seed, records=lines, test={"metrics": metrics, "composite": composite + jitter})


TPC_STAGES = [(0, "tpc:1/2 asr"), (31, "tpc:2/2 asr+did+ser")]


def runs(tmp_path, *, flipped=False):
    """Five schedules, two seeds each. As written every claim holds; ``flipped``: every claim fails."""
    fast, slow = (40.0, 8.0) if flipped else (8.0, 40.0)
    spec = {
        "uniform": {"asr_tau": slow, "volatility": 1.0, "f1": 0.40, "composite": 0.50},
        "ads": {"asr_tau": fast, "volatility": 0.5 if flipped else 3.0, "f1": 0.30 if flipped else 0.61,
                "composite": 0.55},
        "balanced": {"asr_tau": slow, "f1": 0.60, "composite": 0.52},
        "tpc": {"stages": TPC_STAGES, "asr_dev_wer": {30: 0.5, 40: 0.45 if flipped else 0.8}, "composite": 0.45},
        "tpc_ads": {"composite": 0.40 if flipped else 0.60, "f1": 0.35 if flipped else 0.62,
                    "wer": 0.6 if flipped else 0.3},
    }
    return [read_run(write_run(tmp_path / f"{s}-seed{seed}", s, seed, **kw))
            for s, kw in spec.items() for seed in (0, 1)]


def claims_of(runs_):
    return {c.key: c for c in check_claims(ranked(by_schedule(runs_)))}


def test_every_claim_supported_when_the_figures_say_so(tmp_path):
    claims = claims_of(runs(tmp_path))
    assert {k: c.verdict for k, c in claims.items()} == dict.fromkeys("abcde", SUPPORTED)
    assert "asr (level" in claims["a"].evidence and "ads" in claims["a"].evidence
    assert "(×3.00)" in claims["b"].evidence
    # (c): the 21-point lift is balance (+20, beyond the spread), not diversity (+1, within it).
    c = claims["c"].evidence
    assert "+21.0 points" in c and "balance (balanced − uniform) +20.0 points [supported]" in c
    assert "diversity (ads − balanced) +1.0 points [within seed spread]" in c
    assert "asr wer after stage 2 begins: worse by 30.0 ± 0.0 points" in claims["d"].evidence
    assert "rank 1 of 5" in claims["e"].evidence


def test_every_claim_not_supported_when_the_figures_go_the_other_way(tmp_path):
    claims = claims_of(runs(tmp_path, flipped=True))
    assert {k: c.verdict for k, c in claims.items()} == dict.fromkeys("abcde", NOT_SUPPORTED)


def test_within_spread_and_not_testable(tmp_path):
    # One schedule pair whose difference is smaller than the seed spread; no tpc, no tpc_ads.
    pair = [read_run(write_run(tmp_path / f"{s}-{seed}", s, seed, volatility=1.0 + 0.005 * (s == "ads"),
                               f1=0.5 + 0.003 * (s == "ads"))) for s in ("uniform", "ads") for seed in (0, 1)]
    claims = claims_of(pair)
    assert claims["b"].verdict == SPREAD and claims["c"].verdict == SPREAD
    assert claims["a"].verdict == SPREAD  # the same curves: the same steps to the level
    assert claims["d"].verdict == UNTESTABLE and "tpc runs" in claims["d"].evidence
    assert claims["e"].verdict == UNTESTABLE
    assert "run the balanced schedule" in claims["c"].evidence


def test_the_claims_name_registered_schedules():
    import ast
    import inspect

    from nabra.evaluate import claims
    from nabra.schedule import SCHEDULE_NAMES

    spelled = {n.value for n in ast.walk(ast.parse(inspect.getsource(claims)))
               if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in
               {"ads", "uniform", "balanced", "tpc", "tpc_ads", "adaptive"}}
    assert spelled <= set(SCHEDULE_NAMES) and {"ads", "uniform", "balanced", "tpc", "tpc_ads"} <= spelled


def test_steps_to_reach_interpolates_between_evaluations():
    import numpy as np

    steps, loss = np.array([0.0, 10, 20]), np.array([3.0, 2.0, 1.0])
    assert steps_to_reach(steps, loss, 1.5) == 15.0
    assert steps_to_reach(steps, loss, 3.0) == 0.0
    assert steps_to_reach(steps, loss, 0.5) is None


def test_report_has_the_claims_section_and_the_adaptive_share_plot(tmp_path):
    folders = [r.path for r in runs(tmp_path)]
    shares = {0: {"asr": 0.2, "did": 0.2, "ser": 0.2, "ssum": 0.2, "tsum": 0.2},
              30: {"asr": 0.1, "did": 0.1, "ser": 0.1, "ssum": 0.4, "tsum": 0.3}}
    folders += [write_run(tmp_path / f"adaptive-seed{s}", "adaptive", s, weights=shares) for s in (0, 1)]
    make_report(folders, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## The paper's claims on these runs" in md
    assert md.count("— **supported**") == 5
    assert "(c) ADS lifts paralinguistic F1" in md
    assert (tmp_path / "report" / "task-weights.png").stat().st_size > 0
    assert "Task shares of the adaptive schedules" in md


def test_not_learned_is_said_instead_of_a_winner(tmp_path):
    folders = [write_run(tmp_path / f"{s}-{seed}", s, seed, wer=0.95 if s == "uniform" else 0.97, f1=0.21)
               for s in ("uniform", "ads") for seed in (0, 1)]
    make_report(folders, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "ASR (WER, lower is better): **not learned** by any schedule (best uniform: WER 95.0% ≥ 90.0%)" in md
    assert "DID (macro-F1): **not learned** by any schedule" in md and "of chance 20.0%" in md
    assert "wins" not in md.split("Composite")[0]


def test_fine_tuning_that_loses_the_base_asr_is_named(tmp_path):
    # Per task the base was scored on: CER lower is better, the macro-F1s higher.
    folders = [write_run(tmp_path / "base", "base", 0, wer=0.40, f1=0.60),
               write_run(tmp_path / "uniform-0", "uniform", 0, wer=0.42, f1=0.59),
               write_run(tmp_path / "tpc-0", "tpc", 0, wer=0.80, f1=0.30)]
    make_report(folders, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    line = next(x for x in md.splitlines() if "pretrained base" in x)
    assert "kept its ASR: uniform" in line and "**lost** ASR (negative transfer): tpc" in line
    assert "SER macro-F1 59.0% base: kept its SER: uniform 58.0%; **lost** SER (negative transfer): tpc 29.0% (-30.0)" in line
    # Its composite (over fewer tasks) is not put beside the schedules' in the table.
    composite = next(x for x in md.splitlines() if x.startswith("| composite |"))
    assert composite.endswith("| – |")  # the base column is the last


def test_asr_not_learned_says_what_the_base_had(tmp_path):
    folders = [write_run(tmp_path / "base", "base", 0, wer=0.50), write_run(tmp_path / "uniform-0", "uniform", 0, wer=1.20)]
    make_report(folders, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert ("ASR (WER, lower is better): **not learned** by any schedule (best uniform: WER 119.5% ≥ 90.0%, "
            "the pretrained base's 49.5% before fine-tuning)") in md


def test_negative_transfer_counts_only_the_earlier_stages_tasks(tmp_path):
    from nabra.evaluate.claims import transfer_changes

    # A blend window before the boundary shows did/ser in the batches: they still belong to stage 2.
    stages = [(0, "tpc:1/2 asr"), (25, "tpc:1/2 asr (blend 0.25)"), (31, "tpc:2/2 asr+did+ser")]
    run = read_run(write_run(tmp_path / "tpc-0", "tpc", 0, stages=stages, asr_dev_wer={30: 0.5, 40: 0.7}))
    for r in run.train:  # the blend window's batches hold did and ser
        if 25 <= r["step"] < 31:
            r["task_loss"] = {"asr": 1.0, "did": 1.0, "ser": 1.0}
    changes = transfer_changes(run)
    assert set(changes) == {(2, "asr")} and abs(changes[(2, "asr")] - 0.2) < 1e-9


def test_a_summarizing_base_is_kept_or_lost_not_learned_again(tmp_path):
    # The shaped demo's base knows text summarization: a schedule that holds its ROUGE-L kept it.
    def run(name, schedule, rouge):
        return fake_run(tmp_path / name, schedule, 0, test={"metrics": {"tsum": {"rougeL": rouge},
                                                                         "asr": {"wer": 0.4, "cer": 0.3}},
                                                             "composite": 0.5})
    make_report([run("base", "base", 0.56), run("u", "uniform", 0.55), run("t", "tpc", 0.30)], tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    line = next(x for x in md.splitlines() if "pretrained base" in x)
    assert "TSUM ROUGE-L 56.0% base: kept its TSUM: uniform 55.0%; **lost** TSUM (negative transfer): tpc 30.0% (-26.0)" in line
    tsum = next(x for x in md.splitlines() if x.startswith("- TSUM"))
    assert "**uniform** wins" in tsum and "not learned" not in tsum
