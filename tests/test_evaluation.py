"""Leakage guard, policies and baseline curves, the headline's size, offline plots."""

import json
from pathlib import Path

import pytest
from conftest import get_protocol

from vovnet import VovnetError, plots
from vovnet.config import load_params
from vovnet.evaluation import policies, report
from vovnet.evaluation.core import baselines, leakage_guard


def rec(i, q, sha, label=0):
    return {
        "id": f"d-{i}",
        "dataset": "d",
        "question": q,
        "choices": ["x", "y"],
        "meta": {"circular_group": i},
        "answer": {"label": label, "text": None, "all": []},
        "images": [{"sha256": sha, "width": 1, "height": 1, "format": "jpeg"}],
    }


def test_leakage_guard_checks_both_training_files(tmp_path):
    stage1, stage2 = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    stage1.write_text(json.dumps(rec(1, "q1", "a")) + "\n")
    stage2.write_text(json.dumps({**rec(2, "q2", "b"), "id": "other"}) + "\n")
    evalset = [rec(1, "q1", "a"), rec(5, "q2", "b"), rec(6, "q3", "c")]
    with pytest.raises(VovnetError, match=r"1 of 3 records overlap the training file .*val.jsonl"):
        leakage_guard(evalset, [str(tmp_path / "absent.jsonl"), str(stage2)], allow=False)
    assert leakage_guard(evalset, [str(stage1), str(stage2)], allow=True) == 2
    assert leakage_guard([rec(6, "q3", "c")], [str(stage1), str(stage2)], allow=False) == 0


def gen(scores, entropy, full=16):
    return {"scores": scores, "entropy": entropy, "vision_tokens": {"no": 0, "coarse": 4, "full": full}}


def test_learned_policy_and_cost_shift():
    gens = [gen([1.0, 0.0, 0.5], 0.1), gen([0.0, 0.0, 1.0], 2.0), gen([0.2, 0.0, 0.9], 0.5), gen([0.0, 0.0, 2.0], 3.0)]
    assert policies.learned(gens, cost_shift=0.0, cost_norm=0) == [0, 2, 2, 2]
    assert policies.learned(gens, cost_shift=5.0, cost_norm=0) == [0, 0, 0, 0]  # cost dominates: no vision


def test_uncertainty_thresholds_come_from_the_reference_split():
    reference = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert policies.quantile(reference, 0.5) == 2.0 and policies.quantile(reference, 0.375) == 1.5
    ents = [0.5, 1.5, 2.5, 3.5]
    assert policies.uncertainty(ents, policies.quantile(reference, 0.5)) == [0, 0, 2, 2]
    assert policies.uncertainty(ents, 3.0, 1.0) == [0, 1, 1, 2]
    sweep = dict(policies.uncertainty_sweep(ents, reference, [0.0, 0.5, 1.0], coarse_width=0.25))
    assert sweep[-1.0] == [2, 2, 2, 2] and sweep[2.0] == [0, 0, 0, 0]
    assert sweep[0.5] == [0, 1, 2, 2]  # COARSE between the 0.25 and 0.5 quantiles (1.0, 2.0]
    assert sweep[1.0] == [0, 0, 0, 1]  # nothing above the max (4.0); COARSE above the 0.75 quantile (3.0)
    assert sweep[0.0] == [2, 2, 2, 2]


def test_random_curve_is_nested_and_exact():
    lower, higher = policies.random_full(20, 0.3, seed=1), policies.random_full(20, 0.6, seed=1)
    assert lower.count(2) == 6 and higher.count(2) == 12
    assert all(h == 2 for lo, h in zip(lower, higher) if lo == 2)
    assert policies.random_full(20, 0.3, seed=1) == lower and policies.random_full(20, 0.3, seed=2) != lower


