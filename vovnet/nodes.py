"""Several machines from one `dvc repro` on the first: which nodes, this node's rank, and that every node
runs the same thing.

Each node runs `accelerate launch --num_machines N --machine_rank r` (torchrun's `--nnodes N --node_rank r`
for plain CPU processes), which serves plain DDP and DeepSpeed configs alike (DeepSpeed with accelerate's
`standard` multi-node launcher: torchrun on every node). What starts the launcher on the other nodes is
ssh from the first node (`launch.machines: [host, ...]`), or `srun` inside a SLURM allocation
(`launch.machines: slurm`). docs/servers.md says why not DeepSpeed's pdsh runner.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vovnet import VovnetError

# set by the first node's launcher on the others: their rank, and where rank 0 listens
RANK_ENV, ADDRESS_ENV, PORT_ENV = "VOVNET_MACHINE_RANK", "VOVNET_MAIN_ADDRESS", "VOVNET_MAIN_PORT"


@dataclass(frozen=True)
class Nodes:
    hosts: list[str]  # the first is the main node, where `dvc repro` runs and DVC's outputs are written
    rank: int  # this node's place in hosts
    main_address: str
    slurm: bool = False

    @property
    def count(self) -> int:
        return len(self.hosts)


def expand_nodelist(nodelist: str) -> list[str]:
    """SLURM's compact host list (`gpu[01-03,07],login1`) as hosts, in SLURM's order."""
    hosts = []
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,\[\]]+)", nodelist):
        if plain:
            hosts.append(plain)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            hosts += [f"{prefix}{i:0{len(lo)}d}" for i in range(int(lo), int(hi or lo) + 1)]
    return hosts


def slurm_nodes(env: dict) -> Nodes:
    """The allocation `dvc repro` runs in, from SLURM's environment; one line when it is not one."""
    if "SLURM_JOB_NODELIST" not in env:
        raise VovnetError(
            "params.yaml: launch.machines is slurm, but this is not a SLURM allocation (no SLURM_JOB_NODELIST)"
        )
    hosts = expand_nodelist(env["SLURM_JOB_NODELIST"])
    rank = int(env.get(RANK_ENV, env.get("SLURM_NODEID", "0")))
    return Nodes(hosts, rank, env.get(ADDRESS_ENV, hosts[0]), slurm=True)


def node_plan(lcfg: dict, env: dict | None = None) -> Nodes | None:
    """launch.machines as nodes, or None for one machine (today's launch)."""
    env = os.environ if env is None else env
    machines = lcfg["machines"]
    if machines == "slurm":
        nodes = slurm_nodes(env)
    elif len(machines) > 1:
        address = lcfg["main_address"] or machines[0]
        nodes = Nodes(list(machines), int(env.get(RANK_ENV, "0")), env.get(ADDRESS_ENV, address))
    else:
        return None
    if not 0 <= nodes.rank < nodes.count:
        raise VovnetError(f"launch: machine rank {nodes.rank} outside the {nodes.count} nodes {', '.join(nodes.hosts)}")
    return nodes if nodes.count > 1 else None


def _git(*args: str) -> str:
    p = subprocess.run(["git", *args], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else ""


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_state(lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """Every file output dvc.lock records, as its md5 here (or `missing`); folders as present or missing."""
    from vovnet.config import read_yaml

    out = {}
    stages = read_yaml(lock).get("stages", {}) if lock.is_file() else {}
    for stage in stages.values():
        for o in stage.get("outs", []):
            p = Path(o["path"])
            out[o["path"]] = _md5(p) if p.is_file() else ("present" if p.is_dir() else "missing")
    return out


def fingerprint(params_path: str = "params.yaml") -> dict:
    """What must be equal on every node: the commit, uncommitted changes, params, data, torch, GPUs."""
    import torch

    from vovnet import gpu_env

    return {
        "commit": _git("rev-parse", "HEAD"),
        "changes": _git("status", "--porcelain", "--untracked-files=no"),
        "params": _md5(Path(params_path)) if Path(params_path).is_file() else "missing",
        "data": data_state(),
        "torch": torch.__version__,
        "gpus": gpu_env.driver().names,
    }


def difference(here: dict, there: dict) -> str | None:
    """The first thing that differs, in words; None when nothing does."""
    for key in ("commit", "changes", "params", "torch", "gpus"):
        if here[key] != there[key]:
            return f"{key} {there[key] or 'none'!s} there, {here[key] or 'none'!s} here"
    for path, md5 in here["data"].items():
        if there["data"].get(path) != md5:
            return f"data {path} is {there['data'].get(path, 'missing')} there, {md5} here"
    return None


def peer_env(nodes: Nodes, port: int, rank: int) -> dict[str, str]:
    """What the first node hands another node's launcher: its rank (srun's tasks read SLURM_NODEID) and rank 0's
    address and port. Its presence is also what tells a launcher it was started by the first node."""
    env = {ADDRESS_ENV: nodes.main_address, PORT_ENV: str(port)}
    return env if nodes.slurm else {**env, RANK_ENV: str(rank)}


def started_by_first_node(env: dict | None = None) -> bool:
    return PORT_ENV in (os.environ if env is None else env)


def on_node(nodes: Nodes, host: str, lcfg: dict, argv: list[str], env: dict[str, str]) -> list[str]:
    """The argv that runs `python <argv>` in the node's checkout: over ssh, or as a one-node srun step."""
    checkout = lcfg["node_checkout"] or os.getcwd()
    python = lcfg["node_python"] or sys.executable
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    inner = f"cd {shlex.quote(checkout)} && {exports} {shlex.quote(python)} {shlex.join(argv)}".replace("  ", " ")
    if nodes.slurm:
        return ["srun", "--nodes=1", "--ntasks=1", f"--nodelist={host}", "bash", "-c", inner]
    return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host, inner]


def slurm_step(nodes: Nodes, port: int, argv: list[str]) -> list[str]:
    """One srun step that starts this launcher once on every node of the allocation; a node that fails stops all."""
    exports = ",".join(f"{k}={v}" for k, v in peer_env(nodes, port, 0).items())
    return [
        "srun",
        f"--nodes={nodes.count}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        f"--export=ALL,{exports}",
        sys.executable,
        "-m",
        "vovnet.launch",
        *argv,
    ]


def node_problems(nodes: Nodes, lcfg: dict, params_path: str, timeout_s: float = 300) -> list[str]:
    """One line per other node that cannot be reached or differs from this one (commit, uncommitted changes,
    params, data md5s, torch, GPUs)."""
    here = fingerprint(params_path)
    out = []
    for rank, host in enumerate(nodes.hosts):
        if rank == nodes.rank:
            continue
        cmd = on_node(nodes, host, lcfg, ["-m", "vovnet.nodes", "fingerprint", params_path], {})
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.append(f"launch: node {host} cannot be reached: {exc}")
            continue
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
            out.append(f"launch: node {host} cannot be reached or has no checkout: {last}")
            continue
        diff = difference(here, json.loads(p.stdout.strip().splitlines()[-1]))
        if diff:
            out.append(f"launch: node {host} differs from this node: {diff}")
    return out


if __name__ == "__main__":  # what the first node runs on the others: `python -m vovnet.nodes fingerprint [params]`
    if sys.argv[1:2] != ["fingerprint"]:
        sys.exit("usage: python -m vovnet.nodes fingerprint [params.yaml]")
    print(json.dumps(fingerprint(*sys.argv[2:3])))
