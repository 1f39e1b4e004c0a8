"""Prompts come from the chat template, in either model.prompt_order, and generation from them is token-identical
to plain `transformers` generate; predict and evaluate parse a Thinking model's output the same way."""

import copy
import json
from pathlib import Path

import pytest
import torch
from conftest import get_protocol

from vovnet.config import load_params
from vovnet.evaluation import scoring
from vovnet.io_utils import read_jsonl
from vovnet.model import prompts
from vovnet.model.budgets import ACTIONS
from vovnet.model.encoding import Encoder, RecordDataset
from vovnet.model.factory import build_vovnet

FIXTURES = Path(__file__).parent / "fixtures"
HELDOUT = "data/processed/mmbench_core/mmbench_core_heldout.jsonl"
THINKING_OUTPUT = "<think>\nOptions A and D look wrong.\n</think>\n\nB"


def template(name):
    return json.loads((FIXTURES / name / "chat_template.json").read_text())["chat_template"]


INSTRUCT, THINKING = template("qwen3-vl-8b-instruct"), template("qwen3-vl-8b-thinking")


def user_turn(text, n_images, order):
    images = [{"type": "image"}] * n_images
    parts = [{"type": "text", "text": text}]
    return [{"role": "user", "content": images + parts if order == "image_first" else parts + images}]


def render(processor, chat_template, conversation):
    return processor.apply_chat_template(
        conversation, chat_template=chat_template, tokenize=False, add_generation_prompt=True
    )


def multi_image(records):
    """Records of one dataset, each given its own image and the next record's (two images per question)."""
    return [
        {**copy.deepcopy(r), "images": r["images"] + records[(i + 1) % len(records)]["images"]}
        for i, r in enumerate(records)
    ]


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


def test_published_templates_put_the_image_first_and_the_thinking_turn_opens_think(processor):
    text = "Question: Which animal?\nOptions:\nA. cat\nB. dog\n" + prompts.MC_INSTRUCTION
    slot = prompts.IMAGE_SLOT
    head = f"<|im_start|>user\n{slot}{slot}{text}<|im_end|>\n<|im_start|>assistant\n"
    assert render(processor, INSTRUCT, user_turn(text, 2, "image_first")) == head
    assert render(processor, THINKING, user_turn(text, 2, "image_first")) == head + "<think>\n"
    # the tiny and demo models' own template writes what the Instruct template writes, in both orders
    assert processor.chat_template == prompts.TEMPLATE
    for order in prompts.PROMPT_ORDERS:
        for n in (0, 1, 2):
            conversation = user_turn(text, n, order)
            assert render(processor, prompts.TEMPLATE, conversation) == render(processor, INSTRUCT, conversation)


@pytest.mark.parametrize("order", prompts.PROMPT_ORDERS)
def test_every_actions_prompt_is_the_templates_rendering(in_workspace, processor, order):
    """The Instruct template for NO and COARSE, the Thinking template for FULL (use_thinking_for_full), the
    images where `order` puts them, and each image's pads as the processor itself expands them."""
    params = load_params("params.yaml")
    real = copy.copy(processor)
    real.chat_template = INSTRUCT
    encoder = Encoder(real, params["vision_budget"], None, order, full_template=THINKING)
    ds = RecordDataset(multi_image(list(read_jsonl(HELDOUT))[:3]), encoder, with_target=False)
    for rec in ds.records:
        images = ds.images(rec)
        assert len(images) == 2
        for action in ACTIONS:
            n = 0 if action == "no" else len(images)
            text = render(
                real, THINKING if action == "full" else INSTRUCT, user_turn(prompts.question_text(rec), n, order)
            )
            budget = params["vision_budget"].get(action, {})
            kwargs = (
                {}
                if n == 0
                else {
                    "images": images,
                    "images_kwargs": {
                        "size": {"shortest_edge": budget["min_pixels"], "longest_edge": budget["max_pixels"]}
                    },
                }
            )
            expected = processor(text=[text], return_tensors="pt", **kwargs)["input_ids"][0].tolist()
            assert encoder.encode(rec, images, action, with_target=False)["input_ids"] == expected
        # the target is the assistant turn the template writes: the Thinking one closes an empty <think> block
        letter = prompts.target(rec)
        assert encoder.renderer.target(rec) == letter + prompts.END
        assert encoder.full_renderer.target(rec) == "\n</think>\n\n" + letter + prompts.END
        prefix = encoder.prefix_len(rec)
        assert (prefix is None) == (order == "image_first")


