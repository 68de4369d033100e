"""RunFolder: the run folder's one reader, on a real tiny run and on damaged copies of it."""

import json
import shutil

import pytest

from nabra.config import RunConfig
from nabra.errors import NabraError
from nabra.run.folder import RunFolder, config_of


@pytest.fixture
def run_copy(lora_run, tmp_path):
    """A copy of a real tiny LoRA run (6 steps, final/ only), to damage."""
    copy = tmp_path / "run"
    shutil.copytree(lora_run, copy)
    return copy


def test_every_reader_on_a_real_run(lora_run):
    folder = RunFolder.open(lora_run)
    cfg = folder.config()
    assert isinstance(cfg, RunConfig) and folder.config() is cfg  # read once
    assert folder.schedule == "uniform" and folder.seed == 0 and folder.baseline is None
    assert folder.weights() == lora_run / "final" == folder.weights("final")  # no best/: final
    assert folder.info()["step"] == 6 and folder.base_model() == cfg.model.path
    records, torn = folder.records()
    assert torn == 0 and [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert folder.final_metrics("test") is None  # not evaluated
    assert RunFolder.find(lora_run / "final").path == lora_run and RunFolder.find(lora_run / "checkpoints") is None
    assert config_of(lora_run / "final").model.path == cfg.model.path
    assert config_of(lora_run / "checkpoints").model.path == RunConfig().model.path  # not a run: the defaults


def test_best_is_taken_when_complete(run_copy):
    shutil.copytree(run_copy / "final", run_copy / "best")
    (run_copy / "best" / "nabra_run.json").write_text(json.dumps({"step": 4, "composite": 0.5}))
    folder = RunFolder.open(run_copy)
    assert folder.weights() == run_copy / "best" and folder.info()["step"] == 4
    assert folder.weights("final") == run_copy / "final"
    (run_copy / "best" / "nabra_run.json").unlink()  # a torn best/ (no nabra_run.json): final/ is taken
    assert folder.weights() == run_copy / "final"


def test_only_best_or_neither(run_copy):
    (run_copy / "final").rename(run_copy / "best")
    folder = RunFolder.open(run_copy)
    assert folder.weights() == run_copy / "best"
    with pytest.raises(NabraError, match=r"without final/ .*has its training finished"):
        folder.weights("final")
    (run_copy / "best").rename(run_copy / "elsewhere")
    with pytest.raises(NabraError, match="without final/ or best/"):
        folder.weights()
    with pytest.raises(NabraError, match="must be best or final"):
        folder.weights("last")


def test_a_torn_metrics_file_is_read_up_to_what_is_whole(run_copy):
    with open(run_copy / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "loss": 0.')  # killed mid-line
    records, torn = RunFolder.open(run_copy).records()
    assert torn == 1 and max(r["step"] for r in records if "loss" in r) == 6


def test_a_damaged_config_is_one_error_naming_it(run_copy):
    (run_copy / "config.yaml").write_text("train: [unclosed\n")
    with pytest.raises(NabraError, match=r"config\.yaml:\d+:\d+: not valid YAML"):
        RunFolder.open(run_copy).config()
    (run_copy / "config.yaml").write_text("train:\n  max_stepz: 3\n")
    with pytest.raises(NabraError, match=r"^.*config\.yaml: unknown config key 'train.max_stepz'"):
        RunFolder.open(run_copy).config()
    (run_copy / "final" / "nabra_run.json").write_text("{not json")
    with pytest.raises(NabraError, match=r"nabra_run\.json: not a JSON file"):
        RunFolder(run_copy).info()
    with pytest.raises(NabraError, match="no config.yaml: not a Nabra run folder"):
        RunFolder.open(run_copy / "final")


def test_a_baseline_folder_reads_as_its_baseline(tmp_path):
    (tmp_path / "config.yaml").write_text("schedule:\n  name: base\ntrain:\n  seed: 2\n")
    folder = RunFolder.open(tmp_path)
    assert folder.schedule == "base" and folder.baseline == "base" and folder.seed == 2
