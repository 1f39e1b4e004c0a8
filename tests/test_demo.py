"""The demo's pieces: the generated VQA set, the short_answer protocol, full fine-tuning, the demo preset."""

from __future__ import annotations

import io
import json

import pytest
import torch
from conftest import ROOT, get_protocol, normalize_dataset
from PIL import Image

from vovnet import VovnetError
from vovnet.__main__ import main as vovnet_main
from vovnet.config import dataset_config, load_params
from vovnet.data.download import fetch
from vovnet.data.image_store import ImageStore
from vovnet.data.overlap import find_overlap
from vovnet.evaluation import demo_report
from vovnet.io_utils import read_jsonl
from vovnet.tasks.shapes_vqa import adapter as shapes_vqa

SPEC = {"seed": 3, "image_size": 64, "sizes": {"train": 30, "policy": 9, "heldout": 9}, "open_fraction": 0.5}


def demo_cfg(**spec):
    return dataset_config(
        "demo",
        {
            "adapter": "shapes_vqa",
            "source": "generate",
            "splits": ["train", "policy", "heldout"],
            "generator": {**SPEC, **spec},
        },
    )


@pytest.fixture
def demo_data(tmp_path):
    cfg = demo_cfg()
    fetch("demo", cfg, tmp_path / "raw")
    stats = normalize_dataset("demo", cfg, tmp_path / "raw", tmp_path / "processed", seed=0, max_image_pixels=10**7)
    return tmp_path / "processed", stats


def test_generated_set_is_deterministic_and_flows_through_normalize(demo_data, tmp_path):
    out, stats = demo_data
    assert {s: v["records"] for s, v in stats["splits"].items()} == {"train": 30, "policy": 9, "heldout": 9}
    train = list(read_jsonl(out / "demo_train.jsonl"))
    held = list(read_jsonl(out / "demo_heldout.jsonl"))
    assert [r["meta"]["family"] for r in train].count("text") == 10  # balanced families
    assert {r["meta"]["format"] for r in train} == {"open", "mc"}
    assert not find_overlap(train, held) and not find_overlap(list(read_jsonl(out / "demo_policy.jsonl")), held)
    store = ImageStore(out)
    for rec in train[:6]:
        assert store.open(rec["images"][0]["sha256"]).size == (64, 64)
        if rec["choices"]:
            assert rec["choices"][rec["answer"]["label"]] == rec["answer"]["text"]
        if rec["meta"]["family"] == "text":
            assert rec["answer"]["text"] in rec["hint"]
    # the same spec regenerates byte-identical outputs; another seed does not
    fetch("demo", demo_cfg(), tmp_path / "raw2")
    again = normalize_dataset("demo", demo_cfg(), tmp_path / "raw2", tmp_path / "p2", seed=0, max_image_pixels=10**7)
    assert again["splits"] == stats["splits"]
    fetch("demo", demo_cfg(seed=4), tmp_path / "raw3")
    other = normalize_dataset(
        "demo", demo_cfg(seed=4), tmp_path / "raw3", tmp_path / "p3", seed=0, max_image_pixels=10**7
    )
    assert other["splits"]["train"]["sha256"] != stats["splits"]["train"]["sha256"]


