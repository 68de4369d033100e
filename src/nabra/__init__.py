"""Nabra: multi-task instruction tuning of audio LLMs for Arabic speech, with data scheduling."""

__version__ = "0.1.0"
