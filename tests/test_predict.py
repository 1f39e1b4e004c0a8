"""predict: only the chosen branch runs, through per-action queues that run full batches, its answers equal
evaluate's, bad lines become counted rejects, the output is atomic, and a 2-process (gloo, CPU) run writes
the same single output."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, get_protocol, jpeg_bytes
from ruamel.yaml import YAML

from vovnet.config import load_params
from vovnet.evaluation.core import evaluate_set, load_eval_records
from vovnet.inference.predict import PredictOptions, predict_file, rejects_path
from vovnet.io_utils import read_jsonl
from vovnet.model.budgets import ACTIONS, budget_tokens, image_inputs, tokens_per_image
from vovnet.model.factory import build_vovnet, save_vovnet

QUESTIONS = 11  # held-out questions (4 circular rotations each) the equivalence tests use: all the samples'


def lines(path):
    return list(read_jsonl(path))


@pytest.fixture(scope="module")
def trained(workspace):
    """A saved VoVNet on the tiny random base model (random outputs, so equal answers mean something), its
    head's last layer rebuilt so that the learned choices split these records into NO / COARSE / FULL
    (an untrained head scores every question alike)."""
    from vovnet.model.encoding import Encoder
    from vovnet.model.generation import TokenIds, text_prefill

    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        params = load_params("params.yaml")
        torch.manual_seed(3)
        model, processor = build_vovnet(params)
        # evaluate's records in evaluate's order, so both see the same batches
        records = load_eval_records("mmbench", params["evaluation"]["sets"]["mmbench"], QUESTIONS)
        enc, ids = Encoder(processor, params["vision_budget"], 10**9), TokenIds.of(processor)
        with torch.no_grad():
            for p in model.head.mlp.parameters():
                p.mul_(40.0)
            prefill = text_prefill(
                model.lm, [enc.encode(r, [], "no", with_target=False) for r in records], ids.pad, ids.image, "cpu"
            )
            scores = model.policy_scores(prefill.features)
            # Score k becomes k*u - c_k for u = (FULL - COARSE score gap): NO below t1, COARSE up to t2, FULL above,
            # with t1, t2 between the sorted gaps at a third and two thirds of the records.
            last = model.head.mlp[-1]
            dw, db = last.weight[2] - last.weight[1], last.bias[2] - last.bias[1]
            u = sorted((scores[:, 2] - scores[:, 1]).tolist())
            n = len(u)
            t1, t2 = (u[n // 3 - 1] + u[n // 3]) / 2, (u[2 * n // 3 - 1] + u[2 * n // 3]) / 2
            last.weight.copy_(torch.stack([torch.zeros_like(dw), dw, 2 * dw]))
            last.bias.copy_(torch.stack([torch.zeros_like(db), db - t1, 2 * db - t1 - t2]))
        out = workspace / "models" / "predict_vovnet"
        save_vovnet(model, processor, params, out)
        subset = workspace / "heldout_subset.jsonl"
        subset.write_text("".join(json.dumps(r) + "\n" for r in records))
    finally:
        os.chdir(cwd)
    return out, subset


def run_evaluate(params, model_dir, batch_size, out_dir):
    params["evaluation"].update(model_dir=str(model_dir), batch_size=batch_size, max_samples=QUESTIONS)
    evaluate_set("mmbench", params["evaluation"]["sets"]["mmbench"], params, out_dir, get_protocol("mmbench"))
    return {p["id"]: p for p in read_jsonl(out_dir / "predictions.jsonl")}


def run_predict(params, model_dir, inp, out, policy, batch_size, **kw):
    opts = PredictOptions(
        policy=policy,
        cost_shift=params["policy"]["cost_shift"],
        cost_norm=params["policy"]["cost_norm"],
        batch_size=batch_size,
        max_new_tokens=params["evaluation"]["max_new_tokens"],
    )
    summary = predict_file(model_dir, inp, out, params, opts, **kw)
    return lines(out), summary


def assert_queued_batches(summary, rows, batch_size):
    """Every generate call ran at the batch size except the last one per action: ceil(n / batch) calls."""
    for action, sizes in summary["generate_batches"].items():
        n = sum(r["action"] == action for r in rows)
        assert sum(sizes) == n and len(sizes) == -(-n // batch_size)
        assert all(s == batch_size for s in sizes[:-1])


@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_answers_and_choices_equal_evaluate(in_workspace, trained, batch_size, tmp_path):
    model_dir, subset = trained
    params = load_params("params.yaml")
    params["evaluation"]["max_new_tokens"] = 4  # the random model never stops early: keep decoding short
    evaluated = run_evaluate(params, model_dir, batch_size, tmp_path / "eval")
    ids = [r["id"] for r in lines(subset)]
    constant = {}
    for policy, action in (("none", "no"), ("coarse", "coarse"), ("full", "full")):
        rows, summary = run_predict(params, model_dir, subset, tmp_path / f"{policy}.jsonl", policy, batch_size)
        constant[action] = {r["id"]: r for r in rows}
        assert_queued_batches(summary, rows, batch_size)
        assert [r["id"] for r in rows] == ids  # input order
        assert all(r["action"] == action for r in rows)
        assert [r["answer"] for r in rows] == [evaluated[i]["outputs_by_action"][action] for i in ids]
        assert [r["vision_tokens"] for r in rows] == [evaluated[i]["vision_tokens_by_action"][action] for i in ids]
        assert summary["action_ratio"][action] == 1.0 and summary["latency_ms"][action]["n"] == len(ids)
    rows, summary = run_predict(params, model_dir, subset, tmp_path / "learned.jsonl", "learned", batch_size)
    assert [r["action"] for r in rows] == [evaluated[i]["action"] for i in ids]
    assert {r["action"] for r in rows} == {"no", "coarse", "full"}  # batches really are mixed and regrouped
    assert [r["answer"] for r in rows] == [evaluated[i]["output"] for i in ids]
    # the same VLMEvalKit matching; predict reports a refusal ('Z' in evaluate) as no letter
    assert [r["parsed"] for r in rows] == [
        None if evaluated[i]["parsed"] == "Z" else evaluated[i]["parsed"] for i in ids
    ]
    for r in rows:
        assert r["policy_scores"] == pytest.approx(evaluated[r["id"]]["policy_scores"], abs=1e-5)
    assert len({r["answer"] for r in rows}) > 1  # random outputs: equality is not trivially "A" == "A"
    # Queues: mixed text passes still run full batches (44 records: at batch 4 and 32 the text passes'
    # rows are joined across passes), and the summary counts what each question cost.
    assert_queued_batches(summary, rows, batch_size)
    assert summary["tokens"] == {k: sum(r[f"{k}_tokens"] for r in rows) for k in ("vision", "text", "generated")}
    for r in rows:  # a question costs what it costs under the constant policy of its action
        same = constant[r["action"]][r["id"]]
        assert (r["text_tokens"], r["generated_tokens"]) == (same["text_tokens"], same["generated_tokens"])
        assert 0 < r["generated_tokens"] <= 4
    for i in ids:  # a vision branch prefills the text pass plus its own text around the image (equal at both budgets)
        no, coarse, full = (constant[a][i]["text_tokens"] for a in ACTIONS)
        assert no < coarse == full
    assert summary["cpu_s"] > 0


def test_rows_of_text_passes_of_different_widths_join_into_one_batch_with_the_same_answers(in_workspace, trained):
    """take + join (what a queue runs) answer every action as the rows' own text passes do."""
    from vovnet.model.encoding import Encoder, RecordDataset
    from vovnet.model.factory import load_vovnet
    from vovnet.model.generation import TokenIds, answer_action, text_prefill
    from vovnet.model.prefill_rows import join, take

    params = load_params("params.yaml")
    model, processor, _ = load_vovnet(trained[0], params, "cpu")
    records = sorted(lines(trained[1]), key=lambda r: len(r["question"]) + len(r.get("hint") or ""))
    ds = RecordDataset(records, Encoder(processor, params["vision_budget"], None), with_target=False)
    ids = TokenIds.of(processor)
    short, long = [ds[i] for i in range(3)], [ds[i] for i in range(len(ds) - 4, len(ds))]
    passes = [text_prefill(model.lm, [e["no"] for e in encs], ids.pad, ids.image, "cpu") for encs in (short, long)]
    assert passes[0].input_ids.shape[1] < passes[1].input_ids.shape[1]  # joining re-pads the narrower pass
    picked = [(0, [0, 2]), (1, [1, 2, 3])]
    joined = join([take(passes[k], rows) for k, rows in picked], ids.pad)
    encs = [(short, long)[k][j] for k, rows in picked for j in rows]
    for action in ACTIONS:
        alone = [
            t
            for k, rows in picked
            for t in answer_action(model, passes[k], rows, [(short, long)[k][j][action] for j in rows], action, ids, 4)
        ]
        together = answer_action(model, joined, list(range(len(encs))), [e[action] for e in encs], action, ids, 4)
        assert together == alone, action
    assert len({tuple(t) for t in together}) > 1


