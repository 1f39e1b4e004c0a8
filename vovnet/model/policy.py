"""The value-of-vision policy head: reads the text-only pass and scores each action of vovnet/actions.py."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import nn

from vovnet.actions import NAMES


@dataclass(frozen=True)
class PolicyFeatures:
    """What the head reads from the text-only pass, at the prompt's last token, one row per sample.

    Detached: the head does not steer the LM. A new feature is a field here, filled in `policy_features`;
    the head's input width follows from SCALARS."""

    hidden: torch.Tensor  # (B, H) the last layer's hidden state
    entropy: torch.Tensor  # (B,) next-token entropy (the uncertainty baseline reads it too)
    margin: torch.Tensor  # (B,) top-1 minus top-2 next-token probability

    SCALARS: ClassVar[tuple[str, ...]] = ("entropy", "margin")  # appended to the normalised hidden state

    @classmethod
    def width(cls, hidden_size: int) -> int:
        """The head's input width for an LM of `hidden_size`."""
        return hidden_size + len(cls.SCALARS)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


def policy_features(
    hidden_states: torch.Tensor, logits: torch.Tensor, index: torch.Tensor | None = None
) -> PolicyFeatures:
    """The policy features from a text-only pass's last-layer states (B, T, H) and logits (B, T', V), read at
    each row's `index` (B,) (None: the last column of each). The one producer: training's text pass and
    prefix reuse, evaluation's and predict's prefill all call it."""
    if index is None:
        hidden_last, logits_last = hidden_states[:, -1], logits[:, -1]
    else:
        rows = torch.arange(index.shape[0], device=index.device)
        hidden_last, logits_last = hidden_states[rows, index], logits[rows, index]
    logp = torch.log_softmax(logits_last.float(), dim=-1)
    p = logp.exp()
    entropy = -(p * logp).sum(-1)
    top2 = p.topk(2, dim=-1).values
    return PolicyFeatures(hidden_last.detach(), entropy.detach(), (top2[:, 0] - top2[:, 1]).detach())


class PolicyHead(nn.Module):
    """One score per action, in `actions` order (the table's; a saved head records the ones it scores)."""

    def __init__(self, hidden_size: int, width: int = 64, actions: tuple[str, ...] = NAMES):
        super().__init__()
        self.hidden_size, self.width, self.actions = hidden_size, width, tuple(actions)
        self.norm = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(PolicyFeatures.width(hidden_size), width), nn.GELU(), nn.Linear(width, len(self.actions))
        )

    def forward(self, features: PolicyFeatures) -> torch.Tensor:
        """Scores in fp32. The head computes in its own weights' dtype: fp32 as built, or the half dtype
        an engine cast it to (DeepSpeed casts the whole module and runs no autocast; its fp32 master
        weights live in the optimizer)."""
        dtype = self.norm.weight.dtype
        scalars = [getattr(features, name)[:, None].to(dtype) for name in PolicyFeatures.SCALARS]
        return self.mlp(torch.cat([self.norm(features.hidden.to(dtype)), *scalars], dim=-1)).float()


def choose_action(scores: list[float], vision_tokens: list[int], cost_shift: float, cost_norm: float) -> int:
    """The learned policy's action: head score minus an inference-time shift times the normalised cost.

    `vision_tokens` holds each action's token count, in the table's order; costs are divided by `cost_norm`,
    or by the richest action's count when it is 0. Ties go to the cheaper action."""
    norm = cost_norm or max(1, vision_tokens[-1])
    adj = [s - cost_shift * t / norm for s, t in zip(scores, vision_tokens)]
    return max(range(len(adj)), key=lambda a: (adj[a], -a))


def gumbel_straight_through(scores: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hard one-hot in the forward pass, Gumbel-softmax gradient in the backward pass."""
    u = torch.rand(scores.shape, generator=generator, device="cpu").to(scores.device).clamp_(1e-9, 1 - 1e-9)
    gumbel = -torch.log(-torch.log(u))
    soft = torch.softmax((scores + gumbel) / tau, dim=-1)
    hard = torch.nn.functional.one_hot(soft.argmax(-1), scores.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft
