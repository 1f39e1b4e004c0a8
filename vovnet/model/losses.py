"""Per-sample causal-LM loss, shifted exactly as the model shifts its own `labels`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vovnet.model.encoding import IGNORE


def per_sample_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss per sample over its answer tokens, answer-token count per sample).

    Token-weighted, sum(loss*count)/sum(count) equals the model's own loss on the same labels."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    tok = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(shift_labels.shape)
    count = (shift_labels != IGNORE).sum(-1)
    return tok.sum(-1) / count.clamp(min=1), count
