"""The reference pages, generated from the code so each fact is written once: every CLI verb and flag
(from the argparse parser), every config key with its type, default and docstring (from the config
dataclasses: the docstring under each field is its one documentation), and the shipped recipes with
their header comments. ``make docs-reference`` writes them as Markdown to ``docs/reference/`` (the
docs site's *Reference* section; generated, never edited by hand).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from pathlib import Path

from nabra.config import CONFIG_DIR, RunConfig, TaskConfig

# -- the CLI ----------------------------------------------------------------------------------------

def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its tree here; there is no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def cli_commands(parser: argparse.ArgumentParser | None = None, prefix: str = "nabra") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command (``nabra``, ``nabra data``, ``nabra data import``...) with its parser, depth first."""
    if parser is None:
        from nabra.cli import build_parser

        parser = build_parser()
    out = [(prefix, parser)]
    for name, sub in _subparsers(parser).items():
        out += cli_commands(sub, f"{prefix} {name}")
    return out


def cli_flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The documented arguments of one command (positionals and options, not ``--help`` nor the sub-commands)."""
    return [a for a in parser._actions  # noqa: SLF001
            if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]  # noqa: SLF001


def cli_reference() -> str:
    """Markdown: every verb with its description and a table of its arguments."""
    lines = ["# Command line", "", "Generated from Nabra's argparse parser (`nabra.reference`).", ""]
    for name, parser in cli_commands():
        flags = cli_flags(parser)
        subs = _subparsers(parser)
        if not flags and not subs and name != "nabra":
            continue
        lines += [f"## `{name}`", ""]
        if parser.description:
            lines += [parser.description.strip(), ""]
        if subs:
            lines += ["Sub-commands: " + ", ".join(f"`{name} {s}`" for s in subs), ""]
        if flags:
            lines += ["| argument | default | what it does |", "|---|---|---|"]
            for a in flags:
                names = ", ".join(a.option_strings) or a.dest
                shown = a.option_strings and a.default is not None and a.default is not False and a.default != argparse.SUPPRESS
                default = f"`{a.default}`" if shown else ""
                choices = f" (one of {', '.join(map(str, a.choices))})" if a.choices else ""
                text = (a.help or "").replace("|", "\\|").replace("\n", " ")
                lines.append(f"| `{names}` | {default} | {text}{choices} |")
            lines.append("")
    return "\n".join(lines)


# -- the config ------------------------------------------------------------------------------------

def field_docs(cls) -> dict[str, str]:
    """The docstring under each field of the dataclass ``cls`` (the string literal after its annotated
    assignment in the class body), read from its source; inherited fields from the bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body
        for node, after in zip(body, [*body[1:], None], strict=True):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def config_keys(cls=RunConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(key, type, default, docstring)`` of every config key under ``cls``, sections expanded."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += config_keys(tp, f"{key}.")
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ""
        out.append((key, _type_name(tp), _yaml(default), docs.get(f.name, "")))
    if cls is RunConfig:  # the declared tasks' section: a mapping of name -> TaskConfig
        out += [(f"tasks.<name>.{k[len('tasks.<name>.'):]}", t, d, doc)
                for k, t, d, doc in config_keys(TaskConfig, "tasks.<name>.")]
    return out


def _yaml(value) -> str:
    """A default as a recipe writes it: ``null``, ``true``, ``[asr, ssum]``, ``runs/run``."""
    import yaml

    if isinstance(value, tuple):
        value = list(value)
    if value == "":
        return "''"
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _type_name(tp) -> str:
    """A type as the reference writes it: ``int or null``, ``list of str``, ``'ar' / 'en'``."""
    import types

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Literal:
        return " / ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict or tp is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def config_reference() -> str:
    """Markdown: every config key of a run, by section."""
    lines = ["# Configuration keys", "",
             "Generated from the config dataclasses (`nabra.config`, `nabra.model.config`, "
             "`nabra.schedule.config`): the docstring under each field is its one documentation. Set any key "
             "in a recipe's YAML or on the command line as `section.key=value`.", ""]
    section = None
    for key, tp, default, doc in config_keys():
        head = key.split(".")[0] if "." in key or key == "tasks" else "run"  # tasks: a mapping, its own section
        if head != section:
            section = head
            lines += ["", f"## `{section}`" if section != "run" else "## The run", "", "| key | type | default | |",
                      "|---|---|---|---|"]
        text = doc.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{key}` | `{tp}` | `{default}` | {text} |")
    return "\n".join(lines) + "\n"


def recipes_reference() -> str:
    """Markdown: every shipped recipe with its header comment (what it is for, how to run it)."""
    lines = ["# Shipped recipes", "", "`nabra train NAME` takes any of these by name (`src/nabra/configs/`).", ""]
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        header = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            header.append(line[2:] if line[1:2] == " " else line[1:])
        lines += [f"## `{path.stem}`", "", *(["```text", *header, "```"] if header else ["(no header)"]), ""]
    return "\n".join(lines)


# -- the Python API -------------------------------------------------------------------------------

API_PAGES: dict[str, tuple[str, list[str]]] = {
    "manifest": ("The manifest and corpora",
                 ["nabra.corpus.manifest", "nabra.corpus.validate", "nabra.corpus.audio", "nabra.corpus.importers"]),
    "tasks": ("Tasks", ["nabra.tasks"]),
    "schedules": ("Data schedules", ["nabra.schedule", "nabra.schedule.base", "nabra.schedule.table"]),
    "training": ("Training", ["nabra.config", "nabra.train", "nabra.run.folder"]),
    "model": ("The model", ["nabra.model.load", "nabra.model.size"]),
    "evaluation": ("Evaluation", ["nabra.evaluate.metrics", "nabra.evaluate.runner", "nabra.evaluate.stats"]),
    "arabic-text": ("Arabic text", ["nabra.text.arabic", "nabra.text.buckwalter"]),
    "use": ("Using a trained model", ["nabra.use.analyze", "nabra.use.export"]),
}
"""The public modules, by page: what a user imports in a notebook or script (every verb of the CLI is a
thin layer over one of them). mkdocstrings renders each from its docstrings at build time."""


def api_reference(title: str, modules: list[str]) -> str:
    """Markdown for one API page: mkdocstrings' ``::: module`` directive per module."""
    lines = [f"# {title}", "", "Generated from the docstrings (mkdocstrings); `nabra.reference.API_PAGES` lists the pages.", ""]
    for module in modules:
        lines += [f"::: {module}", "    options:", "      heading_level: 2", "      show_root_heading: true",
                  "      members_order: source", ""]
    return "\n".join(lines)


def write_reference(out: str | Path) -> list[Path]:
    """Write ``cli.md``, ``config.md``, ``recipes.md`` and ``api/<page>.md`` to ``out``; returns the files."""
    out = Path(out)
    (out / "api").mkdir(parents=True, exist_ok=True)
    pages = [("cli.md", cli_reference()), ("config.md", config_reference()), ("recipes.md", recipes_reference())]
    pages += [(f"api/{name}.md", api_reference(title, modules)) for name, (title, modules) in API_PAGES.items()]
    files = []
    for name, text in pages:
        (out / name).write_text(text, encoding="utf-8")
        files.append(out / name)
    return files
