"""MUSAN and RIRS_NOISES as recordings lists for data.augment, on trees in the releases' layouts.

The layouts are the releases' own as their readers document them: lhotse's ``recipes/musan.py`` (parts
music/noise/speech, ``*.wav`` under each part's subsets, music's ``ANNOTATIONS`` lines ``<id> <genres> <Y|N>
<artist>``, the first four fields kept) and ``recipes/rir_noise.py`` (``simulated_rirs/{small,medium,large}room``
with ids ``<size>-<stem>``, ``real_rirs_isotropic_noises`` split by ``rir`` / ``noise`` in the file name,
``pointsource_noises``); audiomate's ``MusanReader`` reads the same MUSAN tree (ANNOTATIONS of 4 columns for
music — the artist with its spaces —, 3 for speech, none for noise; ``speech/us-gov`` has no ANNOTATIONS in the
release). File names are MUSAN's (``music-fma-0000.wav``, ``noise-free-sound-0000.wav``,
``speech-librivox-0000.wav``) and RIRS_NOISES' (``Room001-00001.wav``, ``RVB2014_type1_rir_largeroom1_near_angla.wav``,
``air_type1_air_binaural_aula_carolina_1_1_1_90_3.wav``). Where lhotse is installed, its recipes read the same trees and
the ids and durations must agree.
"""

import json

import numpy as np
import pytest
import soundfile as sf

from nabra.cli import main
from nabra.corpus.augment import AugmentConfig, Augmenter, power
from nabra.corpus.noise import (
    ListReport,
    NoiseBank,
    RirBank,
    collection,
    read_musan,
    read_recordings,
    read_rirs,
)
from nabra.errors import NabraError

SR = 16_000


