"""launch.gpus_per_experiment: queued experiments share a server's GPUs through per-GPU flocks.

The claim logic takes its device list from CUDA_VISIBLE_DEVICES, so these tests give it fake GPU ids on CPU;
the claimers are real processes (a lock held by a killed process is the point)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from vovnet import VovnetError
from vovnet.config import defaults
from vovnet.gpu_claims import claim_for_launch, claim_gpus, gpu_sets, visible_gpu_ids

IDS = ["0", "1", "2", "3"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def claimer(lock_dir, per_set, ids=IDS):
    """A process that claims, prints its GPUs, and holds them until its stdin closes."""
    code = (
        "import sys\nfrom vovnet.gpu_claims import claim_gpus\n"
        f"c = claim_gpus({per_set}, {ids!r}, {str(lock_dir)!r}, poll_s=0.05)\n"
        "print(c.visible, flush=True)\nsys.stdin.read()\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_concurrent_claimers_get_disjoint_sets(tmp_path):
    procs = [claimer(tmp_path, 2) for _ in range(2)]
    try:
        got = [set(p.stdout.readline().strip().split(",")) for p in procs]
    finally:
        for p in procs:
            p.communicate(timeout=30)
    assert all(len(g) == 2 for g in got)
    assert got[0].isdisjoint(got[1]) and got[0] | got[1] == set(IDS)


def test_a_waiting_claimer_says_so_and_gets_a_killed_claimers_gpus(tmp_path):
    holder = claimer(tmp_path, 4)
    assert holder.stdout.readline().strip() == "0,1,2,3"
    waiter = claimer(tmp_path, 2)
    line = waiter.stderr.readline()
    assert "waiting for 2 free GPU(s)" in line and f"pid {holder.pid}" in line
    holder.send_signal(signal.SIGKILL)  # no cleanup runs: the kernel drops its flocks
    holder.wait(timeout=30)
    assert waiter.stdout.readline().strip() == "0,1"
    waiter.communicate(timeout=30)


def test_released_gpus_are_claimed_again_in_process(tmp_path):
    first = claim_gpus(2, IDS, tmp_path)
    second = claim_gpus(2, IDS, tmp_path)
    assert (first.ids, second.ids) == (["0", "1"], ["2", "3"])
    first.release()
    assert claim_gpus(2, IDS, tmp_path).ids == ["0", "1"]


def test_visible_gpus_come_from_cuda_visible_devices():
    assert visible_gpu_ids({"CUDA_VISIBLE_DEVICES": "GPU-aa, GPU-bb"}) == ["GPU-aa", "GPU-bb"]
    assert visible_gpu_ids({"CUDA_VISIBLE_DEVICES": ""}) == []


@pytest.mark.parametrize(
    "ids, per_set, message",
    [
        (IDS, 3, r"gpus_per_experiment 3 does not divide the 4 visible GPUs \(0,1,2,3\)"),
        ([], 2, r"gpus_per_experiment is 2 but no GPU is visible"),
    ],
)
def test_sets_that_do_not_fit_are_one_line(ids, per_set, message):
    with pytest.raises(VovnetError, match=message):
        gpu_sets(ids, per_set)


def test_a_fixed_process_count_other_than_the_claim_is_one_line(tmp_path):
    lcfg = {**defaults()["launch"], "gpus_per_experiment": 2, "processes": 4, "gpu_claims_dir": str(tmp_path)}
    with pytest.raises(VovnetError, match="launch.processes 4 with launch.gpus_per_experiment 2"):
        claim_for_launch(lcfg)
    assert claim_for_launch({**lcfg, "gpus_per_experiment": None}) is None


PROBE = textwrap.dedent(
    """
    # one queued "experiment": its processes sum a fixed tensor; rank 0 records what it ran on, then waits
    # until the other experiment has claimed too, so the two hold their GPUs at the same time
    import json, os, sys, time
    from pathlib import Path
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    total = torch.arange(8, dtype=torch.float64) * (dist.get_rank() + 1)
    dist.all_reduce(total)
    out = Path(sys.argv[1])
    if dist.get_rank() == 0:
        out.write_text(json.dumps({"gpus": os.environ["CUDA_VISIBLE_DEVICES"], "world": dist.get_world_size(),
                                   "total": total.tolist()}))
        deadline = time.time() + 120
        while len(list(out.parent.glob("*.json"))) < int(sys.argv[2]) and time.time() < deadline:
            time.sleep(0.1)
    dist.barrier()
    """
)


def launch_experiments(tmp_path, names, expect):
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "params.yaml").write_text(
        f"launch:\n  gpus_per_experiment: 2\n  gpu_claims_dir: {tmp_path / 'claims'}\n  cpu_intended: true\n"
    )
    env = {**ENV, "CUDA_VISIBLE_DEVICES": ",".join(IDS)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vovnet.launch", "probe.py", str(tmp_path / "out" / f"{n}.json"), str(expect)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in names
    ]
    for p in procs:
        log = p.communicate(timeout=300)[0]
        assert p.returncode == 0, log
        assert "launch: 2 processes (CPU, gloo) under torchrun" in log
    return {n: json.loads((tmp_path / "out" / f"{n}.json").read_text()) for n in names}


@pytest.mark.slow  # 3 launches of 2 torchrun processes: about 40 s on 2 CPUs
def test_queued_experiments_run_side_by_side_on_disjoint_gpus_and_match_a_serial_run(tmp_path):
    (tmp_path / "out").mkdir()
    together = launch_experiments(tmp_path, ["a", "b"], expect=2)
    sets = [set(r["gpus"].split(",")) for r in together.values()]
    assert sets[0].isdisjoint(sets[1]) and all(len(s) == 2 for s in sets)
    for n in ("a", "b"):
        (tmp_path / "out" / f"{n}.json").unlink()
    alone = launch_experiments(tmp_path, ["c"], expect=1)["c"]
    assert alone["gpus"] == "0,1" and alone["world"] == 2  # the first set, free again
    for r in together.values():
        assert (r["world"], r["total"]) == (alone["world"], alone["total"])
