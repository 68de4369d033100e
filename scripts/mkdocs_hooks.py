"""mkdocs hooks: the reference pages are generated from the code before every build (never edited)."""

from pathlib import Path


def on_pre_build(config, **kwargs):
    from nabra.reference import write_reference

    write_reference(Path(config["docs_dir"]) / "reference")
