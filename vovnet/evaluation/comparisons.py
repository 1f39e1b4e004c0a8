"""The learned policy against each baseline, paired per question: the mean difference and its 95% interval.

The report reads "beats X at equal cost" on X's curve at the learned policy's mean vision tokens. Here the
same comparison is made question by question, so what two policies share (the easy and the impossible
questions) cancels and the interval is the one on the difference, clustered by shared image
(vovnet/evaluation/intervals.py):
- a curve baseline (uncertainty, uncertainty_coarse, and vovnet/evaluation/sweep.py's downsampling and pruning
  curves): each question's scores at the two curve points around
  the learned tokens, weighted as the interpolation weighs their accuracies (`policies.cost_weights`), so the
  baseline's mean is the report's `accuracy_at_learned_tokens`;
- random: its expectation at equal tokens, not one draw: each record takes FULL with the probability that
  spends the learned policy's tokens on average, else NO (`scoring.expected_question_scores`);
- always-FULL: as it is, at its own tokens (how much of FULL's accuracy the learned policy keeps).
Nothing here draws a random number, so the figures are deterministic.
"""

from __future__ import annotations

from vovnet.actions import NAMES as ACTIONS
from vovnet.evaluation import policies, scoring
from vovnet.evaluation.intervals import paired_interval, question_clusters


def random_expectation(qs: list[list[int]], rows: dict, gens: list[dict], tokens: float) -> list[float] | None:
    """Random NO/FULL at `tokens` mean vision tokens, in expectation; None when no share of FULL spends them."""
    no = scoring.mean_vision_tokens(gens, policies.constant(gens, policies.NO))
    full = scoring.mean_vision_tokens(gens, policies.constant(gens, policies.FULL))
    if full == no:
        return None
    share = (tokens - no) / (full - no)
    if not -1e-9 <= share <= 1 + 1e-9:
        return None
    share = min(1.0, max(0.0, share))
    return scoring.expected_question_scores(
        qs, rows, {ACTIONS[policies.NO]: 1.0 - share, ACTIONS[policies.FULL]: share}
    )


def on_curve(qs: list[list[int]], rows: dict, gens: list[dict], curve: list, tokens: float) -> list[float] | None:
    """Each question's score on a baseline's curve ([(param, choices)]) at `tokens`; None outside its range."""
    costs = [scoring.mean_vision_tokens(gens, choices) for _, choices in curve]
    return interpolated([scoring.question_scores(qs, rows, choices) for _, choices in curve], costs, tokens)


def interpolated(point_scores: list[list[float]], costs: list[float], tokens: float) -> list[float] | None:
    """Each question's score on a curve at `tokens`, from its points' per-question scores and mean vision
    tokens, weighted as `policies.at_cost` weighs their accuracies; None outside the curve's range."""
    weights = policies.cost_weights(costs, tokens)
    if weights is None:
        return None
    scores = [0.0] * len(point_scores[0])
    for i, w in weights.items():
        for k, s in enumerate(point_scores[i]):
            scores[k] += w * s
    return scores


def compared(learned: list[float], baseline: list[float] | None, clusters: list, tokens: float) -> dict | None:
    """{learned, baseline (accuracies), baseline_tokens, difference, se, ci95, beyond_interval, questions,
    clusters}; None where the baseline has no point at these tokens."""
    if baseline is None:
        return None
    paired = paired_interval(learned, baseline, clusters)
    n = max(1, len(learned))
    return {
        "learned": sum(learned) / n,
        "baseline": sum(baseline) / n,
        "baseline_tokens": tokens,
        "difference": paired.pop("mean"),
        **paired,
    }


def paired_comparisons(records: list[dict], qs: list[list[int]], rows: dict, gens: list[dict], learned, curves):
    """The learned policy (its choices `learned`) against always-FULL, random's expectation and every curve
    baseline but random's draw (`curves`: name -> [(param, choices)], as core.baselines returns them)."""
    clusters = question_clusters(records, qs)
    mine = scoring.question_scores(qs, rows, learned)
    tokens = scoring.mean_vision_tokens(gens, learned)
    full = policies.constant(gens, policies.FULL)
    out = {
        "always_full": compared(
            mine, scoring.question_scores(qs, rows, full), clusters, scoring.mean_vision_tokens(gens, full)
        ),
        "random": compared(mine, random_expectation(qs, rows, gens, tokens), clusters, tokens),
    }
    for name, curve in curves.items():
        if name != "random":  # one seeded draw; its expectation is above
            out[name] = compared(mine, on_curve(qs, rows, gens, curve, tokens), clusters, tokens)
    return out
