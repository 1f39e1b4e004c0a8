"""The GPUs of this machine as torch and as the NVIDIA driver see them, and whether torch can run on them.

Floor 1-2: imports torch and NVML (nvidia-ml-py), nothing of ours but the error type. Nothing here creates a
CUDA context: names, capabilities and sizes come from the device properties, free memory from NVML, so the
launcher's parent process does not hold GPU memory while its workers train.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1024**3
CU126_INDEX = "https://download.pytorch.org/whl/cu126"
CU126_FIX = (
    "install PyTorch's CUDA 12.6 build (the last with sm_70 wheels is 2.14): "
    "pip install -r requirements-gpu.txt, then pip install -r requirements.txt"
)
# The driver branch each CUDA major needs under minor-version compatibility (NVIDIA's CUDA compatibility
# guide: CUDA 12.x >= 525, CUDA 13.x >= 580). torch's wheels bring their own runtime; only the driver counts.
DRIVER_FOR_CUDA = {11: 450, 12: 525, 13: 580}
# Architectures PyTorch's CUDA 12.6 x86_64 wheels carry kernels for (its release matrix for 2.14).
CU126_ARCHS = (50, 60, 70, 75, 80, 86, 90)
PROC_DRIVER = Path("/proc/driver/nvidia")


@dataclass(frozen=True)
class Gpu:
    """One CUDA device as torch numbers it."""

    index: int
    name: str
    capability: tuple[int, int]
    total_bytes: int
    uuid: str = ""  # matches NVML's, so memory other processes hold is found for this GPU

    @property
    def sm(self) -> int:
        return 10 * self.capability[0] + self.capability[1]


@dataclass(frozen=True)
class Driver:
    """What the NVIDIA driver reports, without torch: its version, the newest CUDA it runs, its GPUs."""

    version: str | None = None
    cuda: tuple[int, int] | None = None
    names: list[str] = field(default_factory=list)
    used_bytes: dict[str, int] = field(default_factory=dict)  # GPU uuid -> bytes held by any process (NVML)


@dataclass(frozen=True)
class Devices:
    torch_version: str
    torch_cuda: str | None  # None: a CPU-only build of torch
    arch_list: list[str]
    gpus: list[Gpu]
    driver: Driver
    visible: str | None  # CUDA_VISIBLE_DEVICES as set, None when unset


def kernel_runs(arch: str, sm: int) -> bool:
    """Whether code built for `arch` (an entry of torch.cuda.get_arch_list()) runs on a GPU of compute
    capability `sm` (major*10 + minor). SASS (sm_XY) is binary-compatible only within its major version,
    from its minor up; PTX (compute_XY) is compiled by the driver for any GPU from XY up; an arch-specific
    target (sm_90a) runs on exactly that capability."""
    m = re.fullmatch(r"(sm|compute)_(\d+)([af]?)", arch)
    if m is None:
        return False
    kind, code, suffix = m.group(1), int(m.group(2)), m.group(3)
    if suffix == "a":
        return sm == code
    if kind == "compute":
        return sm >= code
    return sm // 10 == code // 10 and sm >= code


def torch_gpus() -> list[Gpu]:
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append(Gpu(i, p.name, (p.major, p.minor), p.total_memory, str(getattr(p, "uuid", ""))))
    return out


def _nvml() -> Driver | None:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # no libnvidia-ml, or no driver loaded: /proc is the next witness
        return None
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()  # e.g. 12020 for CUDA 12.2
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        names = [_text(pynvml.nvmlDeviceGetName(h)) for h in handles]
        used = {_text(pynvml.nvmlDeviceGetUUID(h)): int(pynvml.nvmlDeviceGetMemoryInfo(h).used) for h in handles}
    finally:
        pynvml.nvmlShutdown()
    return Driver(_text(version), (cuda // 1000, cuda % 1000 // 10), names, used)


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _proc() -> Driver:
    """The kernel module's own files: the driver version and one folder per GPU."""
    try:
        text = (PROC_DRIVER / "version").read_text()
    except OSError:
        return Driver()
    m = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+)\.(\d+)(?:\.\d+)?", text)
    version = m.group(0).split()[-1] if m else None
    branch = int(m.group(1)) if m else 0
    # the newest CUDA major this branch runs (minor-version compatibility), as NVML would say
    major = max((c for c, b in DRIVER_FOR_CUDA.items() if branch >= b), default=None)
    names = []
    for info in sorted((PROC_DRIVER / "gpus").glob("*/information")):
        model = re.search(r"Model:\s*(.+)", info.read_text())
        names.append(model.group(1).strip() if model else info.parent.name)
    return Driver(version, (major, 0) if major else None, names)


def driver() -> Driver:
    return _nvml() or _proc()


def probe() -> Devices:
    import torch

    return Devices(
        torch.__version__,
        torch.version.cuda,
        torch.cuda.get_arch_list(),
        torch_gpus(),
        driver(),
        os.environ.get("CUDA_VISIBLE_DEVICES"),
    )