def test_accuracy_at_equal_cost_interpolates_on_the_curve():
    curve = [
        {"vision_tokens": 0.0, "accuracy": 0.4},
        {"vision_tokens": 10.0, "accuracy": 0.6},
        {"vision_tokens": 10.0, "accuracy": 0.8},
        {"vision_tokens": 20.0, "accuracy": 0.9},
    ]
    assert policies.at_cost(curve, 5.0) == pytest.approx(0.55)  # 0.4 -> mean(0.6, 0.8) at 10
    assert policies.at_cost(curve, 15.0) == pytest.approx(0.8)
    assert policies.at_cost(curve, 25.0) is None


def test_baselines_use_params_and_policy_split(params):
    ecfg = {**params["evaluation"], "seed": 0}
    gens = [gen([0, 0, 0], e) for e in (0.5, 1.5, 2.5, 3.5)]
    points, curves, thr = baselines(gens, [0, 2, 2, 0], reference=[0.0, 1.0, 2.0, 3.0, 4.0], ecfg=ecfg)
    assert thr["uncertainty"]["full_above"] == 2.0 and points["uncertainty"] == [0, 0, 2, 2]
    assert thr["uncertainty_coarse"]["coarse_above"] == 1.0 and points["uncertainty_coarse"] == [0, 1, 1, 2]
    assert sorted(points["random"]) == [0, 0, 2, 2]
    assert (
        len(curves["random"]) == len(ecfg["random_ratios"])
        and len(curves["uncertainty"]) == len(ecfg["uncertainty"]["sweep"]) + 2
    )


