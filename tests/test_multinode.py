"""Multi-node launches: the per-node commands, SLURM's environment, the node checks, and a real 2-"node" run on
127.0.0.1 (each node its own checkout, the second started through `ssh`, here a stand-in on PATH that runs the
command locally)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from vovnet import VovnetError
from vovnet.config import defaults
from vovnet.launch import Launch
from vovnet.nodes import difference, expand_nodelist, node_plan, slurm_nodes, slurm_step, stage_inputs

LCFG = defaults()["launch"]


def test_cpu_nodes_run_torchrun_with_the_node_rank_and_the_main_address():
    cmd = Launch(2, 0, None, 29400, machines=2, machine_rank=1, main_address="10.0.0.1").command(["s.py"])
    args = dict(zip(cmd[3:-1:2], cmd[4:-1:2]))
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert args == {
        "--nnodes": "2",
        "--node_rank": "1",
        "--nproc_per_node": "2",
        "--master_addr": "10.0.0.1",
        "--master_port": "29400",
    }


@pytest.mark.parametrize("deepspeed", [False, True])
def test_gpu_nodes_run_accelerate_with_every_nodes_processes_and_its_machine_rank(deepspeed):
    cfg = "configs/accelerate/zero2_v100.yaml" if deepspeed else "configs/accelerate/ddp_8gpu.yaml"
    launch = Launch(8, 8, cfg, 29400, deepspeed, machines=2, machine_rank=1, main_address="gpu01")
    cmd = launch.command(["stages/train.py"])
    value = {k: cmd[cmd.index(k) + 1] for k in ("--num_processes", "--num_machines", "--machine_rank")}
    assert value == {"--num_processes": "16", "--num_machines": "2", "--machine_rank": "1"}
    assert cmd[cmd.index("--main_process_ip") + 1] == "gpu01"
    assert ("--deepspeed_multinode_launcher" in cmd) == deepspeed
    if deepspeed:
        assert cmd[cmd.index("--deepspeed_multinode_launcher") + 1] == "standard"


def test_slurm_environment_maps_to_the_nodes_and_one_srun_step():
    assert expand_nodelist("gpu[01-03,07],login1") == ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]
    env = {"SLURM_JOB_NODELIST": "gpu[08-09]", "SLURM_NODEID": "1"}
    nodes = node_plan({**LCFG, "machines": "slurm"}, env)
    assert (nodes.hosts, nodes.rank, nodes.main_address, nodes.slurm) == (["gpu08", "gpu09"], 1, "gpu08", True)
    step = slurm_step(slurm_nodes({"SLURM_JOB_NODELIST": "gpu[08-09]"}), 29400, ["stages/train.py"])
    assert step[:4] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert "VOVNET_MAIN_PORT=29400" in step[4] and "VOVNET_MAIN_ADDRESS=gpu08" in step[4]
    assert step[-4:] == [sys.executable, "-m", "vovnet.launch", "stages/train.py"]


def test_slurm_outside_an_allocation_and_one_machine():
    with pytest.raises(VovnetError, match="not a SLURM allocation"):
        node_plan({**LCFG, "machines": "slurm"}, {})
    assert node_plan({**LCFG, "machines": ["only"]}, {}) is None and node_plan(LCFG, {}) is None


def test_the_first_difference_names_what_differs():
    here = {"commit": "a1", "changes": "", "params": "p", "torch": "2.14.1", "gpus": [], "data": {"d.jsonl": "m1"}}
    assert difference(here, dict(here)) is None
    assert difference(here, {**here, "commit": "b2"}) == "commit b2 there, a1 here"
    assert difference(here, {**here, "data": {}}) == "data d.jsonl is missing there, m1 here"


def test_the_nodes_compare_what_the_launched_stage_reads_not_what_it_writes(monkeypatch):
    from helpers import ROOT

    monkeypatch.chdir(ROOT)
    inputs = stage_inputs(["stages/evaluate.py", "--set", "mmbench"])
    assert "models/vovnet" in inputs and "data/processed/mmbench" in inputs  # train's model, the set's data
    assert not [p for p in inputs if p.startswith(("eval/", "vovnet/", "stages/"))]  # outputs; code is the commit
    assert "models/vovnet" not in stage_inputs(["stages/train.py"])
    assert stage_inputs(["probe.py"]) is None  # no stage launches it: every output dvc.lock records


PROBE = textwrap.dedent(
    """
    import json, sys
    import torch, torch.distributed as dist
    dist.init_process_group("gloo")
    t = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(t)
    from vovnet.evaluation.sharding import current_shard, shard_batches
    shard = current_shard()  # evaluation's place: the global rank and world, not the node's
    mine = [list(b) for b in shard_batches(10, 3, shard)]
    got = [None] * dist.get_world_size()
    dist.all_gather_object(got, (shard.rank, shard.world, mine))
    if dist.get_rank() == 0:
        out = {"world": dist.get_world_size(), "sum": t.item(), "shards": got}
        open(sys.argv[1], "w").write(json.dumps(out))
    dist.barrier()  # rank 0 holds the store: leaving first would cut the others off mid-teardown (SIGABRT)
    dist.destroy_process_group()
    """
)
FAKE_SSH = (  # `ssh -o ... HOST CMD`, run here: skip the options and the host
    '#!/bin/bash\nwhile [ "$1" = -o ]; do shift 2; done\nshift\nexec bash -c "$1"\n'
)


def git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True
    )


@pytest.fixture
def two_nodes(tmp_path):
    """Two checkouts of one small repository; PATH holds the ssh stand-in."""
    first, second, bin_dir = tmp_path / "node0", tmp_path / "node1", tmp_path / "bin"
    first.mkdir(), bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    (first / "probe.py").write_text(PROBE)
    (first / "params.yaml").write_text(
        "launch:\n  machines: [node0, node1]\n  main_address: 127.0.0.1\n  cpu_intended: true\n"
        f"  node_checkout: {second}\n"
    )
    git(first, "init", "-q")
    git(first, "add", ".")
    git(first, "commit", "-q", "-m", "one")
    git(tmp_path, "clone", "-q", str(first), str(second))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return first, second, env


def launch_on(first, env, out):
    return subprocess.run(
        [sys.executable, "-m", "vovnet.launch", "probe.py", str(out)],
        cwd=first,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # about 20 s: two nodes' fingerprints and torchrun
def test_two_nodes_on_loopback_run_one_world_from_the_first(two_nodes, tmp_path):
    first, _, env = two_nodes
    p = launch_on(first, env, tmp_path / "out.json")
    assert p.returncode == 0, p.stderr
    assert "launch: 2 nodes (node0, node1)" in p.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert (out["world"], out["sum"]) == (2, 3.0)
    # each node's process shards evaluation by its global rank: whole batches, every record exactly once
    assert [(r, w) for r, w, _ in out["shards"]] == [(0, 2), (1, 2)]
    batches = sorted(b for *_, mine in out["shards"] for b in mine)
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_a_node_on_another_commit_fails_the_launch_in_one_line(two_nodes, tmp_path):
    first, second, env = two_nodes
    git(second, "commit", "-q", "--allow-empty", "-m", "two")
    head = lambda d: subprocess.run(["git", "rev-parse", "HEAD"], cwd=d, capture_output=True, text=True).stdout.strip()  # noqa: E731
    p = launch_on(first, env, tmp_path / "out.json")
    assert p.returncode != 0 and not (tmp_path / "out.json").exists()
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: launch: node node1 differs from this node: commit {head(second)} there, {head(first)} here"
    ]
