"""The README's commands are real: every `nabra ...` line names an existing verb with flags it has, and
the cheap ones run."""

import re
import shlex
from pathlib import Path

import pytest

from nabra.cli import main
from nabra.reference import cli_commands, cli_flags

README = Path(__file__).resolve().parents[1] / "README.md"


def _command_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("nabra ")]


def test_every_readme_command_is_a_real_verb_with_real_flags():
    commands = {name: parser for name, parser in cli_commands()}
    lines = _command_lines()
    assert len(lines) >= 8
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


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["data", "validate", "--help"]])
def test_the_cheap_commands_run(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0 and "usage: nabra" in capsys.readouterr().out


def test_validate_runs_on_a_fixture(corpus, capsys):
    assert main(["data", "validate", str(corpus)]) == 0
