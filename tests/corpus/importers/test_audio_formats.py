"""Every format an importer picks up loads through the one loader (`load_audio`), segments too."""

import numpy as np
import pytest

from nabra.corpus.audio import audio_info, load_audio
from nabra.testing import tone, write_clip

av = pytest.importorskip("av")


def encode_with_pyav(path, container, codec, seconds=1.5, rate=48000):
    """Encode a mono tone with FFmpeg's encoders (PyAV), in 20 ms frames."""
    x = tone(seconds, rate)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        for i in range(0, x.size, 960):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, i:i + 960]), format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.mark.parametrize(("name", "container", "codec"), [
    ("a.m4a", "mp4", "aac"), ("a.aac", "adts", "aac"), ("a.opus", "opus", "libopus")])
def test_pyav_formats_load(tmp_path, name, container, codec):
    path = encode_with_pyav(tmp_path / name, container, codec)
    x = load_audio(path)
    # AAC adds ~21 ms of encoder priming and pads the last frame: within the 50 ms the checks allow.
    assert abs(x.size / 16000 - 1.5) < 0.05
    assert abs(audio_info(path).duration - 1.5) < 0.05
    assert np.sqrt(np.mean(x[4000:20000] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)  # the tone survives
    assert abs(load_audio(path, offset=0.5, duration=0.5).size - 8000) <= 1


def test_ogg_opus_through_libsndfile(tmp_path):
    path = write_clip(tmp_path / "a.ogg", 1.0, sample_rate=48000, fmt="OGG", subtype="OPUS")
    assert load_audio(path).size == 16000
    assert audio_info(path).duration == pytest.approx(1.0)


@pytest.mark.parametrize(("suffix", "fmt", "rate"), [(".mp3", "MP3", 44100), (".flac", "FLAC", 16000),
                                                     (".ogg", "OGG", 22050), (".wav", "WAV", 8000)])
def test_segment_inside_a_long_file(tmp_path, suffix, fmt, rate):
    path = write_clip(tmp_path / f"long{suffix}", 4.0, sample_rate=rate, fmt=fmt)
    seg = load_audio(path, offset=1.0, duration=2.0)
    assert abs(seg.size - 32000) <= 2