def test_coarse_resize_keeps_the_colour_and_loses_the_texture():
    import random

    def resized(img_bytes, px):
        img = Image.open(io.BytesIO(img_bytes)).convert("RGB")
        return torch.tensor(list(img.resize((px, px), Image.BICUBIC).getdata()), dtype=torch.float32)

    for size in (32, 64):
        imgs = {t: shapes_vqa.render(size, "red", "circle", t, random.Random(0)) for t in shapes_vqa.TEXTURES}
        other_colour = shapes_vqa.render(size, "blue", "circle", "plain", random.Random(0))
        colour_coarse = (resized(imgs["plain"], 16) - resized(other_colour, 16)).abs()
        for t in ("horizontal", "vertical", "checked"):
            # at full size half the corner's pixels differ by 127 or more; COARSE (16x16) averages them away
            full = (resized(imgs[t], size) - resized(imgs["plain"], size)).abs()
            assert (full >= 127).sum() >= 3 * (size // 4) ** 2 // 2
            texture_coarse = (resized(imgs[t], 16) - resized(imgs["plain"], 16)).abs()
            assert texture_coarse.max() < 0.25 * 255 and texture_coarse.mean() < 0.05 * colour_coarse.mean()


def test_generator_spec_errors_are_one_line(tmp_path):
    with pytest.raises(VovnetError, match="generator"):
        fetch("demo", dataset_config("demo", {"adapter": "shapes_vqa", "source": "generate"}), tmp_path / "r")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "generator.json").write_text(json.dumps({"image_size": 40}))
    with pytest.raises(VovnetError, match="multiple of 16"):
        list(shapes_vqa.iter_rows(tmp_path / "bad", {}, "train"))
    (tmp_path / "bad" / "generator.json").write_text(json.dumps({"colour": 1}))
    with pytest.raises(VovnetError, match="unknown generator keys"):
        list(shapes_vqa.iter_rows(tmp_path / "bad", {}, "train"))


def _rec(answer, choices=None, label=None, family=None, all_answers=None):
    return {
        "choices": choices,
        "answer": {"label": label, "text": answer, "all": all_answers or [answer]},
        "meta": {"family": family} if family else {},
    }


def test_short_answer_exact_match_after_vqa_normalisation():
    proto = get_protocol("short_answer")
    recs = [
        _rec("red", family="coarse"),
        _rec("7", family="full"),
        _rec("Two dogs", all_answers=["two dogs", "2 dogs"]),
        _rec("apple", choices=["pear", "apple"], label=1, family="text"),
        _rec("apple", choices=["pear", "apple"], label=1, family="text"),
        _rec("blue", family="coarse"),
        _rec("pear", choices=["pear", "apple"], label=0, family="text"),
        _rec("pear", choices=["pear", "apple"], label=0, family="text"),
    ]
    outs = ["Red.", "seven", "2 dogs\nbecause", "B", "A", "light blue", "(A)", "the pear"]
    rows, summary = proto.score_records(recs, outs)
    # "A" is an option letter here, not the article that VQA normalisation strips
    assert [r["score"] for r in rows] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    assert summary["accuracy"] == pytest.approx(6 / 8)
    assert summary["per_family"] == {"coarse": 0.5, "full": 1.0, "text": 0.75}
    # a single reference scores 1, where TextVQA's 10-annotator formula gives at most 1/3
    assert get_protocol("textvqa").score_records([recs[0]], ["red"])[0][0]["score"] < 0.34
    assert proto.score_records([_rec("red")], [""])[0][0] == {"parsed": "", "resolved": False, "score": 0.0}


def test_demo_preset_replaces_evaluation_sets_and_round_trips(tmp_path):
    from vovnet.presets import write_preset

    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    before = load_params(path)
    write_preset("demo", path)
    demo = load_params(path)
    assert list(demo["evaluation"]["sets"]) == ["demo"] and list(demo["datasets"]) == ["demo"]
    assert demo["model"]["finetune"] == "full" and demo["evaluation"]["sets"]["demo"]["protocol"] == "short_answer"
    write_preset("sample", path)
    assert load_params(path) == before