def test_vision_cost_without_decoding_equals_the_processors(in_workspace, trained):
    from PIL import Image
    from transformers import AutoProcessor

    params = load_params("params.yaml")
    ip = AutoProcessor.from_pretrained(str(trained[0])).image_processor
    for size in [(64, 64), (300, 40), (17, 900), (1024, 768)]:
        img = Image.new("RGB", size, (10, 20, 30))
        for action in ACTIONS[1:]:
            budget = params["vision_budget"][action]
            real = sum(tokens_per_image(image_inputs(ip, [img], budget)["image_grid_thw"], ip.merge_size))
            assert budget_tokens(ip, [size], budget) == real


def write_requests(root, rows):
    path = root / "requests.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def request_dir(tmp_path):
    images = tmp_path / "root" / "images"  # the image root is tmp_path/root
    images.mkdir(parents=True)
    (images / "a.jpg").write_bytes(jpeg_bytes(seed=1, size=(48, 40)))
    (images / "b.jpg").write_bytes(jpeg_bytes(seed=2, size=(64, 64)))
    full = jpeg_bytes(seed=3, size=(256, 256))
    (images / "truncated.jpg").write_bytes(full[: int(len(full) * 0.8)])  # header fine, pixels cut off
    (images / "garbage.jpg").write_bytes(b"this is not an image")
    (tmp_path / "outside.jpg").write_bytes(jpeg_bytes(seed=4))
    (images / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    return tmp_path


def test_bad_requests_are_counted_rejects_and_the_rest_is_answered(in_workspace, trained, request_dir):
    params = load_params("params.yaml")
    inp = write_requests(
        request_dir,
        [
            {"id": "ok1", "question": "What colour?", "image": "images/a.jpg", "choices": ["red", "blue"]},
            {"id": "noq", "image": "images/a.jpg"},
            {"id": "blankq", "question": "   "},
            {"id": "missing", "question": "Q?", "image": "images/nope.jpg"},
            {"id": "garbage", "question": "Q?", "image": "images/garbage.jpg"},
            {"id": "escape", "question": "Q?", "image": "../outside.jpg"},
            {"id": "absolute", "question": "Q?", "image": str(request_dir / "outside.jpg")},
            {"id": "symlink", "question": "Q?", "image": "images/link.jpg"},
            {"id": "badchoices", "question": "Q?", "choices": "A or B"},
            "{not json",
            {"id": "ok2", "question": "Open question, two images", "image": ["images/a.jpg", "images/b.jpg"]},
            {"id": "truncated", "question": "Q?", "image": "images/truncated.jpg"},
            {"question": "No id, no image"},
        ],
    )
    out = request_dir / "out" / "answers.jsonl"
    rows, summary = run_predict(params, trained[0], inp, out, "full", 2, image_root=request_dir / "root")
    rejects = lines(rejects_path(out))
    by_id = {r["id"]: r for r in rejects}
    assert {r["field"] for r in rejects if r["id"] in ("noq", "blankq")} == {"question"}
    assert "not found" in by_id["missing"]["reason"] and "undecodable" in by_id["garbage"]["reason"]
    assert all(
        "escapes" in by_id[k]["reason"] or "outside" in by_id[k]["reason"] for k in ("escape", "absolute", "symlink")
    )
    assert by_id["badchoices"]["field"] == "choices"
    assert by_id["truncated"]["field"] == "image" and "undecodable" in by_id["truncated"]["reason"]
    assert [r["line"] for r in rejects] == sorted(r["line"] for r in rejects) and len(rejects) == 10
    assert any(r["field"] == "line" and r["line"] == 10 for r in rejects)
    assert [r["id"] for r in rows][:2] == ["ok1", "ok2"] and rows[2]["id"].startswith("request-")
    assert rows[0]["parsed"] in (None, "A", "B") and rows[1]["parsed"] is None
    assert rows[1]["vision_tokens"] > rows[0]["vision_tokens"] > 0  # two images cost more than one
    assert summary["questions"] == 3 and summary["rejected"] == 10
    # Without vision the truncated image is never decoded, so that question is answered.
    rows, _ = run_predict(params, trained[0], inp, out, "none", 2, image_root=request_dir / "root")
    assert "truncated" in [r["id"] for r in rows] and all(r["vision_tokens"] == 0 for r in rows)
    # A prompt over evaluation.max_length at its action is a counted reject too; text-only prompts still fit.
    params["evaluation"]["max_length"] = 60
    rows, summary = run_predict(params, trained[0], inp, out, "full", 2, image_root=request_dir / "root")
    too_long = [r for r in lines(rejects_path(out)) if "exceeds evaluation.max_length 60" in r["reason"]]
    assert {r["id"] for r in too_long} == {"ok1", "ok2"} and all(r["field"] == "image" for r in too_long)
    assert [r["id"] for r in rows] == [rows[0]["id"]] and rows[0]["id"].startswith("request-")


def test_incomplete_model_dir_is_one_line(in_workspace, trained, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained[0], broken)
    (broken / "head.safetensors").unlink()
    from vovnet.__main__ import main

    err = io.StringIO()
    sys_stderr, sys.stderr = sys.stderr, err
    try:
        code = main(
            ["predict", "--model-dir", str(broken), "--input", str(trained[1]), "--output", str(tmp_path / "o.jsonl")]
        )
    finally:
        sys.stderr = sys_stderr
    assert (
        code == 2
        and err.getvalue().strip() == f"error: model directory {broken} is incomplete: missing head.safetensors"
    )
    assert not (tmp_path / "o.jsonl").exists()


def test_killed_run_leaves_no_partial_output(in_workspace, trained, tmp_path):
    inp = tmp_path / "many.jsonl"
    inp.write_text(trained[1].read_text() * 40)  # long enough to be killed mid-run
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vovnet",
            "predict",
            "--model-dir",
            str(trained[0]),
            "--input",
            str(inp),
            "--output",
            str(out),
            "--batch-size",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seen = ""
    deadline = time.time() + 240
    while "predict:" not in seen and time.time() < deadline and proc.poll() is None:
        seen += proc.stderr.read(64)
    time.sleep(1.0)
    assert proc.poll() is None, seen[-2000:]  # still answering when killed
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and not rejects_path(out).exists()


@pytest.mark.slow
def test_two_process_gloo_run_writes_one_output_in_input_order(in_workspace, trained, tmp_path):
    """launch.processes: 2 (the heavy stages' launch param) runs predict in two CPU processes (gloo)."""
    model_dir, subset = trained
    single, _ = run_predict(load_params("params.yaml"), model_dir, subset, tmp_path / "one.jsonl", "learned", 1)
    y = YAML()
    p = y.load(open("params.yaml"))
    p["launch"]["processes"] = 2
    with open(tmp_path / "params2.yaml", "w") as fh:
        y.dump(p, fh)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "vovnet",
            "predict",
            "--params",
            str(tmp_path / "params2.yaml"),
            "--model-dir",
            str(model_dir),
            "--input",
            str(subset),
            "--output",
            str(tmp_path / "two.jsonl"),
            "--batch-size",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert "process 0 of 2" in two.stderr and "process 1 of 2" in two.stderr, two.stderr[-3000:]
    assert two.stdout.count("predict: ") == 1 and f"predict: {len(single)} questions" in two.stdout  # one summary

    def strip(rows):
        return [{k: v for k, v in r.items() if k not in ("latency_ms", "policy_scores")} for r in rows]

    two_rows = lines(tmp_path / "two.jsonl")
    assert strip(two_rows) == strip(single)
    # the head's scores to fp32 rounding: each torchrun worker has one torch thread, this process may have more
    for a, b in zip(two_rows, single):
        assert a["policy_scores"] == pytest.approx(b["policy_scores"], abs=1e-3)


def test_prefix_reuse_answers_equal_a_separate_full_pass(in_workspace, tiny_model_dir):
    """FULL through a second model (the Thinking-model path: its own full prefill) equals FULL through the
    text prefix's reused cache when that model is the same weights (LoRA starts as the identity)."""
    from vovnet.model.encoding import Encoder, RecordDataset
    from vovnet.model.generation import generate_all

    params = load_params("params.yaml")
    params["model"] = {**params["model"], "use_thinking_for_full": True, "full_model_name": str(tiny_model_dir)}
    torch.manual_seed(0)
    model, processor = build_vovnet(params)
    model.eval()
    records = list(read_jsonl("data/processed/mmbench_core/mmbench_core_heldout.jsonl"))[:6]
    ds = RecordDataset(records, Encoder(processor, params["vision_budget"], 2048), with_target=False)
    separate = generate_all(model, processor, ds, 3, 4, "cpu", 10**9, progress=False)
    model.full_lm = None
    reused = generate_all(model, processor, ds, 3, 4, "cpu", 10**9, progress=False)
    assert [g["outputs"]["full"] for g in separate] == [g["outputs"]["full"] for g in reused]
    assert len({g["outputs"]["full"] for g in reused}) > 1
