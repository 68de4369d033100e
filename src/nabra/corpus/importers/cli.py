"""`nabra data import|export|merge`: thin layers over the importers, exporters and merge."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nabra.corpus.importers import IMPORTERS
from nabra.corpus.labels import label_sets
from nabra.corpus.manifest import SPLITS, TASKS


def register(data_subparsers, top_subparsers, declared_tasks=None) -> None:
    """Add ``import``, ``export`` and ``merge`` to ``nabra data``, and ``nabra ssum build``
    (``top_subparsers``: the top-level verbs). ``declared_tasks(recipe, language)``: the recipe's
    declared tasks as :class:`~nabra.corpus.importers.swift.ExtraTask` (``export swift --config``;
    given by the CLI, which may read configs)."""
    _add_ssum(top_subparsers)
    _add_import(data_subparsers)
    _add_export(data_subparsers, declared_tasks)
    merge = data_subparsers.add_parser("merge", help="merge manifests into one (ids must not collide)")
    merge.add_argument("manifests", nargs="+", type=Path, help="manifests to merge, in order")
    merge.add_argument("--out", type=Path, required=True, help="output manifest")
    merge.add_argument("--prefix-ids", action="store_true", help="prefix every id with its manifest's name")
    merge.add_argument("--force", action="store_true",
                       help="replace --out even when it holds more utterances than the merge, or is not a manifest")
    merge.set_defaults(func=cmd_data_merge)


# ----------------------------------------------------------------------------- import

def _labels_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--dialects", help="comma-separated dialect label set (default EGY,GLF,LAV,NOR,MSA)")
    p.add_argument("--emotions", help="comma-separated emotion label set (default neutral,happy,sad,angry,surprised)")
    return p


def _import_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, parents=[_labels_parent()])
    p.add_argument("--out", type=Path, required=True, help="output manifest (.jsonl or .jsonl.gz)")
    p.add_argument("--check-audio", action="store_true",
                   help="read every audio header; skip missing/unreadable files, fill in durations")
    p.add_argument("--workers", type=int, default=4, help="threads reading audio headers (default 4)")
    p.add_argument("--min-duration", type=float, default=0.1, help="shortest utterance in s (default 0.1)")
    p.add_argument("--language", help="language code of the speech (default ar; librispeech and l2arctic: en; lhotse: each "
                   "supervision's own)")
    p.add_argument("--source", help="value of the manifest's source field (default: the kind)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="replace --out even when it holds more utterances than this import, or is not a manifest")
    return p


def _split_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=SPLITS, help="split of every utterance (when the layout does not say)")


def _add_import(data) -> None:
    parent = _import_parent()
    kinds = data.add_parser("import", help="import a corpus or a peer toolkit's data into a manifest").add_subparsers(
        dest="kind", required=True, metavar="KIND")
    for kind, what in IMPORTERS.items():
        p = kinds.add_parser(kind, help=what, parents=[parent])
        if kind != "lhotse":  # lhotse can name its two files instead
            p.add_argument("src", type=Path, help="source folder or file")
        _KIND_ARGUMENTS[kind](p)
        p.set_defaults(func=cmd_data_import)
    for kind, what in RECORDING_IMPORTERS.items():  # noise and rooms for data.augment: a recordings list
        p = kinds.add_parser(kind, help=what)
        p.add_argument("src", type=Path, help="the release's folder")
        p.add_argument("--out", type=Path, required=True, help="the recordings list to write (.jsonl or .jsonl.gz)")
        if kind == "musan":
            p.add_argument("--parts", default="music,noise,speech", help="MUSAN parts (default music,noise,speech)")
        p.add_argument("--force", action="store_true", help="replace --out when it exists")
        p.add_argument("--quiet", action="store_true", help="no progress count")
        p.set_defaults(func=cmd_import_recordings)


RECORDING_IMPORTERS = {
    "musan": "MUSAN (music, noise, speech) as a recordings list for data.augment.noise.recordings (not a manifest)",
    "rirs": "RIRS_NOISES (simulated and real room impulse responses, noises) for data.augment.reverb.rirs",
}


def cmd_import_recordings(args) -> int:
    from nabra.corpus.noise import ListReport, read_musan, read_rirs, write_recordings
    from nabra.files import check_output_file
    from nabra.progress import progress_bar

    out = check_output_file(args.out, what="recordings list", protect=[("the release", args.src)])
    report = ListReport()
    if args.kind == "musan":
        rows = read_musan(args.src, report, [p.strip() for p in args.parts.split(",") if p.strip()])
    else:
        rows = read_rirs(args.src, report)
    kinds: dict[str, int] = {}

    def counted(advance):
        for rec in rows:
            kinds[f"{rec.kind} ({rec.part})"] = kinds.get(f"{rec.kind} ({rec.part})", 0) + 1
            advance(report.found)  # every header read (RIRS_NOISES has tens of thousands)
            yield rec

    with progress_bar(f"list {args.kind}", None, enabled=not args.quiet, unit="files") as advance:
        n = write_recordings(out, counted(advance), force=args.force)
    print(report.summary(n))
    print("; ".join(f"{k}: {v:,}" for k, v in kinds.items()))
    print(f"wrote {out}")
    return 0


def _commonvoice_arguments(p) -> None:
    p.add_argument("--tsv", "--splits", default=None,
                   help="TSVs to import, comma-separated, each required (default: those of train,dev,test "
                        "the release has, the missing ones listed; e.g. validated)")
    p.add_argument("--probe-audio", action="store_true",
                   help="read durations from the audio headers where clip_durations.tsv lacks them")


def _mgb2_arguments(p) -> None:
    p.add_argument("--script", choices=("auto", "arabic", "buckwalter"), default="auto",
                   help="script of the transcripts: auto (default) converts each file found to be Buckwalter")
    p.add_argument("--buckwalter", action="store_true", help="same as --script buckwalter")
    p.add_argument("--with-overlap", dest="overlap", action="store_true",
                   help="dev/test: also the overlapped-speech segments (segments.all/text.all)")
    p.add_argument("--max-wmer", type=float, help="skip XML segments whose WMER (%%) is above this")
    p.add_argument("--segments", help="name of the Kaldi segments file (default: the release's, "
                                      "segments.non_overlap_speech, segments or segments.all)")
    p.add_argument("--text", help="name of the Kaldi text file (default: text.non_overlap_speech, text or text.all)")
    _split_arg(p)


def _adi_arguments(p) -> None:
    p.add_argument("--mapping", help="JSON file COUNTRY -> REGION overriding the default mapping")
    p.add_argument("--keep-country", action="store_true",
                   help="keep the country label (validate with --dialects set to the countries)")
    p.add_argument("--list", dest="list_file", help="label list: <utt> <label> per line")
    p.add_argument("--audio-dir", help="folder of the list's audio (<utt>.wav); default SRC")
    _split_arg(p)


def _folder_arguments(p) -> None:
    p.add_argument("--field", choices=("emotion", "dialect"), required=True, help="what the label is")
    p.add_argument("--label-map", help="rename labels: JSON file or inline 'ang=angry,hap=happy'")
    p.add_argument("--label-depth", type=int, default=1, help="folder level holding the label (default 1)")
    p.add_argument("--label-regex", help="regex on the path relative to SRC with a group (?P<label>...)")
    p.add_argument("--speaker-regex", help="regex on the relative path with a group (?P<speaker>...)")
    _split_arg(p)


def _hf_arguments(p) -> None:
    p.add_argument("--columns", help="field=column pairs, e.g. 'audio=audio,transcript=sentence'")
    _split_arg(p)


def _swift_arguments(p) -> None:
    p.add_argument("--task", choices=TASKS, help="task of rows whose prompt names none")
    _split_arg(p)


def _lhotse_arguments(p) -> None:
    p.add_argument("src", type=Path, nargs="?", help="folder holding *_recordings_* / *_supervisions_* pairs")
    p.add_argument("--recordings", help="recordings manifest (with --supervisions, instead of SRC)")
    p.add_argument("--supervisions", help="supervisions manifest")
    p.add_argument("--cuts", help="a cut set manifest (instead of SRC or a pair)")
    p.add_argument("--relative-to", choices=("cwd", "manifest"), default="cwd",
                   help="what relative recording paths are relative to (default cwd, as lhotse reads them)")
    _split_arg(p)


def _librispeech_arguments(p) -> None:
    p.add_argument("--subsets", help="subsets to import, comma-separated, each required (default: all SRC holds)")


def _l2arctic_arguments(p) -> None:
    p.add_argument("--speaker-split", help="speaker-disjoint splits: 'l1' (per L1 one dev and one test speaker, "
                                           "both sexes in each) or 'test=ABA,BWC;dev=SKA' (the others train)")
    p.add_argument("--suitcase", action="store_true", help="also the spontaneous suitcase_corpus recordings")


def _nemo_arguments(p) -> None:
    p.add_argument("--data-folder", help="what the manifest's {data_folder} placeholder stands for (the leaderboard's sets)")
    _split_arg(p)


def _csv_arguments(p) -> None:
    p.add_argument("--columns", required=True,
                   help="field=column pairs: audio (required), transcript, summary, dialect, emotion, speaker, "
                        "language, split, id, start, end (s: a segment), e.g. 'audio=name,emotion=Emotion'")
    p.add_argument("--keep", help="extra fields to keep, name=column pairs, e.g. 'gender=SpeakerGender'")
    p.add_argument("--audio-dir", help="folder the audio paths are relative to (default: the table's folder)")
    p.add_argument("--audio-suffix", help="appended to audio names without one, e.g. .wav")
    p.add_argument("--label-map", help="rename labels: JSON file or inline 'ang=angry,hap=happy'")
    _split_arg(p)


_KIND_ARGUMENTS = {"commonvoice": _commonvoice_arguments, "mgb2": _mgb2_arguments, "adi": _adi_arguments,
                   "folder": _folder_arguments, "hf": _hf_arguments, "swift": _swift_arguments,
                   "lhotse": _lhotse_arguments, "librispeech": _librispeech_arguments,
                   "l2arctic": _l2arctic_arguments, "csv": _csv_arguments, "nemo": _nemo_arguments}
DEFAULT_LANGUAGE = {"librispeech": "en", "l2arctic": "en"}
"""The speech's language where a kind's corpus is not Arabic (``--language`` overrides it)."""


def _kind_options(args, opts) -> dict:
    """Keyword options of the kind's ``read`` from the parsed arguments."""
    labels = {"dialects": opts.dialects, "emotions": opts.emotions}
    common = {"source": args.source} if args.source else {}
    if args.kind != "lhotse" or args.language:
        common["language"] = args.language or DEFAULT_LANGUAGE.get(args.kind, "ar")
    split = {"split": args.split} if hasattr(args, "split") else {}
    if args.kind == "commonvoice":
        return common | {"tsvs": [t.strip() for t in args.tsv.split(",") if t.strip()] if args.tsv else None,
                         "probe_audio": args.probe_audio}
    if args.kind == "mgb2":
        return common | split | {"script": "buckwalter" if args.buckwalter else args.script, "overlap": args.overlap,
                                 "max_wmer": args.max_wmer, "segments": args.segments, "text": args.text}
    if args.kind == "adi":
        from nabra.corpus.importers.adi import load_mapping

        return common | split | {"mapping": load_mapping(args.mapping), "keep_country": args.keep_country,
                                 "labels": opts.dialects, "list_file": args.list_file, "audio_dir": args.audio_dir}
    if args.kind == "folder":
        from nabra.corpus.importers.folder import parse_label_map

        return common | split | {"field": args.field, "labels": opts.dialects if args.field == "dialect" else opts.emotions,
                                 "label_map": parse_label_map(args.label_map), "label_depth": args.label_depth,
                                 "label_regex": args.label_regex, "speaker_regex": args.speaker_regex}
    if args.kind == "hf":
        from nabra.corpus.importers.hf import parse_columns

        return common | split | labels | {"columns": parse_columns(args.columns), "audio_dir": args.out.parent / "audio"}
    if args.kind == "swift":
        return common | split | labels | {"task": args.task}
    if args.kind == "librispeech":
        return common | {"subsets": [x.strip() for x in args.subsets.split(",") if x.strip()] if args.subsets else None}
    if args.kind == "nemo":
        return common | split | {"data_folder": args.data_folder}
    if args.kind == "csv":
        from nabra.corpus.importers.folder import parse_label_map
        from nabra.corpus.importers.table import FIELDS, parse_pairs

        return common | split | labels | {"columns": parse_pairs(args.columns, "--columns", FIELDS),
                                          "keep": parse_pairs(args.keep, "--keep"), "audio_dir": args.audio_dir,
                                          "audio_suffix": args.audio_suffix, "label_map": parse_label_map(args.label_map)}
    if args.kind == "l2arctic":
        return common | {"speaker_split": args.speaker_split, "suitcase": args.suitcase}
    return common | split | labels | {"recordings": args.recordings, "supervisions": args.supervisions,
                                      "cuts": args.cuts, "relative_to": args.relative_to}


