import numpy as np
import pytest
import soundfile as sf

from nabra.cli import main
from nabra.corpus.labels import DIALECTS
from nabra.corpus.validate import ValidationConfig, ValidationReport, validate_manifest
from nabra.testing import tiny_manifest, write_clip, write_lines


def problems(path, **cfg):
    return [(p.line, p.reason) for p in validate_manifest(path, ValidationConfig(**cfg))]


def test_a_valid_manifest_has_no_problems(tmp_path):
    path = tiny_manifest(tmp_path, 8)
    report = ValidationReport()
    assert list(validate_manifest(path, ValidationConfig(check_audio=True), report)) == []
    assert (report.lines, report.valid, report.invalid) == (8, 8, 0)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("{bad json", "bad JSON"),
        ({"transcript": "نص", "audio": "a.wav"}, "missing id"),
        ({"id": "x", "transcript": 12, "audio": "a.wav"}, "field 'transcript' must be a string, got int"),
        ({"id": "x", "dialect": "Martian", "audio": "a.wav"}, "dialect 'Martian' is not in the label set"),
        ({"id": "x", "emotion": "bored", "audio": "a.wav"}, "emotion 'bored' is not in the label set"),
        ({"id": "x", "audio": "a.wav", "speaker": "s"}, "no annotation"),
        ({"id": "x", "audio": "a.wav", "transcript": ""}, "empty transcript"),
        ({"id": "x", "dialect": "EGY"}, "serves no task"),
        ({"id": "x", "audio": "a.wav", "transcript": "نص", "duration": 0.01}, "shorter than the minimum 0.1 s"),
    ],
)
def test_each_metadata_problem_is_reported_on_its_line(tmp_path, record, reason):
    path = write_lines(tmp_path / "m.jsonl", [{"id": "ok", "transcript": "نص", "audio": "a.wav"}, record])
    found = problems(path)
    assert len(found) == 1 and found[0][0] == 2 and reason in found[0][1], found


def test_duplicate_ids_name_both_lines(tmp_path):
    rec = {"id": "dup", "transcript": "نص", "audio": "a.wav"}
    path = write_lines(tmp_path / "m.jsonl", [rec, {**rec, "id": "other"}, rec, rec])
    assert problems(path) == [(3, "duplicate id 'dup' (first on line 1)"), (4, "duplicate id 'dup' (first on line 1)")]


def test_custom_label_sets(tmp_path):
    path = write_lines(tmp_path / "m.jsonl", [{"id": "x", "audio": "a.wav", "dialect": "IRQ"}])
    assert problems(path) and not problems(path, dialects=DIALECTS.with_names(["IRQ", "EGY"]))


def _bad_audio(tmp_path, kind):
    path = tmp_path / "audio" / f"{kind}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "unreadable":
        path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00garbage-garbage")
    elif kind == "notaudio":
        path.write_text("just some text, not a recording")
    elif kind == "empty":
        sf.write(str(path), np.zeros(0, np.float32), 16000)
    elif kind in ("nan", "inf"):
        x = np.zeros(8000, np.float32)
        x[100:110] = np.nan if kind == "nan" else np.inf
        sf.write(str(path), x, 16000, subtype="FLOAT")
    elif kind == "short":
        write_clip(path, 0.05)
    elif kind == "stereo44k":
        write_clip(path, 1.0, sample_rate=44100, channels=2)
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "audio file not found"),
        ("unreadable", "not a readable audio file"),
        ("notaudio", "not a readable audio file"),
        ("empty", "zero length"),
        ("nan", "NaN or Inf samples"),
        ("inf", "NaN or Inf samples"),
        ("short", "shorter than the minimum 0.1 s"),
    ],
)
def test_each_audio_problem_is_reported_with_check_audio(tmp_path, kind, reason):
    audio = _bad_audio(tmp_path, kind)
    path = write_lines(tmp_path / "m.jsonl", [{"id": "x", "audio": f"audio/{audio.name}", "transcript": "نص"}])
    assert problems(path) == []  # metadata alone is fine
    found = problems(path, check_audio=True)
    assert len(found) == 1 and found[0][0] == 1 and reason in found[0][1], found
    assert audio.name in found[0][1]


