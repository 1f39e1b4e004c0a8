"""Two "nodes" on loopback addresses, each its own checkout, run the sample pipeline's `train` and `evaluate@`
from one `dvc repro` on the first: the second node is reached over real ssh, through an sshd of the test's own
on 127.0.0.2. Training takes the steps of one node with the same losses; evaluation is byte-identical to one
process evaluating the same model."""

import json
import shutil
import subprocess
import sys

import pytest
from conftest import ENV, private_sshd, ran, sh
from test_launch_pipeline import EVAL_OUTS, LOSS_ATOL, LOSS_RTOL, edit_params

pytestmark = pytest.mark.slow
SECOND = "127.0.0.2"


@pytest.fixture
def ssh_to_second(tmp_path):
    """An sshd on 127.0.0.2 and an `ssh` first on PATH that is the real client reading a config for that host,
    as a user's ~/.ssh/config would (port, key, host key). ssh reads ~/.ssh/config from the passwd entry, not
    $HOME, so the test hands it the file with -F rather than touch the real one."""
    real_ssh = shutil.which("ssh")
    with private_sshd(tmp_path / "sshd", SECOND) as (port, key):
        config = tmp_path / "ssh_config"
        config.write_text(
            f"Host {SECOND}\n  Port {port}\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        )
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec {real_ssh} -F {config} "$@"\n')
        (bin_dir / "ssh").chmod(0o755)
        yield {**ENV, "PATH": f"{bin_dir}:{ENV['PATH']}"}


def test_two_nodes_train_and_evaluate_from_one_dvc_repro(reproduced, ssh_to_second, tmp_path):
    first = reproduced.copy(tmp_path / "node0" / "vovnet")
    second = reproduced.copy(tmp_path / "node1" / "vovnet")  # the same commit, params and data
    shared = tmp_path / "shared"  # checkpoints and generation logs: storage every node mounts (docs/servers.md)
    for checkout in (first, second):
        edit_params(
            checkout / "params.yaml",
            **{
                "launch.machines": ["127.0.0.1", SECOND],
                "launch.processes": 1,  # per node: one world of 2
                "launch.node_checkout": str(second),
                "train.checkpoint_dir": str(shared / "checkpoints"),
                "evaluation.generation_log": str(shared / "generations"),
            },
        )
    p = subprocess.run(
        ["dvc", "repro", "-f", "-s", "train", "evaluate@mmbench"],
        cwd=first,
        env=ssh_to_second,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert ran(out) == {"train", "evaluate@mmbench"}
    assert out.count(f"launch: 2 nodes (127.0.0.1, {SECOND}), each 1 process (CPU), run directly") == 2, out
    assert "train: process 1 of 2" in out and "evaluate@mmbench: process 1 of 2" in out  # rank 1: the second node
    # train's model reached the second node before evaluate@ (it reads it), over the same ssh
    assert f"launch: copying models/vovnet to node {SECOND}" in out
    # only the first node writes DVC outputs
    assert (second / "metrics" / "train.json").read_bytes() == (reproduced.path / "metrics" / "train.json").read_bytes()

    # training: the steps of one node (the reproduced pipeline: one process, the same global batch), its losses
    two, one = (json.loads((r / "metrics" / "train.json").read_text()) for r in (first, reproduced.path))
    assert two["optimizer_steps"] == one["optimizer_steps"] > 0 and two["records"] == one["records"]
    for stage, figures in one["stages"].items():
        for key, value in figures.items():
            assert two["stages"][stage][key] == pytest.approx(value, rel=LOSS_RTOL, abs=LOSS_ATOL), (stage, key)

    # evaluation: byte for byte what one process writes with the same model
    alone = tmp_path / "one"
    sh(first, sys.executable, "stages/evaluate.py", "--set", "mmbench", "--out", str(alone))
    for name in EVAL_OUTS:
        assert (alone / name).read_bytes() == (first / "eval" / "mmbench" / name).read_bytes(), name
    baselines = sorted((first / "eval" / "mmbench" / "baselines").iterdir())
    assert baselines
    for f in baselines:
        assert (alone / "baselines" / f.name).read_bytes() == f.read_bytes(), f.name