def _import_options(args):
    from nabra.corpus.importers.common import ImportOptions

    dialects, emotions = label_sets(args.dialects, args.emotions)
    if args.kind == "adi" and args.keep_country:
        from nabra.corpus.importers.adi import country_labels, load_mapping

        dialects = country_labels(load_mapping(args.mapping))
    return ImportOptions(check_audio=args.check_audio, dialects=dialects, emotions=emotions,
                         min_duration=args.min_duration, workers=args.workers, progress=not args.quiet,
                         force=args.force)


def cmd_data_import(args) -> int:
    from nabra.corpus.importers import import_corpus
    from nabra.corpus.importers.common import skip_sink, skipped_path

    opts = _import_options(args)
    skips = skipped_path(args.out)
    with skip_sink(skips) as report:
        import_corpus(args.kind, args.src, args.out, options=opts, report=report, **_kind_options(args, opts))
    print(report.summary())
    listed = f"skipped rows are listed in {skips}" if report.skipped else ""
    if not report.utterances:
        print(f"{args.out}: nothing imported, nothing written" + (f"; {listed}" if listed else ""), file=sys.stderr)
        return 1
    print(f"wrote {args.out}" + (f"; {listed}" if listed else ""))
    if args.kind == "adi" and args.keep_country:
        print(f"dialect labels are country codes: validate with --dialects {','.join(opts.dialects.names)}")
    return 0


