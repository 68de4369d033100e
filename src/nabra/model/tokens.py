"""The Qwen2.5-Omni special tokens and the chat layout Nabra writes prompts in."""

from __future__ import annotations

SPECIAL_TOKENS = {
    "eos_token": "<|endoftext|>",  # also the pad token, as in Qwen
    "im_start": "<|im_start|>",
    "im_end": "<|im_end|>",
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
}
IM_START, IM_END = SPECIAL_TOKENS["im_start"], SPECIAL_TOKENS["im_end"]
AUDIO, AUDIO_BOS, AUDIO_EOS = (SPECIAL_TOKENS[k] for k in ("audio_token", "audio_bos_token", "audio_eos_token"))

# Qwen2.5-Omni's own chat template, reduced to text and audio (what Nabra sends).
def chat_template(audio: str, assistant: str = "") -> str:
    """The ChatML template of the Omni families reduced to text and audio: each audio item becomes
    ``audio`` (the family's placeholder run, as the processor expands it), and the generation prompt
    opens the assistant's turn followed by ``assistant`` (Nemotron's empty ``<think></think>``)."""
    return (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\n' }}"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for item in message['content'] %}"
        "{% if item['type'] == 'audio' or 'audio' in item %}{{ '" + audio + "' }}"
        "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
        "{% endfor %}{% endif %}"
        "{{ '<|im_end|>\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n" + assistant + "' }}{% endif %}"
    )


CHAT_TEMPLATE = chat_template("<|audio_bos|><|AUDIO|><|audio_eos|>")
"""Qwen2.5-Omni's chat template reduced to text and audio (what a tiny tokenizer ships)."""


def prompt_text(system: str, instruction: str, audio_runs: list[int]) -> str:
    """The prompt up to the assistant's turn, with each audio segment as an expanded placeholder run."""
    audio = "".join(AUDIO_BOS + AUDIO * n + AUDIO_EOS for n in audio_runs)
    return f"{IM_START}system\n{system}{IM_END}\n{IM_START}user\n{audio}{instruction}{IM_END}\n{IM_START}assistant\n"


def answer_text(target: str) -> str:
    """The learned part: the answer and its end token."""
    return f"{target}{IM_END}"
