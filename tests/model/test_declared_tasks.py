"""Tasks declared in a run's config (``tasks:``): parsed and checked, turned into examples, balanced by
label in the schedules, scored with macro-F1 and a confusion matrix, reported like DID and SER."""


import numpy as np
import pytest
import yaml

from nabra.config import load_config
from nabra.corpus.manifest import Utterance
from nabra.corpus.validate import ValidationConfig, check_utterance
from nabra.errors import NabraError
from nabra.evaluate.metrics import Prediction, composite_score, compute_metrics
from nabra.schedule import ADSSchedule, BalancedSchedule, ExampleTable, build_schedule
from nabra.schedule.testing import clustered_embeddings, random_table
from nabra.tasks import iter_examples, make_example, parse_output, prompt_example

AID = {"field": "l1", "description": "the speaker's native language", "description_ar": "اللغة الأم للمتحدث",
       "labels": {"Arabic": ["عربي", "العربية"], "Mandarin": ["Chinese", "صيني"], "Hindi": ["هندي"]}}
GID = {"field": "gender", "labels": {"female": ["F", "أنثى"], "male": ["M", "ذكر"]},
       "templates": ["Is the speaker female or male? ({labels})", "ما جنس المتحدث؟ ({labels})"]}


def recipe(tmp_path, **tasks):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"data": {"manifest": "m.jsonl"}, "tasks": tasks}, allow_unicode=True, sort_keys=False))
    return path


def test_a_declared_task_joins_the_runs_tasks_and_tpcs_second_stage(tmp_path):
    cfg = load_config(recipe(tmp_path, aid=AID, gid=GID))
    ts = cfg.task_set()
    assert ts.names == ("asr", "ssum", "tsum", "did", "ser", "aid", "gid")
    assert ts.label_tasks() == ("did", "ser", "aid", "gid") and cfg.data.tasks == list(ts.names)
    assert ts.labels("aid").names == ("Arabic", "Mandarin", "Hindi")
    assert cfg.schedule.tpc.stages == [["asr"], ["asr", "did", "ser", "aid", "gid"],
                                       ["asr", "did", "ser", "aid", "gid", "ssum", "tsum"]]
    # English and Arabic templates generated from the descriptions; the given ones kept as they are.
    assert ts["aid"].templates[0] == "What is the speaker's native language in this recording? Answer with one of: {labels}."
    assert any("اللغة الأم للمتحدث" in t for t in ts["aid"].templates) and ts["gid"].templates == tuple(GID["templates"])
    # No tasks: section: the five built-in tasks, as every run before declared tasks existed.
    assert load_config("demo").task_set().names == ("asr", "ssum", "tsum", "did", "ser")


@pytest.mark.parametrize("tasks, message", [
    ({"aid": {**AID, "labels": ["Arabic"]}}, "two or more labels"),
    ({"aid": {**AID, "field": ""}}, "field"),
    ({"aid": {**AID, "labels": {"Arabic": ["x"], "Hindi": ["X"]}}}, "alias 'X' spells two labels"),
    ({"aid": {"field": "l1", "labels": ["a", "b"]}}, "give templates, or a description"),
    ({"aid": {**AID, "templates": ["Accent of {speaker}? {labels}"]}}, r"placeholder\(s\) \['speaker'\]"),
    ({"did": AID}, "a built-in task"),
    ({"a-id": AID}, "plain ASCII identifier"),
    ({"aid": {**AID, "lables": {}}}, "did you mean 'tasks.aid.labels'"),
])
def test_bad_declarations_name_the_task(tmp_path, tasks, message):
    with pytest.raises(NabraError, match=message):
        load_config(recipe(tmp_path, **tasks))


@pytest.mark.parametrize("override, message", [
    ("data.tasks=[asr, aidd]", r"data.tasks: unknown task\(s\) \['aidd'\]"),
    ("schedule.uniform.weights={aidd: 2}", r"schedule.uniform.weights: unknown task\(s\) \['aidd'\]"),
    ("schedule.tpc.stages=[[asr], [asr, aidd]]", r"schedule.tpc.stages: unknown task\(s\) \['aidd'\]"),
    ("train.composite_weights={aidd: 2}", r"unknown part\(s\) \['aidd'\]"),
])
def test_sections_naming_tasks_are_checked_against_the_declared_ones(tmp_path, override, message):
    path = recipe(tmp_path, aid=AID)
    ok = load_config(path, ["schedule.uniform.weights={aid: 2}", "train.composite_weights={aid: 2}"])
    assert ok.schedule.uniform.weights == {"aid": 2}
    with pytest.raises(NabraError, match=message):
        load_config(path, [override])