# ----------------------------------------------------------------------------- export, merge

def _add_export(data, declared_tasks=None) -> None:
    formats = data.add_parser("export", help="write a manifest in a peer toolkit's format").add_subparsers(
        dest="format", required=True, metavar="FORMAT")
    swift = formats.add_parser("swift", help="ms-swift / LLaMA-Factory chat JSONL, one row per (utterance, task)",
                               parents=[_labels_parent()])
    swift.add_argument("manifest", type=Path, help="the Nabra manifest to export")
    swift.add_argument("--out", type=Path, required=True, help="output JSONL")
    swift.add_argument("--tasks", help="tasks to export, comma-separated (default: all, a --config's declared ones too)")
    swift.add_argument("--config", help="a recipe (file or shipped name): also export its declared tasks "
                       "(tasks: section), with its DID/SER label sets")
    swift.set_defaults(declared_tasks=declared_tasks)
    swift.add_argument("--split", choices=SPLITS, help="export only the utterances of this split (default: all)")
    swift.add_argument("--prompt-language", choices=("ar", "en"), default="ar", help="language of the prompts")
    swift.set_defaults(func=cmd_data_export)
    lh = formats.add_parser("lhotse", help="Lhotse recordings + supervisions manifests (jsonl.gz), per split")
    lh.add_argument("manifest", type=Path, help="the Nabra manifest to export")
    lh.add_argument("--out", type=Path, required=True, help="output folder")
    lh.add_argument("--prefix", default="nabra", help="file name prefix (default nabra)")
    lh.set_defaults(func=cmd_data_export)