def test_full_finetune_trains_saves_and_loads_every_weight(tmp_path, tiny_model_dir, params):
    from vovnet.model.factory import build_vovnet, load_vovnet, save_vovnet
    from vovnet.resume import EngineInfo
    from vovnet.training.checkpoint import save_checkpoint
    from vovnet.training.engine import full_precision_weights
    from vovnet.training.optim import param_groups

    p = json.loads(json.dumps(params))
    p["model"].update(name=str(tiny_model_dir), finetune="full", train_vision_tower=False)
    p["train"]["vision_lr"] = 0.05
    model, processor = build_vovnet(p)
    trainable = {n for n, q in model.named_parameters() if q.requires_grad}
    assert any("language_model" in n and "q_proj.weight" in n for n in trainable)
    assert not any(".visual." in n for n in trainable) and not any("lora_" in n for n, _ in model.named_parameters())
    p["model"]["train_vision_tower"] = True
    model, processor = build_vovnet(p)
    groups = param_groups(model, p["train"])
    assert [g["lr"] for g in groups] == [p["train"]["lr"], p["train"]["head_lr"], 0.05]
    assert sum(len(g["params"]) for g in groups) == sum(1 for q in model.parameters() if q.requires_grad)
    with torch.no_grad():
        for n, q in model.named_parameters():
            q.add_(0.01 * torch.randn_like(q))
    weights = full_precision_weights(model, sorted(model.trained_names), None)
    ckpt = save_checkpoint(
        tmp_path / "ck",
        1,
        weights=weights,
        extra={"rng": torch.get_rng_state()},
        state={},
        engine=EngineInfo("torch", 0, 1),
        main=True,
        wait=lambda: None,
    )
    from safetensors.torch import load_file

    assert set(load_file(str(ckpt / "trainable.safetensors"))) == model.trained_names
    save_vovnet(model, processor, p, tmp_path / "vov")
    assert not list((tmp_path / "vov").glob("adapter_*")) and list((tmp_path / "vov").glob("model*.safetensors"))
    loaded, _, cfg = load_vovnet(tmp_path / "vov", p)
    assert cfg["model"]["finetune"] == "full"
    mine, theirs = dict(model.named_parameters()), dict(loaded.named_parameters())
    assert set(mine) == set(theirs)
    assert all(torch.equal(mine[n], theirs[n]) for n in mine)


def test_unknown_finetune_mode_is_one_line(params, tiny_model_dir):
    from vovnet.model.factory import build_vovnet

    p = json.loads(json.dumps(params))
    p["model"].update(name=str(tiny_model_dir), finetune="qlora")
    with pytest.raises(VovnetError, match="model.finetune"):
        build_vovnet(p)


def test_stage1_optimises_the_vision_tower_and_its_gradient_reaches_it(in_workspace):
    """finetune: full + train_vision_tower: after set_stage(1) every vision weight trains, sits in the
    stage-1 optimizer at vision_lr, and a FULL batch's loss reaches the patch embedding and the merger."""
    from vovnet.io_utils import read_jsonl
    from vovnet.model.encoding import ActionCollator, Encoder, RecordDataset
    from vovnet.model.factory import build_vovnet
    from vovnet.training.optim import stage_optimizer

    p = load_params("params.yaml")
    p["model"].update(finetune="full", train_vision_tower=True)
    p["train"]["vision_lr"] = 0.05
    model, processor = build_vovnet(p)
    model.set_stage(1, train_lora=False)
    optimizer, _ = stage_optimizer(model, p["train"], steps=10)
    lr_of = {id(q): g["initial_lr"] for g in optimizer.param_groups for q in g["params"]}
    vision = {n: q for n, q in model.named_parameters() if ".visual." in n}
    assert vision and all(q.requires_grad and lr_of.get(id(q)) == 0.05 for q in vision.values())
    ds = RecordDataset(list(read_jsonl(p["train"]["train_file"]))[:2], Encoder(processor, p["vision_budget"], 2048))
    batch = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)([ds[0], ds[1]])
    model(batch, stage=1, action="full")["loss"].backward()
    for part in ("patch_embed.proj.weight", "merger.linear_fc1.weight", "deepstack_merger_list.0.linear_fc1.weight"):
        grads = [q.grad for n, q in vision.items() if n.endswith(part)]
        assert grads and grads[0] is not None and grads[0].abs().sum() > 0, part


