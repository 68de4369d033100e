"""The run folder and what writes and reads it: :mod:`~nabra.run.folder` (``RunFolder``: the folder's
paths and typed readers), :mod:`~nabra.run.log` (metrics, quarantine, TensorBoard, diagnostics),
:mod:`~nabra.run.checkpoint` (atomic checkpoints with RNG state, ``final/`` and ``best/``) and
:mod:`~nabra.run.optim` (steps, micro-batches, AdamW and its schedule). Below evaluation: nothing here
scores a model."""
