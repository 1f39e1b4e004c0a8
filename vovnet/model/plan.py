"""The configured model on the meta device: parameters, LoRA as training applies it, traced activations.

Nothing here allocates memory or needs a GPU: the model is built from its config.json on the meta
device, the project's own `add_lora` wraps it, and one forward pass per decoder layer is run on meta
tensors with autograd's saved-tensor hooks, so the activation figure is what autograd really keeps
for backward with these modules, this dtype and this attention kernel (see `plan_memory` for the
per-GPU arithmetic).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from vovnet import VovnetError
from vovnet.model.policy import PolicyHead

log = logging.getLogger("vovnet.plan")

QWEN3_VL_TYPES = ("qwen3_vl", "qwen3_vl_moe")
# (group, name test) in order; the first match names a parameter's group.
GROUPS = (
    ("LoRA adapters", lambda n: ".lora_" in n),
    ("policy head", lambda n: n.startswith("head.")),
    ("Thinking model (FULL)", lambda n: n.startswith("full.")),
    ("vision tower + mergers", lambda n: ".visual." in n),
    ("LM embeddings", lambda n: "embed_tokens" in n),
    ("LM decoder layers", lambda n: ".layers." in n),
    ("LM final norm", lambda n: re.search(r"language_model\.norm\.|model\.norm\.", n) is not None),
    ("LM head", lambda n: "lm_head" in n),
)


@dataclass
class Architecture:
    """What the memory arithmetic needs to know about the built model."""

    model_type: str
    groups: dict[str, list[int]]  # group -> [total params, trainable params]
    lora_modules: list[str]  # the LoRA-wrapped module names
    per_target: dict[str, int]  # target suffix -> modules matched
    frozen: int
    trainable: int
    largest_module: int  # params of the largest leaf module (ZeRO-3 gather)
    hidden: int
    vocab: int
    layers: int
    full_vision_tokens: int
    frozen_vision: int = 0  # frozen vision-tower params (kept in fp32 under fp16)
    warnings: list[str] = field(default_factory=list)


def read_config(model_dir: str | Path):
    """The model's architecture from its config.json, or one line saying what is wrong."""
    from transformers import AutoConfig

    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise VovnetError(
            f"{model_dir}: no config.json (plan reads the architecture from it; place the model "
            "directory there, or at least its config.json)"
        )
    try:
        return AutoConfig.from_pretrained(str(model_dir), trust_remote_code=False)
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise VovnetError(f"{path}: cannot read the architecture: {str(exc).splitlines()[0]}") from None


