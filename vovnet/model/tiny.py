"""The embedded default: a tiny random Qwen3-VL built locally from a config (no download).

Real Qwen3-VL classes, a byte-level BPE tokenizer trained here and wrapped as a Qwen2 tokenizer,
Qwen2VLImageProcessor and Qwen3VLVideoProcessor and a small chat template (CHAT_TEMPLATE), saved with
save_pretrained (safetensors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from vovnet.io_utils import atomic_path

TINY_MODEL_DIR = "models/tiny-qwen3-vl"  # the `model` stage's output (dvc.yaml)
SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
CORPUS = """What is the main colour of this image? Which shape is drawn in the image? What is written in the image?
Answer with the option's letter from the given choices directly. Answer the question using a single word or phrase.
Options: A. B. C. D. E. red green blue yellow circle square triangle The first The second apple car chair shoe
eagle cow horse pig Mars Paris Nile Everest ice sand wood glass pink brown grey the a an is of and to in it that
0 1 2 3 4 5 6 7 8 9 10 42 stop cafe open exit sale bus sign unanswerable Hint: Question: Answer: image picture"""

# Qwen3-VL's chat template structure (one user turn of image and text parts, then the assistant header), with
# no system turn and no tools: vovnet/model/prompts.py renders every prompt through it.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message.role + '\\n' -}}"
    "{%- if message.content is string -%}{{- message.content -}}"
    "{%- else -%}{%- for part in message.content -%}"
    "{%- if part.type == 'image' -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part.type == 'text' -%}{{- part.text -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def corpus(vocabulary: Sequence[str] = ()) -> str:
    """The tokenizer's training text: the sample vocabulary plus `vocabulary`, lines the model stage adds
    (the generated demo set's own words, from its task), so those words are single tokens."""
    return CORPUS + "\n" + "\n".join(vocabulary)


def build_tokenizer(vocab_size: int, vocabulary: Sequence[str] = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus(vocabulary).split("\n") * 4, trainer)
    return Qwen2Tokenizer(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None
    )


def build_tiny_model(out_dir: str | Path, cfg: dict, vocabulary: Sequence[str]) -> None:
    """The tiny model from the `model` section (`cfg["tiny"]`), its tokenizer trained on the sample
    vocabulary and `vocabulary` (what the model stage adds: the demo task's words)."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tiny = cfg["tiny"]
    tokenizer = build_tokenizer(tiny["vocab_size"], vocabulary)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    patch = tiny["patch_size"]
    image_processor = Qwen2VLImageProcessor(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
        size={"shortest_edge": 1024, "longest_edge": 1024 * 1024},
    )
    video_processor = Qwen3VLVideoProcessor(patch_size=patch, merge_size=2, temporal_patch_size=2)
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )
    hidden, vis = tiny["hidden_size"], tiny["vision_hidden_size"]
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=tiny["layers"],
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=hidden // 4,
            max_position_embeddings=4096,
            pad_token_id=ids["<|endoftext|>"],
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [hidden // 16, hidden // 32, hidden // 32],
                "mrope_interleaved": True,
            },
        ),
        vision_config=dict(
            depth=tiny["vision_depth"],
            hidden_size=vis,
            intermediate_size=2 * vis,
            num_heads=2,
            patch_size=patch,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=hidden,
            num_position_embeddings=tiny["vision_positions"],
            deepstack_visual_indexes=[tiny["vision_depth"] - 1],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(tiny["seed"])
    model = Qwen3VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
