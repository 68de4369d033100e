"""Evaluation: per-task metrics, batched greedy generation over a manifest, the schedule-comparison report."""

from nabra.evaluate.metrics import Prediction, composite_score, compute_metrics

__all__ = ["Prediction", "composite_score", "compute_metrics"]
