"""The generated reference holds every CLI verb and flag, every config key with its docstring, every recipe."""

import dataclasses

from nabra.config import CONFIG_DIR, RunConfig
from nabra.reference import (
    API_PAGES,
    api_reference,
    cli_commands,
    cli_flags,
    cli_reference,
    config_keys,
    config_reference,
    field_docs,
    recipes_reference,
    write_reference,
)


def test_every_verb_and_flag_is_in_the_cli_reference():
    text = cli_reference()
    commands = cli_commands()
    assert len(commands) > 20 and any(name == "nabra data import" for name, _ in commands)
    for name, parser in commands:
        for action in cli_flags(parser):
            assert f"`{', '.join(action.option_strings) or action.dest}`" in text, (name, action.dest)
    assert "`nabra train`" in text and "`--gpu-memory`" in text and "`--batch-tokens`" in text
    undocumented = [(name, a.dest) for name, parser in commands for a in cli_flags(parser) if not a.help]
    assert undocumented == []  # every argument says what it does


def test_every_config_key_is_in_the_config_reference_with_its_docstring():
    text = config_reference()
    keys = config_keys()
    names = {k for k, *_ in keys}
    assert {"train.micro_batch_tokens", "collate.packing", "model.lora.r", "schedule.ads.refresh_every",
            "tasks.<name>.field", "output_dir"} <= names
    for key, _, _, doc in keys:
        assert f"`{key}`" in text
        assert doc, f"{key} has no docstring under its field"
    # the docstring is the one under the field in the source
    assert field_docs(type(RunConfig().train))["micro_batch_tokens"].startswith("Instead of ``micro_batch_size``")


def test_every_section_field_is_expanded():
    sections = [f.name for f in dataclasses.fields(RunConfig) if dataclasses.is_dataclass(f.type) or f.name in
                ("data", "model", "collate", "schedule", "train")]
    keys = {k.split(".")[0] for k, *_ in config_keys()}
    assert set(sections) <= keys


def test_recipes_and_files(tmp_path):
    text = recipes_reference()
    for path in CONFIG_DIR.glob("*.yaml"):
        assert f"`{path.stem}`" in text
    assert "omni7b-lora-ads" in text and "--gpu-memory 80GiB" in text
    files = write_reference(tmp_path / "ref")
    assert [f.name for f in files[:3]] == ["cli.md", "config.md", "recipes.md"] and all(f.stat().st_size > 1000 for f in files[:3])
    assert [f.relative_to(tmp_path / "ref").as_posix() for f in files[3:]] == [f"api/{n}.md" for n in API_PAGES]


def test_the_api_pages_name_real_public_modules_with_docstrings():
    import importlib

    modules = [m for _, ms in API_PAGES.values() for m in ms]
    assert len(modules) == len(set(modules)) and {"nabra.corpus.manifest", "nabra.schedule", "nabra.train",
                                                  "nabra.evaluate.metrics", "nabra.use.export"} <= set(modules)
    for module in modules:
        assert importlib.import_module(module).__doc__, f"{module} has no module docstring"
    page = api_reference(*API_PAGES["schedules"])
    assert page.startswith("# Data schedules") and "::: nabra.schedule\n" in page


def test_the_docs_site_builds_strictly(tmp_path):
    # A broken link, a page missing from the nav's files or a warning fails the build.
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    mkdocs = shutil.which("mkdocs", path=os.path.dirname(sys.executable))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (the docs extra): the site build is not checked")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=root,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "site" / "reference" / "config" / "index.html").is_file()
    assert "micro_batch_tokens" in (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    # mkdocstrings rendered the API from the docstrings (a signature and a docstring sentence), roles as code
    api = (tmp_path / "site" / "reference" / "api" / "schedules" / "index.html").read_text()
    assert "ADSSchedule" in api and "Aligner-Based Diverse Sampling" in api and ":class:" not in api
    # the benchmarks page was generated from the committed results
    bench = (tmp_path / "site" / "reference" / "benchmarks" / "index.html").read_text()
    assert "Nabra against ms-swift" in bench and "verdict" in bench
