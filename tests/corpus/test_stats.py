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
