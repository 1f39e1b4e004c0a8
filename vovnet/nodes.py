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
from functools import reduce
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


def _digest(path: Path) -> str:
    """A file's md5; a folder's, over its files' relative paths and md5s; `missing`."""
    if path.is_file():
        return _md5(path)
    if not path.is_dir():
        return "missing"
    h = hashlib.md5()
    for f in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(f"{f.relative_to(path).as_posix()} {_md5(f)}\n".encode())
    return h.hexdigest()


def locked_outputs(lock: Path = Path("dvc.lock")) -> list[str]:
    """Every output dvc.lock records: what a stage of this pipeline wrote in this checkout."""
    from vovnet.config import read_yaml

    stages = read_yaml(lock).get("stages", {}) if lock.is_file() else {}
    return [o["path"] for stage in stages.values() for o in stage.get("outs", [])]


def _resolve(text: str, params: dict, key=None, item=None) -> str:
    """dvc.yaml's `${key}`, `${item.x}` and `${a.b}` (params.yaml), as DVC resolves them."""
    scope = {**params, "key": key, "item": item}
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(reduce(lambda d, k: d[k], m[1].strip().split("."), scope)), text)


def stage_inputs(argv: list[str], params_path: str = "params.yaml") -> list[str] | None:
    """The data deps of the dvc.yaml stage whose cmd launches `argv` (not the files git tracks: the commit
    covers those); None when no stage does (a launch by hand). Not the stage's outputs: DVC deletes those on
    this node before it runs."""
    from vovnet.config import read_yaml

    if not Path("dvc.yaml").is_file():
        return None
    params, cmd = read_yaml(params_path), shlex.join(["python", "-m", "vovnet.launch", *argv])
    for spec in (read_yaml("dvc.yaml").get("stages") or {}).values():
        body, items = spec.get("do", spec), spec.get("foreach", {None: None})
        if isinstance(items, str):  # foreach: ${a.b} of params.yaml
            items = reduce(lambda d, k: d[k], items.strip()[2:-1].split("."), params)
        for key, item in items.items() if isinstance(items, dict) else [(None, i) for i in items]:
            if _resolve(body.get("cmd", ""), params, key, item) == cmd:
                deps = [_resolve(next(iter(d)) if isinstance(d, dict) else d, params, key, item) for d in body["deps"]]
                tracked = set(_git("ls-files", "--", *deps).splitlines())
                return [d for d in deps if d not in tracked]
    return None


def data_state(paths: list[str] | None = None) -> dict[str, str]:
    """The digest of each path: by default every output dvc.lock records."""
    return {p: _digest(Path(p)) for p in (locked_outputs() if paths is None else paths)}


def fingerprint(params_path: str = "params.yaml", paths: list[str] | None = None) -> dict:
    """What must be equal on every node: the commit, uncommitted changes, params, data, torch, GPUs. dvc.lock is
    left out of the changes: the first node's records what it ran in this `dvc repro`."""
    import torch

    from vovnet import gpu_env

    return {
        "commit": _git("rev-parse", "HEAD"),
        "changes": _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)dvc.lock"),
        "params": _md5(Path(params_path)) if Path(params_path).is_file() else "missing",
        "data": data_state(paths),
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
    python = lcfg["node_python"] or sys.executable
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return in_checkout(nodes, host, lcfg, f"{exports} {shlex.quote(python)} {shlex.join(argv)}".strip())


def in_checkout(nodes: Nodes, host: str, lcfg: dict, script: str) -> list[str]:
    """The argv that runs the shell `script` in the node's checkout: over ssh (ports, users and keys come from
    ~/.ssh/config, as for any ssh), or as a one-node srun step."""
    inner = f"cd {shlex.quote(lcfg['node_checkout'] or os.getcwd())} && {script}"
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


def copy_to_node(nodes: Nodes, host: str, lcfg: dict, paths: list[str]) -> str | None:
    """Streams `paths` from this checkout into the node's (tar over the same ssh or srun), replacing what is
    there (the files, not links into this node's DVC cache); the last line of what failed, or None."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    cmd = in_checkout(nodes, host, lcfg, f"rm -rf {quoted} && tar -xf -")
    tar = subprocess.Popen(["tar", "-chf", "-", *paths], stdout=subprocess.PIPE)
    p = subprocess.run(cmd, stdin=tar.stdout, capture_output=True, text=True)
    tar.stdout.close()
    if tar.wait() or p.returncode:
        return (p.stderr.strip().splitlines() or [f"exit {p.returncode or tar.returncode}"])[-1]
    return None


def _remote_fingerprint(nodes, host, lcfg, params_path, paths, timeout_s) -> dict | str:
    args = ["-m", "vovnet.nodes", "fingerprint", params_path, *([] if paths is None else [json.dumps(paths)])]
    try:
        p = subprocess.run(on_node(nodes, host, lcfg, args, {}), capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"launch: node {host} cannot be reached: {exc}"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        return f"launch: node {host} cannot be reached or has no checkout: {last}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def node_problems(
    nodes: Nodes, lcfg: dict, params_path: str, inputs: list[str] | None = None, timeout_s: float = 300
) -> list[str]:
    """One line per other node that cannot be reached or differs from this one (commit, uncommitted changes,
    params, torch, GPUs, and the md5s of `inputs`, by default every output dvc.lock records). With `inputs`
    (a launch), an input that an earlier stage wrote here (this dvc.lock's outputs, e.g. train's model for
    evaluate@) and that differs there is first copied to the node: it cannot have it from `dvc pull` yet."""
    here = fingerprint(params_path, inputs)
    made_here = set(locked_outputs()) if inputs is not None else set()
    out = []
    for rank, host in enumerate(nodes.hosts):
        if rank == nodes.rank:
            continue
        there = _remote_fingerprint(nodes, host, lcfg, params_path, inputs, timeout_s)
        stale = _stale_outputs(here, there, made_here)
        if stale:
            print(
                f"launch: copying {', '.join(stale)} to node {host} (written here by an earlier stage)", file=sys.stderr
            )
            failed = copy_to_node(nodes, host, lcfg, stale)
            there = (
                f"launch: copying to node {host} failed: {failed}"
                if failed
                else _remote_fingerprint(nodes, host, lcfg, params_path, inputs, timeout_s)
            )
        if isinstance(there, str):
            out.append(there)
        elif diff := difference(here, there):
            out.append(f"launch: node {host} differs from this node: {diff}")
    return out


def _stale_outputs(here: dict, there: dict | str, made_here: set[str]) -> list[str]:
    """The inputs this node's pipeline made that differ there, when nothing but data does (the same commit,
    params, torch and GPUs): what copying would fix."""
    if isinstance(there, str) or difference({**here, "data": {}}, {**there, "data": {}}):
        return []
    return sorted(p for p in made_here & set(here["data"]) if there["data"].get(p) != here["data"][p])


if __name__ == "__main__":  # the first node runs on the others: `python -m vovnet.nodes fingerprint PARAMS [PATHS]`
    if sys.argv[1:2] != ["fingerprint"] or len(sys.argv) < 3:
        sys.exit("usage: python -m vovnet.nodes fingerprint params.yaml ['[\"path\", ...]']")
    print(json.dumps(fingerprint(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)))