def test_stage1_warmup_epochs_train_full_only_then_the_mix():
    from vovnet.training.trainer import stage1_action

    s1 = {"mix": {"full": 0.2, "coarse": 0.4, "no": 0.4}, "warmup_epochs": 2}
    draws = {e: [stage1_action(s1, e, torch.Generator().manual_seed(i)) for i in range(60)] for e in range(3)}
    assert set(draws[0]) == set(draws[1]) == {"full"}
    assert set(draws[2]) == {"full", "coarse", "no"}
    assert [stage1_action({**s1, "warmup_epochs": 0}, 0, torch.Generator().manual_seed(i)) for i in range(60)] == draws[
        2
    ]


def test_vision_focus_weighs_the_tokens_the_text_cannot_give():
    from vovnet.model.losses import vision_focus_loss

    ids = torch.tensor([5, 9, 2])
    nll_branch = torch.tensor([0.01, 2.0, 0.01], requires_grad=True)
    nll_text = torch.tensor([0.01, 0.01, 3.0])  # token 0: both give it; 1: this branch misses it; 2: text cannot
    vision_focus_loss((nll_branch, ids), (nll_text, ids)).backward()
    weight = nll_branch.grad * 3
    assert weight[0] < 0.03 and weight[1] > 0.85 and weight[2] > 0.95
    with pytest.raises(ValueError, match="answer tokens differ"):
        vision_focus_loss((torch.zeros(3), ids), (torch.zeros(3), torch.tensor([5, 9, 3])))


def test_a_focused_stage1_step_reports_the_plain_loss_and_trains_less_on_what_text_answers(in_workspace):
    from vovnet.io_utils import read_jsonl
    from vovnet.model.encoding import ActionCollator, Encoder, RecordDataset
    from vovnet.model.factory import build_vovnet

    p = load_params("params.yaml")
    p["model"].update(finetune="full", train_vision_tower=True)
    model, processor = build_vovnet(p)
    model.set_stage(1, train_lora=False)
    ds = RecordDataset(list(read_jsonl(p["train"]["train_file"]))[:4], Encoder(processor, p["vision_budget"], 2048))
    batch = ActionCollator(processor.tokenizer.pad_token_id, processor.image_token_id)([ds[i] for i in range(4)])
    for action in ("full", "coarse"):
        plain, focused = model(batch, stage=1, action=action), model(batch, stage=1, action=action, vision_focus=True)
        assert torch.allclose(plain["task"], focused["task"], rtol=1e-5)  # the logged task loss is the model's own
        assert 0 < focused["loss"] < plain["loss"]
        focused["loss"].backward()
        patch = [q.grad for n, q in model.named_parameters() if n.endswith("patch_embed.proj.weight")]
        assert patch and patch[0] is not None and patch[0].abs().sum() > 0  # the weighted loss reaches the tower
        model.zero_grad()
    no = model(batch, stage=1, action="no", vision_focus=True)
    assert torch.equal(no["loss"], model(batch, stage=1, action="no")["loss"])  # the text branch is not weighted


def test_demo_report_oracle_takes_each_question_s_cheapest_right_action_cheapest_first():
    # q0 right at NO (free); q1 right at COARSE (1) and FULL; q2 only at FULL (16); q3 never right
    correct = {"no": [1, 0, 0, 0], "coarse": [0, 1, 0, 0], "full": [1, 1, 1, 0]}
    tokens = {"no": [0] * 4, "coarse": [1] * 4, "full": [16] * 4}
    assert demo_report.oracle_accuracy(correct, tokens, budget=0) == 0.25
    assert demo_report.oracle_accuracy(correct, tokens, budget=16) == 0.5  # q1 at COARSE; q2 would need 16 more
    assert demo_report.oracle_accuracy(correct, tokens, budget=17) == 0.75
    assert demo_report.oracle_accuracy(correct, tokens, budget=1000) == 0.75


