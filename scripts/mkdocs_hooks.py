"""mkdocs hooks: the reference pages are generated from the code before every build (never edited), the
benchmark figures from the committed results files, and the Sphinx cross-reference roles of Nabra's
docstrings (``:class:`~nabra.x.Y```) render as code."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_SOURCES = [("`make bench`: every bench on this project's CPU machine", "bench/results.json"),
                 ("`make bench-peers`: Nabra against ms-swift", "bench/peers/results.json")]
BENCH_EXTRA = [("`make check-vllm`: every export kind served by the real vLLM", "bench/vllm/check-vllm.md")]

_ROLE = re.compile(r":(?:class|func|mod|meth|data|attr|exc|obj):<code>(~?)([\w.]+)</code>")


def on_pre_build(config, **kwargs):
    from nabra.reference import write_reference

    out = Path(config["docs_dir"]) / "reference"
    write_reference(out)
    (out / "benchmarks.md").write_text(benchmarks_page(), encoding="utf-8")


def benchmarks_page() -> str:
    """The *Latest figures* page, by ``bench/run_all.py``'s own renderer (the bench folder is not a package)."""
    spec = importlib.util.spec_from_file_location("nabra_bench_run_all", ROOT / "bench" / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    import sys

    sys.path.insert(0, str(ROOT / "bench"))  # run_all imports its sibling figures.py
    try:
        spec.loader.exec_module(run_all)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return run_all.figures_page([(t, ROOT / p) for t, p in BENCH_SOURCES], [(t, ROOT / p) for t, p in BENCH_EXTRA])


def on_page_content(html, **kwargs):
    return _ROLE.sub(lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>", html)
