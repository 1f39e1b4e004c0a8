"""The launcher (launch.* params), the global batch and sharded evaluation's bookkeeping, without processes."""

import os
import socket
import sys
from pathlib import Path

import pytest

from vovnet import VovnetError
from vovnet.evaluation.sharding import Shard, assemble, run_sharded, shard_batches
from vovnet.launch import Launch, batch_plan, free_port, resolve_launch
from vovnet.training.batching import epoch_order, process_micro_batches

AUTO = {"processes": "auto", "config_file": None, "main_process_port": "auto"}


def test_auto_is_the_visible_gpus_or_one_process():
    assert resolve_launch(AUTO, cuda_devices=0).processes == 1
    assert resolve_launch(AUTO, cuda_devices=8).processes == 8


def test_more_processes_than_gpus_is_one_line_naming_both():
    with pytest.raises(VovnetError, match=r"launch.processes is 9 but only 8 CUDA device\(s\)"):
        resolve_launch({**AUTO, "processes": 9}, cuda_devices=8)


def test_cpu_processes_run_under_torchrun_with_accelerates_cpu_switch():
    launch = resolve_launch({**AUTO, "processes": 2, "main_process_port": 29999}, cuda_devices=0)
    cmd = launch.command(["stages/evaluate.py", "--set", "x"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[cmd.index("--nproc_per_node") + 1] == "2" and cmd[cmd.index("--master_port") + 1] == "29999"
    assert cmd[-3:] == ["stages/evaluate.py", "--set", "x"]
    assert launch.env()["ACCELERATE_USE_CPU"] == "1"


def test_one_process_runs_the_stage_directly():
    launch = resolve_launch(AUTO, cuda_devices=0)
    assert launch.command(["stages/train.py"]) == [sys.executable, "stages/train.py"]
    assert launch.env() == dict(os.environ)  # nothing added


def test_gpus_run_under_accelerate_launch_with_the_config_file(tmp_path):
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nmixed_precision: fp16\n"
        "num_machines: 1\nnum_processes: 8\nmachine_rank: 0\nuse_cpu: false\n"
    )
    launch = resolve_launch({**AUTO, "config_file": str(cfg)}, cuda_devices=4)
    cmd = launch.command(["stages/train.py"])
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "4"  # the visible GPUs, not the file's 8
    assert cmd[cmd.index("--config_file") + 1] == str(cfg)
    assert int(cmd[cmd.index("--main_process_port") + 1]) > 0


def test_a_missing_launch_config_is_one_line(tmp_path):
    with pytest.raises(VovnetError, match=r"launch.config_file .*nope.yaml not found"):
        resolve_launch({**AUTO, "config_file": str(tmp_path / "nope.yaml")}, cuda_devices=2)


def test_a_launch_config_needing_a_missing_package_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    cfg = tmp_path / "zero2.yaml"
    cfg.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\ndeepspeed_config:\n"
        "  zero_stage: 2\nmixed_precision: fp16\nnum_machines: 1\nnum_processes: 8\nuse_cpu: false\n"
    )
    for cuda in (2, 1):  # DeepSpeed needs its package on a world of 1 too (accelerate launch runs it)
        with pytest.raises(VovnetError, match="needs the package deepspeed, which is not installed"):
            resolve_launch({**AUTO, "config_file": str(cfg)}, cuda_devices=cuda)


