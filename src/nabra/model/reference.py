"""transformers' own processing path of each family, audio only: Qwen2.5-Omni's (max-length
padding to the window), Qwen3-Omni's (padding to the longest clip).

Used as the reference Nabra's collator is checked against, and as the baseline of the collation
benchmark. The stock processors refuse to be built without image/video processors (which need
torchvision); these subclasses let those two be absent and touch nothing else.
"""

from __future__ import annotations

import numpy as np
from transformers import Qwen2_5OmniProcessor, Qwen3OmniMoeProcessor
from transformers.models.nemotron_h_omni import NemotronH_Omni_Reasoning_V3Processor

from nabra.corpus.audio import SAMPLE_RATE
from nabra.model.families import Family
from nabra.model.families.nemotron_h_omni import NEMOTRON_H_OMNI
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
from nabra.model.families.qwen3_omni import QWEN3_OMNI


class _AudioOnly:
    """Lets the image and video processors be ``None``."""

    @classmethod
    def from_parts(cls, feature_extractor, tokenizer):
        return cls(image_processor=None, video_processor=None, feature_extractor=feature_extractor, tokenizer=tokenizer)

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument is None and argument_name in ("image_processor", "video_processor"):
            return None
        return super().check_argument_for_proper_class(argument_name, argument)


class AudioOnlyOmniProcessor(_AudioOnly, Qwen2_5OmniProcessor):
    """``Qwen2_5OmniProcessor`` with the vision processors left out."""


class AudioOnlyQwen3OmniProcessor(_AudioOnly, Qwen3OmniMoeProcessor):
    """``Qwen3OmniMoeProcessor`` with the vision processors left out."""


class AudioOnlyNemotronOmniProcessor(_AudioOnly, NemotronH_Omni_Reasoning_V3Processor):
    """``NemotronH_Omni_Reasoning_V3Processor`` with the vision processors left out."""


PROCESSORS = {QWEN2_5_OMNI.name: AudioOnlyOmniProcessor, QWEN3_OMNI.name: AudioOnlyQwen3OmniProcessor,
              NEMOTRON_H_OMNI.name: AudioOnlyNemotronOmniProcessor}
"""transformers' processor of each family that has one."""


def reference_processor(bundle):
    """transformers' processor for a loaded bundle's family, built from its tokenizer and feature extractor."""
    return PROCESSORS[bundle.family.name].from_parts(bundle.feature_extractor, bundle.tokenizer)


def reference_batch(processor, system: str, examples, waveforms: list[np.ndarray], *, with_answer: bool = True,
                    family: Family = QWEN2_5_OMNI) -> dict:
    """The batch transformers builds for audio examples (one clip within the window each)."""
    texts = []
    for ex in examples:
        text = family.processor_prompt_text(system, ex.instruction)  # one placeholder: the processor expands it
        texts.append(text + (family.answer_text(ex.target) if with_answer else ""))
    return processor(text=texts, audio=waveforms, return_tensors="pt", padding=True, sampling_rate=SAMPLE_RATE)
