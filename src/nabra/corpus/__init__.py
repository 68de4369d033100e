"""Utterance corpora: the manifest, audio I/O, validation, statistics, the synthetic corpus."""
