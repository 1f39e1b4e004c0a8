import json
import os
import subprocess
import sys

import pytest
from ruamel.yaml import YAML
from safetensors.torch import load_file

from conftest import ROOT

TRAIN = str(ROOT / "stages" / "train.py")


def params_file(ws, name, **train):
    y = YAML()
    d = y.load((ws / "params.yaml").read_text())
    d["train"]["stage1"]["epochs"] = 1
    d["train"]["stage2"]["epochs"] = 1
    d["train"]["save_every"] = 2
    d["train"]["output_dir"] = f"models/{name}"
    d["train"]["checkpoint_dir"] = f"checkpoints/{name}"
    for k, v in train.items():
        d["train"][k] = v
    path = ws / f"params_{name}.yaml"
    with open(path, "w") as fh:
        y.dump(d, fh)
    return path


def run_train(ws, params, env=None, launcher=None):
    cmd = (launcher or [sys.executable]) + [TRAIN, "--params", str(params), "--metrics", f"metrics/{params.stem}.json"]
    return subprocess.run(cmd, cwd=ws, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)


def weights(ws, name):
    d = ws / "models" / name
    return {**load_file(str(d / "adapter_model.safetensors")), **{f"head.{k}": v for k, v in load_file(str(d / "head.safetensors")).items()}}


def test_killed_and_resumed_run_equals_uninterrupted(workspace):
    full = run_train(workspace, params_file(workspace, "straight"))
    assert full.returncode == 0, full.stderr[-2000:]
    p = params_file(workspace, "killed")
    killed = run_train(workspace, p, env={"VOVNET_FAULT_AFTER_BATCH": "12"})  # stage 2, after a checkpoint at step 12
    assert killed.returncode == 137
    assert not (workspace / "models" / "killed").exists()  # nothing partial left as an output
    assert list((workspace / "checkpoints" / "killed").glob("*/step-*"))
    resumed = run_train(workspace, p)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    a, b = weights(workspace, "straight"), weights(workspace, "killed")
    assert a.keys() == b.keys() and a
    for k in a:
        assert (a[k] == b[k]).all(), k
    assert not list((workspace / "checkpoints" / "killed").glob("*/step-*"))  # cleaned after completion


def test_checkpoints_of_another_configuration_are_not_resumed(workspace):
    p = params_file(workspace, "cfg_a")
    run_train(workspace, p, env={"VOVNET_FAULT_AFTER_BATCH": "5"})
    other = params_file(workspace, "cfg_a", lr=0.0005)  # same folders, different lr
    out = run_train(workspace, other)
    assert out.returncode == 0 and "resuming from" not in out.stdout + out.stderr


def test_non_finite_loss_stops_with_a_clear_message(workspace):
    out = run_train(workspace, params_file(workspace, "nan", lr=1e30, head_lr=1e30, max_grad_norm=1e30))
    assert out.returncode == 2
    assert "error: non-finite loss" in out.stderr and "at optimizer step" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_two_process_cpu_run_writes_one_model(workspace):
    p = params_file(workspace, "ddp")
    out = run_train(workspace, p, env={"ACCELERATE_USE_CPU": "1"},
                    launcher=[sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                              "--master_port", "29561"])
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((workspace / "metrics" / f"{p.stem}.json").read_text())
    assert m["processes"] == 2
    assert (workspace / "models" / "ddp" / "head.safetensors").exists()