def test_stereo_and_other_rates_are_not_errors(tmp_path):
    _bad_audio(tmp_path, "stereo44k")
    path = write_lines(tmp_path / "m.jsonl", [{"id": "x", "audio": "audio/stereo44k.wav", "transcript": "نص", "duration": 1.0}])
    assert problems(path, check_audio=True) == []


def test_duration_field_is_checked_against_the_file(tmp_path):
    write_clip(tmp_path / "a.wav", 2.0)
    path = write_lines(tmp_path / "m.jsonl", [
        {"id": "x", "audio": "a.wav", "transcript": "نص", "duration": 1.0},  # a segment starting at 0
        {"id": "y", "audio": "a.wav", "transcript": "نص", "offset": 1.5, "duration": 1.0},
        {"id": "z", "audio": "a.wav", "transcript": "نص", "offset": 0.5, "duration": 1.0},
        {"id": "w", "audio": "a.wav", "transcript": "نص", "duration": 3.0},
    ])
    found = problems(path, check_audio=True)
    assert [line for line, _ in found] == [2, 4]
    assert "runs past the end" in found[0][1] and "runs past the end" in found[1][1]


def test_cli_prints_file_line_reason_and_exits_1(tmp_path, capsys):
    path = write_lines(tmp_path / "m.jsonl", [{"id": "a", "transcript": "نص", "audio": "a.wav"}, "{x", {"id": "a", "emotion": "calm", "audio": "a.wav"}])
    assert main(["data", "validate", str(path)]) == 1
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{path}:2: bad JSON")
    assert lines[1].startswith(f"{path}:3: emotion 'calm' is not in the label set")
    assert lines[2] == f"{path}:3: duplicate id 'a' (first on line 1)"
    assert "3 problem(s) on 2 of 3 lines" in err


def test_cli_accepts_a_valid_manifest(tmp_path, capsys):
    path = tiny_manifest(tmp_path, 4)
    assert main(["data", "validate", str(path), "--check-audio"]) == 0
    assert "4 lines, all valid (audio checked)" in capsys.readouterr().out


def test_cli_missing_manifest_is_one_line_exit_2(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"nabra: error: {tmp_path / 'nope.jsonl'}: manifest not found"


def test_latin_script_transcripts_in_an_arabic_manifest_are_warned(tmp_path, capsys):
    """MGB-2's dev/test text is Buckwalter (lhotse's recipe converts it): a manifest that kept it would
    train on Arabic and score against Latin letters. Each such line is a warning, counted by kind."""
    write_clip(tmp_path / "a.wav", 0.5)
    path = write_lines(tmp_path / "m.jsonl", [
        {"id": "bw", "audio": "a.wav", "language": "ar", "transcript": ">kd Alr}ys >n Alm&tmr syEqd"},
        {"id": "bw2", "audio": "a.wav", "language": "ar", "transcript": "nEm", "summary": "mrHbA bkm"},
        {"id": "mixed", "audio": "a.wav", "language": "ar", "transcript": "باشتغل part time بشغلات"},
        {"id": "en", "audio": "a.wav", "language": "en", "transcript": "Mister Quiller is the apostle"},
        {"id": "digits", "audio": "a.wav", "language": "ar", "transcript": "2024"},
        {"id": "ok", "audio": "a.wav", "language": "ar", "transcript": "أكد الرئيس"},
    ])
    found = problems(path)
    assert [line for line, _ in found] == [1, 2, 2]
    assert all("in Latin letters, not Arabic script" in reason for _, reason in found)
    assert "Buckwalter" in found[0][1]
    assert main(["data", "validate", str(path)]) == 0  # warnings do not fail validation
    out = capsys.readouterr().out
    assert out.count("warning: transcript is in Latin letters") == 2 and "3 warning(s)" in out
