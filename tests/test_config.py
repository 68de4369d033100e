import pytest

from nabra.config import CONFIG_DIR, RunConfig, apply_override, dump_config, from_dict, load_config
from nabra.errors import NabraError


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_loads_and_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)
    assert cfg.schedule.name in ("uniform", "tpc", "ads", "tpc_ads")
    # The resolved config round-trips through YAML.
    assert load_config_text(dump_config(cfg)) == cfg


def load_config_text(text, tmp=None):
    import yaml

    return from_dict(RunConfig, yaml.safe_load(text))


def test_recipes_are_found_by_name():
    assert load_config("demo-base").model.init_tiny is True and load_config("demo").model.finetune == "lora"
    assert load_config("omni7b-lora-tpc_ads").schedule.name == "tpc_ads"
    assert load_config("omni7b-lora-ads").train.precision == "bf16"
    qwen3 = load_config("omni30b-a3b-lora-ads")
    assert (qwen3.model.family, qwen3.schedule.name, qwen3.train.precision) == ("qwen3_omni", "ads", "bf16")


def test_overrides(tmp_path):
    cfg = load_config("demo", ["train.max_steps=5", "model.lora.r=4", "data.tasks=[asr, did]",
                               "schedule.name=tpc", "train.lr=1e-3", "data.dev_manifest=x.jsonl"])
    assert cfg.train.max_steps == 5 and cfg.model.lora.r == 4 and cfg.data.tasks == ["asr", "did"]
    assert cfg.schedule.name == "tpc" and cfg.train.lr == 1e-3 and cfg.data.dev_manifest == "x.jsonl"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.max_step=5", r"unknown config key 'train.max_step'; did you mean 'train.max_steps'\?"),
        ("trian.lr=1", r"unknown config key 'trian'; did you mean 'train'\?"),
        ("train.lr=fast", r"train.lr: expected float, got 'fast'"),
        ("train.max_steps=0", "train.max_steps must be positive"),
        ("train.loss_reduction=sum", "train.loss_reduction must be token or example"),
        ("schedule.name=random", "schedule.name must be uniform, tpc, ads, tpc_ads, balanced or adaptive"),
        ("model.lora.targets=[qkv]", "unknown LoRA targets"),
        ("data.tasks=[asr, translate]", r"unknown task\(s\) \['translate'\]"),
        ("train.max_steps", "not of the form key.sub=value"),
    ],
)
def test_bad_config_is_a_clear_error(override, message):
    with pytest.raises(NabraError, match=message):
        load_config("demo", [override])


def test_missing_recipe_lists_the_shipped_ones():
    with pytest.raises(NabraError, match="not a shipped recipe .*demo"):
        load_config("nope")


def test_apply_override_creates_sections():
    data = {}
    apply_override(data, "schedule.ads.refresh_every=50")
    assert data == {"schedule": {"ads": {"refresh_every": 50}}}


def test_the_schedule_section_has_one_field_per_registered_schedule_typed_by_its_settings():
    import dataclasses
    import typing

    from nabra.config import ScheduleConfig
    from nabra.schedule import SCHEDULES

    hints = typing.get_type_hints(ScheduleConfig)
    sections = [f.name for f in dataclasses.fields(ScheduleConfig) if f.name != "name"]
    assert sections == list(SCHEDULES)  # the registry's order
    for name, cls in SCHEDULES.items():
        assert hints[name] is cls.config_class, name


def test_recipe_list_show_and_copy_never_over_a_file(tmp_path, capsys, monkeypatch):
    from nabra.cli import main
    from nabra.config import CONFIG_DIR, load_config

    assert main(["recipe", "list"]) == 0
    listed = capsys.readouterr().out
    assert "omni7b-lora-ads " in listed and "accelerate/fsdp " in listed and "Qwen2.5-Omni-7B (thinker)" in listed
    assert main(["recipe", "show", "omni7b-lora-ads"]) == 0
    assert capsys.readouterr().out == (CONFIG_DIR / "omni7b-lora-ads.yaml").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["recipe", "copy", "omni7b-lora-ads"]) == 0 and "nabra train omni7b-lora-ads.yaml" in capsys.readouterr().out
    assert load_config(tmp_path / "omni7b-lora-ads.yaml").schedule.name == "ads"  # a recipe that loads as it is
    assert main(["recipe", "copy", "accelerate/fsdp", "launch/"]) == 0
    assert (tmp_path / "launch" / "fsdp.yaml").read_text() == (CONFIG_DIR / "accelerate" / "fsdp.yaml").read_text()
    mine = tmp_path / "mine.yaml"
    mine.write_text("my own edits\n")
    assert main(["recipe", "copy", "demo", str(mine)]) == 2
    assert "mine.yaml exists" in capsys.readouterr().err and mine.read_text() == "my own edits\n"
    assert main(["recipe", "show", "omni7b-lora-adz"]) == 2
    assert "did you mean 'omni7b-lora-ads'" in capsys.readouterr().err
