"""The house matches the data flow: every module lives in a room, imports only from rooms before its
own (function-level imports included), and no modules import each other in a cycle. The rooms and
their order are docs/architecture.md's."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import nabra
from nabra.schedule import SCHEDULE_NAMES

PACKAGE = Path(nabra.__file__).parent

# Bottom to top; a module may import from its own room and the rooms before it.
ROOMS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("nabra.errors", "nabra.files", "nabra.progress")),
    ("text", ("nabra.text",)),
    ("corpus", ("nabra.corpus",)),
    ("tasks", ("nabra.tasks",)),
    ("schedule", ("nabra.schedule",)),
    ("model", ("nabra.model",)),
    ("config", ("nabra.config",)),
    ("data", ("nabra.data",)),
    ("run", ("nabra.run",)),
    ("evaluate", ("nabra.evaluate",)),
    ("train", ("nabra.train",)),
    ("use", ("nabra.use",)),
    ("demo", ("nabra.demo",)),
    ("cli", ("nabra.cli", "nabra.__main__", "nabra.testing", "nabra.reference")),
]


def module_names() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = module_names()


def room_of(module: str) -> int | None:
    """Index of the room holding ``module`` (longest prefix), ``None`` for the bare package."""
    best, length = None, -1
    for i, (_, prefixes) in enumerate(ROOMS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = i, len(prefix)
    return best


def imports_of(module: str) -> list[tuple[str, int]]:
    """(imported nabra module, line) for every import in ``module``'s file, at any depth."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "nabra"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "nabra":
                continue
            for alias in node.names:  # `from nabra import data` imports the module nabra.data
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, node.lineno))
    return found


def _shown(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent)) if path.is_relative_to(PACKAGE.parent) else str(path)


def test_every_module_has_a_room():
    homeless = sorted(m for m in MODULES if m != "nabra" and room_of(m) is None)
    assert homeless == [], f"modules outside every room (add them to ROOMS and docs/architecture.md): {homeless}"


def test_imports_only_point_down_the_rooms():
    back = []
    for module in MODULES:
        own = room_of(module)
        for target, line in imports_of(module):
            there = room_of(target)
            if own is not None and there is not None and there > own:
                back.append(f"{_shown(MODULES[module])}:{line}: {module} ({ROOMS[own][0]}) "
                            f"imports {target} ({ROOMS[there][0]})")
    assert back == [], "imports from a later room:\n" + "\n".join(back)


def test_no_import_cycles():
    graph = {m: {t for t, _ in imports_of(m) if t in MODULES and t != m} for m in MODULES}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_layout_checker_sees_a_back_reference_and_a_cycle(tmp_path, monkeypatch):
    # The checks above must be able to fail: a module of the corpus room importing the recipe.
    fake = tmp_path / "nabra" / "corpus" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from nabra.train import train\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "nabra.corpus.bad", fake)
    assert imports_of("nabra.corpus.bad") == [("nabra.train", 2)]
    with pytest.raises(AssertionError, match=r"nabra.corpus.bad \(corpus\) imports nabra.train \(train\)"):
        test_imports_only_point_down_the_rooms()
    loop = tmp_path / "nabra" / "corpus" / "loop.py"
    loop.write_text("import nabra.corpus.bad\n", encoding="utf-8")
    fake.write_text("from nabra.corpus import loop\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "nabra.corpus.loop", loop)
    with pytest.raises(AssertionError):
        test_no_import_cycles()


def test_the_schedule_registry_is_the_only_list_of_schedule_names():
    from nabra.config import ScheduleConfig
    from nabra.evaluate.report import COLORS, SCHEDULE_ORDER

    assert [f for f in ScheduleConfig.__dataclass_fields__] == ["name", *SCHEDULE_NAMES]
    assert SCHEDULE_ORDER == SCHEDULE_NAMES and list(COLORS) == list(SCHEDULE_NAMES)
    # No other literal tuple/list/set in the package spells two or more schedule names.
    names = set(SCHEDULE_NAMES)
    lists = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                spelled = {e.value for e in node.elts if isinstance(e, ast.Constant)} & names
                if len(spelled) >= 2:
                    lists.append(f"{module}:{node.lineno}")
    assert lists == []


def test_a_mistyped_schedule_key_fails_before_torch_loads(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("schedule:\n  name: tpc\n  tpc:\n    stagez: [[asr]]\n", encoding="utf-8")
    code = ("import sys\nfrom nabra.config import load_config\nfrom nabra.errors import NabraError\n"
            f"try:\n    load_config({str(recipe)!r})\nexcept NabraError as e:\n    print(e)\n"
            "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "unknown config key 'schedule.tpc.stagez'; did you mean 'schedule.tpc.stages'?" in out
    assert out.strip().endswith("torch not loaded")
