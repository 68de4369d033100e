import json

import pytest

from nabra.cli import main
from nabra.corpus.importers import ImportOptions, import_corpus
from nabra.corpus.importers.adi import DEFAULT_REGIONS, country_labels, load_mapping
from nabra.corpus.labels import DIALECTS
from nabra.errors import NabraError
from nabra.testing import write_clip

ADI17 = ("ALG", "EGY", "IRA", "JOR", "KSA", "KUW", "LEB", "LIB", "MAU", "MOR", "OMA", "PAL", "QAT",
         "SUD", "SYR", "UAE", "YEM")


@pytest.fixture
def adi17(tmp_path):
    """ADI-17 as released: train_segments/<COUNTRY>/ and flat dev_segments/ with a label list."""
    root = tmp_path / "adi17"
    for country, name in (("EGY", "e1"), ("SUD", "s1"), ("IRA", "i1"), ("XYZ", "x1")):
        write_clip(root / "train_segments" / country / f"{name}.wav", 0.3)
    write_clip(root / "train_segments" / "loose.wav", 0.3)  # not in a country folder
    (root / "train_segments" / "EGY" / "notes.txt").write_text("not audio")
    for name in ("d1", "d2"):
        write_clip(root / "dev_segments" / f"{name}.wav", 0.3)
    (root / "adi17_official_dev_label.txt").write_text(
        "id label\nd1 MOR\nd2 YEM\nd3 LEB\nd4\n", encoding="utf-8")
    return root


def test_every_adi17_country_maps_to_a_region():
    assert set(ADI17) <= set(DEFAULT_REGIONS)
    assert set(DEFAULT_REGIONS.values()) <= set(DIALECTS.names)
    assert DEFAULT_REGIONS["IRA"] == DEFAULT_REGIONS["IRQ"] == "GLF"


def test_adi17_to_regions(adi17, tmp_path, import_checked):
    report, utts = import_checked("adi", adi17, tmp_path / "adi.jsonl")
    assert report.seen == 9
    assert dict(report.reasons) == {"unknown dialect label": 1, "not inside a label folder (depth 1)": 1,
                                    "audio file not found": 1, "malformed line (expected <utt> <label>)": 1}
    assert {k: (u.dialect, u.split) for k, u in utts.items()} == {
        "EGY-e1": ("EGY", "train"), "SUD-s1": ("EGY", "train"), "IRA-i1": ("GLF", "train"),
        "d1": ("NOR", "dev"), "d2": ("GLF", "dev")}


def test_keep_country(adi17, tmp_path, import_checked):
    labels = country_labels(load_mapping(None))
    report, utts = import_checked("adi", adi17, tmp_path / "adi.jsonl", ImportOptions(dialects=labels), keep_country=True)
    assert {u.dialect for u in utts.values()} == {"EGY", "SUD", "IRA", "MOR", "YEM"}
    assert report.reasons["unknown dialect label"] == 1


def test_mapping_file_overrides_and_drops(adi17, tmp_path, import_checked):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"SUD": "NOR", "YEM": None, "XYZ": "MSA"}))
    report, utts = import_checked("adi", adi17, tmp_path / "adi.jsonl", mapping=load_mapping(str(mapping)))
    assert utts["SUD-s1"].dialect == "NOR" and utts["XYZ-x1"].dialect == "MSA"
    assert "d2" not in utts and report.reasons["unknown dialect label"] == 1


def test_adi5_layout(tmp_path, import_checked):
    root = tmp_path / "adi5"
    for split in ("train", "dev"):
        for region in ("EGY", "GLF", "LAV", "NOR", "MSA"):
            write_clip(root / split / "wav" / region / f"{split}_{region}.wav", 0.2)
    report, utts = import_checked("adi", root, tmp_path / "adi5.jsonl")
    assert report.seen == 10 and not report.skipped
    assert utts["NOR-dev_NOR"].dialect == "NOR" and utts["NOR-dev_NOR"].split == "dev"


def test_list_file_mode(tmp_path, import_checked):
    write_clip(tmp_path / "wavs" / "u1.wav", 0.2)
    (tmp_path / "list.txt").write_text("u1 KSA\n", encoding="utf-8")
    _, utts = import_checked("adi", None, tmp_path / "a.jsonl", list_file=str(tmp_path / "list.txt"),
                         audio_dir=str(tmp_path / "wavs"), split="test")
    assert (utts["u1"].dialect, utts["u1"].split) == ("GLF", "test")