def build_meta_model(config, mcfg: dict, dtype: torch.dtype, trained: bool = True):
    """The model as training builds it (base in `dtype`, LoRA by the training factory), on meta;
    `trained=False`: frozen, as the Thinking model is unless model.train_full_model."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    from vovnet.model.loading import add_lora, unfreeze_full

    with torch.device("meta"):
        try:
            model = AutoModelForImageTextToText.from_config(
                config, dtype=dtype, attn_implementation=mcfg["attn_implementation"]
            )
        except ValueError:  # a text-only architecture: plan its language model all the same
            model = AutoModelForCausalLM.from_config(
                config, dtype=dtype, attn_implementation=mcfg["attn_implementation"]
            )
        if not trained:
            model.requires_grad_(False)
            return model
        if mcfg.get("finetune", "lora") == "full":
            return unfreeze_full(model, mcfg)
        try:
            return add_lora(model, mcfg)
        except ValueError as exc:  # peft: the pattern matched no module
            targets = ", ".join(mcfg["lora"]["target_modules"])
            raise VovnetError(
                f"params.yaml: model.lora.target_modules [{targets}] matches no language-model "
                f"module ({str(exc).splitlines()[0][:160]})"
            ) from None


def _decoder(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", base)
    lm = getattr(inner, "language_model", inner)
    if not all(hasattr(lm, a) for a in ("layers", "norm", "rotary_emb")):
        raise VovnetError(
            f"plan: cannot find the decoder layers of {type(base).__name__} "
            "(expected .layers, .norm and .rotary_emb on its language model)"
        )
    return base, lm


def describe(model, head: PolicyHead, config, mcfg: dict, budgets: dict, extra=None) -> Architecture:
    """Parameter groups, LoRA matches and the sizes the memory arithmetic uses; fails on a bad LoRA."""
    named = [(n, p) for n, p in model.named_parameters()] + [(f"head.{n}", p) for n, p in head.named_parameters()]
    if extra is not None:
        named += [(f"full.{n}", p) for n, p in extra.named_parameters()]
    groups: dict[str, list[int]] = {}
    for name, p in named:
        group = next((g for g, test in GROUPS if test(name)), "other")
        row = groups.setdefault(group, [0, 0])
        row[0] += p.numel()
        row[1] += p.numel() if p.requires_grad else 0
    lora = sorted(n for n, m in model.named_modules() if hasattr(m, "lora_A") and len(getattr(m, "lora_A")))
    warnings: list[str] = []
    if mcfg.get("finetune", "lora") != "full":
        if not lora:
            raise VovnetError("params.yaml: model.lora.target_modules matches no module: nothing would be trained")
        vision = [n for n in lora if ".visual." in n]
        if vision:
            raise VovnetError(
                f"params.yaml: model.lora.target_modules touches the vision tower "
                f"({len(vision)} modules, e.g. {vision[0]}); LoRA belongs on the language model only"
            )
    per_target = {t: sum(1 for n in lora if n.rsplit(".", 1)[-1] == t) for t in mcfg["lora"]["target_modules"]}
    if mcfg.get("finetune", "lora") != "full":
        warnings += [f"LoRA target {t!r} matches no language-model module" for t, k in per_target.items() if k == 0]
    if mcfg["train_vision_tower"]:
        warnings.append(
            "model.train_vision_tower is true: the vision tower's activations are not traced; add a margin for them"
        )
    leaves = [m for m in model.modules() if not list(m.children())]
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in leaves)
    text = getattr(config, "text_config", config)
    vision = getattr(config, "vision_config", None)
    if vision is not None:
        unit = (vision.patch_size * vision.spatial_merge_size) ** 2
        full_tokens = int(budgets["full"]["max_pixels"]) // unit
    else:
        full_tokens = 0
        warnings.append("the model has no vision_config: planned as text only")
    if config.model_type not in QWEN3_VL_TYPES:
        warnings.insert(0, f"model type {config.model_type!r} is not Qwen3-VL; planning it all the same")
    trainable = sum(p.numel() for _, p in named if p.requires_grad)
    return Architecture(
        model_type=config.model_type,
        groups=groups,
        lora_modules=lora,
        per_target=per_target,
        frozen=sum(p.numel() for _, p in named) - trainable,
        trainable=trainable,
        largest_module=largest,
        hidden=text.hidden_size,
        vocab=text.vocab_size,
        layers=text.num_hidden_layers,
        full_vision_tokens=full_tokens,
        warnings=warnings,
        frozen_vision=sum(p.numel() for n, p in named if ".visual." in n and not p.requires_grad),
    )


class _SavedForBackward:
    """Bytes autograd keeps for backward: one count per storage; parameters and buffers excluded."""

    def __init__(self, exclude: set[int]):
        self.exclude, self.sizes = exclude, {}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage._cdata  # the storage's identity (meta tensors have no data pointer)
        if key not in self.exclude:
            self.sizes[key] = storage.nbytes()
        return t

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def sdpa_kernel(sm: int, q_heads: int, kv_heads: int, masked: bool = False) -> str:
    """The SDPA kernel CUDA picks for transformers' call. With a padding mask (a batch of unequal lengths)
    transformers expands k/v to every query head and the memory-efficient kernel runs. Without one (batch 1,
    or equal lengths) it passes k/v unexpanded with enable_gqa=True: flash and cuDNN take GQA but need
    sm_80, and torch's memory-efficient kernel takes no GQA on any GPU (sdp_utils.cpp checks its heads with
    supports_grouped_query_attention=false). So below sm_80 only MATH is left: fp32 q/k/v copies and the
    fp32 score matrix, kept for backward."""
    return "math" if sm < 80 and q_heads != kv_heads and not masked else "efficient"


KERNEL_NOTES = {
    "math": "MATH (sm < 80 with enable_gqa rules out the memory-efficient kernel; fp32 scores kept)",
    "efficient": "memory-efficient (q, k, v, output, log-sum-exp; no score matrix)",
    "expanded": (
        "memory-efficient, k/v expanded to every query head by vovnet's attention (sm < 80: no enable_gqa, so "
        "no MATH; q, expanded k and v, output, log-sum-exp)"
    ),
    "eager": "eager (the softmax scores kept in the compute dtype)",
}


class _GpuTrainingKernels(TorchFunctionMode):
    """What CUDA training does that meta tensors would not: autocast's casts for `linear` (accelerate's
    mixed precision; `amp_dtype` None for DeepSpeed, which casts the module itself) and the SDPA kernel a
    GPU of capability `sm` runs (`sdpa_kernel`). What that kernel saves is also counted on its own
    (`attention`, `kernel`), so the plan can name it and tests can check it."""

    def __init__(self, amp_dtype: torch.dtype | None, attn: str, sm: int, masked: bool):
        from vovnet.model.loading import EXPANDED_SDPA

        super().__init__()
        self.amp_dtype, self.attn, self.sm, self.masked = amp_dtype, attn, sm, masked
        self.sdpa = attn in ("sdpa", EXPANDED_SDPA)  # both end in F.scaled_dot_product_attention
        self.expanded = attn == EXPANDED_SDPA
        self.layer: _SavedForBackward | None = None  # the current layer's record
        self.attention, self.kernel = 0, attn

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.amp_dtype is not None and func in (F.linear, torch.matmul):
            args = tuple(self._cast(a) for a in args)
            kwargs = {k: self._cast(v) for k, v in kwargs.items()}
        if func is F.scaled_dot_product_attention and self.sdpa:
            return self._attention(*args, **kwargs)
        return func(*args, **kwargs)

    def _cast(self, x):
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != self.amp_dtype:
            return x.to(self.amp_dtype)
        return x

    def _attention(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        # the expanded path hands SDPA as many k/v heads as query heads (repeat_kv ran, its copies traced)
        self.kernel = sdpa_kernel(self.sm, q.shape[1], k.shape[1], self.masked)
        if self.expanded and self.kernel == "efficient":
            self.kernel = "expanded"
        saved = _SavedForBackward(self.layer.exclude if self.layer else set())
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, _unpack):
            if self.kernel == "math":
                out = torch.ops.aten._scaled_dot_product_attention_math(
                    q, k, v, attn_mask, dropout_p, is_causal, None, scale=scale, enable_gqa=True
                )[0]
            else:
                out = efficient_attention(q, k, v, attn_mask, dropout_p, is_causal, scale)
        if self.layer is not None:
            self.layer.sizes.update(saved.sizes)
        self.attention = saved.total
        return out


def efficient_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """The memory-efficient kernel as CUDA runs it; with fewer k/v heads they are expanded first, as
    transformers does whenever it passes a mask."""
    if k.shape[1] != q.shape[1]:
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    return torch.ops.aten._scaled_dot_product_efficient_attention(
        q, k, v, attn_mask, True, dropout_p, is_causal, scale=scale
    )[0]


@dataclass
class Activations:
    per_layer: list[int]  # bytes saved for backward by each decoder layer (no checkpointing)
    layer_inputs: int  # bytes of the inputs checkpointing keeps per layer
    head: int  # final norm + LM head + loss
    loss_backward: int  # transient at the start of backward: the loss's dense fp32 gradients
    attention: int = 0  # of per_layer[-1]: what the attention kernel keeps
    kernel: str = "eager"  # sdpa_kernel's choice, or eager

    def total(self, checkpointing: bool) -> int:
        if checkpointing:  # every layer's input, plus one layer recomputed at a time
            return self.layer_inputs * len(self.per_layer) + max(self.per_layer) + self.head + self.loss_backward
        return sum(self.per_layer) + self.head + self.loss_backward


def _signature(layer) -> tuple:
    return type(layer), tuple((n, tuple(p.shape), p.dtype, p.requires_grad) for n, p in layer.named_parameters())


def trace_activations(
    model, batch: int, seq: int, dtype: torch.dtype, amp: bool, attn: str, sm: int = 80
) -> Activations:
    """One training forward of the language model at (batch, seq) on meta tensors, counted per layer,
    with the attention kernel a GPU of capability `sm` runs (a batch above 1 planned as padded, so
    masked). A layer built like the one before it, given an input of the same kind, saves the same bytes,
    so it is counted without running it again."""
    base, lm = _decoder(model)
    exclude = {t.untyped_storage()._cdata for t in list(model.parameters()) + list(model.buffers())}
    hidden_size = lm.config.hidden_size
    h = torch.empty(batch, seq, hidden_size, device="meta", dtype=dtype)
    pos = torch.zeros(batch, seq, device="meta", dtype=torch.long)
    kernels = _GpuTrainingKernels(dtype if amp else None, attn, sm, masked=batch > 1)
    with torch.enable_grad():
        pe = lm.rotary_emb(h, pos)
        per_layer, last = [], None
        for layer in lm.layers:
            # the first layer's input needs no grad (frozen embeddings), the later ones do: fewer tensors saved
            key = (_signature(layer), h.dtype, h.requires_grad)
            if key == last:
                per_layer.append(per_layer[-1])
                continue
            saved = kernels.layer = _SavedForBackward(exclude)
            with torch.autograd.graph.saved_tensors_hooks(saved.pack, _unpack), kernels:
                out = layer(h, position_embeddings=pe, attention_mask=None, position_ids=pos)
            h, last = (out[0] if isinstance(out, tuple) else out), key
            per_layer.append(saved.total)
        saved = kernels.layer = _SavedForBackward(exclude)
        labels = torch.zeros(batch * seq, device="meta", dtype=torch.long)
        with torch.autograd.graph.saved_tensors_hooks(saved.pack, _unpack), kernels:
            logits = base.get_output_embeddings()(lm.norm(h))
            # as transformers' causal-LM loss: logits upcast to fp32, then cross-entropy
            F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels, ignore_index=-100)
    element = torch.finfo(dtype).bits // 8
    return Activations(
        per_layer=per_layer,
        layer_inputs=batch * seq * hidden_size * element,
        head=saved.total,
        loss_backward=2 * batch * seq * logits.shape[-1] * 4,
        attention=kernels.attention,
        kernel=kernels.kernel,
    )


def _unpack(t: torch.Tensor) -> torch.Tensor:
    return t


def cast_trainable(model, dtype: torch.dtype) -> None:
    """DeepSpeed's fp16/bf16 engine casts the whole module, LoRA included, to the compute dtype."""
    for p in model.parameters():
        if p.requires_grad and p.dtype != dtype:
            p.data = p.data.to(dtype)
