"""transformers' own Qwen2.5-Omni processing path (30-s max-length padding), audio only.

Used as the reference Nabra's collator is checked against, and as the baseline of the collation
benchmark. The stock processor refuses to be built without image/video processors (which need
torchvision); this subclass lets those two be absent and touches nothing else.
"""

from __future__ import annotations

import numpy as np
from transformers import Qwen2_5OmniProcessor

from nabra.corpus.audio import SAMPLE_RATE
from nabra.model.tokens import answer_text, prompt_text


class AudioOnlyOmniProcessor(Qwen2_5OmniProcessor):
    """``Qwen2_5OmniProcessor`` with the vision processors left out."""

    @classmethod
    def from_parts(cls, feature_extractor, tokenizer) -> AudioOnlyOmniProcessor:
        return cls(None, None, feature_extractor, tokenizer)

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument is None and argument_name in ("image_processor", "video_processor"):
            return None
        return super().check_argument_for_proper_class(argument_name, argument)


def reference_batch(processor: AudioOnlyOmniProcessor, system: str, examples, waveforms: list[np.ndarray],
                    *, with_answer: bool = True) -> dict:
    """The batch transformers builds for audio examples (one ≤30 s clip each), 30-s padded."""
    texts = []
    for ex in examples:
        text = prompt_text(system, ex.instruction, [1])  # one placeholder: the processor expands it
        texts.append(text + (answer_text(ex.target) if with_answer else ""))
    return processor(text=texts, audio=waveforms, return_tensors="pt", padding=True, sampling_rate=SAMPLE_RATE)
