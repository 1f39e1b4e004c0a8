"""Which action each question gets: the learned policy (with an inference-time cost shift) and baselines."""
from __future__ import annotations

import random
import statistics

from vovnet.model.budgets import ACTIONS
from vovnet.model.policy import choose_action


def learned(gens: list[dict], cost_shift: float, cost_norm: float) -> list[int]:
    return [choose_action(g["scores"], [g["vision_tokens"][a] for a in ACTIONS], cost_shift, cost_norm) for g in gens]


def constant(gens: list[dict], action: int) -> list[int]:
    return [action] * len(gens)


def random_matched(choices: list[int], seed: int) -> list[int]:
    """The learned policy's action ratios, assigned to questions at random (seeded)."""
    shuffled = list(choices)
    random.Random(seed).shuffle(shuffled)
    return shuffled


def uncertainty(gens: list[dict], threshold: float | None) -> tuple[list[int], float]:
    """Text-pass entropy above the threshold -> FULL vision, else NO vision; default threshold: the median."""
    ents = [g["entropy"] for g in gens]
    thr = statistics.median(ents) if threshold is None and ents else (threshold or 0.0)
    return [2 if e > thr else 0 for e in ents], thr
