"""A manifest with every kind of corruption we know of: each line is reported as ``FILE:LINE: reason``,
warned about, or rightly tolerated; never a traceback, and every line after a bad one is still checked.

``KINDS`` is also the table of docs/manifest.md's validation section (kind -> outcome)."""

import json

import pytest

from nabra.cli import main
from nabra.config import RunConfig
from nabra.corpus.importers.merge import merge_manifests
from nabra.corpus.manifest import iter_manifest
from nabra.data import read_valid
from nabra.errors import NabraError
from nabra.testing import write_clip

OK, WARN, ERROR = "tolerated", "warning", "error"


def _obj(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def kinds(audio: str) -> list[tuple[str, bytes, str, str | None]]:
    """(kind, the raw line, outcome, what the reason says) — one line each, in file order."""
    a = {"audio": audio}
    good = {"audio": audio, "transcript": "مرحبا بكم"}
    return [
        ("BOM at the start of the file", b"\xef\xbb\xbf" + _obj(id="bom", **good), OK, None),
        ("invalid UTF-8 byte", b'{"id": "u8", "audio": "%s", "transcript": "\xff\xfe"}' % audio.encode(), ERROR,
         "not valid UTF-8: byte 0xFF at column"),
        ("truncated UTF-8 sequence", b'{"id": "u8b", "transcript": "\xd9"}', ERROR, "not valid UTF-8"),
        ("deeply nested value", b'{"id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ERROR,
         "nested too deeply"),
        ("401-digit integer", b'{"id": "big", "duration": ' + b"7" * 401 + b"}", ERROR, "401 digits is out of range"),
        ("5,000-digit integer", b'{"id": "huge", "duration": ' + b"7" * 5000 + b"}", ERROR, "5,000 digits"),
        ("float overflow 1e999", b'{"id": "inf", "duration": 1e999}', ERROR, "out of the range of a 64-bit float"),
        ("NaN", b'{"id": "nan", "offset": NaN}', ERROR, "NaN is not valid JSON"),
        ("-Infinity", b'{"id": "ninf", "x": -Infinity}', ERROR, "-Infinity is not valid JSON"),
        ("lone surrogate escape", b'{"id": "sur", "audio": "%s", "transcript": "a\\ud800b"}' % audio.encode(), ERROR,
         "lone surrogate \\ud800 in field 'transcript'"),
        ("lone surrogate in a field name", b'{"id": "surk", "\\udfff": 1}', ERROR, "lone surrogate \\udfff in a field name"),
        ("valid surrogate pair (an emoji)", _obj(id="emoji", audio=audio, transcript="مرحبا \U0001F600"), OK, None),
        ("NUL character", _obj(id="nul", audio=audio, transcript="a\u0000b"), ERROR, "NUL character"),
        ("NUL in a nested extra field", _obj(id="nul2", **good, meta={"k": ["x\u0000"]}), ERROR, "NUL character"),
        ("line over the size limit (10 MB)", _obj(id="long", audio=audio, transcript="ب" * 5_000_000), ERROR,
         "over the limit of 1,048,576"),
        ("duplicate JSON key", b'{"id": "dupkey", "transcript": "a", "transcript": "b"}', ERROR,
         "duplicate key 'transcript'"),
        ("misspelled field name", _obj(id="typo", audio=audio, dialect="EGY", transcrpt="نص"), WARN,
         "field 'transcrpt' is not a manifest field (kept as an extra field): did you mean 'transcript'?"),
        ("another format's field name (NeMo text)", _obj(id="nemo", audio=audio, dialect="EGY", text="نص"), WARN,
         "did you mean 'transcript'?"),
        ("transcript of diacritics and tatweel only", _obj(id="harakat", audio=audio, transcript="\u064e\u0640\u0651"),
         ERROR, "transcript is empty once normalized"),
        ("summary of punctuation only", _obj(id="punct", **good, summary="؟!"), ERROR, "summary is empty once normalized"),
        ("id that is a path", _obj(id="../../etc/x", **good), WARN, "looks like a path"),
        ("id with a control character", _obj(id="a\tb", **good), ERROR, "contains a control character"),
        ("control character in a transcript", _obj(id="bell", audio=audio, transcript="مرحبا\u0007"), WARN,
         "control character U+0007 in transcript"),
        ("two records joined by a lone CR", _obj(id="cr1", **good) + b"\r" + _obj(id="cr2", **good), ERROR,
         "a lone CR at column"),
        ("CRLF line end", _obj(id="crlf", **good) + b"\r", OK, None),
        ("not JSON", b"id=3 transcript=x", ERROR, "bad JSON"),
        ("JSON array instead of an object", b'["id", "x"]', ERROR, "expected a JSON object, got list"),
        ("missing id", _obj(**good), ERROR, "missing id"),
        ("blank id", _obj(id="  ", **good), ERROR, "empty id"),
        ("numeric id", b'{"id": 17, "transcript": "x"}', ERROR, "field 'id' must be a string, got int"),
        ("negative duration", _obj(id="neg", **good, duration=-1), ERROR, "finite positive number"),
        ("zero duration", _obj(id="zero", **good, duration=0), ERROR, "finite positive number"),
        ("duration as a string", _obj(id="strdur", **good, duration="3.2"), ERROR, "must be a number, got str"),
        ("duration as a boolean", _obj(id="booldur", **good, duration=True), ERROR, "must be a number, got bool"),
        ("duration below the minimum", _obj(id="short", **good, duration=0.01), ERROR, "shorter than the minimum"),
        ("unknown dialect label", _obj(id="klingon", **a, dialect="Klingon"), ERROR, "not in the label set"),
        ("unknown split", _obj(id="training", **good, split="training"), ERROR, "is not one of train, dev, test"),
        ("empty transcript", _obj(id="empty", **a, transcript=" "), ERROR, "empty transcript"),
        ("no annotation", _obj(id="bare", **a), ERROR, "no annotation"),
        ("label without audio", _obj(id="noaudio", dialect="EGY"), ERROR, "serves no task"),
        ("empty audio path", _obj(id="noname", audio="", transcript="x"), ERROR, "empty audio path"),
        ("large but finite float in an extra field", _obj(id="bigf", **good, snr=1e308), OK, None),
        ("50-deep nesting in an extra field", b'{"id": "nest50", "audio": "%s", "transcript": "x", "m": %s}'
         % (audio.encode(), b"[" * 50 + b"]" * 50), OK, None),
        ("Arabic-Indic digits and Latin mixed in", _obj(id="mixed", audio=audio, transcript="عام ١٩٩٠ OK"), OK, None),
        ("another format's offset (Lhotse start)", _obj(id="start", **good, start=3.2), WARN, "did you mean 'offset'?"),
        ("an id with a slash (as merge --prefix-ids writes)", _obj(id="cv/utt-1", **good), OK, None),
        ("an absolute path as id", _obj(id="/etc/passwd", **good), WARN, "looks like a path"),
        ("integer just over 64 bits", b'{"id": "i65", "audio": "%s", "transcript": "x", "n": %d}' % (audio.encode(), 1 << 64),
         ERROR, "out of range (64 bits at most)"),
        ("largest 64-bit unsigned integer", b'{"id": "u64", "audio": "%s", "transcript": "x", "n": %d}'
         % (audio.encode(), (1 << 64) - 1), OK, None),
        ("ids that differ only in case", _obj(id="Case", **good), OK, None),
        ("ids that differ only in case (the second)", _obj(id="case", **good), WARN, "differs only in case from 'Case'"),
        ("exact duplicate id", _obj(id="bom", **good), ERROR, "duplicate id 'bom' (first on line 1)"),
        ("torn last line (no newline)", b'{"id": "torn", "transcr', ERROR, "bad JSON"),
    ]


@pytest.fixture
def fuzzed(tmp_path):
    audio = str(write_clip(tmp_path / "a.wav", 1.0))
    table = kinds(audio)
    raw = b"\n".join(line for _, line, _, _ in table[:-1]) + b"\n\n" + table[-1][1]  # a blank line, a torn end
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(raw)
    numbers = list(range(1, len(table))) + [len(table) + 1]  # the blank line takes a number
    return path, table, numbers


def test_every_corruption_is_reported_warned_or_tolerated(fuzzed, capsys):
    path, table, numbers = fuzzed
    assert len({kind for kind, _, outcome, _ in table if outcome != OK}) >= 30
    assert main(["data", "validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    by_line: dict[int, list[str]] = {}
    for row in out.splitlines():
        file, line, reason = row.split(":", 2)
        assert file == str(path)
        by_line.setdefault(int(line), []).append(reason.strip())
    for (kind, _, outcome, says), lineno in zip(table, numbers, strict=True):
        reasons = by_line.get(lineno, [])
        if outcome == OK:
            assert reasons == [], kind
        elif outcome == WARN:
            assert reasons and all(r.startswith("warning: ") for r in reasons), (kind, reasons)
            assert any(says in r for r in reasons), (kind, reasons)
        else:
            assert any(says in r and not r.startswith("warning") for r in reasons), (kind, reasons)
    assert set(by_line) <= set(numbers)  # nothing reported on a line that holds no record
    errors = sum(outcome == ERROR for _, _, outcome, _ in table)
    assert f"on {errors} of {len(table)} lines" in err


def test_train_skip_invalid_quarantines_every_bad_line(fuzzed, tmp_path):
    path, table, numbers = fuzzed
    cfg = RunConfig()
    cfg.data.manifest, cfg.data.skip_invalid = str(path), True
    said = []
    kept = read_valid(str(path), cfg, tmp_path, said.append)
    expected_bad = {n for (_, _, outcome, _), n in zip(table, numbers, strict=True) if outcome == ERROR}
    quarantined = [json.loads(line) for line in (tmp_path / "quarantine.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {q["line"] for q in quarantined} == expected_bad
    assert {u.id for u in kept} == {"bom", "typo", "nemo", "../../etc/x", "bell", "emoji", "crlf", "bigf", "nest50",
                                    "mixed", "Case", "case", "start", "cv/utt-1", "/etc/passwd", "u64"}
    assert any("warning(s)" in s for s in said)
    with pytest.raises(NabraError, match=r"invalid line\(s\)"):  # without --skip-invalid: stop, naming them
        cfg.data.skip_invalid = False
        read_valid(str(path), cfg, tmp_path, said.append)


def test_readers_stop_at_the_first_bad_line_with_its_number(fuzzed, tmp_path):
    path, _, _ = fuzzed
    with pytest.raises(NabraError, match=rf"{path}:2: not valid UTF-8"):
        list(iter_manifest(path))
    sur = tmp_path / "sur.jsonl"
    sur.write_text('{"id": "a", "transcript": "x"}\n{"id": "b", "transcript": "\\ud800"}\n', encoding="utf-8")
    with pytest.raises(NabraError, match=rf"{sur}:2: lone surrogate"):
        merge_manifests([sur], tmp_path / "merged.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir() if "merged" in p.name) == []  # no temp file left behind
    assert main(["data", "export", "swift", str(sur), "--out", str(tmp_path / "s.jsonl")]) == 2
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / ".tmp.s.jsonl").exists()


def test_line_numbers_are_an_editors_after_a_lone_cr(tmp_path, capsys):
    path = tmp_path / "cr.jsonl"
    path.write_bytes(b'{"id": "a", "transcript": "x"}\r\n{"id": "b", "transcript": "x"}\r{"id": "c"}\n'
                     b'{"id": "d", "split": "bad", "transcript": "x"}\n')
    assert main(["data", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:2: bad JSON: Extra data" in out and f"{path}:3: split 'bad'" in out  # as `grep -n` counts


def test_a_truncated_or_foreign_gz_manifest_is_one_line(tmp_path, capsys):
    import gzip

    whole = gzip.compress(b"".join(b'{"id": "u%d", "transcript": "x"}\n' % i for i in range(2000)))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    assert main(["data", "validate", str(cut)]) == 2
    err = capsys.readouterr().err
    assert f"nabra: error: {cut}:" in err and "truncated or corrupt" in err and "Traceback" not in err
    foreign = tmp_path / "plain.jsonl.gz"
    foreign.write_bytes(b'{"id": "a", "transcript": "x"}\n')
    assert main(["data", "validate", str(foreign)]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # argparse: a positive number of bytes
        main(["data", "validate", str(foreign), "--max-line-bytes", "0"])
    assert stop.value.code == 2 and "must be a positive number" in capsys.readouterr().err
