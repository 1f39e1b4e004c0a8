"""Per-GPU memory of evaluate@ and predict: each process holds a whole model (and the Thinking model when
`model.use_thinking_for_full`), generates a batch of `evaluation.batch_size` prompts of up to
`evaluation.max_length` tokens, and keeps their KV cache while it decodes.

The prefill's largest transient is one decoder layer at a time: the attention kernel's work space or the
MLP's three (batch, L, intermediate) tensors. Below sm_80 the loader's attention expands k/v itself
(loading.sdpa_variant), so the prefill keeps the memory-efficient kernel with or without a mask; from sm_80
transformers' own call runs it too. A batch above 1 is planned as padded (a mask and its additive copy).
generate keeps only the last position's logits (logits_to_keep=1).
"""

from __future__ import annotations

from dataclasses import dataclass

from vovnet.model.loading import sdpa_variant
from vovnet.model.plan import sdpa_kernel


@dataclass(frozen=True)
class TextShape:
    """The language model's sizes that inference memory depends on."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int

    @classmethod
    def of(cls, config) -> "TextShape":
        t = getattr(config, "text_config", config)
        head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
        kv = getattr(t, "num_key_value_heads", None) or t.num_attention_heads
        return cls(t.num_hidden_layers, t.hidden_size, t.intermediate_size, t.num_attention_heads, kv, head_dim)


class Terms:
    """A row of the plan: bytes per GPU by what holds them."""

    terms: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.terms.values())

    @property
    def largest(self) -> str:
        return max(self.terms, key=self.terms.get)


@dataclass
class InferenceRow(Terms):
    name: str
    batch: int
    length: int  # prompt tokens + new tokens
    kernel: str
    terms: dict[str, float]  # bytes: weights, kv cache, prefill


def kv_cache(shape: TextShape, batch: int, tokens: int, element: int) -> int:
    return 2 * shape.layers * batch * shape.kv_heads * shape.head_dim * tokens * element


def prefill_peak(shape: TextShape, batch: int, tokens: int, element: int, attn: str, sm: int) -> tuple[int, str]:
    """Bytes one decoder layer needs beyond its input during the prefill, and the attention kernel."""
    masked = batch > 1  # a batch of unequal prompts is padded; equal ones are planned like batch 1 per prompt
    if attn != "sdpa":
        kernel = "eager"
    elif sdpa_variant(sm) == "expanded":  # the loader's attention: k/v expanded, no enable_gqa
        kernel = "expanded"
    else:
        kernel = sdpa_kernel(sm, shape.heads, shape.kv_heads, masked)
    qkv = batch * shape.heads * tokens * shape.head_dim
    scores = batch * shape.heads * tokens * tokens
    if kernel == "eager":
        attention = 2 * qkv * element + 2 * scores * element
    else:  # efficient or expanded: q, k and v expanded, output; the boolean padding mask and its additive copy
        attention = 4 * qkv * element + (batch * tokens * tokens * (1 + element) if masked else 0)
    mlp = 3 * batch * tokens * shape.intermediate * element
    residual = 2 * batch * tokens * shape.hidden * element
    return max(attention, mlp) + residual, kernel


def inference_row(
    name: str, weights: float, shapes: list[TextShape], ecfg: dict, new_tokens: int, element: int, attn: str, sm: int
) -> InferenceRow:
    """`weights`: bytes of every model the process holds; `shapes`: the language model(s) that generate
    (the KV cache of the one that answers is what stays)."""
    batch, prompt = ecfg["batch_size"], ecfg["max_length"]
    tokens = prompt + new_tokens
    cache = max(kv_cache(s, batch, tokens, element) for s in shapes)
    peak, kernel = max(prefill_peak(s, batch, prompt, element, attn, sm) for s in shapes)
    return InferenceRow(name, batch, tokens, kernel, {"weights": weights, "kv cache": cache, "prefill": peak})