def test_examples_read_the_field_and_map_aliases_to_names(tmp_path):
    ts = load_config(recipe(tmp_path, aid=AID, gid=GID)).task_set()
    utts = [Utterance("a", audio="/a.wav", transcript="hello", language="en", extra={"l1": "عربي", "gender": "F"}),
            Utterance("b", audio="/b.wav", transcript="hi", extra={"l1": "Hindi"}),
            Utterance("c", transcript="no audio", extra={"l1": "Hindi"}),
            Utterance("d", audio="/d.wav", transcript="blank", extra={"l1": "  "})]
    got = {(e.utt_id, e.task): e for e in iter_examples(utts, task_set=ts)}
    assert set(got) == {("a", "asr"), ("a", "aid"), ("a", "gid"), ("b", "asr"), ("b", "aid"), ("d", "asr")}
    aid = got[("a", "aid")]
    assert (aid.target, aid.label, aid.audio, aid.id) == ("Arabic", "Arabic", "/a.wav", "a#aid")
    assert "Arabic, Mandarin, Hindi" in aid.instruction and got[("a", "gid")].label == "female"
    assert "اللغة الأم للمتحدث" in make_example(utts[1], "aid", language="ar", task_set=ts).instruction
    with pytest.raises(ValueError, match="does not serve task 'gid'"):
        make_example(utts[1], "gid", task_set=ts)
    # A task without Arabic templates still answers an Arabic-prompted analyze: its English template.
    en_only = load_config(recipe(tmp_path, aid={**AID, "description_ar": ""})).task_set()
    assert prompt_example(utts[0], "aid", language="ar", task_set=en_only).instruction.startswith("What is")
    with pytest.raises(NabraError, match="no 'ar' templates for task 'aid'"):
        make_example(utts[0], "aid", language="ar", task_set=en_only)
    assert parse_output("aid", "I think Chinese.", task_set=ts) == "Mandarin"
    assert parse_output("gid", "ذكر", task_set=ts) == "male" and parse_output("aid", "Korean", task_set=ts) is None


def test_validation_rejects_a_label_outside_the_set_and_accepts_a_label_only_line(tmp_path):
    ts = load_config(recipe(tmp_path, aid=AID)).task_set()
    checks = ValidationConfig(declared=ts.declared())
    assert check_utterance(Utterance("a", audio="/a.wav", extra={"l1": "Korean"}), checks) == [
        "l1 'Korean' is not in the aid label set (Arabic, Mandarin, Hindi)"]
    assert check_utterance(Utterance("b", audio="/b.wav", extra={"l1": "صيني"}), checks) == []  # an alias, an accent only
    assert "no annotation" in check_utterance(Utterance("c", audio="/c.wav"), checks)[0]
    assert "l1" in check_utterance(Utterance("c", audio="/c.wav"), checks)[0]
    assert check_utterance(Utterance("b", audio="/b.wav", extra={"l1": "Hindi"}), ValidationConfig())  # not declared


def test_balanced_and_ads_share_a_declared_tasks_slots_equally_by_label():
    # Skewed labels inside aid: the balance is the schedules' doing.
    table = random_table(3000, tasks=("asr", "did", "aid"), probs=[0.4, 0.2, 0.4], n_labels=3, seed=3,
                         label_tasks=("aid",))
    aid = table.code("aid")
    rows = table.task_indices("aid")
    table.label[rows] = np.where(np.arange(len(rows)) % 10 < 7, 0, np.where(np.arange(len(rows)) % 10 < 9, 1, 2))
    assert table.label_tasks() == ("did", "aid")
    vectors, _ = clustered_embeddings(len(table), dim=8, seed=1)
    common = {"batch_size": 24, "seed": 0, "total_steps": 100}
    ads, bal = ADSSchedule(table, **common), BalancedSchedule(table, **common)
    ads.set_embeddings(vectors)
    for _ in range(20):
        for batch in (ads.next_batch(), bal.next_batch()):
            picked = batch[table.task[batch] == aid]  # a third of the slots, 3/3/2 by label (the 2 rotates)
            assert len(picked) == 8 and sorted(np.bincount(table.label[picked], minlength=3).tolist()) == [2, 3, 3]
    # TPC and uniform know the declared task by name; state round-trips with it.
    tpc = build_schedule("tpc", table, batch_size=24, seed=0, total_steps=30, stages=[["asr"], ["asr", "aid", "did"]])
    assert tpc.stages[1].tasks == ("asr", "aid", "did")
    again = BalancedSchedule(table, **common)
    again.load_state_dict(bal.state_dict())
    assert (again.next_batch() == bal.next_batch()).all()


