"""The README's and the docs' commands are real: every `nabra ...` line of a ```bash block names an
existing verb with flags it has, and the README's cheap ones run."""

import re
import shlex
from pathlib import Path

import pytest

from nabra.cli import main
from nabra.reference import cli_commands, cli_flags, config_keys

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.md"))


def _command_lines(page: Path) -> list[str]:
    """The ``nabra ...`` commands of a page's bash blocks, continuation lines joined, comments cut."""
    blocks = re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#.*$", "", line).strip()
            line = re.sub(r"^(\S+=\S+\s+)+", "", line)  # VAR=value before the command
            line = re.sub(r"^(\.venv/bin/|python -m |accelerate launch .*? -m |torchrun .*? -m )", "", line)
            if line.startswith("nabra "):
                lines.append(line)
    return lines


def _check(lines: list[str]) -> None:
    commands = {name: parser for name, parser in cli_commands()}
    keys = {k for k, *_ in config_keys()}
    for line in lines:
        for part in (p.strip() for p in line.split("&&")):
            words = shlex.split(part)
            name = "nabra"
            for w in words[1:]:
                if f"{name} {w}" in commands:
                    name = f"{name} {w}"
                else:
                    break
            assert name != "nabra", part
            flags = {o for a in cli_flags(commands[name]) for o in a.option_strings}
            used = {w.split("=")[0] for w in words if w.startswith("--")}
            assert used <= flags, (part, used - flags)
            if name == "nabra train":  # key=value overrides name real config keys
                for w in words[2:]:
                    key = w.split("=")[0]
                    if "=" in w and not w.startswith("-") and re.fullmatch(r"[a-z_.<>]+", key):
                        key = re.sub(r"^tasks\.[^.]+\.", "tasks.<name>.", key)
                        assert key in keys or any(k.startswith(key + ".") for k in keys), (part, key)


def test_every_readme_command_is_a_real_verb_with_real_flags():
    lines = _command_lines(README)
    assert len(lines) >= 8
    _check(lines)


def test_the_readme_links_the_five_tutorials_and_they_exist():
    text = README.read_text(encoding="utf-8")
    linked = re.findall(r"\]\(docs/tutorials/([\w-]+\.md)\)", text)
    assert len(set(linked)) == 5 and sorted(set(linked)) == [p.name for p in TUTORIALS]


@pytest.mark.parametrize("page", TUTORIALS, ids=lambda p: p.stem)
def test_every_tutorial_command_is_a_real_verb_with_real_flags(page):
    lines = _command_lines(page)
    assert len(lines) >= 3, page
    _check(lines)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["data", "validate", "--help"]])
def test_the_cheap_commands_run(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0 and "usage: nabra" in capsys.readouterr().out


def test_validate_runs_on_a_fixture(corpus, capsys):
    assert main(["data", "validate", str(corpus)]) == 0
