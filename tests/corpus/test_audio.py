import numpy as np
import pytest
import soundfile as sf

from nabra.corpus.audio import audio_info, load_audio, probe_duration, save_wav
from nabra.errors import AudioError
from nabra.testing import tone, write_clip


def test_wav_16k_mono_loads_unchanged(tmp_path):
    path = write_clip(tmp_path / "a.wav", 1.0, subtype="FLOAT")
    x = load_audio(path)
    assert x.dtype == np.float32 and x.shape == (16000,)
    np.testing.assert_allclose(x, tone(1.0), atol=1e-6)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_other_rates_are_resampled_to_16k(tmp_path, sr):
    path = write_clip(tmp_path / f"a{sr}.wav", 2.0, sample_rate=sr, freq=440)
    x = load_audio(path)
    assert abs(x.size - 32000) <= 1
    # The tone survives resampling: its spectral peak is still at 440 Hz.
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 16000 / x.size - 440) < 2


def test_stereo_is_averaged_to_mono(tmp_path):
    path = write_clip(tmp_path / "s.wav", 1.0, channels=2, subtype="FLOAT")
    x = load_audio(path)
    assert x.ndim == 1 and x.size == 16000
    np.testing.assert_allclose(x, tone(1.0, channels=2).mean(axis=1), atol=1e-6)


@pytest.mark.parametrize(("suffix", "fmt"), [(".flac", "FLAC"), (".ogg", "OGG"), (".mp3", "MP3")])
def test_compressed_formats(tmp_path, suffix, fmt):
    path = write_clip(tmp_path / f"a{suffix}", 1.5, sample_rate=44100 if fmt == "MP3" else 16000, fmt=fmt)
    x = load_audio(path)
    assert abs(x.size / 16000 - 1.5) < 0.06  # mp3 adds encoder padding
    assert abs(probe_duration(path) - 1.5) < 0.06


def test_segment_of_a_long_file(tmp_path):
    path = tmp_path / "long.wav"
    ramp = np.linspace(-0.5, 0.5, 16000 * 10, dtype=np.float32)
    sf.write(path, ramp, 16000, subtype="FLOAT")
    seg = load_audio(path, offset=2.0, duration=3.0)
    np.testing.assert_array_equal(seg, ramp[32000:80000])


def test_offset_past_the_end_names_the_file(tmp_path):
    path = write_clip(tmp_path / "a.wav", 1.0)
    with pytest.raises(AudioError, match=r"a\.wav: offset 5\.000 s is past the end"):
        load_audio(path, offset=5.0)


def test_header_probe_does_not_decode(tmp_path):
    path = write_clip(tmp_path / "a.wav", 3.0, sample_rate=8000, channels=2)
    info = audio_info(path)
    assert (info.sample_rate, info.frames, info.channels) == (8000, 24000, 2)
    assert info.duration == 3.0


def test_missing_and_corrupt_files_raise_audio_error_naming_the_file(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioError, match=r"corrupt\.wav: not a readable audio file"):
        load_audio(bad)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(AudioError, match=r"notes\.wav: not a readable audio file"):
        audio_info(text)
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_save_wav_writes_16bit_mono(tmp_path):
    path = tmp_path / "out" / "x.wav"
    save_wav(path, tone(0.5) * 5)  # clipped, not wrapped
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert np.abs(load_audio(path)).max() <= 1.0


def test_a_header_beyond_the_bounds_is_refused_before_decoding(tmp_path):
    """Issue 28 #2: a 336-KB FLAC (60 s of silence at 655,350 Hz, 8 channels) cost the server 1.36 GB
    to decode. Rates above 192 kHz and more than 8 channels are refused from the header."""
    import numpy as np
    import pytest
    import soundfile as sf

    from nabra.corpus.audio import MAX_SAMPLE_RATE, audio_info, load_audio
    from nabra.errors import AudioError

    bomb = tmp_path / "bomb.flac"
    sf.write(bomb, np.zeros((655_350 * 60, 8), np.int16), 655_350, subtype="PCM_16")
    assert bomb.stat().st_size < 2_000_000
    for read in (audio_info, load_audio):
        with pytest.raises(AudioError, match=f"655,350 Hz is above the {MAX_SAMPLE_RATE:,} Hz"):
            read(bomb)
    many = tmp_path / "many.wav"
    sf.write(many, np.zeros((1600, 12), np.float32), 16000)
    with pytest.raises(AudioError, match="12 channels: more than the 8"):
        load_audio(many)


def test_decoding_memory_is_bounded_by_the_result_not_the_file(tmp_path):
    """A 20-s, 8-channel, 192-kHz file is 123 MB of float32 decoded whole; read block by block it costs
    the 16-kHz mono result (1.3 MB) and a block — and gives the same samples."""
    import tracemalloc

    import numpy as np
    import soundfile as sf
    import soxr

    from nabra.corpus.audio import load_audio

    rng = np.random.default_rng(0)
    data = (0.1 * rng.standard_normal((192_000 * 20, 8))).astype(np.float32)
    path = tmp_path / "big.wav"
    sf.write(path, data, 192_000, subtype="FLOAT")
    expected = soxr.resample(data.mean(axis=1), 192_000, 16_000, quality="HQ")
    del data
    tracemalloc.start()
    got = load_audio(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(got, expected)
    assert peak < 30_000_000, peak


def test_why_a_file_cannot_be_read_is_said(tmp_path):
    """Issue 28 #8: a symlink loop was "not found"; a file without read permission was libsndfile's
    "System error."."""
    import os

    import pytest

    from nabra.corpus.audio import audio_info, load_audio
    from nabra.errors import AudioError
    from nabra.testing import write_clip

    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    with pytest.raises(AudioError, match="cannot read the audio file \\(Too many levels of symbolic links\\)"):
        audio_info(loop)
    if os.geteuid() != 0:  # root reads a file of mode 000
        locked = write_clip(tmp_path / "locked.wav", 0.2)
        locked.chmod(0)
        with pytest.raises(AudioError, match="permission denied"):
            load_audio(locked)
