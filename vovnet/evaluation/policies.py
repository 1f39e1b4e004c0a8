"""Which action each question gets: the learned policy (with an inference-time cost shift) and baselines.

Baselines are curves, not points: uncertainty thresholds swept over entropy quantiles and random choices
at several FULL ratios, so "beats X at equal cost" is read on X's curve at the learned policy's cost.
Uncertainty thresholds are quantiles of the text-pass entropy on the policy split (stage 2's data),
never on the split being evaluated.
"""

from __future__ import annotations

import math
import random

from vovnet import actions
from vovnet.actions import NAMES as ACTIONS
from vovnet.model.policy import choose_action

# positions in the table: the text-only action, the richest, and the middle step of the COARSE variant
NO, COARSE, FULL = actions.index(actions.TEXT), actions.index("coarse"), actions.index(actions.RICHEST)
# the one-action baselines, richest first (always_full, ..., no_vision)
FIXED = {a.baseline: actions.index(a.name) for a in reversed(actions.ACTIONS)}


def learned(gens: list[dict], cost_shift: float, cost_norm: float) -> list[int]:
    return [choose_action(g["scores"], [g["vision_tokens"][a] for a in ACTIONS], cost_shift, cost_norm) for g in gens]


def constant(gens: list[dict], action: int) -> list[int]:
    return [action] * len(gens)


def random_matched(choices: list[int], seed: int) -> list[int]:
    """The learned policy's action ratios, assigned to questions at random (seeded)."""
    shuffled = list(choices)
    random.Random(seed).shuffle(shuffled)
    return shuffled


def random_full(n: int, ratio: float, seed: int) -> list[int]:
    """FULL for round(ratio * n) questions drawn at random, NO for the rest. One seeded order serves every
    ratio, so a higher ratio adds questions to a lower one's FULL set (a monotone curve)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    chosen = set(order[: round(ratio * n)])
    return [FULL if i in chosen else NO for i in range(n)]


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default), q in [0, 1]."""
    vals = sorted(values)
    pos = q * (len(vals) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def uncertainty(entropies: list[float], full_above: float, coarse_above: float | None = None) -> list[int]:
    """Entropy above `full_above` -> FULL; else above `coarse_above` (when given) -> COARSE; else NO."""
    out = []
    for e in entropies:
        if e > full_above:
            out.append(FULL)
        elif coarse_above is not None and e > coarse_above:
            out.append(COARSE)
        else:
            out.append(NO)
    return out


def uncertainty_sweep(
    entropies: list[float], reference: list[float], quantiles: list[float], coarse_width: float | None = None
) -> list[tuple[float, list[int]]]:
    """(q, choices) per swept quantile q, thresholds taken from the reference (policy-split) entropies,
    plus both ends (all FULL as q=-1, all NO as q=2). FULL above the q quantile; the COARSE variant
    (`coarse_width` w) looks coarsely between the q - w and q quantiles, so q alone sets the FULL share."""
    points = [(-1.0, [FULL] * len(entropies)), (2.0, [NO] * len(entropies))]
    for q in quantiles:
        full_above = quantile(reference, q)
        coarse_above = quantile(reference, max(0.0, q - coarse_width)) if coarse_width else None
        points.append((q, uncertainty(entropies, full_above, coarse_above)))
    return points


def cost_weights(costs: list[float], tokens: float) -> dict[int, float] | None:
    """The weights on a curve's points (by index; `costs` their mean vision tokens) whose weighted accuracy is
    the curve's at `tokens`: linear between the neighbouring costs, points of equal cost sharing their cost's
    weight; None outside the curve's range. A per-question comparison at equal tokens weighs each question's
    scores the same way, so its mean is `at_cost`."""
    by_cost: dict[float, list[int]] = {}
    for i, c in enumerate(costs):
        by_cost.setdefault(c, []).append(i)
    xs = sorted(by_cost)
    if not xs or tokens < xs[0] or tokens > xs[-1]:
        return None
    ends = [(xs[0], 1.0)]  # a single-point curve at exactly this cost
    for x0, x1 in zip(xs, xs[1:]):
        if x0 <= tokens <= x1:
            t = (tokens - x0) / (x1 - x0)
            ends = [(x0, 1.0 - t), (x1, t)]
            break
    weights: dict[int, float] = {}
    for x, w in ends:
        for i in by_cost[x]:
            weights[i] = weights.get(i, 0.0) + w / len(by_cost[x])
    return weights


def at_cost(curve: list[dict], tokens: float) -> float | None:
    """Accuracy on a baseline's curve at `tokens` mean vision tokens: linear between its neighbouring
    points (equal-cost points averaged); None outside the curve's range."""
    weights = cost_weights([p["vision_tokens"] for p in curve], tokens)
    return None if weights is None else sum(curve[i]["accuracy"] * w for i, w in weights.items())
