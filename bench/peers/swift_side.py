"""The ms-swift side of bench/bench_peer_swift.py, run by the peer virtualenv's Python (not Nabra's).

    pipeline: ms-swift's Qwen2.5-Omni template encoding (audio loaded by its librosa backend, the
              stock processor's features) + its data collator, from chat rows to model inputs, in
              batches; prints one JSON line: examples/s, ms per batch, the feature frames of a clip.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def pipeline(model: str, rows_path: str, batch: int, repeats: int) -> dict:
    from swift.model import get_model_processor
    from swift.template import get_template

    _, processor = get_model_processor(model, load_model=False, download_model=False, use_hf=True,
                                       model_type="qwen2_5_omni")
    template = get_template(processor)
    template.set_mode("train")
    with open(rows_path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    best, frames = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(0, len(rows), batch):
            encoded = [template.encode(row) for row in rows[i : i + batch]]
            out = template.data_collator(encoded)
            frames = frames or int(out["input_features"].shape[-1])
        best = min(best, time.perf_counter() - t)
    n_batches = -(-len(rows) // batch)
    from importlib.metadata import version

    versions = {name: version(name) for name in ("ms-swift", "transformers", "peft", "torch")}
    return {"examples_per_s": len(rows) / best, "ms_per_batch": 1000 * best / n_batches, "frames": frames,
            "rows": len(rows), "versions": versions}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("pipeline",))
    p.add_argument("--model", required=True)
    p.add_argument("--rows", required=True)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("USE_HF", "1")
    result = pipeline(args.model, args.rows, args.batch, args.repeats)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