def cmd_data_export(args) -> int:
    from nabra.corpus.importers.common import skip_sink, skipped_path

    if args.format == "swift":
        from nabra.corpus.importers import swift

        dialects, emotions = label_sets(args.dialects, args.emotions)
        extra = []
        if args.config:
            extra, (did, ser) = args.declared_tasks(args.config, args.prompt_language)
            dialects, emotions = (dialects if args.dialects else did), (emotions if args.emotions else ser)
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else [*TASKS, *(e.name for e in extra)]
        skips = skipped_path(args.out)
        with skip_sink(skips) as report:
            swift.export(args.manifest, args.out, report, tasks=tasks, split=args.split,
                         language=args.prompt_language, dialects=dialects, emotions=emotions, extra=extra)
        written = str(args.out)
    else:
        from nabra.corpus.importers import lhotse

        skips = args.out / f"{args.prefix}.skipped.jsonl"
        with skip_sink(skips) as report:
            paths = lhotse.export(args.manifest, args.out, report, prefix=args.prefix)
        written = ", ".join(str(p) for p in paths) or "nothing"
    print(report.summary("exported", "utterances", "rows" if args.format == "swift" else "supervisions"))
    print(f"wrote {written}" + (f"; skipped utterances are listed in {skips}" if report.skipped else ""))
    return 0 if report.utterances else 1


