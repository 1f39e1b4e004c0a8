"""The one schema for params.yaml: pydantic models read from YAML 1.2, one-line errors.

`dvc exp run -S train.lr=1e-5` writes `lr: 1e-05`; PyYAML (YAML 1.1) reads that as a string, so the file is
parsed with ruamel (YAML 1.2, a float) and pydantic's lax mode still accepts a quoted '1e-05'.
Adding a key is one line in its section (below, or vovnet/config_run.py for evaluation and launch);
`python -m vovnet schema` re-exports params.schema.json.
A dataset entry starts from its task's `vovnet/tasks/<adapter>/defaults.yaml` (`dataset:`), and an evaluation
set from its protocol's (`evaluation_set:`); params.yaml lists what differs (vovnet/registry.py fills them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from ruamel.yaml import YAML

from vovnet import VovnetError, actions
from vovnet.config_errors import one_line
from vovnet.config_run import EvalSet, Evaluation, Launch, Pruning, Uncertainty  # noqa: F401
from vovnet.config_types import (  # noqa: F401  (the building blocks, re-exported for the schema's readers)
    Budget,
    Fraction,
    KeepShare,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    Ref,
    Section,
    Share,
    StrList,
)
from vovnet.registry import ADAPTERS, dataset_with_defaults, with_defaults


class Dataset(Section):
    adapter: Optional[Literal[ADAPTERS]] = Field(
        None, description="defaults to the dataset's name where it names an adapter"
    )
    source: Optional[str] = Field(None, description="http(s) URL, local path, file:// URL, hf:<id> or generate")
    revision: Optional[str] = Field(None, description="hf: pinned revision (commit/tag); null = main")
    md5: Union[str, dict[str, str], None] = Field(None, description="URL/file: md5, one string or {file: md5}")
    subset: Union[str, list[str], None] = Field(None, description="HF config name; MMMU: list of subjects or all")
    splits: Union[Annotated[StrList, Field(min_length=1)], Annotated[dict[str, Optional[str]], Field(min_length=1)]] = (
        Field(["dev"], description="the splits to read; llava: also {split: file} naming one file per split")
    )
    lang: Literal["en", "cn"] = "en"
    max_samples: Optional[NonNegInt] = Field(
        None,
        description="a seeded sample of this many questions per split, not rows: MMBench's circular copies "
        "of one question (up to 4 rows) stay together, so 10 questions can give up to 40 records",
    )
    image_root: Optional[str] = Field(None, description="llava: where bare image file names are found")
    streaming: bool = Field(False, description="kept for old params files: HF folders are always streamed by row group")
    download_images: bool = True
    on_missing_image: Literal["error", "reject"] = "error"
    generator: Optional[dict[str, Any]] = Field(
        None, description="source generate: the generator's spec (checked by its adapter, e.g. shapes_vqa)"
    )


class Normalize(Section):
    workers: Union[Literal["auto"], PosInt] = Field("auto", description="auto: the machine's cores")
    max_image_pixels: PosInt = Field(89_478_485, description="Pillow's decompression-bomb limit")
    export_parquet: bool = False


class Merge(Section):
    enabled: bool = True
    name: str = "mmbench_core"
    sources: list[Ref] = ["mmbench/dev", "mmbench_lite/lite"]
    heldout_source: Ref = "mmbench/dev"
    heldout_fraction: Fraction = 0.3
    val_fraction: Fraction = Field(0.2, description="the val part is stage 2's training data (train.policy_file)")
    guard_sets: list[Ref] = ["mmmu/validation", "textvqa/validation"]
    allow_overlap: bool = False

    @model_validator(mode="after")
    def _room_to_train(self):
        if self.heldout_fraction + self.val_fraction >= 1:
            raise ValueError(
                f"heldout_fraction + val_fraction must be < 1 (leave records to train on), "
                f"got {self.heldout_fraction} + {self.val_fraction}"
            )
        return self


class Lora(Section):
    r: PosInt = 8
    alpha: PosInt = 16
    dropout: Fraction = 0.0
    target_modules: Annotated[list[str], Field(min_length=1)] = [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]


class Tiny(Section):
    hidden_size: PosInt = 64
    layers: PosInt = 2
    vision_depth: PosInt = 2
    vocab_size: PosInt = 1024
    seed: int = 0
    vision_hidden_size: PosInt = 32
    patch_size: PosInt = 16
    vision_positions: PosInt = Field(256, description="learned position grid (a square)")


class Model(Section):
    name: str = Field(
        "models/tiny-qwen3-vl",
        description="local directory or hub id of the Instruct model (the server guide's base_model_name)",
    )
    full_model_name: Optional[str] = Field(None, description="Thinking model for FULL_VISION")
    use_thinking_for_full: bool = False
    prompt_order: Literal["image_first", "text_first"] = Field(
        "image_first",
        description="image_first: the images before the question, as the chat template places them "
        "(vision branches prefill their whole prompt) | text_first: after it (the text pass's cache is reused)",
    )
    train_full_model: bool = False
    trust_remote_code: bool = False
    dtype: Literal["auto", "float32", "float16", "bfloat16", "fp32", "fp16", "bf16"] = "auto"
    attn_implementation: Literal[
        "sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3", "flash_attention_4"
    ] = "sdpa"  # transformers' names; V100: sdpa
    train_vision_tower: bool = False
    finetune: Literal["lora", "full"] = Field("lora", description="lora: adapter on the LM | full: every weight")
    lora: Lora = Lora()
    tiny: Tiny = Tiny()

    @model_validator(mode="after")
    def _thinking_named(self):
        if self.use_thinking_for_full and not self.full_model_name:
            raise ValueError("use_thinking_for_full is true but full_model_name is null; name the Thinking model")
        return self


class Policy(Section):
    hidden: PosInt = 64
    lambda_cost: NonNegFloat = Field(0.1, description="weight of the normalised expected vision tokens")
    cost_norm: NonNegInt = Field(0, description="tokens that count as cost 1.0; 0 = the sample's own FULL cost")
    mode: Literal["soft", "gumbel"] = "soft"
    gumbel_tau: PosFloat = 1.0
    gain_loss: Literal["regress", "rank", "none"] = "regress"
    gain_weight: NonNegFloat = 1.0
    cost_shift: float = Field(
        0.0, description="inference-time shift of action scores by their cost (evaluate@ and predict; not train)"
    )


# Keys of `policy` read at inference only: they are not params of `train`, not in the run fingerprint and not
# in the saved model's config, so trying another value re-scores (evaluate@) and never retrains.
POLICY_INFERENCE_KEYS = ("cost_shift",)


def trained_policy(pcfg: dict) -> dict:
    """The `policy` keys that training reads (iterated by key, so a recording mapping sees no other read)."""
    return {k: pcfg[k] for k in pcfg if k not in POLICY_INFERENCE_KEYS}


# One field per action of vovnet/actions.py: a budget per action that looks, a stage-1 weight per action.
VisionBudget = create_model(
    "VisionBudget",
    __base__=Section,
    __doc__="Pixel limits per vision action (vovnet/actions.py).",
    **{
        a.name: (Budget, Field(Budget(min_pixels=a.pixels[0], max_pixels=a.pixels[1]), description=a.label))
        for a in actions.VISION
    },
)


class _MixBase(Section):
    @model_validator(mode="after")
    def _some_weight(self):
        if sum(getattr(self, a) for a in actions.NAMES) <= 0:
            raise ValueError("the stage-1 action weights must not all be 0")
        return self


# richest first, as params.yaml lists them
Mix = create_model(
    "Mix",
    __base__=_MixBase,
    __doc__="Stage-1 weight per action (vovnet/actions.py).",
    **{a.name: (NonNegFloat, Field(a.mix, description=a.label)) for a in reversed(actions.ACTIONS)},
)


class Stage1(Section):
    epochs: NonNegInt = 1
    mix: Mix = Mix()
    warmup_epochs: NonNegInt = Field(0, description="first stage-1 epochs on FULL only (of epochs), then the mix")
    vision_focus: bool = Field(
        False, description="a vision step weighs each answer token by 1 - p_text * p_branch (what text cannot answer)"
    )


class Stage2(Section):
    epochs: NonNegInt = 1
    train_lora: bool = False


class Train(Section):
    seed: int = 0
    lr: PosFloat = 1.0e-4
    head_lr: PosFloat = 1.0e-3
    vision_lr: Optional[PosFloat] = Field(
        None, description="the vision tower's learning rate when it trains (null: lr)"
    )
    weight_decay: NonNegFloat = 0.0
    batch_size: PosInt = Field(4, description="the global batch: samples per optimizer step, over all processes")
    micro_batch_size: Optional[PosInt] = Field(
        None,
        description="samples per process per forward (memory); null: batch_size / processes. "
        "Gradient accumulation makes up the rest: batch_size = processes x micro x accumulation",
    )
    max_grad_norm: PosFloat = 1.0
    scheduler: Literal["cosine", "linear"] = "cosine"
    warmup_ratio: Fraction = 0.1
    gradient_checkpointing: bool = False
    max_length: PosInt = 2048
    num_workers: NonNegInt = 0
    cpu_threads: NonNegInt = Field(0, description="torch threads on CPU; 0: torch's default")
    stage1: Stage1 = Stage1()
    stage2: Stage2 = Stage2()
    prefix_reuse: bool = Field(True, description="stage 2: run the shared text prefix once, reuse its KV cache")
    log_every: PosInt = 5
    save_every: PosInt = 20
    resume: Literal["auto", "never"] = "auto"
    checkpoint_dir: str = "checkpoints/train"
    train_file: str = Field("data/processed/mmbench_core/mmbench_core_train.jsonl", description="stage 1")
    policy_file: str = Field(
        "data/processed/mmbench_core/mmbench_core_val.jsonl",
        description="stage 2 (the head): questions stage 1 never saw",
    )
    output_dir: str = "models/vovnet"


class Params(Section):
    """params.yaml."""

    seed: int = 0
    datasets: dict[str, Dataset] = {}
    normalize: Normalize = Normalize()
    merge: Merge = Merge()
    model: Model = Model()
    policy: Policy = Policy()
    vision_budget: VisionBudget = VisionBudget()
    train: Train = Train()
    evaluation: Evaluation = Evaluation()
    launch: Launch = Launch()


def defaults() -> dict:
    """Every section at its default (no datasets, no evaluation sets), as plain dicts."""
    return Params().model_dump()


def json_schema() -> dict:
    schema = Params.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "VoVNet params.yaml"
    return schema


def write_json_schema(path: str | os.PathLike = "params.schema.json") -> None:
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def parse_yaml(text: str, where: str) -> Any:
    """YAML 1.2 (safe) from text; any parse error becomes one line prefixed by `where`, with the line and
    column ruamel points at (DVC's own message for the same file, "YAML file structure is corrupted", has none)."""
    try:
        return YAML(typ="safe", pure=True).load(text)
    except Exception as exc:  # ruamel raises many parser classes; report them as one line
        raise VovnetError(yaml_error_line(exc, where)) from None


def yaml_error_line(exc: Exception, where: str) -> str:
    """`where: line L, column C: problem`, 1-based as editors count; a hint where the usual cause is indentation."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"{where}: {problem}"
    hint = ""
    if problem.startswith(("mapping values are not allowed", "expected <block end>")):
        hint = " (check this line's indentation against the line above: a key lines up with its siblings)"
    return f"{where}: line {mark.line + 1}, column {mark.column + 1}: {problem}{hint}"


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise VovnetError(f"{path}: file not found")
    data = parse_yaml(path.read_text(encoding="utf-8"), f"{path}: invalid YAML")
    if data is not None and not isinstance(data, dict):
        raise VovnetError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data or {}


def _validate(model: type[BaseModel], data: Any, where: str, prefix: tuple = ()) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise VovnetError(one_line(exc, model, where, prefix)) from None


def load_params(path: str | os.PathLike = "params.yaml") -> dict:
    """params.yaml validated, defaults filled, as plain dicts; a bad value is a one-line VovnetError."""
    return revalidate(read_yaml(path), str(path))


def revalidate(params: dict, where: str = "params.yaml with command-line overrides") -> dict:
    """A params dict changed by a stage's flags, checked again with the same rules."""
    out = _validate(Params, with_defaults(params), where).model_dump()
    out["datasets"] = {name: _finish_dataset(name, cfg, where) for name, cfg in out["datasets"].items()}
    return out


def dataset_in(params: dict, name: str) -> dict:
    """The validated config of dataset `name` (a copy), or a one-line error listing the known ones."""
    if name not in params["datasets"]:
        raise VovnetError(f"params.yaml: no dataset {name!r} under datasets: (have {', '.join(params['datasets'])})")
    return dict(params["datasets"][name])


def dataset_config(name: str, cfg: dict | None) -> dict:
    """One `datasets.<name>` entry validated on its own (defaults filled, adapter resolved, env applied)."""
    data = _validate(Dataset, dataset_with_defaults(name, cfg or {}), "params.yaml", ("datasets", name)).model_dump()
    return _finish_dataset(name, data, "params.yaml")


def _finish_dataset(name: str, cfg: dict, where: str) -> dict:
    adapter = cfg["adapter"] or (name if name in ADAPTERS else None)
    if adapter is None:
        raise VovnetError(
            f"{where}: datasets.{name}.adapter: missing, and {name!r} names no adapter (one of {', '.join(ADAPTERS)})"
        )
    cfg["adapter"] = adapter
    _apply_env_overrides(name, cfg)
    if not cfg["source"]:
        raise VovnetError(f"{where}: datasets.{name}.source: missing (a URL, local path or hf:<id>)")
    return cfg


def _apply_env_overrides(name: str, cfg: dict) -> None:
    """The seed guide's environment overrides, applied on top of params."""
    hf_id = os.environ.get(f"VOVNET_HF_DATASET_ID_{name.upper()}")
    if hf_id:
        cfg["source"] = hf_id if hf_id.startswith("hf:") else f"hf:{hf_id}"
    if cfg["adapter"] == "mmbench_lite" and os.environ.get("VOVNET_MMBENCH_LITE_URL"):
        cfg["source"] = os.environ["VOVNET_MMBENCH_LITE_URL"]


def image_roots(cfg: dict) -> list[Path]:
    """Where bare image names are looked up: image_root, then VOVNET_IMAGE_ROOTS, then VOVNET_IMAGE_ROOT."""
    roots: list[str] = []
    if cfg.get("image_root"):
        roots.append(cfg["image_root"])
    roots += [r for r in os.environ.get("VOVNET_IMAGE_ROOTS", "").split(":") if r]
    if os.environ.get("VOVNET_IMAGE_ROOT"):
        roots.append(os.environ["VOVNET_IMAGE_ROOT"])
    return [Path(r) for r in roots]


def split_ref(ref: str, where: str) -> tuple[str, str]:
    """'dataset/split' -> (dataset, split)."""
    if not isinstance(ref, str) or ref.count("/") != 1:
        raise VovnetError(f"params.yaml: {where}: expected 'dataset/split', got {ref!r}")
    ds, split = ref.split("/")
    return ds, split


def processed_file(dataset: str, split: str, root: str | os.PathLike = "data/processed") -> Path:
    return Path(root) / dataset / f"{dataset}_{split}.jsonl"
