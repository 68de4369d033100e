"""The decoded-audio store: what training, evaluation and the aligner embeddings load for an utterance."""

import numpy as np
import soundfile as sf

from nabra.corpus.audio import load_audio
from nabra.corpus.importers import ImportOptions, import_corpus
from nabra.corpus.manifest import read_manifest
from nabra.corpus.validate import ValidationConfig, validate_manifest
from nabra.model.loader import AudioStore
from nabra.tasks import iter_examples


def kaldi_folder(root, seconds=2.61):
    """A Kaldi data folder as MGB-2 ships them: the first segment starts at 0.00."""
    wave = np.linspace(-0.5, 0.5, int(16000 * seconds), dtype=np.float32)
    (root / "wav").mkdir(parents=True)
    sf.write(root / "wav" / "rec.wav", wave, 16000, subtype="FLOAT")
    (root / "segments").write_text("rec_0001 rec 0.00 1.30\nrec_0002 rec 1.30 2.61\n", encoding="utf-8")
    (root / "text").write_text("rec_0001 mrHbA\nrec_0002 AlsIAm\n", encoding="utf-8")
    (root / "wav.scp").write_text("rec wav/rec.wav\n", encoding="utf-8")
    return wave


def test_a_segment_at_offset_zero_loads_only_its_span(tmp_path):
    wave = kaldi_folder(tmp_path / "dev")
    manifest = tmp_path / "dev.jsonl"
    import_corpus("mgb2", tmp_path / "dev", manifest, options=ImportOptions(check_audio=True), buckwalter=True)
    # data validate --check-audio accepts what the import accepted (it called the first line a bad duration)
    assert list(validate_manifest(manifest, ValidationConfig(check_audio=True))) == []
    utts = {u.id: u for u in read_manifest(manifest)}
    assert (utts["rec_0001"].offset, utts["rec_0001"].duration) == (0.0, 1.3)
    store = AudioStore(budget_mb=16, workers=2)
    examples = list(iter_examples(utts.values(), tasks=("asr",)))
    loaded = {ex.utt_id: w for ex, w in store.samples(examples)}
    store.close()
    np.testing.assert_array_equal(loaded["rec_0001"], wave[:20800])  # 1.30 s, not the whole 2.61 s
    np.testing.assert_array_equal(loaded["rec_0002"], wave[20800:])
    u = utts["rec_0001"]  # the embeddings' path: load_audio with the manifest's span
    assert load_audio(u.audio, offset=u.offset, duration=u.duration).size == 20800


def test_a_whole_file_duration_within_tolerance_is_the_whole_file(tmp_path):
    wave = kaldi_folder(tmp_path / "d", seconds=2.0)
    path = tmp_path / "d" / "wav" / "rec.wav"
    assert load_audio(path, duration=1.99).size == wave.size  # a rounded manifest value: nothing cut
    assert load_audio(path, duration=1.9).size == 1.9 * 16000  # shorter than the file: a segment
