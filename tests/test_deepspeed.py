"""The DeepSpeed path on 2 CPU processes (gloo), with the shipped configs/accelerate/zero{2,3}_v100.yaml and
DeepSpeed's own engine: `dvc exp run` trains both stages, saves and evaluates under ZeRO-2 and ZeRO-3 in
bf16 (the half dtype DeepSpeed runs on CPU; it refuses fp16 there); in fp32, ZeRO-3's saved adapter and head
equal ZeRO-2's and one process's at the same global batch; a rank killed after a checkpoint resumes from it
and ends where an uninterrupted run ends, and another engine or layout is one line."""

import json
import shutil
import sys

import pytest
import torch
from conftest import ROOT, copy_repo, ran, sh
from safetensors.torch import load_file
from test_launch_pipeline import edit_params, start_and_kill_rank

pytestmark = pytest.mark.slow

CONFIGS = {"zero2": "configs/accelerate/zero2_v100.yaml", "zero3": "configs/accelerate/zero3_v100.yaml"}
# fp32 runs differ only in the order sums are taken (2 ranks reduce what one process accumulates).
# Measured on this 2-CPU machine: see the figures these tests print (docs/results.md).
SAME_BATCH_RTOL = 1e-4


@pytest.fixture(scope="module")
def ds_repo(tmp_path_factory):
    """A fresh copy with its data and tiny model built (dvc repro merge model), one evaluation set, and
    launch.processes 2: what every run below starts from."""
    repo = copy_repo(tmp_path_factory.mktemp("deepspeed") / "vovnet")
    edit_params(
        repo / "params.yaml",
        **{"launch.processes": 2, "train.cpu_threads": 1, "evaluation.cpu_threads": 1},
    )
    params = (repo / "params.yaml").read_text()
    from ruamel.yaml import YAML

    y = YAML()
    d = y.load(params)
    d["evaluation"]["sets"] = {k: v for k, v in d["evaluation"]["sets"].items() if k == "mmbench"}
    with open(repo / "params.yaml", "w") as fh:
        y.dump(d, fh)
    sh(repo, "dvc", "repro", "merge", "model")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "two processes, data built")
    return repo


def trained(out_dir) -> dict[str, torch.Tensor]:
    """The saved adapter and head, by name."""
    return {
        **{f"adapter/{k}": v for k, v in load_file(str(out_dir / "adapter_model.safetensors")).items()},
        **{f"head/{k}": v for k, v in load_file(str(out_dir / "head.safetensors")).items()},
    }


def relative_gap(a: dict, b: dict) -> float:
    """The largest per-tensor ||a - b|| / ||b||."""
    assert set(a) == set(b)
    return max(float((a[k].double() - b[k].double()).norm() / b[k].double().norm().clamp_min(1e-30)) for k in a)


def train_once(repo, name: str, config: str | None, processes: int) -> str:
    edit_params(
        repo / "params.yaml",
        **{
            "launch.processes": processes,
            "launch.config_file": config,
            "train.output_dir": f"models/{name}",
            "train.checkpoint_dir": f"checkpoints/{name}",
        },
    )
    return sh(repo, sys.executable, "-m", "vovnet.launch", "stages/train.py", "--metrics", f"metrics/{name}.json")


@pytest.fixture(scope="module")
def fp32_runs(ds_repo, tmp_path_factory):
    """The same fp32 training (global batch 4) on one process, under ZeRO-2 and under ZeRO-3 on two."""
    repo = tmp_path_factory.mktemp("fp32") / "vovnet"
    shutil.copytree(ds_repo, repo, symlinks=True)
    edit_params(repo / "params.yaml", **{"model.dtype": "float32"})
    logs = {
        "one": train_once(repo, "one", None, 1),
        "zero2": train_once(repo, "zero2", CONFIGS["zero2"], 2),
        "zero3": train_once(repo, "zero3", CONFIGS["zero3"], 2),
    }
    return repo, logs


