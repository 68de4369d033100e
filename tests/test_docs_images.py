"""`make docs-images`' pieces: a headless Chromium screenshot of a page, reduced under the size limit, and
the refusal of one that stays over it."""

import importlib.util
import shutil
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "docs_images.py"


@pytest.fixture(scope="module")
def docs_images():
    spec = importlib.util.spec_from_file_location("docs_images", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_screenshot_is_taken_and_reduced_under_the_limit(docs_images, tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("no chromium here (Debian's chromium package; `make test` installs it where it can)")
    pytest.importorskip("PIL", reason="Pillow comes with the docs extra")
    from PIL import Image

    page = tmp_path / "p.html"
    page.write_text("<html><body style='background:#fff'><h1>تقرير نبرة</h1>"
                    + "".join(f"<p style='color:hsl({i * 7},70%,40%)'>row {i}</p>" for i in range(40)) + "</body></html>",
                    encoding="utf-8")
    out = docs_images.screenshot(page.as_uri(), tmp_path / "shot.png", width=800, height=600)
    with Image.open(out) as image:
        assert image.size == (800, 600)
    size = docs_images.shrink(out)
    assert size == out.stat().st_size < docs_images.LIMIT
    with Image.open(out) as image:
        assert image.mode == "P" and image.size == (800, 600)  # a palette image, same size
    with pytest.raises(SystemExit, match="after reduction"):
        docs_images.shrink(out, limit=100)


def test_a_demo_folder_without_a_report_is_refused(docs_images, tmp_path):
    with pytest.raises(SystemExit, match="has no report/report.html"):
        docs_images.demo_folder(tmp_path)