def test_text_first_keeps_the_prompts_the_project_built_by_hand(in_workspace, processor):
    """The demo's and the sample's figures were measured on these exact prompts."""
    params = load_params("params.yaml")
    encoder = Encoder(processor, params["vision_budget"], None, "text_first")
    rec = multi_image(list(read_jsonl(HELDOUT))[:2])[0]
    images = RecordDataset([rec], encoder).images(rec)
    enc = encoder.encode(rec, images, "full")
    n = [enc["image_grid_thw"][i].prod().item() // 4 for i in range(2)]
    by_hand = (
        "<|im_start|>user\n"
        + prompts.question_text(rec)
        + "".join("<|vision_start|>" + "<|image_pad|>" * k + "<|vision_end|>" for k in n)
        + "<|im_end|>\n<|im_start|>assistant\n"
    )
    target = processor.tokenizer(prompts.target(rec) + prompts.END, add_special_tokens=False)["input_ids"]
    assert enc["input_ids"] == processor.tokenizer(by_hand, add_special_tokens=False)["input_ids"] + target
    prefix = processor.tokenizer("<|im_start|>user\n" + prompts.question_text(rec), add_special_tokens=False)
    assert enc["prefix_len"] == len(prefix["input_ids"])


@pytest.mark.parametrize("order", prompts.PROMPT_ORDERS)
def test_generation_is_token_identical_to_plain_generate(in_workspace, processor, order):
    """Every action's answer, at batch sizes 1 and 8, on two-image records, equals `generate` on that
    action's whole prompt built by the processor alone."""
    from vovnet.model.generation import generate_all

    params = load_params("params.yaml")
    params["model"] = {**params["model"], "prompt_order": order}
    torch.manual_seed(0)
    model, _ = build_vovnet(params)
    with torch.no_grad():
        for p in model.lm.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))  # LoRA away from the identity: answers differ per prompt
    model.eval()
    encoder = Encoder(processor, params["vision_budget"], None, model.prompt_order)
    ds = RecordDataset(multi_image(list(read_jsonl(HELDOUT))[:8]), encoder, with_target=False)
    batched = {bs: generate_all(model, processor, ds, bs, 4, "cpu", 10**9, progress=False) for bs in (1, 8)}
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for i, rec in enumerate(ds.records):
        images = ds.images(rec)
        for action in ACTIONS:
            n = 0 if action == "no" else len(images)
            text = render(processor, processor.chat_template, user_turn(prompts.question_text(rec), n, order))
            budget = params["vision_budget"].get(action, {})
            kwargs = (
                {}
                if n == 0
                else {
                    "images": images,
                    "images_kwargs": {
                        "size": {"shortest_edge": budget["min_pixels"], "longest_edge": budget["max_pixels"]}
                    },
                }
            )
            inputs = processor(text=[text], return_tensors="pt", **kwargs)
            with torch.no_grad():
                out = model.lm.generate(
                    **inputs,
                    max_new_tokens=4,
                    do_sample=False,
                    eos_token_id=eos,
                    pad_token_id=processor.tokenizer.pad_token_id,
                )
            plain = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
            assert batched[1][i]["outputs"][action] == plain, (order, action, i)
            assert batched[8][i]["outputs"][action] == plain, (order, action, i)
    assert len({g["outputs"]["full"] for g in batched[8]}) > 1  # the answers do depend on the prompt


def test_predict_and_evaluate_parse_a_thinking_answer_alike(in_workspace, tiny_model_dir, monkeypatch):
    from vovnet.inference import predict
    from vovnet.inference.requests import ImageSources, parse_line

    params = load_params("params.yaml")
    params["model"] = {**params["model"], "use_thinking_for_full": True, "full_model_name": str(tiny_model_dir)}
    model, processor = build_vovnet(params)
    rec = list(read_jsonl(HELDOUT))[0]
    tokens = processor.tokenizer(THINKING_OUTPUT, add_special_tokens=False)["input_ids"]
    assert processor.tokenizer.decode(tokens, skip_special_tokens=True) == THINKING_OUTPUT
    monkeypatch.setattr(predict, "answer_action", lambda model, prefill, rows, *a, **k: [tokens for _ in rows])
    predictor = predict.Predictor(
        model, processor, params["vision_budget"], 10**9, "cpu", predict.PredictOptions(policy="full")
    )
    request = parse_line(json.dumps(rec), 1, ImageSources("."))
    answered = predictor.answer_all([request], show_progress=False)
    answers, rejects = answered.rows, answered.rejects
    assert not rejects and answers[0]["answer"] == THINKING_OUTPUT and answers[0]["parsed"] == "B"

    thinking = tuple(a for a in ACTIONS if model.thinks(a))  # what evaluate_set passes
    assert thinking == ("full",)
    gens = [{"outputs": {a: THINKING_OUTPUT for a in ACTIONS}, "too_long": {a: False for a in ACTIONS}}]
    rows = scoring.rows_by_action(get_protocol("mmbench"), [rec], gens, 0, thinking)
    assert rows["full"][0]["parsed"] == "B"
    # the Instruct model's outputs are parsed as written: its "A and D ... B" names three letters, unresolved
    assert rows["no"][0]["parsed"] is None and rows["coarse"][0]["parsed"] is None
