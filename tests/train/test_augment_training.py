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
