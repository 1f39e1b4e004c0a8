import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from ruamel.yaml import YAML
from safetensors.torch import load_file

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


def train_cmd(params, launcher=None):
    metrics, launched = f"metrics/{params.stem}.json", f"logs/{params.stem}.json"
    return (launcher or [sys.executable]) + [
        TRAIN,
        "--params",
        str(params),
        "--metrics",
        metrics,
        "--launch-log",
        launched,
    ]


def run_train(ws, params, env=None, launcher=None):
    return subprocess.run(
        train_cmd(params, launcher),
        cwd=ws,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def kill_after_checkpoint(ws, params, name, stage):
    """Start training, SIGKILL it as soon as a checkpoint of `stage` is on disk; the checkpoint's step."""
    proc = subprocess.Popen(train_cmd(params), cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        for f in (ws / "checkpoints" / name).glob("*/step-*/state.json"):
            state = json.loads(f.read_text())
            if state["stage"] >= stage:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return state["opt_step"]
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"training ended (rc {proc.returncode}) before a stage-{stage} checkpoint appeared")


def weights(ws, name):
    d = ws / "models" / name
    return {
        **load_file(str(d / "adapter_model.safetensors")),
        **{f"head.{k}": v for k, v in load_file(str(d / "head.safetensors")).items()},
    }


@pytest.mark.slow  # whole training runs in a subprocess
def test_killed_and_resumed_run_equals_uninterrupted(workspace):
    # stage 1: 10 batches; stage 2 (3 epochs of the policy file): 6 batches; checkpoints every 6 steps
    kw = {"save_every": 6, "stage2": {"epochs": 3, "train_lora": False}}
    full = run_train(workspace, params_file(workspace, "straight", **kw))
    assert full.returncode == 0, full.stderr[-2000:]
    p = params_file(workspace, "killed", **kw)
    step = kill_after_checkpoint(workspace, p, "killed", stage=2)  # mid stage 2, its optimizer state saved
    assert step == 12
    assert not (workspace / "models" / "killed").exists()  # nothing partial left as an output
    resumed = run_train(workspace, p)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    a, b = weights(workspace, "straight"), weights(workspace, "killed")
    assert a.keys() == b.keys() and a
    for k in a:
        assert (a[k] == b[k]).all(), k
    assert not list((workspace / "checkpoints" / "killed").glob("*/step-*"))  # cleaned after completion


@pytest.mark.slow  # whole training runs in a subprocess
def test_checkpoints_of_another_configuration_are_not_resumed(workspace):
    # stage 2 trains the LoRA under gradient checkpointing, with prefix reuse (the paper preset's setting)
    kw = {"gradient_checkpointing": True, "prefix_reuse": True, "stage2": {"epochs": 1, "train_lora": True}}
    p = params_file(workspace, "cfg_a", **kw)
    kill_after_checkpoint(workspace, p, "cfg_a", stage=1)
    other = params_file(workspace, "cfg_a", lr=0.0005, **kw)  # same folders, different lr
    out = run_train(workspace, other)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming from" not in out.stdout + out.stderr
    assert "Caching is incompatible" not in out.stderr  # the prefix cache was kept in checkpointed layers


@pytest.mark.slow  # a training run in a subprocess
def test_non_finite_loss_stops_with_a_clear_message(workspace):
    out = run_train(workspace, params_file(workspace, "nan", lr=1e30, head_lr=1e30, max_grad_norm=1e30))
    assert out.returncode == 2
    assert "error: non-finite loss" in out.stderr and "at optimizer step" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_two_process_cpu_run_writes_one_model(workspace):
    p = params_file(workspace, "ddp")
    out = run_train(
        workspace,
        p,
        env={"ACCELERATE_USE_CPU": "1"},
        launcher=[sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561"],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((workspace / "logs" / f"{p.stem}.json").read_text())["processes"] == 2  # how it ran: a log
    assert (workspace / "models" / "ddp" / "head.safetensors").exists()


@pytest.mark.slow  # whole training runs in a subprocess
def test_thinking_model_for_full_trains_both_stages(workspace, params):
    """Stage 1 trains the Instruct model only (it crashed on the frozen Thinking model's FULL loss before);
    the frozen Thinking model gives FULL's loss in stage 2 and is never saved as trained."""
    from conftest import build_tiny_model

    build_tiny_model(
        workspace / "models" / "thinker", {**params["model"], "tiny": {**params["model"]["tiny"], "seed": 1}}
    )
    y = YAML()
    p = params_file(workspace, "thinking_run")
    d = y.load(p.read_text())
    d["model"]["use_thinking_for_full"] = True
    d["model"]["full_model_name"] = "models/thinker"
    with open(p, "w") as fh:
        y.dump(d, fh)
    out = run_train(workspace, p)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((workspace / "metrics" / f"{p.stem}.json").read_text())
    assert m["optimizer_steps"] == 12 and m["records"] == {"stage1": 38, "stage2": 8}
    assert all(v == v for v in m["stages"]["stage1"].values()) and m["stages"]["stage2"]["task"] > 0
    trained = weights(workspace, "thinking_run")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in trained.items())  # stage 1 moved the Instruct LoRA
