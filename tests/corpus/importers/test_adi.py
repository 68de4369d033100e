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
