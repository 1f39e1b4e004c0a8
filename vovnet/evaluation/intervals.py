"""95% intervals on a mean over questions, clustered where questions are not independent (a shared image),
and on the paired per-question difference between two policies.

The clustered standard error is the sandwich estimator of Miller (2024), "Adding Error Bars to Evals",
eq. 4, which lmms-eval 0.6 reports: SE = sqrt(sum over clusters of (sum of the cluster's residuals)^2) / n.
With one question per cluster it is the plain sqrt(sum (x - mean)^2) / n. A paired comparison is the same
estimator on the per-question differences (eq. 7), so what two policies share cancels. MMBench's circular
rotations are already one question (scored by their lowest record)."""

from __future__ import annotations

import math
from collections import defaultdict

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def clustered_interval(values: list[float], clusters: list) -> dict:
    """{"mean", "se", "ci95": [lo, hi], "questions", "clusters"} of `values`, one per question."""
    n = len(values)
    if n == 0:
        return {"mean": None, "se": None, "ci95": None, "questions": 0, "clusters": 0}
    mean = sum(values) / n
    residual: dict = defaultdict(float)
    for v, c in zip(values, clusters):
        residual[c] += v - mean
    se = math.sqrt(sum(r * r for r in residual.values())) / n
    return {
        "mean": mean,
        "se": se,
        "ci95": [mean - Z95 * se, mean + Z95 * se],
        "questions": n,
        "clusters": len(residual),
    }


def paired_interval(a: list[float], b: list[float], clusters: list) -> dict:
    """The interval on mean(a - b), defined per question, and whether it excludes 0."""
    out = clustered_interval([x - y for x, y in zip(a, b)], clusters)
    out["beyond_interval"] = out["ci95"] is not None and (out["ci95"][0] > 0 or out["ci95"][1] < 0)
    return out


def question_clusters(records: list[dict], qs: list[list[int]]) -> list:
    """A question's cluster: its first image's content hash (questions sharing an image are one cluster),
    or the question itself when it has no image."""
    out = []
    for k, q in enumerate(qs):
        images = records[q[0]].get("images") or []
        out.append(("image", images[0]["sha256"]) if images else ("question", k))
    return out
