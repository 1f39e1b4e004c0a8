"""End to end: `dvc repro` in a temporary copy of the repository (offline, sample preset)."""
import pytest

from conftest import copy_repo, ran, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("repo") / "vovnet")


def test_repro_runs_everything_then_nothing(repo):
    out = sh(repo, "dvc", "repro")
    stages = ran(out)
    assert {"merge", "model", "train", "normalize@mmbench", "evaluate@mmbench", "evaluate@mmbench_test"} <= stages
    for f in ("models/vovnet/head.safetensors", "metrics/train.json", "eval/mmbench/metrics.json",
              "eval/mmbench/pareto.json", "eval/mmbench_test/submission.tsv", "data/processed/mmbench_core/mmbench_core_train.jsonl"):
        assert (repo / f).exists(), f
    assert ran(sh(repo, "dvc", "repro")) == set()
    assert "up to date" in sh(repo, "dvc", "status")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "ran")


def test_exp_run_lr_reruns_only_train_and_downstream(repo):
    out = sh(repo, "dvc", "exp", "run", "-S", "train.lr=1e-5")
    stages = ran(out)
    assert "train" in stages and any(s.startswith("evaluate@") for s in stages)
    assert not any(s.startswith(("download@", "normalize@")) or s in ("merge", "model") for s in stages), stages
    shown = sh(repo, "dvc", "exp", "show", "--csv")
    assert "1e-05" in shown and "accuracy" in shown


def test_textvqa_param_reruns_only_its_stages(repo):
    out = sh(repo, "dvc", "exp", "run", "-S", "datasets.textvqa.max_samples=4")
    stages = ran(out)
    assert "normalize@textvqa" in stages and "merge" in stages
    assert not {"normalize@mmbench", "normalize@mmmu", "normalize@llava", "normalize@mmbench_lite"} & stages
    assert not any(s.startswith("download@") for s in stages)