def _indices(gpus: list[Gpu]) -> str:
    ids = [g.index for g in gpus]
    if len(ids) == 1:
        return f"GPU {ids[0]}"
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"GPUs {ids[0]}-{ids[-1]}"
    return f"GPUs {','.join(map(str, ids))}"


def arch_problems(dev: Devices) -> list[str]:
    """One line per kind of visible GPU that the installed torch has no kernels for."""
    out = []
    for sm in sorted({g.sm for g in dev.gpus}):
        if any(kernel_runs(a, sm) for a in dev.arch_list):
            continue
        gpus = [g for g in dev.gpus if g.sm == sm]
        fix = (
            CU126_FIX
            if sm // 10 * 10 in CU126_ARCHS
            else "no torch 2.14 build has kernels for it: see https://pytorch.org/get-started/locally/"
        )
        out.append(
            f"gpu: {_indices(gpus)} ({gpus[0].name}) is sm_{sm}, but torch {dev.torch_version} has kernels for "
            f"{' '.join(dev.arch_list)} only (the first kernel would fail: no kernel image is available): {fix}"
        )
    return out


def driver_problems(dev: Devices) -> list[str]:
    """The driver is there but torch cannot use it: too old for torch's CUDA, or torch sees no GPU at all."""
    drv = dev.driver
    if dev.torch_cuda and drv.cuda:
        need = int(dev.torch_cuda.split(".")[0])
        if drv.cuda[0] < need:
            return [
                f"gpu: NVIDIA driver {drv.version} runs CUDA {drv.cuda[0]}.{drv.cuda[1]} at most, but torch "
                f"{dev.torch_version} is built for CUDA {dev.torch_cuda} (driver >= {DRIVER_FOR_CUDA.get(need, '?')}): "
                f"{CU126_FIX} (needs driver >= {DRIVER_FOR_CUDA[12]}), or update the driver"
            ]
    if not drv.names or dev.gpus or dev.visible in ("", "-1"):  # hidden on purpose: a CPU run
        return []
    listed = f"the NVIDIA driver {drv.version or ''} lists {len(drv.names)} GPU(s) ({drv.names[0]})".replace("  ", " ")
    if dev.torch_cuda is None:
        return [f"gpu: {listed} but torch {dev.torch_version} is a CPU-only build: {CU126_FIX}"]
    return [
        f"gpu: {listed} but torch {dev.torch_version} sees none (CUDA_VISIBLE_DEVICES="
        f"{dev.visible if dev.visible is not None else 'unset'}; check `nvidia-smi` and that the "
        "driver's kernel module matches its libraries)"
    ]


def mixed_problems(dev: Devices) -> list[str]:
    kinds = {}
    for g in dev.gpus:
        kinds.setdefault((g.name, g.capability, g.total_bytes), []).append(g)
    if len(kinds) < 2:
        return []
    listed = ", ".join(f"{_indices(gs)} {gs[0].name} {gs[0].total_bytes / GIB:.0f} GiB" for gs in kinds.values())
    return [
        f"gpu: GPUs of different kinds are mixed ({listed}); the plan, fp16/bf16 and the ZeRO shards assume "
        "one kind: set CUDA_VISIBLE_DEVICES to GPUs of one kind"
    ]


def problems(dev: Devices) -> list[str]:
    return arch_problems(dev) + driver_problems(dev) + mixed_problems(dev)


def used_bytes(dev: Devices, gpu: Gpu) -> int:
    """Memory other processes hold on `gpu` now (0 when NVML cannot say). torch numbers GPUs after
    CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER, NVML by PCI bus: the uuid is what both agree on."""
    key = gpu.uuid if gpu.uuid.startswith("GPU-") else f"GPU-{gpu.uuid}"
    return dev.driver.used_bytes.get(key, 0)


def free_gib(dev: Devices) -> float | None:
    """The memory a run can have on every visible GPU: the least of (total - used by others), in GiB."""
    return min((g.total_bytes - used_bytes(dev, g)) / GIB for g in dev.gpus) if dev.gpus else None


def busy_lines(dev: Devices, min_bytes: int = GIB) -> list[str]:
    """GPUs on which other processes already hold memory (an earlier run, a notebook, another user)."""
    return [
        f"gpu: GPU {g.index} has {used_bytes(dev, g) / GIB:.1f} of {g.total_bytes / GIB:.0f} GiB in use by other "
        "processes (`nvidia-smi` names them); the plan is checked against what is free"
        for g in dev.gpus
        if used_bytes(dev, g) >= min_bytes
    ]


def summary(dev: Devices) -> str:
    if not dev.gpus:
        return f"gpu: none visible to torch {dev.torch_version}"
    g = dev.gpus[0]
    bf16 = g.capability[0] >= 8
    return (
        f"gpu: {len(dev.gpus)} x {g.name} (sm_{g.sm}, {g.total_bytes / GIB:.0f} GiB), torch {dev.torch_version} "
        f"(kernels {' '.join(dev.arch_list)}), driver {dev.driver.version or 'unknown'}, "
        f"{'bf16' if bf16 else 'fp16 only (no bf16: dtype auto uses fp16)'}"
    )
