"""Outputs depend on params, code and data only: a fresh `dvc repro` writes the committed dvc.lock's output
md5s, under .ci/run's one OpenMP thread and under torch's default thread count alike (train.cpu_threads and
evaluation.cpu_threads fix the CPU sums' order)."""

import subprocess

import pytest
from conftest import ENV, ROOT, ran
from ruamel.yaml import YAML


def output_md5s(lock_text: str, stages=None) -> dict[str, str]:
    lock = YAML(typ="safe").load(lock_text)
    return {
        o["path"]: o["md5"]
        for name, stage in lock["stages"].items()
        if stages is None or name in stages
        for o in stage.get("outs", [])
    }


@pytest.mark.slow
def test_a_fresh_repro_writes_the_committed_output_md5s(reproduced):
    fresh = output_md5s((reproduced.path / "dvc.lock").read_text())
    committed = output_md5s((ROOT / "dvc.lock").read_text())
    assert fresh.keys() == committed.keys()
    assert {p: m for p, m in fresh.items() if committed[p] != m} == {}


@pytest.mark.slow
def test_training_and_evaluation_bytes_do_not_depend_on_the_thread_count(reproduced, tmp_path):
    repo = reproduced.copy(tmp_path / "vovnet")
    env = {**ENV, "OMP_NUM_THREADS": "2"}  # torch's default on this 2-core machine; .ci/run sets 1
    stages = ["model", "train", "evaluate@mmbench"]
    p = subprocess.run(["dvc", "repro", "-f", "-s", *stages], cwd=repo, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    assert set(stages) <= ran(p.stdout + p.stderr)
    again = output_md5s((repo / "dvc.lock").read_text(), stages)
    assert again == output_md5s((reproduced.path / "dvc.lock").read_text(), stages)