def test_missing_source(tmp_path):
    with pytest.raises(NabraError, match=r"(?s)nope: not found; expected layout:.*ADI-17"):
        import_corpus("adi", tmp_path / "nope", tmp_path / "a.jsonl")
    (tmp_path / "flat").mkdir()
    with pytest.raises(NabraError, match="no ADI layout found"):
        import_corpus("adi", tmp_path / "flat", tmp_path / "a.jsonl")


def test_cli_keep_country_prints_the_label_set(adi17, tmp_path, capsys):
    out = tmp_path / "adi.jsonl"
    assert main(["data", "import", "adi", str(adi17), "--out", str(out), "--keep-country", "--quiet"]) == 0
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint.startswith("dialect labels are country codes: validate with --dialects ALG,")
    assert main(["data", "validate", str(out), "--dialects", hint.split()[-1]]) == 0


# MGB-3 ADI, as QCRI publishes its lists (github.com/qcri/dialectID): the test set's `data/test.MGB3/reference`
# holds `<id> <digit>` with ids `<recording>_<F|M>_<speaker>_<start>_<end>` (two decimals each), the digits
# 1-5 being EGY GLF LAV MSA NOR (the order of its run.sh and evaluation/README.md); its `wav.lst` names
# `wav/<id>.wav`. The VarDial 2017 dev set lies one folder per dialect (`dev/EGY/<rec>__27.55_36.02.wav`),
# under `dev.vardial2017/` in that repository's data folder.
MGB3_REFERENCE = """\
0bc338817a75e79a50f44e3726dbe8d3_F_0002_2782.80_2790.66 1
0bc338817a75e79a50f44e3726dbe8d3_F_0002_2827.63_2832.97 1
0e17f62bf27a3043d69a365b3a23af96_F_0002_0.30_25.72 4
0e17f62bf27a3043d69a365b3a23af96_F_0002_0.30_25.95 4
a4505972a3c1e32db82a09e979b7942e_M_0019_1415.19_1461.20 5
"""
MGB3_DIGITS = {"1": "EGY", "2": "GLF", "3": "LAV", "4": "MSA", "5": "NOR"}


def test_mgb3_list_ids_keep_their_decimals(tmp_path, import_checked):
    ids = [line.split()[0] for line in MGB3_REFERENCE.splitlines()]
    for uid in ids:
        write_clip(tmp_path / "test.MGB3" / "wav" / f"{uid}.wav", 0.2)
    (tmp_path / "test.MGB3" / "reference").write_text(MGB3_REFERENCE)
    mapping = tmp_path / "mgb3.json"
    mapping.write_text(json.dumps(MGB3_DIGITS))
    report, utts = import_checked("adi", None, tmp_path / "t.jsonl", list_file=str(tmp_path / "test.MGB3" / "reference"),
                                  audio_dir=str(tmp_path / "test.MGB3" / "wav"), split="test",
                                  mapping=load_mapping(str(mapping)))
    assert not report.skipped and sorted(utts) == sorted(ids)  # nothing cut at a decimal point, nothing collides
    assert utts[ids[2]].dialect == "MSA" and utts[ids[4]].dialect == "NOR"
    assert utts[ids[0]].audio == str(tmp_path / "test.MGB3" / "wav" / f"{ids[0]}.wav")


def test_vardial2017_split_folders(tmp_path, import_checked):
    root = tmp_path / "adi"
    write_clip(root / "dev.vardial2017" / "EGY" / "04d3ad10aceb69fcfb3a55d102ba7cff__27.55_36.02.wav", 0.2)
    write_clip(root / "train.vardial2017" / "LAV" / "0501982b07698c64b559f0d25b5b0c8b__31.88_53.81.wav", 0.2)
    (root / "features").mkdir()  # no split folder: said, not silently passed over
    report, utts = import_checked("adi", root, tmp_path / "a.jsonl")
    assert {u.id: (u.dialect, u.split) for u in utts.values()} == {
        "EGY-04d3ad10aceb69fcfb3a55d102ba7cff__27.55_36.02": ("EGY", "dev"),
        "LAV-0501982b07698c64b559f0d25b5b0c8b__31.88_53.81": ("LAV", "train")}
    assert any("features" in note and "not imported" in note for note in report.notes)
