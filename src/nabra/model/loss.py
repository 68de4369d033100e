"""The training loss, computed where it is needed: logits only at the labelled positions.

The thinker's own forward projects every position — audio placeholders, prompt, padding — onto the
vocabulary before the loss masks all but the answer. With long audio that is most of a step
(16 × 1,500 positions × the vocabulary), and for the 7B model's 152k-token vocabulary it is
gigabytes of logits. :class:`AnswerLoss` runs the thinker's body, then the LM head on the answer
tokens alone. It is an ``nn.Module`` so that DDP/FSDP wrap it (and its forward) as a whole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nabra.model.collate import IGNORE_INDEX
from nabra.model.families import family_of_model


def thinker_of(model):
    """The thinker inside a PEFT wrapper (LoRA layers stay injected), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class AnswerLoss(nn.Module):
    """``forward(batch) -> (summed token loss, label-token count)`` per example."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        thinker = thinker_of(self.model)
        family = family_of_model(thinker)
        inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and k not in ("labels", "seq_lens")}
        device = inputs["input_ids"].device
        labels = batch["labels"][:, 1:].to(device)
        where = labels != IGNORE_INDEX
        packed = batch.get("seq_lens")
        if packed is not None:  # one row of sequences end to end: positions restart, attention stays within each
            inputs["position_ids"] = family.packed_positions(thinker, inputs, packed)
        # Position t predicts label t + 1: the positions whose logits are needed, on the input's grid.
        keep = torch.cat([where, torch.zeros_like(where[:, :1])], 1)
        logits = family.answer_logits(thinker, inputs, keep).float()
        token_loss = F.cross_entropy(logits, labels[where], reduction="none")
        if packed is None:
            rows, n = where.nonzero()[:, 0], labels.shape[0]
        else:  # the sequence each label belongs to
            n = len(packed)
            seq = torch.repeat_interleave(torch.arange(n, device=device), packed.to(device))[1:]
            rows = seq[where[0]]
        sums = torch.zeros(n, dtype=token_loss.dtype, device=device).index_add(0, rows, token_loss)
        counts = torch.zeros(n, dtype=torch.long, device=device).index_add(0, rows, torch.ones_like(rows))
        return sums, counts


class TaskSums:
    """Per task of ``tasks`` (for the per-task logs), in one float64 tensor (one all-reduce): the summed
    token loss, the label tokens, the summed per-example mean loss and the examples. The token mean
    is the first over the second, the example mean the third over the fourth."""

    TOKEN_LOSS, TOKENS, EXAMPLE_LOSS, EXAMPLES = range(4)

    def __init__(self, tasks: list[str], device):
        self.tasks = list(tasks)
        self.data = torch.zeros(4, len(self.tasks), dtype=torch.float64, device=device)

    def add(self, tasks: list[str], losses: torch.Tensor, counts: torch.Tensor) -> None:
        """Add a micro-batch's per-example summed losses and label-token counts (examples of ``tasks``)."""
        for task, loss, n in zip(tasks, losses.detach(), counts, strict=True):
            j = self.tasks.index(task)
            self.data[self.TOKEN_LOSS, j] += loss.double()
            self.data[self.TOKENS, j] += n.double()
            if n > 0:
                self.data[self.EXAMPLE_LOSS, j] += loss.double() / n.double()
                self.data[self.EXAMPLES, j] += 1

    def reduce(self, acc) -> TaskSums:
        """Summed over the processes (``accelerate``'s reduce)."""
        self.data = acc.reduce(self.data, reduction="sum")
        return self

    def _rows(self, per_example: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if per_example:
            return self.data[self.EXAMPLE_LOSS], self.data[self.EXAMPLES]
        return self.data[self.TOKEN_LOSS], self.data[self.TOKENS]

    def task_means(self, per_example: bool = False) -> dict[str, float]:
        """Each task's mean loss (token mean, or the mean of its examples' token means); tasks without any left out."""
        num, den = self._rows(per_example)
        return {t: float(num[i] / den[i]) for i, t in enumerate(self.tasks) if den[i] > 0}

    def mean(self, per_example: bool = False) -> float:
        """The mean over every task, as the step averaged it."""
        num, den = self._rows(per_example)
        return float(num.sum() / den.sum().clamp(min=1))
