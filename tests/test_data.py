"""A run's data preparation (nabra.data)."""

from collections import Counter

from nabra.config import RunConfig
from nabra.corpus.manifest import Utterance
from nabra.data import dev_subset, examples


def _sorted_by_label(n_per_label=20):
    """Dev utterances as an importer writes them: one label folder after the other."""
    utts = [Utterance(id=f"{d}-{i}", audio=f"{d}/{i}.wav", duration=1.0 + i % 3, dialect=d, emotion="neutral",
                      transcript="نص", split="dev")
            for d in ("EGY", "GLF", "LAV", "NOR", "MSA") for i in range(n_per_label)]
    return examples(utts, RunConfig(), "dev", ["asr", "did", "ser"])


def test_dev_subset_is_stratified_by_label_and_seeded():
    dev = _sorted_by_label()
    subset = dev_subset(dev, per_task=10, seed=0)
    assert Counter(ex.task for ex in subset) == {"asr": 10, "did": 10, "ser": 10}
    assert Counter(ex.label for ex in subset if ex.task == "did") == dict.fromkeys(("EGY", "GLF", "LAV", "NOR", "MSA"), 2)
    assert dev_subset(dev, 10, seed=0) == subset  # fixed for a run
    assert dev_subset(dev, 10, seed=1) != subset
    # asr draws across the whole split, not the first lines of it
    assert len({ex.utt_id.split("-")[0] for ex in subset if ex.task == "asr"}) > 1


def test_a_rare_label_gives_its_turns_to_the_others():
    dev = [ex for ex in _sorted_by_label(4) if ex.task == "did" and (ex.label != "MSA" or ex.utt_id == "MSA-0")]
    subset = dev_subset(dev, per_task=9, seed=3)
    assert len(subset) == 9 and Counter(ex.label for ex in subset)["MSA"] == 1