def test_params_are_checked_with_one_line(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("evaluation:\n  uncertainty:\n    coarse_quantiles: [0.8, 0.2]\n")
    with pytest.raises(
        VovnetError, match=r"^.*params.yaml: evaluation.uncertainty.coarse_quantiles: low 0.8 above high 0.2$"
    ):
        load_params(p)
    p.write_text("evaluation:\n  random_ratios: [0.5, 1.5]\n")
    with pytest.raises(VovnetError, match=r"evaluation.random_ratios\[1\]: must be <= 1, got 1.5$"):
        load_params(p)


def fig(acc, tokens, unresolved=1, too_long=0):
    return {
        "accuracy": acc,
        "interval": {
            "se": None if acc is None else 0.012345,
            "ci95": None if acc is None else [acc - 0.02, acc + 0.02],
        },
        "vision_tokens": tokens,
        "ratio": {"no": 0.5, "coarse": 0.25, "full": 0.25},
        "unresolved": unresolved,
        "too_long": too_long,
    }


def test_headline_is_one_row_per_policy_with_shared_keys():
    counts = {"questions": 4, "unresolved": 1, "too_long": 2, "overlap": 0}
    m = report.headline(fig(0.123456, 5.123456, too_long=2), counts, True)
    assert m == {
        "acc": 0.1235,
        "acc_se": 0.0123,
        "tokens": 5.12,
        "no": 0.5,
        "coarse": 0.25,
        "full": 0.25,
        "unresolved": 1,
        "too_long": 2,
        "questions": 4,
    }
    figs = {k: fig(0.5, 10.0) for k in (*report.POINT_BASELINES, *report.CURVE_BASELINES)}
    rows = report.baseline_rows(figs, {k: 0.4 for k in report.CURVE_BASELINES}, True)
    assert rows["uncertainty_coarse"]["acc_at_learned"] == 0.4 and "acc_at_learned" not in rows["always_full"]
    # every row shares the learned row's keys, so `dvc metrics show` stays a narrow table
    columns = set(m).union(*map(set, rows.values()))
    assert columns == set(m) | {"acc_at_learned"} and len(columns) <= 25
    test = report.headline(fig(0.0, 5.0), counts, False)
    assert "acc" not in test and "acc_se" not in test and test["tokens"] == 5.0 and test["full"] == 0.25
    assert "acc" not in report.baseline_rows({"always_full": fig(None, 16.0)}, {}, False)["always_full"]
    comparisons = {
        "random": {"difference": 0.03, "ci95": [0.01, 0.05], "beyond_interval": True, "baseline_tokens": 5.0},
        "uncertainty": {"difference": 0.01, "ci95": [-0.01, 0.03], "beyond_interval": False, "baseline_tokens": 5.0},
        "uncertainty_coarse": None,
    }
    rows = [("learned", fig(0.5, 5.0)), ("always_full", fig(None, 16.0))]
    table = report.table("mmbench", rows, comparisons, overlap=3).splitlines()
    assert "0.5000" in table[1] and "0.4800-0.5200" in table[1] and table[2].count("n/a") == 2
    assert "learned - random (expectation)" in table[3] and "+0.0100 to +0.0500" in table[3]
    assert table[3].endswith("beyond its interval") and table[4].endswith("within its interval")
    assert "n/a" in table[5] and "3 record(s) overlap" in table[6]


def test_plots_render_offline_pngs(tmp_path):
    metrics = tmp_path / "metrics"
    (metrics / "stage1").mkdir(parents=True)
    (metrics / "stage1" / "loss.tsv").write_text("step\tloss\n0\t2.0\n1\t1.5\n2\t1.2\n")
    (metrics / "lr.tsv").write_text("step\tlr\n0\t0.001\n1\t0.002\n")
    assert plots.training_png(metrics, tmp_path / "training.png") == 2
    pts = [{"policy": "learned", "param": s, "accuracy": 0.5 + s / 10, "vision_tokens": 10 * s} for s in (0.0, 1.0)]
    plots.pareto_png(
        pts + [{"policy": "always_full", "param": None, "accuracy": 0.7, "vision_tokens": 16.0}],
        "t",
        tmp_path / "pareto.png",
    )
    for name in ("training.png", "pareto.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert b"<script" not in data and b"http://" not in data and b"https://" not in data
    (metrics / "bad.tsv").write_text("step\tx\n0\tnot-a-number\n")
    with pytest.raises(ValueError, match=r"bad.tsv: line 2: expected numeric step and value columns"):
        plots.training_png(metrics, tmp_path / "t2.png")


def test_evaluate_set_end_to_end_on_the_tiny_model(in_workspace):
    """Whole questions under max_samples, FULL over evaluation.max_length scored too_long (the set goes
    on), the headline within 25 keys, the report's breakdowns, and the offline Pareto PNG."""
    import torch

    from vovnet.evaluation.core import evaluate_set, load_eval_records
    from vovnet.model.encoding import Encoder
    from vovnet.model.factory import build_vovnet, save_vovnet

    params = load_params("params.yaml")
    torch.manual_seed(0)
    model, processor = build_vovnet(params)
    save_vovnet(model, processor, params, "models/vovnet")
    set_cfg = params["evaluation"]["sets"]["mmbench"]
    records = load_eval_records("mmbench", set_cfg, 2)
    enc = Encoder(processor, params["vision_budget"], 10**9)
    longest_coarse = max(len(enc.encode(r, [], "no", with_target=False)["input_ids"]) + 8 for r in records)
    params["evaluation"].update(max_samples=2, max_length=longest_coarse, batch_size=4)
    params["policy"]["cost_shift"] = -1000.0  # vision made free: the learned policy takes FULL everywhere
    result = evaluate_set("mmbench", set_cfg, params, "eval/mmbench", get_protocol(set_cfg["protocol"]))
    m, rep = result["metrics"], result["report"]
    assert m["questions"] == 2 and rep["records"] == len(records) == 8
    assert rep["too_long_by_action"]["full"] == 8 and rep["too_long_by_action"]["no"] == 0
    full = json.loads(Path("eval/mmbench/baselines/always_full.json").read_text())
    assert full["too_long"] == 8 and full["acc"] == 0.0 and full["tokens"] > 0
    assert m["full"] == 1.0 and m["too_long"] == 8 and len(report.flat_keys(m)) <= 25
    assert json.loads(Path("eval/mmbench/baselines/no_vision.json").read_text())["too_long"] == 0
    assert sorted(p.name for p in Path("eval/mmbench/baselines").iterdir()) == sorted(
        f"{k}.json" for k in (*report.POINT_BASELINES, *report.CURVE_BASELINES)
    )
    assert set(rep["learned"]["per_action"]) == {"no", "coarse", "full", "mixed"} and "per_category" in rep["learned"]
    vov, base = rep["value_of_vision"], rep["baselines"]
    assert vov["mg"] == pytest.approx(base["always_full"]["accuracy"] - base["no_vision"]["accuracy"])
    assert vov["cost_share"] == pytest.approx(rep["learned"]["vision_tokens"] / base["always_full"]["vision_tokens"])
    assert set(rep["official"]) == {"learned", "always_full", "no_vision"}
    assert rep["official"]["learned"]["protocol"] == "mmbench"
    # intervals: every policy's accuracy, and the learned policy paired against each baseline
    assert m["acc_se"] == round(rep["learned"]["interval"]["se"], 4) and full["acc_se"] >= 0
    assert rep["learned"]["interval"]["questions"] == 2 and rep["baselines"]["uncertainty"]["interval"]["ci95"]
    assert set(rep["comparisons"]) == {"always_full", "random", "uncertainty", "uncertainty_coarse"}
    vs_full = rep["comparisons"]["always_full"]
    assert vs_full["difference"] == pytest.approx(rep["learned"]["accuracy"] - base["always_full"]["accuracy"])
    assert "learned - always_full" in result["table"]
    preds = [json.loads(x) for x in open("eval/mmbench/predictions.jsonl")]
    assert all(p["outputs_by_action"]["full"] == "" for p in preds)
    assert open("eval/mmbench/pareto.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "learned" in result["table"] and "uncertainty_coarse" in result["table"]


@pytest.mark.parametrize("task", ["mmstar", "pope", "scienceqa_img"])
def test_evaluate_set_writes_the_official_figures_of_the_new_benchmarks(in_workspace, task):
    """The default pipeline normalizes the MMStar, POPE and ScienceQA-IMG samples (their hub layouts) and merge
    guards against them; their evaluation sets run in the paper preset. Here each is evaluated on its sample
    through the one evaluation core (they stay out of the default pipeline's headline, which must keep
    `dvc metrics show` and `vovnet exps` within 160 columns)."""
    import torch

    from vovnet.evaluation.core import evaluate_set
    from vovnet.model.factory import build_vovnet, save_vovnet
    from vovnet.registry import defaults

    params = load_params("params.yaml")
    assert task in params["datasets"]  # normalized by the default pipeline (and by this workspace)
    torch.manual_seed(0)
    model, processor = build_vovnet(params)
    save_vovnet(model, processor, params, "models/vovnet")
    set_cfg = {**defaults(task)["evaluation_set"], "dataset": task, "protocol": task, "images": task}
    params["evaluation"].update(batch_size=4)
    result = evaluate_set(task, set_cfg, params, f"eval/{task}", get_protocol(task))
    rep = result["report"]
    assert rep["protocol"] == task and rep["records"] > 0 and rep["questions"] == result["metrics"]["questions"]
    assert set(rep["official"]) == {"learned", "always_full", "no_vision"}
    assert rep["official"]["learned"]["protocol"] == task
    assert set(rep["value_of_vision"]) == {"mg", "learned_gain", "learned_share", "cost_share"}
    if task == "pope":  # POPE's own figures, overall and per category
        overall = rep["official"]["learned"]["overall"]
        assert {"accuracy", "precision", "recall", "f1", "yes_ratio"} <= set(overall)
        assert set(rep["official"]["learned"]["per_category"]) == {"adversarial", "popular", "random"}
    assert Path(f"eval/{task}/submission.tsv").read_text().splitlines()[0].split("\t")[-1] == "prediction"
