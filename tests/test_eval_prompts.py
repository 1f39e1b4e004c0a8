"""Prompt variants (evaluation.sets.<name>.prompt): each renders the user turn the public task definitions
describe (Qwen's own evaluation script, lmms-eval's mmmu_val_qwen and mmstar_qwen), offered per protocol, and
selected per evaluation set; a variant a protocol does not offer is one line."""

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, get_protocol

from vovnet import VovnetError
from vovnet.config import load_params
from vovnet.evaluation import prompt_variants as pv
from vovnet.model import prompts

MCQ = {
    "id": "q1",
    "hint": "The picture shows a kitchen.",
    "question": "What is on the table?",
    "choices": ["a cup", "a plate", "a knife"],
}
OPEN = {"id": "q2", "hint": None, "question": "What is the area of <image 1>?", "choices": None}


def test_qwen_is_qwens_own_evaluation_prompt():
    # QwenLM/Qwen3-VL evaluation/mmmu/run_mmmu.py: hint line, question line, options, the instruction, rstripped
    assert pv.qwen(MCQ) == (
        "Hint: The picture shows a kitchen.\nQuestion: What is on the table?\nOptions:\nA. a cup\nB. a plate\n"
        "C. a knife\nPlease select the correct answer from the options above."
    )
    assert pv.qwen(OPEN) == "Question: What is the area of <image 1>?"  # no options: the question line alone


def test_lmms_eval_mmmu_qwen_writes_the_options_block_for_open_questions_too():
    # mmmu_doc_to_text_qwen3vl: f"{pre}{question}\nOptions:\n{options}\n{post or open_ended_prompt}"
    assert pv.lmms_eval_mmmu(MCQ) == (
        "Question: What is on the table?\nOptions:\nA. a cup\nB. a plate\nC. a knife\n"
        "Answer with the option letter only."
    )
    assert pv.lmms_eval_mmmu(OPEN) == (
        "Question: What is the area of <image 1>?\nOptions:\n\nPlease answer the question directly."
    )


def test_lmms_eval_mmstar_qwen_rebuilds_the_hub_cell_of_every_sample_row():
    """mmstar_doc_to_text: "Question: " + the hub's question cell, stripped, + the post-prompt, no separator.
    The record keeps the cell split (stem, options); rebuilt, it renders the cell itself on the shipped sample."""
    from vovnet.tasks.mmstar.adapter import split_options

    cells = [r["question"] for r in pq.read_table(ROOT / "data/samples/mmstar/mmstar.parquet").to_pylist()]
    assert len(cells) >= 10
    for cell in cells:
        stem, options = split_options(cell)
        got = pv.lmms_eval_mmstar({"question": stem, "choices": options})
        assert got == f"Question: {cell.strip()}Answer with the option letter only."


def test_protocols_offer_their_variants_and_a_missing_one_is_one_line():
    assert pv.question_text_of(get_protocol("mmstar"), "standard", "mmstar") is None
    assert pv.question_text_of(get_protocol("mmstar"), "lmms_eval_qwen", "mmstar") is pv.lmms_eval_mmstar
    assert pv.question_text_of(get_protocol("mmmu"), "lmms_eval_qwen", "mmmu") is pv.lmms_eval_mmmu
    for task in ("mmbench", "scienceqa_img", "mmmu", "mmstar"):
        assert pv.question_text_of(get_protocol(task), "qwen", task) is pv.qwen
    with pytest.raises(VovnetError, match=r"^evaluation.sets.pope.prompt: 'qwen' is not offered by its protocol"):
        pv.question_text_of(get_protocol("pope"), "qwen", "pope")
    with pytest.raises(VovnetError, match=r"\(offered: standard, qwen\)$"):
        pv.question_text_of(get_protocol("mmbench"), "lmms_eval_qwen", "mmbench")


def test_the_variant_is_the_user_turn_the_chat_template_renders(tiny_model_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    standard = prompts.Renderer.of(processor, "text_first")
    qwen = prompts.Renderer.of(processor, "text_first", text_of=pv.qwen)
    assert prompts.MC_INSTRUCTION in standard.prompt(MCQ, [4]) and pv.QWEN_MCQ not in standard.prompt(MCQ, [4])
    full = qwen.prompt(MCQ, [4])
    assert pv.qwen(MCQ) in full and prompts.MC_INSTRUCTION not in full
    # text_first: the text-only prompt (the variant's) is still the prefix every action shares
    assert qwen.shared_prefix(MCQ).endswith(pv.qwen(MCQ)) and full.startswith(qwen.shared_prefix(MCQ))


def test_the_set_param_defaults_to_standard_and_refuses_other_names(tmp_path):
    params = load_params(ROOT / "params.yaml")
    assert {s["prompt"] for s in params["evaluation"]["sets"].values()} == {"standard"}
    p = tmp_path / "params.yaml"
    p.write_text(
        (ROOT / "params.yaml").read_text().replace("protocol: mmmu\n", "protocol: mmmu\n      prompt: qwen3\n")
    )
    with pytest.raises(VovnetError, match=r"evaluation.sets.mmmu.prompt"):
        load_params(p)
