"""data.augment in the training path: the clips a step trains on are augmented (seeded per (seed, example,
epoch)), the clean clips everywhere else, and the length estimates plan for the slowest speed."""

import torch

from nabra.config import load_config
from nabra.train import setup


def quiet(*_):
    pass


def test_training_clips_are_augmented_and_budgets_plan_for_the_slowest_speed(make_config):
    aug = {"speed": {"prob": 1.0, "factors": [0.8]}, "noise": {"prob": 1.0, "snr": [0, 0]}}
    plain = setup(load_config(make_config("plain")), log=quiet)
    slow = setup(load_config(make_config("slow", data={"augment": aug})), log=quiet)
    try:
        assert plain.augmenter is None and slow.augmenter is not None
        audio = [i for i, ex in enumerate(slow.data.train) if ex.audio]
        # a clip 1/0.8 as long has more placeholders: the estimates (micro-batch budgets, max_length) plan for it
        assert (slow.data.lengths[audio] > plain.data.lengths[audio]).all()
        assert (slow.data.lengths >= plain.data.lengths).all()
        exs = [slow.data.train[i] for i in audio[:3]]
        clean, noisy = slow._batch(exs), slow._batch(exs, augment=True)
        frames = noisy["feature_attention_mask"].sum(1).float() / clean["feature_attention_mask"].sum(1).float()
        assert torch.allclose(frames, torch.full_like(frames, 1 / 0.8), atol=0.02)  # the placeholders follow
        assert noisy["input_ids"].shape[1] > clean["input_ids"].shape[1]
        again = slow._batch(exs, augment=True)
        assert torch.equal(again["input_features"], noisy["input_features"])  # same step, same audio
        slow.step += 10 * len(slow.data.train)  # ten epochs later: another draw
        later = slow._batch(exs, augment=True)
        assert not torch.equal(later["input_features"], noisy["input_features"])
        # the dev clips, the filler and ADS's embeddings read clean audio: _batch without augment is the plain one,
        # and augmenting left the decoded (cached) waveforms as they were
        assert torch.equal(plain._batch(exs)["input_features"], clean["input_features"])
        assert torch.equal(slow._batch(exs)["input_features"], clean["input_features"])
    finally:
        plain.cleanup()
        slow.cleanup()


def test_a_run_draws_its_noise_and_rooms_from_the_recordings_it_names(make_config, tmp_path):
    # data.augment.noise.recordings / reverb.rirs: folders of audio here (a MUSAN list works alike, tested with
    # the importer); set-up reads them once and says what it loaded.
    import numpy as np
    import soundfile as sf

    (tmp_path / "noise").mkdir()
    (tmp_path / "rooms").mkdir()
    for i in range(3):
        sf.write(tmp_path / "noise" / f"noise-free-sound-{i:04d}.wav", 0.1 * np.random.default_rng(i).standard_normal(32000), 16000)
    rir = np.zeros(4000)
    rir[0], rir[800] = 1.0, 0.4
    sf.write(tmp_path / "rooms" / "Room001-00001.wav", rir, 16000)
    aug = {"noise": {"prob": 1.0, "snr": [0, 0], "sources": ["recordings"], "recordings": [str(tmp_path / "noise")]},
           "reverb": {"prob": 1.0, "rirs": [str(tmp_path / "rooms")]}}
    said = []
    recipe = setup(load_config(make_config("recorded", data={"augment": aug})), log=said.append)
    try:
        assert any("3 noise recordings" in line and "1 impulse response" in line for line in said)
        exs = [ex for ex in recipe.data.train if ex.audio][:2]
        clean, noisy = recipe._batch(exs), recipe._batch(exs, augment=True)
        assert not torch.equal(clean["input_features"], noisy["input_features"])
    finally:
        recipe.cleanup()
