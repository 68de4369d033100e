"""The docs' screenshots, taken with headless Chromium (what `make docs-images` runs).

From a demo folder (``make demo`` writes ``demo/``; with none, ``nabra demo --quick`` writes
``build/docs-images/demo`` first, about 5 min on 2 cores):

- ``docs/img/report.png``: the first screen of the demo's ``report/report.html``;
- ``docs/img/serve-page.png``: ``nabra serve`` on the demo's best ADS run, its page at ``/`` after it
  analyzed one of the demo's test clips (the page's own ``?clip=`` hook sends it as an upload would);
- ``docs/img/demo-curves-did.png``: the report's dialect learning curves (the README's picture);
- with ``--site``: the built site's home page and configuration reference, into
  ``docs/notes/img/`` (the record of what the site looks like, for a review; not shown in the site).

Every committed PNG is reduced to a 256-colour palette (Pillow) and must come out under 200 KB.

    python scripts/docs_images.py [--demo demo] [--site]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
BUILD = ROOT / "build" / "docs-images"
LIMIT = 200 * 1024


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        sys.exit("docs-images: no Chromium here (Debian: apt-get install chromium); nothing was written")
    return found


def screenshot(url: str, out: Path, *, width: int = 1280, height: int = 900, wait_ms: int = 0) -> Path:
    """One headless Chromium screenshot of ``url`` (the window's first screen) to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={out}"]
        if wait_ms:
            args.append(f"--virtual-time-budget={wait_ms}")
        done = subprocess.run([*args, url], capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not out.is_file():
        sys.exit(f"docs-images: chromium could not take {out.name} of {url}:\n{done.stderr[-2000:]}")
    return out


def shrink(path: Path, *, limit: int = LIMIT) -> int:
    """Reduce a PNG to a 256-colour palette in place; returns its size, refusing one still over ``limit``."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
    size = path.stat().st_size
    if size > limit:
        sys.exit(f"docs-images: {path} is {size / 1024:.0f} KB after reduction (limit {limit / 1024:.0f} KB)")
    return size


def demo_folder(given: Path | None) -> Path:
    if given is not None:
        if not (given / "report" / "report.html").is_file():
            sys.exit(f"docs-images: {given} has no report/report.html (a folder `nabra demo` wrote)")
        return given
    folder = BUILD / "demo"
    if not (folder / "report" / "report.html").is_file():
        print(f"docs-images: no demo folder given: running `nabra demo --quick --out {folder}` (about 5 min)", flush=True)
        subprocess.run([sys.executable, "-m", "nabra", "demo", "--quick", "--out", str(folder)], check=True)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_page(demo: Path, out: Path) -> Path:
    """Start ``nabra serve`` on the demo's ADS run, wait until it answers, screenshot its page analyzing a test clip."""
    run = next((p for p in sorted((demo / "runs").glob("ads-seed*")) if (p / "final").exists() or (p / "best").exists()),
               None)
    if run is None:
        sys.exit(f"docs-images: {demo / 'runs'} has no trained ads-seed* run")
    clip = _test_clip(demo / "corpus" / "manifest.jsonl")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "nabra", "serve", "--model", str(run), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            if server.poll() is not None:
                sys.exit(f"docs-images: nabra serve stopped:\n{server.stderr.read()[-2000:]}")
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            sys.exit("docs-images: nabra serve did not answer in 120 s")
        data = quote(base64.b64encode(clip.read_bytes()).decode(), safe="")  # '+' would read as a space
        return screenshot(f"{url}/?clip=data:audio/wav;base64,{data}", out, height=1000, wait_ms=30000)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _test_clip(manifest: Path) -> Path:
    """The first test-split clip of the demo's corpus with a dialect label (so every panel of the page fills)."""
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("split") == "test" and row.get("dialect") and row.get("audio"):
                path = Path(row["audio"])
                return path if path.is_absolute() else manifest.parent / path
    sys.exit(f"docs-images: {manifest} has no test clip with a dialect")


def site_pages() -> list[Path]:
    """Build the site to a scratch folder and screenshot its home page and configuration reference."""
    site = BUILD / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
                   cwd=ROOT, check=True, env=env)
    notes = ROOT / "docs" / "notes" / "img"
    return [screenshot((site / "index.html").as_uri(), notes / "site-home.png"),
            screenshot((site / "reference" / "config" / "index.html").as_uri(), notes / "site-config-reference.png")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", type=Path, help="a folder `nabra demo` wrote (default: run the quick demo into build/)")
    p.add_argument("--site", action="store_true", help="also screenshot the built site's home and config reference")
    args = p.parse_args(argv)
    demo = demo_folder(args.demo)
    written = [screenshot((demo / "report" / "report.html").resolve().as_uri(), IMG / "report.png"),
               serve_page(demo, IMG / "serve-page.png")]
    curves = IMG / "demo-curves-did.png"
    shutil.copyfile(demo / "report" / "curves-did.png", curves)
    written.append(curves)
    for path in written:
        print(f"{path.relative_to(ROOT)}: {shrink(path) / 1024:.0f} KB")
    if args.site:
        for path in site_pages():
            print(f"{path.relative_to(ROOT)}: {shrink(path) / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
