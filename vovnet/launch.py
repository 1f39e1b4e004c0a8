"""One launcher for the heavy stages: `python -m vovnet.launch stages/train.py [args]` (or `-m module`).

It reads `launch.*` from params.yaml and runs the stage directly for one process, or under
`accelerate launch` for more, so `dvc repro`, `dvc exp run` and the queue use every GPU and DVC records
what the stage wrote. How many processes run a stage is not a param of it: training's global batch and
sample order, and evaluation's batches, do not depend on it (see vovnet/training/batching.py and
vovnet/evaluation/sharding.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from vovnet import VovnetError
from vovnet.gpu_claims import claim_for_launch
from vovnet.launch_configs import check_launch_config, uses_deepspeed
from vovnet.nodes import (
    PORT_ENV,
    Nodes,
    node_plan,
    node_problems,
    on_node,
    peer_env,
    slurm_step,
    stage_inputs,
    started_by_first_node,
)

# set by torchrun / accelerate launch in every worker: a stage started there is already launched
WORKER_ENV = ("LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class Launch:
    """What `dvc repro` runs for a heavy stage: how many processes, on what, with which accelerate config."""

    processes: int
    cuda_devices: int
    config_file: str | None
    port: int | None  # None: chosen when the launch starts (a free port)
    deepspeed: bool = False  # config_file asks for DeepSpeed (on CPU too: bf16 or fp32 over gloo)
    machines: int = 1  # nodes; processes is per node
    machine_rank: int = 0
    main_address: str = "127.0.0.1"

    @property
    def backend(self) -> str:
        return "nccl" if self.cuda_devices else "gloo"

    def describe(self) -> str:
        if self.processes == 1:
            where = "1 CUDA device" if self.cuda_devices else "CPU"
            if self.deepspeed:  # DeepSpeed's engine needs its launcher on a world of 1 too
                return f"1 process ({where}) under accelerate launch, config {self.config_file}"
            return f"1 process ({where}), run directly"
        where = f"{self.processes} of {self.cuda_devices} CUDA devices" if self.cuda_devices else "CPU"
        cfg = f", config {self.config_file}" if self.config_file else ""
        runner = "accelerate launch" if self.cuda_devices or self.deepspeed else "torchrun"
        return f"{self.processes} processes ({where}, {self.backend}) under {runner}{cfg}"

    def command(self, target: list[str]) -> list[str]:
        """The argv that runs `target` (a script and its args, or `-m module ...`). On CPU, accelerate launch
        would start one process whatever --num_processes says, so plain CPU processes start under torchrun;
        a DeepSpeed config goes through accelerate's DeepSpeed launcher, which starts them all on CPU too."""
        if self.processes == 1 and self.machines == 1 and not self.deepspeed:
            return [sys.executable, *target]
        port = str(self.port or free_port())
        if not self.cuda_devices and not self.deepspeed:
            nodes = ["--nnodes", str(self.machines), "--node_rank", str(self.machine_rank)]
            where = ["--master_addr", self.main_address, "--master_port", port]
            per_node = ["--nproc_per_node", str(self.processes)]
            return [sys.executable, "-m", "torch.distributed.run", *nodes, *per_node, *where, *target]
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",  # accelerate counts every node's processes together
            str(self.processes * self.machines),
            "--num_machines",
            str(self.machines),
            "--main_process_port",
            port,
        ]
        if self.machines > 1:
            cmd += ["--machine_rank", str(self.machine_rank), "--main_process_ip", self.main_address]
            if self.deepspeed:  # torchrun on every node, each started by us (not DeepSpeed's pdsh runner)
                cmd += ["--deepspeed_multinode_launcher", "standard"]
        if self.config_file:
            cmd += ["--config_file", self.config_file]
        else:
            cmd += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
        return cmd + target

    def env(self) -> dict[str, str]:
        """The environment for command(): accelerate's CPU switch for plain CPU processes (gloo). Under
        DeepSpeed that switch would drop the engine; process_state() picks gloo there instead."""
        cpu_ddp = self.processes * self.machines > 1 and not self.cuda_devices and not self.deepspeed
        return {**os.environ, **({"ACCELERATE_USE_CPU": "1"} if cpu_ddp else {})}


@dataclass(frozen=True)
class BatchPlan:
    batch: int  # samples per optimizer step, all processes together
    processes: int
    micro: int  # samples per process per forward
    accumulation: int  # forwards per process per optimizer step

    @property
    def slots(self) -> int:
        return self.processes * self.accumulation

    def as_metrics(self) -> dict:
        return {
            "processes": self.processes,
            "global_batch": self.batch,
            "per_process_batch": self.micro,
            "accumulation": self.accumulation,
        }