def test_dvc_exp_run_trains_both_stages_saves_and_evaluates_under_zero2_and_zero3(ds_repo):
    for name, config in CONFIGS.items():
        stage = name[-1]
        # launch is not a stage param (it does not change results), so the run is forced from train on
        out = sh(
            ds_repo,
            *("dvc", "exp", "run", "-n", f"bf16-{name}", "-f", "--downstream", "train"),
            *("-S", f"launch.config_file={config}", "-S", "model.dtype=bfloat16"),
        )
        assert {"train", "evaluate@mmbench"} <= ran(out)
        assert out.count("launch: 2 processes (CPU, gloo) under accelerate launch") == 1  # train
        assert out.count("launch: 2 processes (CPU, gloo) under torchrun") == 1  # evaluate: no engine to build
        for s in (1, 2):  # read from the engine, on every rank; clipping is train.max_grad_norm (1.0)
            line = f"train: stage {s} runs on DeepSpeed ZeRO-{stage} on 2 process(es), gradient clipping 1.0"
            assert out.count(line) == 2, out[-3000:]
        assert "evaluate@mmbench: process 1 of 2" in out
        weights = trained(ds_repo / "models" / "vovnet")
        assert all(v.numel() > 0 and v.dtype == torch.float32 for v in weights.values())
        assert sum(k.startswith("head/") for k in weights) == 6
        metrics = json.loads((ds_repo / "metrics" / "train.json").read_text())
        assert set(metrics["stages"]) == {"stage1", "stage2"}
        assert json.loads((ds_repo / "eval" / "mmbench" / "metrics.json").read_text())
    listed = sh(ds_repo, "dvc", "exp", "list", "--name-only").split()
    assert {"bf16-zero2", "bf16-zero3"} <= set(listed)


def test_zero3_saves_the_adapter_and_head_whole_and_equal_to_zero2_and_one_process(fp32_runs):
    repo, logs = fp32_runs
    runs = {name: trained(repo / "models" / name) for name in logs}
    assert all(v.numel() > 0 for v in runs["zero3"].values())  # gathered, not ZeRO-3's empty partitions
    gaps = {
        "zero3 vs zero2": relative_gap(runs["zero3"], runs["zero2"]),
        "zero3 vs one process": relative_gap(runs["zero3"], runs["one"]),
        "zero2 vs one process": relative_gap(runs["zero2"], runs["one"]),
    }
    print("DeepSpeed fp32, largest relative gap per tensor: " + ", ".join(f"{k} {v:.2e}" for k, v in gaps.items()))
    assert all(g < SAME_BATCH_RTOL for g in gaps.values()), gaps
    # the adapter moved: equal runs that trained nothing would pass the comparison too
    init_b = [v for k, v in runs["one"].items() if k.startswith("adapter/") and "lora_B" in k]
    assert init_b and all(v.abs().max() > 0 for v in init_b)
    steps = {name: json.loads((repo / "metrics" / f"{name}.json").read_text())["optimizer_steps"] for name in logs}
    assert len(set(steps.values())) == 1