def test_the_example_table_codes_declared_tasks_after_the_built_in_ones(tmp_path):
    ts = load_config(recipe(tmp_path, aid=AID)).task_set()
    utts = [Utterance(f"u{i}", audio="/a.wav", dialect="EGY", extra={"l1": l1}) for i, l1 in enumerate(["Hindi", "Arabic"])]
    table = ExampleTable.from_examples(list(iter_examples(utts, task_set=ts)), labels=ts.label_sets(), task_names=ts.names)
    assert table.task_names[-1] == "aid" and table.counts() == {"did": 2, "aid": 2}
    assert [table.label_names["aid"][c] for c in table.label[table.task_indices("aid")]] == ["Hindi", "Arabic"]


def test_a_declared_task_gets_macro_f1_a_confusion_matrix_and_a_composite_part(tmp_path):
    ts = load_config(recipe(tmp_path, aid=AID)).task_set()
    preds = [Prediction(f"u{i}#aid", "aid", prediction=out, parsed=parse_output("aid", out, task_set=ts), label=ref,
                        reference=ref)
             for i, (ref, out) in enumerate([("Arabic", "Arabic"), ("Arabic", "Hindi"), ("Mandarin", "Chinese"),
                                             ("Hindi", "no idea")])]
    m = compute_metrics(preds, task_set=ts)["aid"]
    assert m["accuracy"] == 0.5 and m["unparsed_rate"] == 0.25
    assert m["confusion"]["labels"] == ["Arabic", "Mandarin", "Hindi"]
    assert m["confusion"]["matrix"] == [[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
    assert m["per_class"]["Mandarin"]["f1"] == 1.0
    metrics = {"asr": {"wer": 0.2}, "aid": m}
    assert composite_score(metrics, task_set=ts) == pytest.approx((0.8 + m["macro_f1"]) / 2)
    assert composite_score(metrics, {"aid": 0.0}, ts) == pytest.approx(0.8)
    with pytest.raises(NabraError, match="unknown task"):
        compute_metrics(preds)  # the built-in tasks alone do not know aid


def test_the_report_tabulates_and_plots_a_declared_task(tmp_path):
    from nabra.evaluate.report import make_report
    from nabra.testing import write_run

    runs = []
    for schedule, f1s in (("uniform", (0.50, 0.54)), ("ads", (0.70, 0.74))):
        for seed, f1 in enumerate(f1s):
            records = [{"step": 1, "loss": 1.0, "task_loss": {"aid": 1.0}},
                       {"step": 1, "event": "dev", "dev_loss": {"aid": 2.0}},
                       {"step": 2, "event": "dev", "dev_loss": {"aid": 1.0 - f1}}]
            aid = {"accuracy": f1, "macro_f1": f1, "unparsed_rate": 0.0, "n": 6,
                   "confusion": {"labels": ["Arabic", "Mandarin", "Hindi"], "columns": ["Arabic", "Mandarin", "Hindi", "unparsed"],
                                 "matrix": [[2, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0]]}}
            runs.append(write_run(tmp_path / f"{schedule}{seed}", schedule, seed, records=records,
                                  test={"metrics": {"aid": aid}, "composite": f1}, config={"tasks": {"aid": AID}}))
    out = make_report(runs, tmp_path / "r").parent
    md = (out / "report.md").read_text()
    assert "AID (macro-F1): **ads** wins with 72.0% vs uniform 52.0%" in md
    assert "| aid | macro-F1 |" in md and (out / "confusion-aid.png").is_file() and (out / "curves-aid.png").is_file()


def test_the_bilingual_recipe_declares_the_labels_the_importers_write():
    from nabra.corpus.importers.l2arctic import SPEAKERS

    cfg = load_config("bilingual-accent")
    ts = cfg.task_set()
    assert ts.label_tasks() == ("did", "ser", "aid", "gid") and cfg.data.tasks == list(ts.names)
    assert set(ts.labels("aid").names) == {l1 for _, l1 in SPEAKERS.values()}  # the L2-ARCTIC README's six L1s
    assert {ts.labels("gid").lookup(sex) for sex, _ in SPEAKERS.values()} == {"female", "male"}
    assert ts.labels("gid").lookup("F") == "female"  # LibriSpeech's SPEAKERS.TXT code, should a manifest keep it