def demo_eval_outputs(root):
    """eval/demo and the held-out records of a 4-question run: NO answers q0, COARSE q0-q1, FULL q0-q2; the
    learned policy takes NO, COARSE, FULL, NO (tokens 0, 1, 4)."""
    answers = ["red", "blue", "dots", "star"]
    outputs = {"no": ["red", "x", "x", "x"], "coarse": ["red", "blue", "x", "x"], "full": ["red", "blue", "dots", "x"]}
    records = [
        {"id": f"q{i}", "question": "?", "answer": {"text": a}, "meta": {"family": "ab"[i // 2]}}
        for i, a in enumerate(answers)
    ]
    preds = [
        {
            "id": f"q{i}",
            "action": action,
            "policy_scores": [1.0, 0.0, 0.0],
            "text_entropy": entropy,
            "outputs_by_action": {a: outputs[a][i] for a in outputs},
            "vision_tokens_by_action": {"no": 0, "coarse": 1, "full": 4},
        }
        for i, (action, entropy) in enumerate(zip(["no", "coarse", "full", "no"], [0.1, 0.5, 0.9, 0.8]))
    ]
    report = {
        "set": "demo",
        "dataset": "demo",
        "split": "heldout",
        "protocol": "short_answer",
        "accuracy_at_learned_tokens": {"uncertainty": 0.5, "random": 0.4},
        "curves": {"uncertainty": [{"vision_tokens": 0.0, "accuracy": 0.25}, {"vision_tokens": 4.0, "accuracy": 0.75}]},
    }
    (root / "eval" / "demo").mkdir(parents=True)
    (root / "eval" / "demo" / "report.json").write_text(json.dumps(report))
    (root / "eval" / "demo" / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    (root / "data" / "processed" / "demo").mkdir(parents=True)
    (root / "data" / "processed" / "demo" / "demo_heldout.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records)
    )


def test_demo_report_command_scores_every_action_and_writes_figures_and_plot(tmp_path, monkeypatch, capsys):
    demo_eval_outputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert vovnet_main(["demo-report", "--set", "demo", "--out-dir", "figs"]) == 0
    fig = json.loads((tmp_path / "figs" / "demo_report.json").read_text())
    assert fig["questions"] == 4
    assert fig["always_no"] == {"accuracy": 0.25, "vision_tokens": 0.0}
    assert fig["always_coarse"] == {"accuracy": 0.5, "vision_tokens": 1.0}
    assert fig["always_full"] == {"accuracy": 0.75, "vision_tokens": 4.0}
    assert fig["learned"] == {"accuracy": 0.75, "vision_tokens": 1.25}
    at = fig["at_learned_tokens"]
    assert at["random"] == pytest.approx(0.6875 * 0.25 + 0.3125 * 0.75)  # NO/FULL at the learned tokens' share
    assert at["uncertainty"] == 0.5 and at["oracle"] == 0.75
    assert at["uncertainty_exact"] == 0.5  # FULL to q2 (entropy 0.9) and a quarter of q3, NO to q0 and q1
    assert fig["per_family"]["a"]["learned_actions"] == {"no": 0.5, "coarse": 0.5, "full": 0.0}
    assert fig["per_family"]["b"]["always_full"] == 0.5
    assert all(t["met"] for t in fig["targets"].values()), fig["targets"]
    svg = (tmp_path / "figs" / "demo_pareto.svg").read_text()
    assert svg.startswith("<svg") and "learned (cost_shift 0)" in svg
    out = capsys.readouterr().out
    assert "held-out questions: 4" in out and "MET  learned - uncertainty (equal tokens) >= 3 pts: +25.0 pts" in out


def test_demo_report_without_the_pipeline_s_outputs_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert vovnet_main(["demo-report", "--set", "easy_vqa"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: eval/easy_vqa/report.json: not found; run the demo's pipeline first (`dvc repro`)"
    demo_eval_outputs(tmp_path)
    assert vovnet_main(["demo-report", "--shifts", "0,x"]) == 2
    assert "--shifts: expected comma-separated numbers, got '0,x'" in capsys.readouterr().err
