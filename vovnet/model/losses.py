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


def answer_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The NLL of every answer token, flattened sample by sample in answer order (so two prompts of the
    same records, with and without vision, give aligned vectors)."""
    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    mask = shift_labels != IGNORE
    return F.cross_entropy(shift_logits[mask], shift_labels[mask], reduction="none")


def vision_focus_loss(nll_branch: torch.Tensor, nll_text: torch.Tensor) -> torch.Tensor:
    """A vision branch's answer-token loss, each token weighted by 1 - p_text * p_branch (detached): a token
    the text-only pass and this branch both already give weighs almost nothing, one the text cannot give
    (or this branch gets wrong) weighs fully. Averaged over the answer tokens, like the model's own loss."""
    if nll_branch.shape != nll_text.shape:
        raise ValueError(f"answer tokens differ between the prompts: {nll_branch.shape} vs {nll_text.shape}")
    weight = 1 - torch.exp(-(nll_text.detach() + nll_branch.detach()))
    return (weight * nll_branch).sum() / max(1, nll_branch.numel())
