import json

from nabra.cli import main
from nabra.corpus.stats import manifest_stats
from nabra.testing import tiny_manifest, write_lines


def test_stats_count_tasks_labels_and_hours(tmp_path):
    path = write_lines(tmp_path / "m.jsonl", [
        {"id": "a", "audio": "a.wav", "duration": 10.0, "transcript": "نص", "dialect": "EGY", "split": "train", "speaker": "s1"},
        {"id": "b", "audio": "b.wav", "duration": 40.0, "transcript": "نص", "summary": "ملخص", "split": "test", "speaker": "s2"},
        {"id": "c", "audio": "c.wav", "duration": 2.0, "emotion": "sad", "dialect": "EGY", "speaker": "s1"},
        {"id": "d", "transcript": "نص", "summary": "ملخص"},
    ])
    st = manifest_stats(path)
    assert st.utterances == 4 and st.speakers == 2
    assert st.seconds == 52.0 and st.long_utterances == 1
    assert dict(st.tasks) == {"asr": 2, "ssum": 1, "tsum": 2, "did": 2, "ser": 1}
    assert dict(st.dialects) == {"EGY": 2} and dict(st.emotions) == {"sad": 1}
    assert dict(st.splits) == {"train": 1, "test": 1, "(none)": 2}
    assert st.duration_percentiles["p0"] == 2.0 and st.duration_percentiles["p100"] == 40.0
    assert st.duration_percentiles["p50"] == 10.0


def test_stats_cli_json_and_table(tmp_path, capsys):
    path = tiny_manifest(tmp_path, 10)
    assert main(["data", "stats", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["utterances"] == 10
    assert data["tasks"] == {"asr": 10, "ssum": 4, "tsum": 4, "did": 10, "ser": 10}
    assert data["dialects"] == {"EGY": 2, "GLF": 2, "LAV": 2, "MSA": 2, "NOR": 2}
    assert main(["data", "stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "per task" in out and "tsum" in out and "surprised" in out


def test_stats_count_languages_and_label_like_extra_fields(tmp_path, capsys):
    rows = [{"id": f"u{i}", "audio": f"{i}.wav", "duration": 1.0, "transcript": "x", "language": "en" if i % 2 else "ar",
             "l1": ("Arabic", "Hindi", "Korean")[i % 3], "gender": "female" if i < 4 else "male",
             "annotation": f"/c/{i}.TextGrid", "split": "train" if i < 20 else "test"} for i in range(24)]
    path = write_lines(tmp_path / "m.jsonl", rows)
    st = manifest_stats(path)
    assert dict(st.languages) == {"ar": 12, "en": 12}
    assert dict(st.fields["l1"]) == {"Arabic": 8, "Hindi": 8, "Korean": 8}
    assert dict(st.fields["gender"]) == {"female": 4, "male": 20}
    assert "annotation" not in st.fields  # 24 distinct values: not a label
    assert main(["data", "stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "per l1" in out and "per gender" in out and "per language" in out