def _wav(path, seconds, seed, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = (0.1 * rng.standard_normal((int(seconds * SR), channels))).astype(np.float32)
    sf.write(path, data if channels > 1 else data[:, 0], SR, subtype="PCM_16")


@pytest.fixture
def musan(tmp_path):
    root = tmp_path / "musan"
    files = {"music/fma/music-fma-0000.wav": 3.0, "music/fma/music-fma-0026.wav": 2.5,
             "music/hd-classical/music-hd-0000.wav": 4.0, "noise/free-sound/noise-free-sound-0000.wav": 1.5,
             "noise/sound-bible/noise-sound-bible-0000.wav": 0.5, "speech/librivox/speech-librivox-0000.wav": 2.0,
             "speech/us-gov/speech-us-gov-0000.wav": 2.2}
    for i, (rel, seconds) in enumerate(files.items()):
        _wav(root / rel, seconds, i)
    (root / "music/fma/ANNOTATIONS").write_text("music-fma-0000 blues Y Cullah\nmusic-fma-0026 rock,pop N Some Band\n")
    (root / "music/hd-classical/ANNOTATIONS").write_text("music-hd-0000 classical N Bach\n")
    (root / "speech/librivox/ANNOTATIONS").write_text("speech-librivox-0000 m english\n")
    # the release has no speech/us-gov/ANNOTATIONS (audiomate's MusanReader notes it missing)
    (root / "README").write_text("MUSAN\n")
    return root


@pytest.fixture
def rirs_noises(tmp_path):
    root = tmp_path / "RIRS_NOISES"
    sim = root / "simulated_rirs"
    for size, room in (("small", "Room001"), ("medium", "Room001"), ("large", "Room002")):
        _wav(sim / f"{size}room" / room / f"{room}-00001.wav", 0.3, hash(size) % 100)
        (sim / f"{size}room" / "rir_list").write_text(
            f"--rir-id {size}-{room}-00001 --room-id {size}-{room} RIRS_NOISES/simulated_rirs/{size}room/{room}/{room}-00001.wav\n")
    real = root / "real_rirs_isotropic_noises"
    _wav(real / "air_type1_air_binaural_aula_carolina_1_1_1_90_3.wav", 0.4, 7, channels=2)
    _wav(real / "RVB2014_type1_rir_largeroom1_near_angla.wav", 0.4, 8, channels=8)
    _wav(real / "RVB2014_type1_noise_largeroom1_1.wav", 1.0, 9, channels=8)
    _wav(real / "RWCP_type1_rir_circle_ane_imp110.wav", 0.4, 11)  # in no list: lhotse's rule by name
    (real / "rir_list").write_text(
        "--rir-id air_type1_air_binaural_aula_carolina_1_1_1_90_3 --room-id air_type1_air_binaural_aula_carolina "
        "RIRS_NOISES/real_rirs_isotropic_noises/air_type1_air_binaural_aula_carolina_1_1_1_90_3.wav\n"
        "--rir-id RVB2014_type1_rir_largeroom1_near_angla --room-id RVB2014_type1_rir_largeroom1 "
        "RIRS_NOISES/real_rirs_isotropic_noises/RVB2014_type1_rir_largeroom1_near_angla.wav\n")
    (real / "noise_list").write_text(
        "--noise-id RVB2014_type1_noise_largeroom1_1 --noise-type isotropic --bg-fg-type background "
        "--room-linkage RVB2014_type1_rir_largeroom1 RIRS_NOISES/real_rirs_isotropic_noises/RVB2014_type1_noise_largeroom1_1.wav\n")
    _wav(root / "pointsource_noises" / "noise-free-sound-0001.wav", 1.2, 10)
    (root / "pointsource_noises" / "noise_list").write_text(
        "--noise-id noise-free-sound-0001 --noise-type point-source --bg-fg-type foreground "
        "RIRS_NOISES/pointsource_noises/noise-free-sound-0001.wav\n")
    return root


def test_musan_import_lists_every_part_with_its_annotations(musan, tmp_path, capsys):
    out = tmp_path / "musan.jsonl"
    assert main(["data", "import", "musan", str(musan), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "listed 7 of 7" in printed and "music (music): 3" in printed
    recs = {r.id: r for r in read_recordings(out)}
    assert set(recs) == {"music-fma-0000", "music-fma-0026", "music-hd-0000", "noise-free-sound-0000",
                         "noise-sound-bible-0000", "speech-librivox-0000", "speech-us-gov-0000"}
    fma = recs["music-fma-0026"]
    assert (fma.kind, fma.subset, fma.duration) == ("music", "fma", 2.5)
    assert fma.extra == {"genres": ["rock", "pop"], "vocals": False, "artist": "Some Band"}  # the name whole
    assert recs["music-fma-0000"].extra["vocals"] is True
    assert recs["speech-librivox-0000"].extra == {"gender": "m", "language": "english"}
    assert recs["speech-us-gov-0000"].extra == {}
    assert recs["noise-sound-bible-0000"].kind == "noise"
    # never over what is there, unless asked
    assert main(["data", "import", "musan", str(musan), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["data", "import", "musan", str(musan), "--out", str(out), "--parts", "noise", "--force"]) == 0
    assert {r.kind for r in read_recordings(out)} == {"noise"}
    (tmp_path / "empty").mkdir()
    assert main(["data", "import", "musan", str(tmp_path / "empty"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "none of the MUSAN parts" in capsys.readouterr().err
    assert main(["data", "import", "musan", str(musan), "--out", str(musan / "in.jsonl")]) == 2
    assert "inside the release" in capsys.readouterr().err


def test_rirs_noises_import_tells_rooms_from_noises(rirs_noises, tmp_path):
    out = tmp_path / "rirs.jsonl"
    assert main(["data", "import", "rirs", str(rirs_noises), "--out", str(out)]) == 0
    recs = {r.id: r for r in read_recordings(out)}
    assert {i for i, r in recs.items() if r.part == "sim_rir"} == {"small-Room001-00001", "medium-Room001-00001",
                                                                   "large-Room002-00001"}
    assert {i for i, r in recs.items() if r.kind == "rir"} == {
        "small-Room001-00001", "medium-Room001-00001", "large-Room002-00001",
        "air_type1_air_binaural_aula_carolina_1_1_1_90_3", "RVB2014_type1_rir_largeroom1_near_angla",
        "RWCP_type1_rir_circle_ane_imp110"}
    assert recs["RVB2014_type1_rir_largeroom1_near_angla"].extra == {"room": "RVB2014_type1_rir_largeroom1"}
    assert recs["RVB2014_type1_noise_largeroom1_1"].part == "iso_noise"
    assert recs["noise-free-sound-0001"].part == "point_noise" and recs["noise-free-sound-0001"].kind == "noise"
    assert recs["RVB2014_type1_rir_largeroom1_near_angla"].channels == 8
    assert len(collection([out], ["rir"], folder_kind="rir")) == 6


def test_the_ids_and_durations_are_lhotses(musan, rirs_noises):
    recipes = pytest.importorskip("lhotse.recipes")
    ours = {r.id: r.duration for r in read_musan(musan, ListReport())}
    theirs = recipes.prepare_musan(musan)
    lhotse_ids = {r.id: r.duration for part in theirs.values() for r in part["recordings"]}
    assert ours == pytest.approx(lhotse_ids, abs=1e-3)
    sup = {s.id: s for s in theirs["music"]["supervisions"]}
    for rec in read_musan(musan, ListReport(), ["music"]):
        assert rec.extra["genres"] == sup[rec.id].custom["genres"] and rec.extra["vocals"] == sup[rec.id].custom["vocals"]
        assert rec.extra["artist"].split()[0] == sup[rec.id].speaker  # lhotse keeps the artist's first word
    ours_rir = {(r.part, r.id) for r in read_rirs(rirs_noises, ListReport())}
    theirs_rir = recipes.prepare_rir_noise(rirs_noises)
    # the same, but for the AIR responses: their names have no 'rir', so lhotse's rule leaves them out; the
    # release's rir_list names them
    assert ours_rir - {(part, r.id) for part, m in theirs_rir.items() for r in m["recordings"]} == {
        ("real_rir", "air_type1_air_binaural_aula_carolina_1_1_1_90_3")}


def test_training_noise_comes_from_the_recordings_at_the_snr(musan, rirs_noises, tmp_path):
    assert main(["data", "import", "musan", str(musan), "--out", str(tmp_path / "m.jsonl")]) == 0
    assert main(["data", "import", "rirs", str(rirs_noises), "--out", str(tmp_path / "r.jsonl")]) == 0
    cfg = AugmentConfig(noise={"prob": 1.0, "snr": [5.0, 5.0], "sources": ["recordings"],
                               "recordings": [str(tmp_path / "m.jsonl")], "kinds": ["noise"]},
                        reverb={"prob": 0.0, "rirs": [str(tmp_path / "r.jsonl")]})
    aug = Augmenter.from_config(cfg, seed=3)
    assert isinstance(aug.noises, NoiseBank) and len(aug.noises) == 2 and len(aug.rirs) == 6
    assert "2 noise recordings" in aug.sources() and "6 impulse responses" in aug.sources()
    clean = (0.2 * np.sin(np.arange(SR * 2) / 9.0)).astype(np.float32)  # longer than one of the noises: looped
    mixed, done = aug(clean, "utt-1", epoch=0)
    assert done.noise == "recording" and abs(10 * np.log10(power(clean) / power(mixed - clean)) - 5.0) < 0.1
    again, _ = aug(clean, "utt-1", epoch=0)
    assert np.array_equal(mixed, again)
    # 'recordings' without recordings (and the other way round) is refused by name
    with pytest.raises(NabraError, match="needs noise.recordings"):
        AugmentConfig(noise={"sources": ["recordings"]})
    with pytest.raises(NabraError, match="'recordings' in noise.sources"):
        AugmentConfig(noise={"recordings": ["m.jsonl"]})
    with pytest.raises(NabraError, match="no recording of kind speech"):
        collection([tmp_path / "r.jsonl"], ["speech"], folder_kind="noise")


def test_a_multichannel_room_gives_its_first_microphone(rirs_noises):
    rec = [r for r in read_rirs(rirs_noises, ListReport()) if r.channels == 8 and r.kind == "rir"]
    rir = RirBank(rec).rir(np.random.default_rng(0))
    first = sf.read(rec[0].audio, dtype="float32", always_2d=True)[0][:, 0]
    peak = int(np.argmax(np.abs(first)))
    assert np.allclose(rir, first[max(0, peak - SR // 1000):])  # from its direct path, one channel, not the mean


def test_a_recordings_list_with_a_bad_line_names_it(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "audio": "a.wav", "duration": 1, "kind": "noise"}) + "\n{\"id\": 1}\n")
    with pytest.raises(NabraError, match=r"bad.jsonl:2: not a recording line: no audio, duration, kind"):
        read_recordings(bad)


def test_an_evaluation_condition_can_draw_from_musan_and_real_rooms(musan, rirs_noises, tmp_path):
    from nabra.corpus.augment import Condition

    assert main(["data", "import", "musan", str(musan), "--out", str(tmp_path / "m.jsonl"), "--parts", "noise"]) == 0
    noisy = Condition.parse(f"noise:snr=5,source={tmp_path / 'm.jsonl'}")
    assert noisy.slug == "noise-snr_5-m"
    clean = (0.2 * np.sin(np.arange(SR) / 7.0)).astype(np.float32)
    a, b = noisy.apply(clean, "utt-1"), noisy.apply(clean, "utt-1")
    assert np.array_equal(a, b) and not np.array_equal(a, noisy.apply(clean, "utt-2"))
    assert abs(10 * np.log10(power(clean) / power(a - clean)) - 5.0) < 0.1
    room = Condition.parse(f"reverb:rirs={rirs_noises / 'simulated_rirs'}")
    assert room.name == f"reverb:rirs={rirs_noises / 'simulated_rirs'}" and "rt60" not in room.params
    wet = room.apply(clean, "utt-1")
    assert wet.size == clean.size and not np.array_equal(wet, clean)
