"""The swift importer's reading of each row form, against ms-swift itself: ms-swift 4.6.0's own
``swift.dataset.load_dataset`` (its ``AutoPreprocessor``) in the peer virtualenv that ``make bench-peers``
builds (``bench/peers/setup.sh``). Skipped where that virtualenv is absent (CI does not build it)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_swift import MS_SWIFT_ROWS

from nabra.corpus.importers.swift import _SYSTEM_KEYS, _turns

ROOT = Path(__file__).parents[3]
PEER = ROOT / ".venv-peers" / "bin" / "python"
pytestmark = pytest.mark.skipif(not PEER.exists(), reason="no .venv-peers (make bench-peers builds it)")

ROWS = [*MS_SWIFT_ROWS, {"messages": [{"role": "user", "content": "<audio>What does the person say?"},
                                      {"role": "assistant", "content": "Mister Quiller is the apostle"}],
                         "audios": ["a.wav"]}]

SCRIPT = """
import json, sys
from swift.dataset import load_dataset
for path in sys.argv[1:]:
    ds, _ = load_dataset([path], split_dataset_ratio=0, num_proc=1)
    print(json.dumps(ds[0]["messages"], ensure_ascii=False))
"""


def nabra_messages(row: dict) -> list[dict]:
    turns, problem = _turns(row)
    assert problem is None, problem
    system = [{"role": "system", "content": row[k]} for k in _SYSTEM_KEYS if k in row]
    return system + [{"role": role, "content": text} for role, text in turns]


def test_every_row_form_reads_as_ms_swift_reads_it(tmp_path):
    paths = []
    for i, row in enumerate(ROWS):  # ms-swift unifies a file's columns: one row form per file
        paths.append(tmp_path / f"r{i}.jsonl")
        paths[-1].write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "bench" / "peers" / "shim"), "HF_HUB_OFFLINE": "1",
           "MODELSCOPE_CACHE": str(tmp_path / "ms"), "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    out = subprocess.run([str(PEER), "-c", SCRIPT, *map(str, paths)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    theirs = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("[")]
    assert theirs == [nabra_messages(row) for row in ROWS]
