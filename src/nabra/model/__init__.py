"""The model: Qwen2.5-Omni's thinker (from a local checkpoint, or tiny from config), the batch
collator, LoRA on the language model, aligner embeddings."""

from nabra.model.load import ModelBundle, load

__all__ = ["ModelBundle", "load"]
