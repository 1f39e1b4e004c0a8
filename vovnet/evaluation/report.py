"""What an evaluation writes: the headline (the DVC metric), the report, the Pareto points, a printed table.

metrics.json keeps at most 25 keys once flattened, so `dvc metrics show` stays a headline: the learned
policy's accuracy, cost and action ratios; each baseline's accuracy and cost (and, for the curves, its
accuracy at the learned policy's cost); the counts. Everything else goes to report.json.
"""
from __future__ import annotations

from vovnet.model.budgets import ACTIONS

DIGITS = 4
POINT_BASELINES = ("always_full", "always_coarse", "no_vision")
CURVE_BASELINES = ("random", "uncertainty", "uncertainty_coarse")  # each also has a single reported point


def _r(value):
    return None if value is None else round(float(value), DIGITS)


def headline(learned: dict, points: dict[str, dict], at_learned: dict[str, float | None], counts: dict,
             has_answers: bool) -> dict:
    m = dict(counts)
    m["learned"] = {"tokens": _r(learned["vision_tokens"]), **{a: _r(learned["ratio"][a]) for a in ACTIONS}}
    if not has_answers:
        return m
    m["learned"] = {"acc": _r(learned["accuracy"]), **m["learned"]}
    for name in POINT_BASELINES:
        m[name] = {"acc": _r(points[name]["accuracy"]), "tokens": _r(points[name]["vision_tokens"])}
    for name in CURVE_BASELINES:
        m[name] = {"acc": _r(points[name]["accuracy"]), "tokens": _r(points[name]["vision_tokens"]),
                   "acc_at_learned": _r(at_learned[name])}
    return m


def flat_keys(metrics: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in metrics.items():
        keys.extend(flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"])
    return keys


def pareto_point(policy: str, fig: dict, param=None) -> dict:
    return {"policy": policy, "param": param, "accuracy": fig["accuracy"], "vision_tokens": fig["vision_tokens"],
            **{f"ratio_{a}": r for a, r in fig["ratio"].items()}}


def table(name: str, rows: list[tuple[str, dict]]) -> str:
    """policy x accuracy x vision tokens (and the learned policy's action ratios), for the stage log."""
    lines = [f"{name}: {'policy':<20} {'accuracy':>8} {'vision tokens':>13}   NO / COARSE / FULL"]
    for policy, fig in rows:
        acc = "n/a" if fig.get("accuracy") is None else f"{fig['accuracy']:.4f}"
        ratios = " / ".join(f"{fig['ratio'][a]:.2f}" for a in ACTIONS)
        lines.append(f"{'':<{len(name) + 2}}{policy:<20} {acc:>8} {fig['vision_tokens']:>13.1f}   {ratios}")
    return "\n".join(lines)
