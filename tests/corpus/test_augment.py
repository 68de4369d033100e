import numpy as np
import pytest

from nabra.corpus.augment import (
    AugmentConfig,
    Augmenter,
    add_noise,
    babble,
    coloured_noise,
    power,
    reverberate,
    rng_for,
    speed,
    synthetic_rir,
)
from nabra.errors import NabraError

SR = 16_000


def tone(seconds=1.0, hz=220.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.05 * np.sin(2 * np.pi * 3 * hz * t)).astype(np.float32)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 20.0])
def test_the_snr_asked_is_the_snr_of_the_mixed_signal(snr):
    clean = tone()
    noise = coloured_noise(np.random.default_rng(0), clean.size, "pink")
    mixed = add_noise(clean, noise, snr)
    measured = 10 * np.log10(power(clean) / power(mixed.astype(np.float64) - clean.astype(np.float64)))
    assert abs(measured - snr) < 0.1


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_the_duration_by_the_factor(factor):
    wave = tone(2.0)
    out = speed(wave, factor)
    assert abs(out.size - wave.size / factor) <= 2 and out.dtype == np.float32
    # and the pitch with it: the tone's peak frequency moves by the factor
    peak = np.argmax(np.abs(np.fft.rfft(out))) * SR / out.size
    assert abs(peak - 220.0 * factor) < 2.0
    assert speed(wave, 1.0) is wave


def test_reverberation_keeps_the_length_and_the_level_and_smears_the_signal():
    wave = tone(0.5)
    rir = synthetic_rir(np.random.default_rng(1), 0.5)
    out = reverberate(wave, rir)
    assert out.size == wave.size and abs(power(out) / power(wave) - 1) < 1e-5
    assert not np.allclose(out, wave, atol=1e-3)
    # the envelope of the impulse response falls about 60 dB over rt60
    assert abs(np.linalg.norm(rir) - 1) < 1e-5 and rir.size == int(0.5 * SR)
    head, tail = power(rir[1:800]), power(rir[-800:])
    assert 10 * np.log10(head / tail) > 40


def test_noise_colours_have_their_spectral_slopes():
    rng = np.random.default_rng(3)
    for colour, slope in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        noise = coloured_noise(rng, 1 << 16, colour)
        assert abs(power(noise) - 1) < 1e-6
        spec = np.abs(np.fft.rfft(noise)) ** 2
        f = np.arange(spec.size)
        band = (f > 50) & (f < 20_000)
        fitted = np.polyfit(np.log(f[band]), np.log(spec[band]), 1)[0]
        assert abs(fitted - slope) < 0.15, (colour, fitted)
    with pytest.raises(NabraError, match="unknown noise colour 'blue'"):
        coloured_noise(rng, 10, "blue")


def test_babble_is_the_other_talkers_at_equal_power_as_long_as_the_clip():
    rng = np.random.default_rng(4)
    talkers = [tone(0.3, 200), 0.01 * tone(1.5, 300), tone(0.7, 410)]
    mix = babble(rng, talkers, 12_345)
    assert mix.size == 12_345 and abs(power(mix) - 1) < 1e-5
    spec = np.abs(np.fft.rfft(mix))
    freqs = np.fft.rfftfreq(mix.size, 1 / SR)
    for hz in (200, 300, 410):  # the quiet talker is heard as much as the loud ones
        assert spec[np.abs(freqs - hz) < 3].max() > 0.2 * spec.max()


def test_the_same_seed_example_and_epoch_give_the_same_audio_bit_for_bit():
    cfg = AugmentConfig(speed={"prob": 1.0, "factors": [0.9, 1.1]}, reverb={"prob": 1.0}, noise={"prob": 1.0},
                        gain={"prob": 1.0})
    wave = tone(1.0)
    a, done_a = Augmenter(cfg, seed=7)(wave, "synth-000123", epoch=2)
    b, done_b = Augmenter(cfg, seed=7)(wave.copy(), "synth-000123", epoch=2)
    assert a.tobytes() == b.tobytes() and done_a == done_b
    assert done_a.speed in (0.9, 1.1) and done_a.rt60 and done_a.snr is not None and done_a.gain_db is not None
    assert abs(a.size - wave.size / done_a.speed) <= 2  # the placeholders follow the new length
    others = [Augmenter(cfg, seed=7)(wave, "synth-000123", epoch=3)[0], Augmenter(cfg, seed=8)(wave, "synth-000123", 2)[0],
              Augmenter(cfg, seed=7)(wave, "synth-000124", epoch=2)[0]]
    assert all(o.size != a.size or o.tobytes() != a.tobytes() for o in others)
    # the generator is stable across processes: no salted hash in it
    assert rng_for(7, "synth-000123", 2).integers(1 << 30) == rng_for(7, "synth-000123", 2).integers(1 << 30)