def batch_plan(batch: int, micro: int | None, processes: int) -> BatchPlan:
    """train.batch_size and train.micro_batch_size on `processes`; one line with the numbers if they do not divide."""
    if batch % processes:
        raise VovnetError(
            f"params.yaml: train.batch_size {batch} does not divide over {processes} processes "
            f"(the global batch must be a multiple of the process count)"
        )
    per_process = batch // processes
    micro = per_process if micro is None else micro
    if per_process % micro:
        raise VovnetError(
            f"params.yaml: train.batch_size {batch} over {processes} processes is {per_process} per "
            f"process, not a multiple of train.micro_batch_size {micro}"
        )
    return BatchPlan(batch, processes, micro, per_process // micro)


def visible_cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def free_port() -> int:
    """A TCP port nobody listens on now, so two launches on one machine do not collide on 29500."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_launch(lcfg: dict, cuda_devices: int | None = None) -> Launch:
    """launch.* checked against this machine: a bad combination is one line naming both sides."""
    cuda = visible_cuda_devices() if cuda_devices is None else cuda_devices
    requested = lcfg["processes"]
    processes = (cuda or 1) if requested == "auto" else int(requested)
    if cuda and processes > cuda:
        raise VovnetError(
            f"params.yaml: launch.processes is {processes} but only {cuda} CUDA device(s) are "
            f"visible (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
            "lower it or use auto"
        )
    config_file = lcfg["config_file"]
    if config_file:
        if not Path(config_file).is_file():
            raise VovnetError(f"params.yaml: launch.config_file {config_file} not found")
    deepspeed = bool(config_file) and uses_deepspeed(config_file)
    if config_file and (processes > 1 or deepspeed):  # one process without DeepSpeed runs directly
        problems = check_launch_config(config_file)
        if problems:
            raise VovnetError(problems[0])
    port = None if lcfg["main_process_port"] == "auto" else int(lcfg["main_process_port"])
    return Launch(processes, cuda, config_file, port, deepspeed)


def process_state():
    """accelerate's PartialState for this process, the one source of "which rank am I". Under torchrun on
    CPU (ACCELERATE_USE_CPU=1, see Launch.env) it must be told so; under DeepSpeed without CUDA it must be
    told gloo. Otherwise each process would take itself for the only one (rank 0 of 1)."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    if parse_flag_from_env("ACCELERATE_USE_DEEPSPEED") and is_worker() and not torch.cuda.is_available():
        return PartialState(backend="gloo")
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def is_worker() -> bool:
    """Whether this process was started by accelerate launch / torchrun (it must not launch again)."""
    return any(k in os.environ for k in WORKER_ENV)


def main(argv: list[str] | None = None) -> int:
    from vovnet.config import load_params

    argv = list(sys.argv[1:] if argv is None else argv)
    params_path = "params.yaml"
    if "--params" in argv[:-1]:
        params_path = argv[argv.index("--params") + 1]
    if not argv:
        raise VovnetError("usage: python -m vovnet.launch stages/<stage>.py [args] | -m <module> [args]")
    from vovnet.preflight import require_ready  # above the model layer: imported here, as a CLI would

    params = load_params(params_path)
    lcfg = params["launch"]
    claim = claim_for_launch(lcfg)  # before torch counts GPUs: it must see the claimed ones only
    if claim is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = claim.visible
        lcfg = {**lcfg, "processes": len(claim.ids)}
        print(f"launch: claimed GPU(s) {claim.visible} (launch.gpus_per_experiment)", file=sys.stderr, flush=True)
    launch = resolve_launch(lcfg)
    if launch.deepspeed and "stages/train.py" not in argv:
        # evaluation and predict build no engine (they shard whole batches by rank): DeepSpeed's launcher and
        # its CPU comm op add nothing there but a second way to die, so they start like a plain DDP run
        launch = replace(launch, config_file=None, deepspeed=False)
    nodes = node_plan(lcfg)
    if nodes is not None:  # every node uses the port the first one chose
        port = int(os.environ.get(PORT_ENV, 0)) or launch.port or free_port()
        launch = replace(launch, machines=nodes.count, machine_rank=nodes.rank, main_address=nodes.main_address)
        launch = replace(launch, port=port)
    # a run that would die on its first kernel, or train an 8B on CPU, stops here in seconds, one line
    require_ready(params, launch.cuda_devices, launch.processes, argv)
    if "stages/train.py" in argv:
        from vovnet.resume import require_resumable

        require_resumable(params, launch)
    if nodes is not None and not started_by_first_node():
        return launch_all_nodes(nodes, launch, lcfg, argv, params_path)
    print(f"launch: {launch.describe()}", file=sys.stderr, flush=True)
    # the stage's processes inherit the claim's lock files: its GPUs stay claimed until the last one exits
    return subprocess.call(launch.command(argv), env=launch.env(), pass_fds=claim.fds if claim else ())


def launch_all_nodes(nodes: Nodes, launch: Launch, lcfg: dict, argv: list[str], params_path: str) -> int:
    """On the first node: check every other node, then start the launcher on each (srun, or ssh and this one)."""
    # what the stage reads (dvc.yaml's deps), not what it writes: DVC has just deleted those here
    problems = node_problems(nodes, lcfg, params_path, stage_inputs(argv, params_path))
    for line in problems[1:]:
        print(f"error: {line}", file=sys.stderr)
    if problems:
        raise VovnetError(problems[0])
    print(f"launch: {nodes.count} nodes ({', '.join(nodes.hosts)}), each {launch.describe()}", file=sys.stderr)
    if nodes.slurm:
        return subprocess.call(slurm_step(nodes, launch.port, argv))
    peers = [
        subprocess.Popen(on_node(nodes, host, lcfg, ["-m", "vovnet.launch", *argv], peer_env(nodes, launch.port, r)))
        for r, host in enumerate(nodes.hosts)
        if r != nodes.rank
    ]
    own = subprocess.call(launch.command(argv), env=launch.env())
    for p in peers:
        if own and p.poll() is None:  # they would wait for this node's ranks until the rendezvous times out
            p.terminate()
    codes = [p.wait() for p in peers]
    return own or next((c for c in codes if c), 0)


if __name__ == "__main__":
    from vovnet import cli

    cli.run(main)
