"""The demo report's targets give each margin's paired 95% interval and say whether the margin is beyond it; the
equal-token baselines (downsampling, pruning, learned-then-prune) get their rows, margins and plot lines."""

import json
import math

import pytest
from test_demo import demo_eval_outputs

from vovnet.__main__ import main as vovnet_main


def run(tmp_path, monkeypatch, comparisons=None):
    demo_eval_outputs(tmp_path)
    if comparisons is not None:
        path = tmp_path / "eval" / "demo" / "report.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "comparisons": comparisons}))
    monkeypatch.chdir(tmp_path)
    assert vovnet_main(["demo-report", "--set", "demo", "--out-dir", "figs"]) == 0
    return json.loads((tmp_path / "figs" / "demo_report.json").read_text())


def plain_se(diffs):
    mean = sum(diffs) / len(diffs)
    return math.sqrt(sum((d - mean) ** 2 for d in diffs)) / len(diffs)


def test_margins_are_paired_per_question(tmp_path, monkeypatch, capsys):
    fig = run(tmp_path, monkeypatch)
    # per question (no images: each its own cluster): NO right on q0, FULL on q0-q2; learned NO, COARSE, FULL, NO
    no, full, learned = [1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]
    gain = fig["margins"]["gain"]
    assert gain["mean"] == pytest.approx(0.5) and gain["se"] == pytest.approx(plain_se([0, 1, 1, 0]))
    share = fig["at_learned_tokens"]["random_full_share"]
    rnd = fig["margins"]["random"]
    diffs = [x - ((1 - share) * a + share * b) for x, a, b in zip(learned, no, full)]
    assert rnd["mean"] == pytest.approx(fig["learned"]["accuracy"] - fig["at_learned_tokens"]["random"])
    assert rnd["se"] == pytest.approx(plain_se(diffs))
    keeps = fig["margins"]["keeps_full"]
    # learned answers exactly what FULL answers: 3% of FULL's right answers to spare, on every one of them
    assert keeps["mean"] == pytest.approx(0.75 - 0.97 * 0.75) and keeps["ci95"][0] > 0 and keeps["beyond_interval"]
    t = fig["targets"]
    assert "beyond its interval" in t["learned >= 97% of always-full accuracy"]["value"]
    assert "rerun evaluate@" in t["learned - uncertainty (equal tokens) >= 3 pts"]["value"]  # an old report.json
    lo, hi = (100 * x for x in gain["ci95"])
    assert f"+50.0 pts (95% CI {lo:+.1f} to {hi:+.1f} pts" in capsys.readouterr().out


def test_uncertainty_margin_is_the_evaluations_paired_comparison(tmp_path, monkeypatch):
    unc = {"difference": 0.25, "se": 0.05, "ci95": [0.152, 0.348], "beyond_interval": True}
    fig = run(tmp_path, monkeypatch, {"uncertainty": unc})
    value = fig["targets"]["learned - uncertainty (equal tokens) >= 3 pts"]["value"]
    assert value == "+25.0 pts (95% CI +15.2 to +34.8 pts, beyond its interval)"


def test_equal_token_baselines_get_rows_margins_and_plot_lines(tmp_path, monkeypatch, capsys):
    path = tmp_path / "eval" / "demo" / "report.json"
    demo_eval_outputs(tmp_path)
    res = {"difference": 0.5, "se": 0.1, "ci95": [0.304, 0.696], "beyond_interval": True}
    then = {"difference": 0.25, "se": 0.2, "ci95": [-0.142, 0.642], "beyond_interval": False}
    eq = {
        "curves": {
            "resolution": [{"vision_tokens": 0.5, "accuracy": 0.2}, {"vision_tokens": 2.0, "accuracy": 0.3}],
            "prune_random": [{"vision_tokens": 2.0, "accuracy": 0.6}, {"vision_tokens": 4.0, "accuracy": 0.75}],
        },
        "accuracy_at_learned_tokens": {"resolution": 0.25, "prune_random": None},
        "comparisons": {"resolution": res, "prune_random": None, "learned_then_prune": then},
        "learned_then_prune": {"method": "attention", "keep_share": 0.5, "accuracy": 0.5, "vision_tokens": 0.75},
    }
    path.write_text(json.dumps({**json.loads(path.read_text()), "equal_token_baselines": eq}))
    monkeypatch.chdir(tmp_path)
    assert vovnet_main(["demo-report", "--set", "demo", "--out-dir", "figs"]) == 0
    fig = json.loads((tmp_path / "figs" / "demo_report.json").read_text())["equal_tokens"]
    assert fig["resolution"] == {"accuracy": 0.25, "margin": res}
    assert fig["prune_random"] == {"accuracy": None, "margin": None}
    assert fig["learned_then_prune"]["rule"] == "attention 0.5" and fig["learned_then_prune"]["margin"] == then
    out = capsys.readouterr().out
    assert "resolution sweep (one budget for all)" in out
    assert "+50.0 pts (95% CI +30.4 to +69.6 pts, beyond its interval)" in out
    assert "FULL, random token pruning" in out and "n/a: no point of it at 1.25 tokens" in out
    assert "learned, then attention 0.5" in out and "+25.0 pts (95% CI -14.2 to +64.2 pts, within its interval)" in out
    svg = (tmp_path / "figs" / "demo_pareto.svg").read_text()
    assert "resolution sweep (one budget for all)" in svg and "learned, then attention 0.5 pruning" in svg
    assert svg.count("<polyline") == 5  # uncertainty, random NO/FULL, the learned sweep and both curves
