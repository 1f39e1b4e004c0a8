"""The schema's sections for running the model (vovnet/config.py assembles them into params.yaml's
model): how evaluate@ scores a set and its baselines, and how the launcher starts train and evaluate@."""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, field_validator

from vovnet.config_types import Budget, KeepShare, NonNegInt, PosInt, Section, Share
from vovnet.registry import PROTOCOLS


class EvalSet(Section):
    dataset: str
    split: str
    protocol: Literal[PROTOCOLS]
    images: str = Field(description="the dataset whose image store it reads")
    prompt: Literal["standard", "qwen", "lmms_eval_qwen"] = Field(
        "standard",
        description="the question text: standard (the project's), or a variant the protocol offers to compare "
        "always-FULL with Qwen3-VL's reported scores (docs/evaluation.md)",
    )


class Uncertainty(Section):
    """Thresholds as quantiles of the text-pass entropy on train.policy_file."""

    quantile: Share = Field(0.5, description="the reported point: FULL above this quantile, else NO")
    coarse_quantiles: Annotated[list[Share], Field(min_length=2, max_length=2)] = Field(
        [0.25, 0.75], description="[low, high]: COARSE above low, FULL above high"
    )
    sweep: Annotated[list[Share], Field(min_length=1)] = Field(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], description="the curve's quantiles"
    )

    @field_validator("coarse_quantiles")
    @classmethod
    def _low_high(cls, pair: list[float]) -> list[float]:
        if pair[0] > pair[1]:
            raise ValueError(f"low {pair[0]} above high {pair[1]}")
        return pair


class PolicyThenPrune(Section):
    method: Literal["random", "attention"] = "random"
    keep_share: KeepShare = 0.5


class Pruning(Section):
    """Token pruning at equal tokens (docs/evaluation.md): each method a curve over the kept shares of the
    FULL image's merged vision tokens."""

    methods: list[Literal["random", "attention"]] = Field(
        [], description="random: a seeded draw; attention: FastV's rule (least attended at attention_layer dropped)"
    )
    keep_shares: list[KeepShare] = Field([], description="the curves' kept shares, each in (0, 1]")
    attention_layer: NonNegInt = Field(2, description="FastV's K: the decoder layer whose attention scores tokens")
    policy_then_prune: Optional[PolicyThenPrune] = Field(
        None, description="the learned policy's COARSE/FULL images pruned by this rule, as one row; null: none"
    )


class Evaluation(Section):
    sets: dict[str, EvalSet] = {}
    model_dir: str = "models/vovnet"
    batch_size: PosInt = 8
    max_new_tokens: PosInt = 16
    thinking_max_new_tokens: PosInt = Field(1024, description="FULL answered by the Thinking model: room for <think>")
    seed: int = Field(0, description="MMMU's random fallback and the random baseline")
    max_samples: Optional[NonNegInt] = Field(None, description="questions (circular copies stay together)")
    max_length: PosInt = Field(4096, description="prompt tokens per action; longer items score wrong (too_long)")
    uncertainty: Uncertainty = Uncertainty()
    random_ratios: Annotated[list[Share], Field(min_length=1)] = Field(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], description="the random curve's FULL shares"
    )
    cost_shifts: list[float] = [-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0, 5.0]
    resolution_sweep: list[Budget] = Field(
        [],
        description="always-at-budget curve: each image resized within these pixel limits and answered as COARSE "
        "is; max_pixels from the processor's minimum to vision_budget's richest",
    )
    pruning: Pruning = Pruning()
    allow_overlap: bool = False
    cpu_threads: NonNegInt = Field(0, description="torch threads on CPU; 0: torch's default")
    generation_log: str = Field(
        "checkpoints/generations",
        description="where each process logs what it generates, outside DVC's outputs, so a killed evaluate@ "
        "resumes; relative: the workspace's, also for a queued experiment",
    )


class Launch(Section):
    """How `dvc repro` runs the heavy stages (train, evaluate@): vovnet/launch.py."""

    processes: Union[Literal["auto"], PosInt] = Field(
        "auto",
        description="auto: the visible CUDA devices, or 1 without CUDA; N > 1 without CUDA: N CPU processes (gloo)",
    )
    config_file: Optional[str] = Field(
        None, description="an accelerate config, e.g. configs/accelerate/zero2_v100.yaml; null: plain DDP"
    )
    main_process_port: Union[Literal["auto"], Annotated[int, Field(ge=1024, le=65535)]] = Field(
        "auto", description="auto: a free port, so two launches on one machine do not collide"
    )
    cpu_max_params: PosInt = Field(
        500_000_000,
        description="a launch without CUDA stops with one line when the model has more parameters than this "
        "(a GPU problem, not a CPU run), unless cpu_intended",
    )
    cpu_intended: bool = Field(False, description="true: a CPU run of a model above cpu_max_params is meant")
    gpus_per_experiment: Optional[PosInt] = Field(
        None,
        description="each launch claims this many of the visible GPUs (a lock per GPU), so queued experiments "
        "share a server; null: every launch takes all of them",
    )
    gpu_claims_dir: str = Field(
        "/tmp/vovnet-gpu-claims", description="the machine-wide folder of per-GPU lock files (gpus_per_experiment)"
    )
    machines: Union[Literal["slurm"], list[str]] = Field(
        [],
        description="the nodes of a multi-node launch, the first the one `dvc repro` runs on (the others over "
        "ssh); slurm: the SLURM allocation's nodes, started with srun; [] or one: this machine only",
    )
    main_address: Optional[str] = Field(None, description="rank 0's address the other nodes reach; null: machines[0]")
    node_checkout: Optional[str] = Field(None, description="the checkout's path on the other nodes; null: this path")
    node_python: Optional[str] = Field(None, description="python on the other nodes; null: this one's path")
