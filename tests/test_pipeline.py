"""End to end: `dvc repro` in a temporary copy of the repository (offline, sample preset)."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def sh(cwd, *cmd, check=True):
    p = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout + p.stderr


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dst = tmp_path_factory.mktemp("repo") / "vovnet"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, files):
        src = ROOT / f.decode()
        if src.is_file():
            (dst / f.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f.decode())
    sh(dst, "git", "init", "-q")
    sh(dst, "git", "add", "-A")
    sh(dst, "git", "commit", "-qm", "copy")
    return dst


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