def test_off_by_default_and_each_knob_drawn_whatever_the_others():
    wave = tone(0.2)
    cfg = AugmentConfig()
    assert not cfg.active and cfg.max_stretch == 1.0 and cfg.describe() == "off"
    out, done = Augmenter(cfg)(wave, "x", 0)
    assert out is wave and done.speed == 1.0 and done.snr is None
    # turning reverb on leaves the noise's SNR draw as it was
    noisy = AugmentConfig(noise={"prob": 1.0})
    both = AugmentConfig(noise={"prob": 1.0}, reverb={"prob": 1.0})
    assert Augmenter(noisy)(wave, "x", 0)[1].snr == Augmenter(both)(wave, "x", 0)[1].snr
    on = AugmentConfig(speed={"prob": 0.5, "factors": [0.8, 1.0, 1.2]}, noise={"prob": 0.2, "snr": [0, 10]})
    assert on.max_stretch == pytest.approx(1.25)
    assert on.describe() == "speed 0.5 x0.8/1/1.2; noise 0.2 (coloured, babble) SNR 0-10 dB"


def test_recordings_and_real_rirs_are_drawn_when_given():
    wave = tone(0.5)
    rir = np.zeros(400, dtype=np.float32)
    rir[0], rir[200] = 1.0, 0.5
    cfg = AugmentConfig(reverb={"prob": 1.0}, noise={"prob": 1.0, "snr": [10, 10], "sources": ["recordings"],
                                                     "recordings": ["read by from_config, not here"]})
    out, done = Augmenter(cfg, rirs=[rir], noises=[tone(0.1, 1000)])(wave, "x", 0)
    assert done.noise == "recording" and done.rt60 is None and out.size == wave.size
    with pytest.raises(NabraError, match="has no recordings"):
        Augmenter(cfg)
    talk = AugmentConfig(noise={"prob": 1.0, "snr": [10, 10], "sources": ["babble"]})
    out, done = Augmenter(talk)(wave, "x", 0, talkers=[tone(0.2, 300)])
    assert done.noise == "babble" and done.snr == 10
    assert Augmenter(talk)(wave, "x", 0, talkers=[])[1].noise in ("white", "pink", "brown")  # none in the batch


@pytest.mark.parametrize("bad, message", [
    ({"noise": {"prob": 1.5}}, r"augment.noise.prob must be within 0..1"),
    ({"speed": {"factors": [0.0, 1.0]}}, r"augment.speed.factors must be positive"),
    ({"noise": {"snr": [20, 5]}}, r"augment.noise.snr must be a \[low, high\] range"),
    ({"noise": {"colours": ["blue"]}}, r"augment.noise.colours: unknown \['blue'\]"),
    ({"reverb": {"rt60": [0, 1]}}, r"augment.reverb.rt60 must be positive"),
    ({"noise": {"sources": ["musan"]}}, r"augment.noise.sources: unknown \['musan'\]"),
])
def test_a_bad_setting_is_refused_naming_it(bad, message):
    with pytest.raises(NabraError, match=message):
        AugmentConfig(**bad)


def test_a_batch_babbles_with_its_other_speakers_only_and_leaves_the_decoded_clips_alone():
    from nabra.tasks import Example

    cfg = AugmentConfig(noise={"prob": 1.0, "sources": ["babble"], "snr": [0, 0]})
    waves = [tone(0.3, hz) for hz in (200, 300, 400, 500, 600, 700)]
    kept = [w.copy() for w in waves]
    exs = [Example(f"u{i}#asr", f"u{i}", "asr", "i", "t", audio=f"u{i}.wav") for i in range(6)]
    text = Example("t#tsum", "t", "tsum", "i", "t")
    speaker_of = {"u0": "a", "u1": "a", "u2": "b"}  # u3..u5 name no speaker: each its own voice
    out = Augmenter(cfg).batch([*zip(exs, waves, strict=True), (text, None)], epoch=0, speaker_of=speaker_of)
    assert out[-1] == (text, None) and all(a.tobytes() == b.tobytes() for a, b in zip(waves, kept, strict=True))
    # u0's babble: up to four of u2..u5 (never u1, the same speaker): u1's 300 Hz is absent from what was added
    added = out[0][1].astype(np.float64) - waves[0]
    spec, freqs = np.abs(np.fft.rfft(added)), np.fft.rfftfreq(added.size, 1 / SR)
    assert spec[np.abs(freqs - 300) < 4].max() < 0.05 * spec.max()
    assert sum(spec[np.abs(freqs - hz) < 4].max() > 0.2 * spec.max() for hz in (400, 500, 600, 700)) == 4