# ----------------------------------------------------------------------------- ssum build

def _add_ssum(top) -> None:
    verbs = top.add_parser("ssum", help="AraMega-SSum: speak text-summarization pairs with a multi-voice TTS")
    build = verbs.add_subparsers(dest="ssum_verb", required=True, metavar="VERB").add_parser(
        "build", help="speak (document, summary) pairs into a manifest of (speech, transcript, summary)",
        description="Rerunning the same command on the same --out folder resumes it.")
    build.add_argument("--pairs", type=Path, required=True,
                       help="JSONL, one pair per line: document (or text) and summary [+ id, title, split]")
    build.add_argument("--out", type=Path, required=True, help="output folder (manifest.jsonl, audio/)")
    build.add_argument("--tts", choices=("espeak", "command"), help="TTS backend (default espeak)")
    build.add_argument("--tts-command", help="external TTS, e.g. 'mytts --out {wav} --text-file {txt} --voice {voice}'")
    build.add_argument("--voices", help="comma-separated voices to rotate (default: the 12 eSpeak ar+ variants)")
    build.add_argument("--workers", type=int, help="documents spoken in parallel (default: one per CPU core)")
    build.add_argument("--limit", type=int, help="stop after N documents")
    build.add_argument("--split-by", choices=("doc", "voice"),
                       help="split of pairs without one: per document (default), or speaker-disjoint")
    build.add_argument("--seed", type=int, help="seed of voice order, pauses and splits (default 0)")
    build.add_argument("--source", help="value of the manifest's source field (default aramega-ssum)")
    build.add_argument("--document-field", help="input field of the document (default document, else text)")
    build.add_argument("--summary-field", help="input field of the summary (default summary)")
    build.add_argument("--max-sentence-chars", type=int, help="split longer sentences at a comma (default 200)")
    build.add_argument("--check-audio", action="store_true", help="read every WAV header again before writing")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=cmd_ssum_build)


def cmd_ssum_build(args) -> int:
    from nabra.corpus.importers.common import skipped_path
    from nabra.corpus.ssum import SsumConfig, build

    voices = tuple(v.strip() for v in args.voices.split(",") if v.strip()) if args.voices else None
    given = {"tts": args.tts or ("command" if args.tts_command else "espeak"), "tts_command": args.tts_command,
             "voices": voices, "workers": args.workers, "limit": args.limit, "split_by": args.split_by,
             "seed": args.seed, "source": args.source, "document_field": args.document_field,
             "summary_field": args.summary_field, "max_sentence_chars": args.max_sentence_chars,
             "check_audio": args.check_audio}
    # Unset flags are left out, so the defaults live in one place: SsumConfig.
    config = SsumConfig(**{k: v for k, v in given.items() if v is not None})
    result = build(args.pairs, args.out, config, progress=not args.quiet)
    report = result.report
    print(report.summary("spoke", "pairs", "documents"))
    print(f"spoke {result.synthesized:,} documents in {result.elapsed:.1f} s ({result.docs_per_min:,.0f} docs/min), "
          f"{result.resumed:,} resumed from an earlier run; {result.audio_seconds / 3600:.2f} h of audio")
    skipped = f"; skipped pairs are listed in {skipped_path(result.manifest)}"
    print(f"wrote {result.manifest}" + (skipped if report.skipped else ""))
    return 0 if report.utterances else 1


def cmd_data_merge(args) -> int:
    from nabra.corpus.importers.merge import merge_manifests

    n = merge_manifests(args.manifests, args.out, prefix_ids=args.prefix_ids, force=args.force)
    print(f"wrote {args.out} ({n:,} utterances from {len(args.manifests)} manifests)")
    return 0
