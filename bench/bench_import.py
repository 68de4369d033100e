"""Benchmark the Common Voice importer on metadata only (no audio checks): rows/s; the MGB-2 importer
on dev/test-style Kaldi tables in Buckwalter (detected and converted): segments/s; and
`nabra ssum build` with eSpeak NG: documents/min.

Builds a synthetic release (train/dev/test TSVs with the Common Voice 17 header, clip_durations.tsv
and empty clip files, which the importer only lists), then times `import_corpus` end to end: TSV
parsing, the checks, writing the manifest and validating it. Target: >= 20,000 rows/s.

The ssum part speaks news-like documents of 6 sentences (~70 words, ~43 s of audio each) with 2
workers, from the pairs file to the validated manifest.

The MGB-2 part writes a `dev/` part as the release ships it (`segments.non_overlap_speech`,
`text.non_overlap_speech` in Buckwalter, `wav.scp`, one short WAV a recording, 100 segments each).

    python bench/bench_import.py [--rows 100000] [--mgb2 50000] [--ssum 20]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from figures import record

HEADER = ("client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\tgender"
          "\taccents\tvariant\tlocale\tsegment")
WORDS = ("مرحبا", "كيف", "حالك", "اليوم", "الجو", "جميل", "في", "القاهرة", "والرياض", "وبيروت", "والرباط",
         "الطلاب", "يدرسون")


def make_release(root: Path, rows: int) -> None:
    rng = random.Random(0)
    clips = root / "clips"
    clips.mkdir(parents=True)
    splits = {"train": [], "dev": [], "test": []}
    durations = ["clip\tduration[ms]"]
    for i in range(rows):
        clip = f"common_voice_ar_{i:08d}.mp3"
        (clips / clip).touch()
        sentence = " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
        split = "train" if i % 10 < 8 else ("dev", "test")[i % 2]
        splits[split].append(f"client{i % 3000:05d}\t{clip}\ts{i}\t{sentence}\t\t2\t0\ttwenties\t"
                             f"female_feminine\t\t\tar\t")
        durations.append(f"{clip}\t{rng.randint(1500, 9000)}")
    for split, lines in splits.items():
        (root / f"{split}.tsv").write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    (root / "clip_durations.tsv").write_text("\n".join(durations) + "\n", encoding="utf-8")


SENTENCES = ("قال وزير الاقتصاد إن معدل النمو بلغ 3.5 في المئة خلال العام الماضي.",
             "وأضاف أن الحكومة ستواصل تنفيذ الإصلاحات المالية في الأشهر المقبلة.",
             "وشهدت الأسواق المحلية ارتفاعا ملحوظا في حجم التداول هذا الأسبوع.",
             "وتوقع الخبراء أن تستمر أسعار النفط في الصعود حتى نهاية العام.",
             "وأكد المتحدث باسم الوزارة أن الخطة تهدف إلى دعم الشركات الصغيرة والمتوسطة.",
             "من جهة أخرى، افتتح المتحف الوطني أبوابه أمام الزوار بعد أعمال ترميم استمرت عامين.",
             "وحضر حفل الافتتاح عدد كبير من المسؤولين والفنانين والمواطنين.",
             "وأشار التقرير إلى أن نسبة البطالة تراجعت إلى أدنى مستوى لها منذ عشر سنوات.")


BW_WORDS = (">kd", "Alr}ys", ">n", "Alm&tmr", "syEqd", "fy", "AlqAhrp", "tqwl", "@@LAT@@CNN", "Al$rkp")


def bench_mgb2(segments: int, tmp: Path) -> None:
    """`import_corpus("mgb2")` on a dev part of ``segments`` Buckwalter segments: segments/s."""
    from nabra.corpus.importers import SkipReport, import_corpus
    from nabra.testing import write_clip

    rng = random.Random(0)
    part = tmp / "mgb2" / "dev"
    recs = [f"{i:08X}-C179-42E3-8521-109C2C732334" for i in range(max(1, segments // 100))]
    for rec in recs:
        write_clip(part / "wav" / f"{rec}.wav", 0.2)
    seg, text = [], []
    for i in range(segments):
        rec, start = recs[i % len(recs)], (i // len(recs)) * 2.0
        uid = f"{rec}_spk-{i % 7 + 1:04d}_seg-{round(start * 100):07d}:{round(start * 100) + 150:07d}"
        seg.append(f"{uid} {rec} {start:.2f} {start + 1.5:.2f}")
        text.append(f"{uid} {' '.join(rng.choices(BW_WORDS, k=rng.randint(4, 14)))}")
    (part / "segments.non_overlap_speech").write_text("\n".join(seg) + "\n")
    (part / "text.non_overlap_speech").write_text("\n".join(text) + "\n")
    (part / "wav.scp").write_text("".join(f"{rec} wav/{rec}.wav\n" for rec in recs))
    report = SkipReport()
    t = time.perf_counter()
    import_corpus("mgb2", part, tmp / "mgb2.jsonl", report=report)
    dt = time.perf_counter() - t
    assert report.utterances == segments and not report.skipped, report.summary()
    assert any("Buckwalter" in note for note in report.notes), report.notes
    print(f"mgb2 import (dev Kaldi tables, Buckwalter converted): {segments:,} segments in {dt:.2f} s = "
          f"{segments / dt:,.0f} segments/s")
    record("import", f"mgb2 import, {segments:,} Buckwalter segments (metadata)", segments / dt, "segments/s")


def bench_ssum(docs: int, tmp: Path) -> None:
    """`ssum build` with eSpeak NG and 2 workers: documents/min, from pairs to validated manifest."""
    from nabra.corpus.ssum import SsumConfig, build

    rng = random.Random(0)
    pairs = tmp / "pairs.jsonl"
    with open(pairs, "w", encoding="utf-8") as f:
        for i in range(docs):
            doc = " ".join(rng.sample(SENTENCES, 6))
            f.write(json.dumps({"id": f"doc{i}", "document": doc, "summary": SENTENCES[0]}, ensure_ascii=False) + "\n")
    t = time.perf_counter()
    result = build(pairs, tmp / "ssum", SsumConfig(workers=2), progress=False)
    dt = time.perf_counter() - t
    assert result.report.utterances == docs and not result.report.skipped, result.report.summary()
    print(f"ssum build (eSpeak NG, 2 workers): {docs} documents of 6 sentences "
          f"({result.audio_seconds / docs:.1f} s of audio each) in {dt:.2f} s = {60 * docs / dt:,.0f} documents/min")
    record("import", "nabra ssum build (eSpeak NG, 2 workers)", 60 * docs / dt, "documents/min")


def main() -> None:
    from nabra.corpus.importers import SkipReport, import_corpus

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--mgb2", type=int, default=50_000, metavar="N", help="segments for the MGB-2 benchmark (0: skip)")
    p.add_argument("--ssum", type=int, default=20, metavar="N", help="documents for the ssum build benchmark (0: skip)")
    args = p.parse_args()
    if args.mgb2:
        with tempfile.TemporaryDirectory() as tmp:
            bench_mgb2(args.mgb2, Path(tmp))
    if args.ssum:
        with tempfile.TemporaryDirectory() as tmp:
            bench_ssum(args.ssum, Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ar"
        make_release(root, args.rows)
        report = SkipReport()
        t = time.perf_counter()
        import_corpus("commonvoice", root, Path(tmp) / "cv.jsonl", report=report)
        dt = time.perf_counter() - t
    assert report.utterances == args.rows and not report.skipped, report.summary()
    rate = args.rows / dt
    print(f"commonvoice import: {args.rows:,} rows in {dt:.2f} s = {rate:,.0f} rows/s "
          f"(target >= 20,000) {'OK' if rate >= 20_000 else 'BELOW TARGET'}")
    record("import", f"commonvoice import, {args.rows:,} rows (metadata)", rate, "rows/s", at_least=20_000)


if __name__ == "__main__":
    main()
