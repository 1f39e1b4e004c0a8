"""fp16 that cannot silently corrupt: the vision tower runs in fp32, and inf/NaN logits stop with one line."""

import pytest
import torch

from vovnet import VovnetError
from vovnet.config import load_params
from vovnet.evaluation import core
from vovnet.evaluation.sharding import Shard
from vovnet.io_utils import read_jsonl
from vovnet.model.encoding import Encoder, RecordDataset
from vovnet.model.factory import build_vovnet
from vovnet.model.loading import load_base_model, load_processor, vision_towers

HELDOUT = "data/processed/mmbench_core/mmbench_core_heldout.jsonl"


def image_records(n=2):
    return [r for r in read_jsonl(HELDOUT) if r["images"]][:n]


def overflow_first_block(model) -> None:
    """Weights every fp16 number can hold, whose first MLP's activations cannot (far above 65,504)."""
    visual = vision_towers(model)[0]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for lin in (visual.blocks[0].mlp.linear_fc1, visual.blocks[0].mlp.linear_fc2):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 100)


def full_forward(model, enc, image_token_id):
    ids = torch.tensor([enc["input_ids"]])
    with torch.no_grad():
        return model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            pixel_values=enc["pixel_values"],
            image_grid_thw=enc["image_grid_thw"],
            mm_token_type_ids=(ids == image_token_id).int(),
        ).logits


def test_fp16_keeps_the_vision_tower_in_fp32_and_survives_an_overflow_plain_fp16_does_not(in_workspace):
    params = load_params("params.yaml")
    name = params["model"]["name"]
    processor = load_processor(name, params["model"])
    enc = RecordDataset(image_records(1), Encoder(processor, params["vision_budget"], None), with_target=False)[0][
        "full"
    ]
    model = load_base_model(name, params["model"], torch.float16)
    assert {p.dtype for v in vision_towers(model) for p in v.parameters()} == {torch.float32}
    assert next(model.model.language_model.parameters()).dtype == torch.float16
    overflow_first_block(model)
    logits = full_forward(model, enc, processor.image_token_id)
    assert logits.dtype == torch.float16 and torch.isfinite(logits).all()  # cast back at the boundary
    for v in vision_towers(model):
        v.half()  # what plain fp16 would run
    assert not torch.isfinite(full_forward(model, enc, processor.image_token_id)).all()


def test_lora_and_head_stay_fp32_under_fp16(in_workspace):
    params = load_params("params.yaml")
    params["model"] = {**params["model"], "dtype": "float16"}
    model, _ = build_vovnet(params)
    assert {p.dtype for n, p in model.named_parameters() if "lora_" in n} == {torch.float32}
    assert {p.dtype for p in model.head.parameters()} == {torch.float32}


def test_non_finite_logits_in_evaluation_name_the_record_the_action_and_the_remedy(in_workspace):
    params = load_params("params.yaml")
    model, processor = build_vovnet(params)
    model.eval()
    with torch.no_grad():
        next(vision_towers(model)[0].merger.parameters()).fill_(float("nan"))  # every image embedding NaN
    records = image_records(3)
    ev = core.Evaluation(
        "probe",
        {"dataset": "mmbench_core", "split": "heldout", "protocol": "mmbench"},
        {**params, "evaluation": {**params["evaluation"], "batch_size": 2}},
        records,
        0,
        None,
        model,
        processor,
        Encoder(processor, params["vision_budget"], None),
        Shard(0, 1, torch.device("cpu")),
        {"probe": "NaN vision tower"},  # the generation log's key: this model is nobody's
    )
    with pytest.raises(VovnetError) as err:
        core.generate(ev)
    msg = str(err.value)
    assert f"record {records[0]['id']}" in msg and "action coarse" in msg and "model.dtype: float32" in msg
    assert "\n" not in msg