@pytest.mark.parametrize("name", ["zero2", "zero3"])
def test_a_rank_killed_after_a_checkpoint_resumes_and_ends_where_an_uninterrupted_run_ends(fp32_runs, tmp_path, name):
    base, _ = fp32_runs
    work = tmp_path / "kill"
    shutil.copytree(base, work, symlinks=True, ignore=shutil.ignore_patterns("cache", "tmp"))
    edit_params(
        work / "params.yaml",
        **{
            "launch.processes": 2,
            "launch.config_file": CONFIGS[name],
            "train.save_every": 5,
            "train.output_dir": "models/killed",
            "train.checkpoint_dir": "checkpoints/killed",
        },
    )
    cmd = [sys.executable, "-m", "vovnet.launch", "stages/train.py", "--metrics", "metrics/killed.json"]
    saved = list((work / "checkpoints").glob("killed/*/step-*/state.json"))
    rc = start_and_kill_rank(
        work, cmd, lambda cwd, err: any((cwd / "checkpoints").glob("killed/*/step-*/state.json")), tmp_path / "e.log"
    )
    assert not saved and rc != 0 and not (work / "models" / "killed").exists()
    ckpt = sorted((work / "checkpoints").glob("killed/*/step-*"))[-1].relative_to(work)
    # our files hold plain tensors and numbers; DeepSpeed's partitions (and its loss scaler) sit under engine/
    extra = torch.load(work / ckpt / "optim.pt", weights_only=True)
    assert set(extra) == {"scheduler"} and any((work / ckpt / "engine").rglob("*optim_states.pt"))
    assert sorted(f.name for f in (work / ckpt / "rng").iterdir()) == ["rank-0.pt", "rank-1.pt"]
    # the frozen base model is not in DeepSpeed's checkpoint: it is on disk already
    engine_bytes = sum(f.stat().st_size for f in (work / ckpt / "engine").rglob("*") if f.is_file())
    assert engine_bytes < (work / "models" / "tiny-qwen3-vl" / "model.safetensors").stat().st_size
    assert json.loads((work / ckpt / "engine.json").read_text()) == {
        "name": "deepspeed",
        "zero_stage": int(name[-1]),
        "processes": 2,
    }
    # another engine or layout: one line naming the folder and what differs, nothing trained
    other = {"zero2": CONFIGS["zero3"], "zero3": CONFIGS["zero2"]}[name]
    for processes, config in ((1, None), (2, other)):
        edit_params(work / "params.yaml", **{"launch.processes": processes, "launch.config_file": config})
        out = sh(work, *cmd, check=False)
        last = out.strip().splitlines()[-1]
        said = f"checkpoint {work.resolve() / ckpt} was written by DeepSpeed ZeRO-{name[-1]}"  # the workspace's
        assert "Traceback" not in out and said in out, out[-2000:]
        assert "resume with the launch that wrote it" in out, last
    edit_params(work / "params.yaml", **{"launch.processes": 2, "launch.config_file": CONFIGS[name]})
    out = sh(work, *cmd)
    assert f"resuming from {work.resolve() / ckpt}" in out
    gap = relative_gap(trained(work / "models" / "killed"), trained(base / "models" / name))
    print(f"{name}: killed and resumed vs uninterrupted, largest relative gap per tensor {gap:.2e}")
    assert gap < SAME_BATCH_RTOL
    assert not list((work / "checkpoints" / "killed").glob("*/step-*"))  # removed once the run completed


def test_zero3_loads_partitioned_so_no_rank_holds_more_than_its_share_and_the_largest_module(ds_repo):
    """The 16 GB property at load: with zero3_init_flag the model is built as ZeRO-3 partitions and the
    loader un-partitions one module at a time (measured at every gather by tests/zero3_load_probe.py)."""
    from vovnet.launch import free_port
    from vovnet.launch_configs import deepspeed_settings

    assert deepspeed_settings(ds_repo / CONFIGS["zero3"])["zero3_init_flag"] is True
    out = sh(
        ds_repo,
        *(sys.executable, "-m", "accelerate.commands.launch", "--config_file", CONFIGS["zero3"]),
        *("--num_processes", "2", "--main_process_port", str(free_port())),
        str(ROOT / "tests" / "zero3_load_probe.py"),
    )
    rows = [json.loads(line) for line in out.splitlines() if line.startswith('{"rank"')]
    assert sorted(r["rank"] for r in rows) == [0, 1]
    for r in rows:
        print(
            f"ZeRO-3 load, rank {r['rank']}: peak {r['peak_bytes']} B held, share {r['share_bytes']} B + largest "
            f"module {r['largest_module_bytes']} B, whole model {r['whole_bytes']} B"
        )
        assert r["partitioned"] > 0 and r["share_bytes"] < r["whole_bytes"]
        assert r["share_bytes"] < r["peak_bytes"] <= r["share_bytes"] + r["largest_module_bytes"] < r["whole_bytes"]
