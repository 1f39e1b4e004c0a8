"""End to end: `dvc repro` in a temporary copy of the repository (offline, sample preset)."""

import json
import subprocess

import pytest
from conftest import ENV, FAKE_TOKEN, ran, sh, up_to_date

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(reproduced, tmp_path_factory):
    return reproduced.copy(tmp_path_factory.mktemp("repo") / "vovnet")


def test_repro_runs_everything_then_nothing(repo, reproduced):
    out = reproduced.output  # the session's one `dvc repro` of a fresh copy, a token in its environment
    assert FAKE_TOKEN not in out
    stages = ran(out)
    assert {"merge", "model", "train", "normalize@mmbench", "evaluate@mmbench", "evaluate@mmbench_test"} <= stages
    for f in (
        "models/vovnet/head.safetensors",
        "metrics/train.json",
        "eval/mmbench/metrics.json",
        "eval/mmbench/pareto.json",
        "eval/mmbench/report.json",
        "eval/mmbench/pareto.png",
        "plots/training.png",
        "eval/mmbench_test/submission.tsv",
        "data/processed/mmbench_core/mmbench_core_train.jsonl",
    ):
        assert (repo / f).exists(), f

    from vovnet.evaluation.report import flat_keys

    pareto = json.loads((repo / "eval" / "mmbench" / "pareto.json").read_text())
    policies = {p["policy"] for p in pareto}
    assert {
        "learned",
        "always_full",
        "always_coarse",
        "no_vision",
        "random",
        "uncertainty",
        "uncertainty_coarse",
    } <= policies
    assert all({"accuracy", "vision_tokens", "ratio_no", "ratio_coarse", "ratio_full"} <= set(p) for p in pareto)
    assert len([p for p in pareto if p["policy"] == "learned"]) >= 5
    metrics = json.loads((repo / "eval" / "mmbench" / "metrics.json").read_text())
    assert len(flat_keys(metrics)) <= 25 and {"acc", "tokens", "no", "coarse", "full", "questions"} <= set(metrics)
    unc = json.loads((repo / "eval" / "mmbench" / "baselines" / "uncertainty.json").read_text())
    assert {"acc", "tokens", "acc_at_learned"} <= set(unc)
    # the headline a person reads: stage statistics are not DVC metrics, every row fits 160 columns
    shown = sh(repo, "dvc", "metrics", "show")
    assert "metrics/train.json" not in shown and "eval/mmbench/baselines/always_full.json" in shown
    assert max(map(len, shown.splitlines())) <= 160, shown
    rep = json.loads((repo / "eval" / "mmbench" / "report.json").read_text())
    assert rep["thresholds"]["uncertainty"]["quantile"] == 0.5 and "per_category" in rep["learned"]
    test_metrics = json.loads((repo / "eval" / "mmbench_test" / "metrics.json").read_text())
    assert "acc" not in test_metrics and test_metrics["tokens"] >= 0 and test_metrics["questions"] > 0
    test_full = json.loads((repo / "eval" / "mmbench_test" / "baselines" / "always_full.json").read_text())
    assert test_full["full"] == 1.0 and test_full["tokens"] > 0 and "acc" not in test_full
    assert "no answers" in json.loads((repo / "eval" / "mmbench_test" / "report.json").read_text())["note"]
    assert "policy" in out and "vision tokens" in out  # each evaluate stage prints its table
    header = (repo / "eval" / "mmbench_test" / "submission.tsv").read_text().splitlines()[0].split("\t")
    assert header[:8] == ["index", "question", "hint", "A", "B", "C", "D", "prediction"]
    preds = [json.loads(x) for x in (repo / "eval" / "mmmu" / "predictions.jsonl").read_text().splitlines()]
    assert all(p["action"] in ("no", "coarse", "full") and "output" in p and "score" in p for p in preds)
    assert ran(sh(repo, "dvc", "repro")) == set()
    assert up_to_date(sh(repo, "dvc", "status"))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "--allow-empty", "-qm", "ran")
    exps = sh(repo, "python", "-m", "vovnet", "exps").splitlines()
    assert exps[0].startswith("experiment") and "mmbench acc" in exps[0] and exps[1].startswith("workspace")
    # The token was in the environment of every stage: no output, lock, log, cache or git object holds it.
    needle = FAKE_TOKEN.encode()
    hits = [str(p) for p in repo.rglob("*") if p.is_file() and needle in p.read_bytes()]
    assert hits == []


def test_second_concurrent_repro_fails_on_dvcs_lock(repo):
    # train (seconds long) alone, both times: the download@ checks that run before any other stage
    # would otherwise outlast a short stage of the first run
    first = subprocess.Popen(
        ["dvc", "repro", "-f", "-s", "train"],
        cwd=repo,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = ""
    while "Running stage 'train'" not in seen:  # the first holds train's lock while it runs
        line = first.stdout.readline()
        assert line, seen
        seen += line
    second = subprocess.run(
        ["dvc", "repro", "-s", "train"], cwd=repo, env=ENV, capture_output=True, text=True, timeout=300
    )
    rest, _ = first.communicate(timeout=300)
    assert second.returncode != 0 and "lock" in (second.stdout + second.stderr).lower()
    assert first.returncode == 0, seen + rest
    assert up_to_date(sh(repo, "dvc", "status"))


def test_exp_run_lr_reruns_only_train_and_downstream(repo):
    out = sh(repo, "dvc", "exp", "run", "-S", "train.lr=1e-5")
    stages = ran(out)
    assert "train" in stages and any(s.startswith("evaluate@") for s in stages)
    assert not any(s.startswith("normalize@") or s in ("merge", "model") for s in stages), stages
    shown = sh(repo, "dvc", "exp", "show", "--csv")
    assert "1e-05" in shown and "eval/mmbench/metrics.json:acc" in shown
    # the compact table: the changed knob, and the experiment's row beside the baseline commit's
    exps = sh(repo, "python", "-m", "vovnet", "exps").splitlines()
    assert "train.lr" in exps[0].split() and any(line.startswith("└─") for line in exps)
    assert max(map(len, exps)) <= 160


def test_textvqa_param_reruns_only_its_stages(repo):
    # `++`: add or override; the entry leaves max_samples to its task's defaults, so the key is not in the file
    out = sh(repo, "dvc", "exp", "run", "-S", "++datasets.textvqa.max_samples=4")
    stages = ran(out)
    assert "normalize@textvqa" in stages and "merge" in stages
    assert not {"normalize@mmbench", "normalize@mmmu", "normalize@llava", "normalize@mmbench_lite"} & stages
