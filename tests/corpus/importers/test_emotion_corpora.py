"""The Arabic emotion corpora through the commands docs/importers/folder.md and csv.md give for them, on file names in
each corpus's own scheme (EYASE ``fm01_hap (3).wav``; BAVED ``<speaker>-<gender>-<age>-<word>-<level>-
<record>.wav`` in word folders; KSUEmotions ``data/SPEECH/Phase_N/E0x/D05E03P104S01T01.flac``), and the
``csv`` importer on an ANAD-shaped table (``name``, ``Emotion `` with its trailing space) and a SADA-shaped
one (segments of episode recordings), each with a bad row of each kind counted."""

import json
import shlex

from nabra.cli import main
from nabra.testing import write_clip

KSU_EMOTIONS = "neutral,happy,sad,surprised,questioning,angry"
KSU_MAP = "00=neutral,01=happy,02=sad,03=surprised,04=questioning,05=angry"


def _import(args, tmp_path, name):
    out = tmp_path / f"{name}.jsonl"
    assert main(["data", "import", *args, "--out", str(out), "--quiet"]) == 0
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    skips = tmp_path / f"{name}.skipped.jsonl"
    skipped = [json.loads(line) for line in skips.read_text().splitlines()] if skips.exists() else []
    return rows, skipped


def test_eyase_names_carry_speaker_and_emotion(tmp_path):
    root = tmp_path / "EYASE"
    for name in ("fm01_hap (3).wav", "fm01_ang (6).wav", "ml02_neu (19).wav", "ml03_sad(2).wav", "ml03_xyz (1).wav",
                 "readme.wav"):
        write_clip(root / "Female" / name, 0.3)
    rows, skipped = _import(["folder", str(root), "--field", "emotion",
                             "--label-regex", r"_(?P<label>[a-z]{3}) ?\(\d+\)\.wav$",
                             "--label-map", "ang=angry,hap=happy,neu=neutral,sad=sad",
                             "--speaker-regex", r"(?P<speaker>(?:fm|ml)\d{2})_"], tmp_path, "eyase")
    assert {r["id"]: (r["emotion"], r["speaker"]) for r in rows.values()} == {
        "Female-fm01_hap (3)": ("happy", "fm01"), "Female-fm01_ang (6)": ("angry", "fm01"),
        "Female-ml02_neu (19)": ("neutral", "ml02"), "Female-ml03_sad(2)": ("sad", "ml03")}
    assert sorted(s["reason"] for s in skipped) == ["path does not match --label-regex", "unknown emotion label"]


def test_baved_levels_in_word_folders(tmp_path):
    root = tmp_path / "BAVED"
    for rel in ("2/55-m-16-2-0-778.wav", "0/1-f-20-0-2-3.wav", "6/61-m-22-6-1-1935.wav", "3/7-m-21-3-9-40.wav"):
        write_clip(root / rel, 0.3)
    cmd = shlex.split(r"""--field emotion --emotions low,neutral,high
        --label-regex '(?P<label>[0-9])-[0-9]+\.wav$' --label-map 0=low,1=neutral,2=high
        --speaker-regex '(?:^|/)(?P<speaker>[0-9]+)-[mf]-'""")
    rows, skipped = _import(["folder", str(root), *cmd], tmp_path, "baved")
    assert {r["id"]: (r["emotion"], r["speaker"]) for r in rows.values()} == {
        "2-55-m-16-2-0-778": ("low", "55"), "0-1-f-20-0-2-3": ("high", "1"), "6-61-m-22-6-1-1935": ("neutral", "61")}
    assert [s["reason"] for s in skipped] == ["unknown emotion label"]  # level 9


def test_ksuemotions_codes_in_the_file_names(tmp_path):
    root = tmp_path / "ksu_emotions"
    for rel in ("Phase_1/E00/D05E00P001S01T01.flac", "Phase_1/E04/D05E04P104S18T03.flac",
                "Phase_2/E05/D05E05P006S06T03.flac", "Phase_2/E01/D05E01P113S02T02.flac", "Phase_2/E09/D05E09P001S01T01.flac"):
        write_clip(root / "data" / "SPEECH" / rel, 0.3)
    rows, skipped = _import(["folder", str(root / "data" / "SPEECH"), "--field", "emotion", "--emotions", KSU_EMOTIONS,
                             "--label-regex", r"E(?P<label>\d{2})P\d{3}S", "--label-map", KSU_MAP,
                             "--speaker-regex", r"E\d{2}P(?P<speaker>\d{3})S"], tmp_path, "ksu")
    assert {r["id"].rsplit("-", 1)[1]: (r["emotion"], r["speaker"]) for r in rows.values()} == {
        "D05E00P001S01T01": ("neutral", "001"), "D05E04P104S18T03": ("questioning", "104"),
        "D05E05P006S06T03": ("angry", "006"), "D05E01P113S02T02": ("happy", "113")}
    assert [s["reason"] for s in skipped] == ["unknown emotion label"]


