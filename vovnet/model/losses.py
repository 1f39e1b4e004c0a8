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


def answer_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> "AnswerNll":
    """(the NLL of every answer token, its token id), flattened sample by sample in answer order, so two
    prompts of the same records, with and without vision, give aligned vectors."""
    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    mask = shift_labels != IGNORE
    ids = shift_labels[mask]
    return F.cross_entropy(shift_logits[mask], ids, reduction="none"), ids


AnswerNll = tuple[torch.Tensor, torch.Tensor]  # answer_token_nll's (NLL, token id) per answer token


def vision_focus_loss(branch: AnswerNll, text: AnswerNll) -> torch.Tensor:
    """A vision branch's answer-token loss (answer_token_nll of its prompt), each token weighted by
    1 - p_text * p_branch (detached): a token the text-only pass and this branch both already give weighs
    almost nothing, one the text cannot give (or this branch gets wrong) weighs fully. Averaged over the
    answer tokens, like the model's own loss."""
    (nll_branch, ids_branch), (nll_text, ids_text) = branch, text
    if not torch.equal(ids_branch, ids_text):
        raise ValueError(f"the answer tokens differ between the prompts ({len(ids_branch)} vs {len(ids_text)} tokens)")
    weight = 1 - torch.exp(-(nll_text.detach() + nll_branch.detach()))
    return (weight * nll_branch).sum() / max(1, nll_branch.numel())