def test_a_deepspeed_config_goes_through_accelerate_launch_on_any_process_count(tmp_path):
    cfg = "configs/accelerate/zero3_v100.yaml"
    root = Path(__file__).resolve().parents[1]
    for processes, cuda in ((1, 0), (2, 0), (1, 1), (8, 8)):
        launch = resolve_launch(
            {"processes": processes, "config_file": str(root / cfg), "main_process_port": 29600}, cuda
        )
        argv = launch.command(["stages/train.py"])
        assert launch.deepspeed and argv[1:3] == ["-m", "accelerate.commands.launch"], (processes, cuda)
        assert argv[argv.index("--num_processes") + 1] == str(processes)
        assert launch.env().get("ACCELERATE_USE_CPU") != "1"  # it would drop DeepSpeed
        assert "under accelerate launch, config" in launch.describe()
    plain = resolve_launch({"processes": 2, "config_file": None, "main_process_port": 29600}, 0)
    assert plain.command(["stages/train.py"])[1:3] == ["-m", "torch.distributed.run"]
    assert plain.env()["ACCELERATE_USE_CPU"] == "1"


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    "batch,micro,procs,per,accum",
    [(64, 1, 8, 1, 8), (64, 1, 1, 1, 64), (8, None, 2, 4, 1), (8, 2, 2, 2, 2), (4, None, 1, 4, 1)],
)
def test_batch_plan_derives_the_per_process_batch_and_accumulation(batch, micro, procs, per, accum):
    plan = batch_plan(batch, micro, procs)
    assert (plan.micro, plan.accumulation) == (per, accum)
    assert plan.processes * plan.micro * plan.accumulation == batch


def test_a_batch_that_does_not_divide_is_one_line_with_the_numbers():
    with pytest.raises(VovnetError, match="train.batch_size 6 does not divide over 4 processes"):
        batch_plan(6, None, 4)
    with pytest.raises(VovnetError, match="is 4 per process, not a multiple of train.micro_batch_size 3"):
        batch_plan(8, 3, 2)


def test_every_optimizer_step_sees_the_same_micro_batches_on_one_process_or_two():
    order = epoch_order(37, seed=0, stage=1, epoch=0, batch=8)
    assert len(order) == 40 and set(order) == set(range(37))

    def steps(plan):
        per_rank = [process_micro_batches(order, plan, r) for r in range(plan.processes)]
        out = []
        for step in range(len(order) // plan.batch):
            mbs = [
                per_rank[r][step * plan.accumulation + a]
                for r in range(plan.processes)
                for a in range(plan.accumulation)
            ]
            out.append(sorted(map(tuple, mbs)))
        return out

    one, two, four = steps(batch_plan(8, 2, 1)), steps(batch_plan(8, 2, 2)), steps(batch_plan(8, 2, 4))
    assert one == two == four and len(one) == 5
    assert process_micro_batches(order, batch_plan(8, 2, 2), 1, first_step=3)[0] == order[26:28]  # resume


def test_each_process_runs_whole_batches_and_the_main_one_gets_all_in_order():
    ids = [f"r{i}" for i in range(11)]
    shards = [Shard(r, 3, "cpu") for r in range(3)]
    assert [list(map(list, shard_batches(11, 2, s))) for s in shards] == [
        [[0, 1], [6, 7]],
        [[2, 3], [8, 9]],
        [[4, 5], [10]],
    ]
    assert run_sharded(ids, 4, Shard(0, 1, "cpu"), lambda b: [ids[i] + "!" for i in b], "t") == [i + "!" for i in ids]


def test_gathering_names_a_lost_or_duplicated_record():
    ids = ["a", "b", "c"]
    assert assemble(ids, [("c", 3), ("a", 1), ("b", 2)], "t") == [1, 2, 3]
    with pytest.raises(VovnetError, match="1 record\\(s\\) missing, 0 returned twice"):
        assemble(ids, [("a", 1), ("b", 2)], "evaluate@x")
    with pytest.raises(VovnetError, match="0 record\\(s\\) missing, 1 returned twice"):
        assemble(ids, [("a", 1), ("b", 2), ("c", 3), ("a", 1)], "evaluate@x")
    with pytest.raises(VovnetError, match="record id a appears more than once"):
        run_sharded(["a", "a"], 2, Shard(0, 1, "cpu"), lambda b: list(b), "t")


def test_launch_describes_what_dvc_repro_runs():
    assert Launch(1, 0, None, None).describe() == "1 process (CPU), run directly"
    assert "2 processes (CPU, gloo) under torchrun" in Launch(2, 0, None, None).describe()
    assert "8 processes (8 of 8 CUDA devices, nccl) under accelerate launch" in Launch(8, 8, None, None).describe()
