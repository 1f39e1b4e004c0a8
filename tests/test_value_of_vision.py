"""The value-of-vision figures every set's report.json carries: MMStar's multi-modal gain (always-FULL minus
no-vision accuracy) and the learned policy's share of it at its cost; and each protocol's own figures
(POPE's F1 and yes-ratio) of the outputs a policy picks."""

import pytest

from vovnet.evaluation import policies, report, scoring
from vovnet.tasks.pope import protocol as pope


def fig(accuracy, tokens):
    return {"accuracy": accuracy, "vision_tokens": tokens}


def test_multimodal_gain_and_the_learned_share():
    vov = report.value_of_vision(fig(0.62, 300.0), {"always_full": fig(0.70, 1200.0), "no_vision": fig(0.40, 0.0)})
    assert vov["mg"] == pytest.approx(0.30) and vov["learned_gain"] == pytest.approx(0.22)
    assert vov["learned_share"] == pytest.approx(0.22 / 0.30) and vov["cost_share"] == pytest.approx(0.25)
    # text alone as good as the image: no gain to share
    flat = report.value_of_vision(fig(0.5, 10.0), {"always_full": fig(0.5, 100.0), "no_vision": fig(0.5, 0.0)})
    assert flat["mg"] == 0 and flat["learned_share"] is None and flat["cost_share"] == pytest.approx(0.1)
    worse = report.value_of_vision(fig(0.4, 0.0), {"always_full": fig(0.3, 100.0), "no_vision": fig(0.4, 0.0)})
    assert worse["mg"] == pytest.approx(-0.1) and str(worse["learned_share"]) == "0.0"  # the image hurts here
    unscored = report.value_of_vision(fig(None, 1.0), {"always_full": fig(None, 2.0), "no_vision": fig(None, 0.0)})
    assert set(unscored.values()) == {None}


def test_official_figures_of_the_picked_outputs():
    recs = [
        {
            "id": f"q{i}",
            "choices": None,
            "answer": {"label": None, "text": g, "all": [g]},
            "meta": {"category": "random"},
        }
        for i, g in enumerate(["yes", "no", "yes", "no"])
    ]
    gens = [
        {
            "outputs": {"no": "Yes", "coarse": "Yes", "full": full},
            "too_long": {"no": False, "coarse": False, "full": cut},
        }
        for full, cut in [("Yes", False), ("No", False), ("<think>hmm</think>Yes", False), ("Yes", True)]
    ]
    full = scoring.official_figures(pope, recs, gens, policies.constant(gens, policies.FULL), 0, thinking=("full",))
    # the cut output counts as empty (Unknown): Yes, No, Yes, Unknown against yes, no, yes, no
    assert full["overall"]["accuracy"] == 0.75 and full["overall"]["f1"] == 1.0
    assert full["overall"]["yes_ratio"] == 0.5 and full["per_category"]["random"]["questions"] == 4
    blind = scoring.official_figures(pope, recs, gens, policies.constant(gens, policies.NO), 0)
    assert blind["overall"]["yes_ratio"] == 1.0 and blind["overall"]["precision"] == 0.5