def test_csv_anad_table_with_a_spaced_header(tmp_path):
    root = tmp_path / "ANAD"
    for name in ("V1_1 (1).wav", "V1_1 (2).wav", "V2_3 (1).wav"):
        write_clip(root / "1sec_segmented_part1" / name, 0.3)
    (root / "ANAD.csv").write_text(
        "name,Type,Emotion ,F1,F2\n"
        "V1_1 (1),caller, happy ,0.1,0.2\n"
        "V1_1 (2),receiver,angry,0.1,0.2\n"
        "V2_3 (1),caller,bored,0.3,0.4\n"          # not a label of the set
        "V9_9 (9),caller,happy,0.3,0.4\n"          # no such file
        "V2_3 (1),caller\n", encoding="utf-8")     # too few fields
    rows, skipped = _import(["csv", str(root / "ANAD.csv"), "--columns", "audio=name,emotion=Emotion",
                             "--keep", "role=Type", "--audio-dir", str(root / "1sec_segmented_part1"),
                             "--audio-suffix", ".wav"], tmp_path, "anad")
    assert {r["id"]: (r["emotion"], r["role"]) for r in rows.values()} == {
        "V1_1 (1)": ("happy", "caller"), "V1_1 (2)": ("angry", "receiver")}
    assert sorted(s["reason"] for s in skipped) == ["audio file not found", "malformed row", "unknown emotion label"]
    assert {s["where"] for s in skipped} == {"ANAD.csv:4", "ANAD.csv:5", "ANAD.csv:6"}


def test_csv_sada_segments_of_episode_recordings(tmp_path):
    root = tmp_path / "SADA"
    write_clip(root / "batch_1" / "ep1.wav", 6.0)
    (root / "train.csv").write_text(
        "FileName,ShowName,FullFileLength,SegmentID,SegmentLength,SegmentStart,SegmentEnd,SpeakerAge,SpeakerGender,"
        "SpeakerDialect,Speaker,Environment,GroundTruthText,ProcessedText,Category\n"
        "batch_1/ep1.wav,show,6.0,s1,2.0,0.5,2.5,Adult,Male,Najdi,Speaker1Name,Clean,مرحبا,مرحبا بكم,Drama\n"
        "batch_1/ep1.wav,show,6.0,s2,1.5,3.0,4.5,Adult,Female,Hijazi,Speaker2Name,Music,اهلا,اهلا وسهلا,Drama\n"
        "batch_1/ep1.wav,show,6.0,s3,0,5.0,4.0,Adult,Female,Hijazi,Speaker2Name,Clean,خطأ,خطأ,Drama\n",
        encoding="utf-8")
    rows, skipped = _import(["csv", str(root / "train.csv"), "--split", "train", "--columns",
                             "audio=FileName,start=SegmentStart,end=SegmentEnd,transcript=ProcessedText,speaker=Speaker",
                             "--keep", "gender=SpeakerGender,sada_dialect=SpeakerDialect,environment=Environment"],
                            tmp_path, "sada")
    seg = rows["batch_1-ep1-0.50"]
    assert (seg["offset"], seg["duration"], seg["transcript"], seg["gender"], seg["sada_dialect"], seg["split"]) == (
        0.5, 2.0, "مرحبا بكم", "Male", "Najdi", "train")
    assert rows["batch_1-ep1-3.00"]["environment"] == "Music"
    assert [s["reason"] for s in skipped] == ["segment ends before it starts"]


def test_csv_errors_name_the_file_and_the_columns(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("path,label\nx.wav,happy\n")
    out = ["--out", str(tmp_path / "o.jsonl")]
    for columns, message in (("audio=name", "t.csv: no column 'name' (the header has 'path', 'label')"),
                             ("emotion=label", "must name the audio column"),
                             ("audio=path,gender=label", "unknown field 'gender'")):
        assert main(["data", "import", "csv", str(tmp_path / "t.csv"), "--columns", columns, *out]) != 0
        assert message in capsys.readouterr().err


def test_nemo_manifests_as_the_leaderboard_ships_its_test_sets(tmp_path):
    """The leaderboard's datasets/*.json lines: audio_filepath with a {data_folder} placeholder,
    duration, text, and an id (but in Casablanca's)."""
    audio = tmp_path / "wavs"
    write_clip(audio / "sada_test" / "6k_SBA_107_0-seg_3_990-14_890.wav", 0.5)
    write_clip(audio / "casablanca_test" / "11175_3.wav", 0.4)
    lines = [
        {"audio_filepath": "{data_folder}/sada_test/6k_SBA_107_0-seg_3_990-14_890.wav", "duration": 0.5,
         "text": "ووضح كلامك يا مغيث", "id": "6k_SBA_107_0-seg_3_990-14_890"},
        {"audio_filepath": "{data_folder}/casablanca_test/11175_3.wav", "duration": 0.4, "text": "واش كاين شي"},
        {"audio_filepath": "{data_folder}/casablanca_test/missing.wav", "duration": 1.0, "text": "لا"},
        {"audio_filepath": "{data_folder}/casablanca_test/11175_3.wav", "duration": 0.4, "text": "  "},
    ]
    manifest = tmp_path / "leaderboard.json"
    manifest.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{not json\n", encoding="utf-8")
    rows, skipped = _import(["nemo", str(manifest), "--data-folder", str(audio), "--split", "test"], tmp_path, "lb")
    assert {r["id"]: r["transcript"] for r in rows.values()} == {"6k_SBA_107_0-seg_3_990-14_890": "ووضح كلامك يا مغيث",
                                                                "11175_3": "واش كاين شي"}
    assert {r["split"] for r in rows.values()} == {"test"}
    assert sorted(s["reason"] for s in skipped) == ["audio file not found", "empty transcript", "not a JSON object"]
    out = tmp_path / "x.jsonl"
    assert main(["data", "import", "nemo", str(manifest), "--out", str(out), "--quiet"]) != 0  # the placeholder unfilled
