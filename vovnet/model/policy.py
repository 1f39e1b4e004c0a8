"""The value-of-vision policy head: reads the text-only pass and scores NO / COARSE / FULL vision."""
from __future__ import annotations

import torch
from torch import nn


def text_pass_features(logits_last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token entropy and top-1/top-2 probability margin at the prompt's last position."""
    logp = torch.log_softmax(logits_last.float(), dim=-1)
    p = logp.exp()
    entropy = -(p * logp).sum(-1)
    top2 = p.topk(2, dim=-1).values
    return entropy, top2[:, 0] - top2[:, 1]


class PolicyHead(nn.Module):
    def __init__(self, hidden_size: int, width: int = 64, n_actions: int = 3):
        super().__init__()
        self.hidden_size, self.width = hidden_size, width
        self.norm = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(nn.Linear(hidden_size + 2, width), nn.GELU(), nn.Linear(width, n_actions))

    def forward(self, hidden: torch.Tensor, entropy: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.norm(hidden.float()), entropy[:, None].float(), margin[:, None].float()], dim=-1)
        return self.mlp(x)


def choose_action(scores: list[float], vision_tokens: list[int], cost_shift: float, cost_norm: float) -> int:
    """The learned policy's action: head score minus an inference-time shift times the normalised cost.

    `vision_tokens` holds NO/COARSE/FULL's token counts; costs are divided by `cost_norm`, or by FULL's
    count when it is 0. Ties go to the cheaper action."""
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
