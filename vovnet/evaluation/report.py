"""What an evaluation writes: the headline (the DVC metrics), the report, the Pareto points, a printed table.

`dvc metrics show` draws one column per flattened key across every metric file, so the headline is one
small row per policy with the same keys: eval/<set>/metrics.json is the learned policy (accuracy, mean
vision tokens, action ratios, counts), eval/<set>/baselines/<name>.json one row per baseline (curve
baselines add their accuracy at the learned policy's cost). The default pipeline's table fits 160 columns
(154); one file with every policy's keys took 501. Breakdowns go to report.json.
"""

from __future__ import annotations

from vovnet import actions
from vovnet.actions import NAMES as ACTIONS
from vovnet.io_utils import flatten

DIGITS = 4
TOKEN_DIGITS = 2
RATIO_DIGITS = 3  # the headline's widths: report.json keeps every figure unrounded
POINT_BASELINES = tuple(a.baseline for a in reversed(actions.ACTIONS))  # always_full, ..., no_vision
CURVE_BASELINES = ("random", "uncertainty", "uncertainty_coarse")  # each also has a single reported point


def _r(value, digits: int = DIGITS):
    return None if value is None else round(float(value), digits)


def row(fig: dict, has_answers: bool) -> dict:
    """One policy's headline: acc and acc_se, its standard error clustered by shared image (the 95% interval
    is acc +- 1.96 acc_se; without answers: neither), tokens (mean vision tokens per record), one ratio per
    action (no, coarse, full), unresolved and too_long (records)."""
    out = {"acc": _r(fig["accuracy"]), "acc_se": _r(fig["interval"]["se"])} if has_answers else {}
    out["tokens"] = _r(fig["vision_tokens"], TOKEN_DIGITS)
    out.update({a: _r(fig["ratio"][a], RATIO_DIGITS) for a in ACTIONS})
    out.update(unresolved=fig["unresolved"], too_long=fig["too_long"])
    return out


def headline(learned: dict, counts: dict, has_answers: bool) -> dict:
    """metrics.json: the learned policy's row and the set's question count. The overlap count (nonzero only
    under evaluation.allow_overlap) is in report.json and the printed table: a column of zeros in every
    `dvc metrics show` row would take the width acc_se needs within 160 columns."""
    return {**row(learned, has_answers), "questions": counts["questions"]}


def baseline_rows(figs: dict[str, dict], at_learned: dict[str, float | None], has_answers: bool) -> dict[str, dict]:
    """baselines/<name>.json: each baseline's row; a curve baseline adds acc_at_learned (its curve's
    accuracy at the learned policy's mean vision tokens)."""
    rows = {name: row(fig, has_answers) for name, fig in figs.items()}
    for name, acc in at_learned.items():
        rows[name]["acc_at_learned"] = _r(acc)
    return rows


def value_of_vision(learned: dict, baselines: dict[str, dict]) -> dict:
    """The MMStar paper's multi-modal gain, MG = always-FULL minus no-vision accuracy, and the learned policy's
    share of it at its cost: (learned - no-vision) / MG, and its mean vision tokens over always-FULL's.
    A share is None where its denominator is 0 (no gain to share, or a FULL image that costs nothing)."""
    full = baselines[actions.by_name(actions.RICHEST).baseline]
    none = baselines[actions.by_name(actions.TEXT).baseline]
    if None in (learned["accuracy"], full["accuracy"], none["accuracy"]):
        return {"mg": None, "learned_gain": None, "learned_share": None, "cost_share": None}
    mg, gain = full["accuracy"] - none["accuracy"], learned["accuracy"] - none["accuracy"]
    return {
        "mg": mg,
        "learned_gain": gain,
        "learned_share": gain / mg + 0.0 if mg else None,  # + 0.0: no -0.0
        "cost_share": learned["vision_tokens"] / full["vision_tokens"] if full["vision_tokens"] else None,
    }


def flat_keys(metrics: dict) -> list[str]:
    """The keys `dvc metrics show` draws as columns."""
    return list(flatten(metrics))


def pareto_point(policy: str, fig: dict, param=None) -> dict:
    return {
        "policy": policy,
        "param": param,
        "accuracy": fig["accuracy"],
        "vision_tokens": fig["vision_tokens"],
        **{f"ratio_{a}": r for a, r in fig["ratio"].items()},
    }


def _interval(fig: dict) -> str:
    ci = (fig.get("interval") or {}).get("ci95")
    return "n/a" if ci is None else f"{ci[0]:.4f}-{ci[1]:.4f}"


def comparison_lines(comparisons: dict[str, dict | None]) -> list[str]:
    """One line per paired comparison: learned minus the baseline, its 95% interval, and whether the
    difference is beyond it (the interval excludes 0)."""
    lines = []
    for name, c in comparisons.items():
        label = f"learned - {name}" + (" (expectation)" if name == "random" else "")
        if c is None:
            lines.append(f"{label:<34} n/a (no point of it at the learned policy's tokens)")
            continue
        verdict = "beyond its interval" if c["beyond_interval"] else "within its interval"
        lo, hi = c["ci95"]
        lines.append(
            f"{label:<34} {c['difference']:+.4f}  95% CI {lo:+.4f} to {hi:+.4f}  at {c['baseline_tokens']:.1f} "
            f"tokens: {verdict}"
        )
    return lines


def table(name: str, rows: list[tuple[str, dict]], comparisons: dict | None = None, overlap: int = 0) -> str:
    """policy x accuracy (95% interval) x vision tokens (and the action ratios), then the learned policy's
    paired differences (report.json's `comparisons`), for the stage log."""
    header = " / ".join(a.upper() for a in ACTIONS)
    pad = " " * (len(name) + 2)
    lines = [f"{name}: {'policy':<20} {'accuracy':>8} {'95% interval':>13} {'vision tokens':>13}   {header}"]
    for policy, fig in rows:
        acc = "n/a" if fig.get("accuracy") is None else f"{fig['accuracy']:.4f}"
        ratios = " / ".join(f"{fig['ratio'][a]:.2f}" for a in ACTIONS)
        lines.append(f"{pad}{policy:<20} {acc:>8} {_interval(fig):>13} {fig['vision_tokens']:>13.1f}   {ratios}")
    lines += [pad + line for line in comparison_lines(comparisons or {})]
    if overlap:
        lines.append(f"{pad}{overlap} record(s) overlap a training file (evaluation.allow_overlap)")
    return "\n".join(lines)
