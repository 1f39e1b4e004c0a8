"""The one evaluation core: leakage guard, generation, protocol scoring, baselines, Pareto sweep."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import torch

from vovnet import VovnetError
from vovnet.config import processed_file
from vovnet.data.overlap import find_overlap
from vovnet.evaluation import policies
from vovnet.model.generation import generate_all
from vovnet.evaluation.protocols import get_protocol
from vovnet.io_utils import atomic_path, read_jsonl, write_json, write_jsonl
from vovnet.model.budgets import ACTIONS
from vovnet.model.factory import load_vovnet
from vovnet.model.encoding import Encoder, RecordDataset

log = logging.getLogger("vovnet.evaluate")
# Evaluation answers every action of every question, so its timings say nothing about a deployment.
LATENCY_NOTE = "not measured here: `python -m vovnet predict` reports request-to-answer latency (p50/p90 per action)"
SUBMISSION_COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "prediction", "category", "l2-category", "split"]


def leakage_guard(records: list[dict], train_file: str, allow: bool) -> dict:
    train = list(read_jsonl(train_file)) if Path(train_file).exists() else []
    hits = find_overlap(records, train)
    if hits and not allow:
        examples = ", ".join(f"{a}~{b}" for a, b in hits[:3])
        raise VovnetError(f"evaluation: {len(hits)} of {len(records)} records overlap the training file {train_file} "
                          f"(by id or image+question; e.g. {examples}); set evaluation.allow_overlap: true to proceed")
    return {"overlap_with_train": len(hits), "overlap_allowed": bool(allow and hits)}


def policy_metrics(protocol, records: list[dict], gens: list[dict], choices: list[int], seed: int) -> tuple[dict, list]:
    outputs = [g["outputs"][ACTIONS[c]] for g, c in zip(gens, choices)]
    rows, summary = protocol.score_records(records, outputs, seed)
    n = max(1, len(choices))
    m = dict(summary)
    m["mean_vision_tokens"] = sum(g["vision_tokens"][ACTIONS[c]] for g, c in zip(gens, choices)) / n
    m["action_ratio"] = {a: sum(c == i for c in choices) / n for i, a in enumerate(ACTIONS)}
    m["accuracy_per_action"] = {}
    for i, a in enumerate(ACTIONS):
        sel = [k for k, c in enumerate(choices) if c == i]
        m["accuracy_per_action"][a] = sum(rows[k]["score"] for k in sel) / len(sel) if sel else None
    m["unresolved"] = sum(not r["resolved"] for r in rows)
    return m, rows


def _point(name: str, m: dict, shift=None) -> dict:
    return {"policy": name, "cost_shift": shift, "accuracy": m["accuracy"], "vision_tokens": m["mean_vision_tokens"],
            **{f"ratio_{a}": r for a, r in m["action_ratio"].items()}}


def write_submission(path: Path, records: list[dict], gens: list[dict], choices: list[int], protocol: str) -> None:
    """MMBench's upload layout (source columns + `prediction`, an option letter); other protocols:
    id, question, prediction (the raw answer)."""
    from vovnet.evaluation.protocols.mmbench import extract_choice

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        if protocol != "mmbench":
            w.writerow(["id", "question", "prediction"])
            for rec, g, c in sorted(zip(records, gens, choices), key=lambda t: t[0]["id"]):
                w.writerow([rec["meta"].get("source_id", rec["id"]), rec["question"], g["outputs"][ACTIONS[c]]])
            return
        w.writerow(SUBMISSION_COLUMNS)
        for rec, g, c in sorted(zip(records, gens, choices), key=lambda t: t[0]["meta"].get("index", 0)):
            opts = (rec["choices"] or []) + [""] * (4 - len(rec["choices"] or []))
            pred = extract_choice(g["outputs"][ACTIONS[c]], rec["choices"] or []) or ""
            w.writerow([rec["meta"].get("index", rec["id"]), rec["question"], rec["hint"] or "", *opts[:4], pred,
                        rec["meta"].get("category") or "", rec["meta"].get("l2_category") or "", rec["split"]])


def evaluate_set(name: str, set_cfg: dict, params: dict, out_dir: str | Path) -> dict:
    ecfg, pcfg = params["evaluation"], params["policy"]
    out_dir = Path(out_dir)
    records = list(read_jsonl(processed_file(set_cfg["dataset"], set_cfg["split"])))
    if ecfg["max_samples"] is not None:
        records = records[: ecfg["max_samples"]]
    if not records:
        raise VovnetError(f"evaluation set {name}: no records in {processed_file(set_cfg['dataset'], set_cfg['split'])}")
    guard = leakage_guard(records, params["train"]["train_file"], ecfg["allow_overlap"])
    protocol = get_protocol(set_cfg["protocol"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(ecfg["seed"])
    model, processor, _ = load_vovnet(ecfg["model_dir"], params, device)
    encoder = Encoder(processor, params["vision_budget"], params["train"]["max_length"])
    dataset = RecordDataset(records, encoder, with_target=False)
    gens = generate_all(model, processor, dataset, ecfg["batch_size"], ecfg["max_new_tokens"], device)
    choices = policies.learned(gens, pcfg["cost_shift"], pcfg["cost_norm"])
    out_dir.mkdir(parents=True, exist_ok=True)
    has_answers = any(r["answer"]["label"] is not None or r["answer"]["text"] is not None for r in records)
    metrics: dict = {"set": name, "dataset": set_cfg["dataset"], "split": set_cfg["split"], **guard,
                     "latency": LATENCY_NOTE}
    pareto: list[dict] = []
    rows: list[dict] = [{"parsed": None, "resolved": None, "score": None}] * len(records)
    write_submission(out_dir / "submission.tsv", records, gens, choices, set_cfg["protocol"])
    if not has_answers:
        metrics.update(accuracy=None, submission=str(out_dir / "submission.tsv"),
                       note="this split has no answers: predictions written in the benchmark's upload layout, no score")
    else:
        learned, rows = policy_metrics(protocol, records, gens, choices, ecfg["seed"])
        metrics["learned"] = learned
        metrics["accuracy"], metrics["mean_vision_tokens"] = learned["accuracy"], learned["mean_vision_tokens"]
        baselines = {"always_full": policies.constant(gens, 2), "always_coarse": policies.constant(gens, 1),
                     "no_vision": policies.constant(gens, 0),
                     "random_matched": policies.random_matched(choices, ecfg["seed"])}
        unc, thr = policies.uncertainty(gens, ecfg["uncertainty_threshold"])
        baselines["uncertainty"] = unc
        metrics["baselines"] = {}
        for bname, bchoices in baselines.items():
            metrics["baselines"][bname] = policy_metrics(protocol, records, gens, bchoices, ecfg["seed"])[0]
            pareto.append(_point(bname, metrics["baselines"][bname]))
        metrics["baselines"]["uncertainty"]["threshold"] = thr
        for shift in ecfg["cost_shifts"]:
            m = policy_metrics(protocol, records, gens, policies.learned(gens, shift, pcfg["cost_norm"]), ecfg["seed"])[0]
            pareto.append(_point("learned", m, shift))
    preds = []
    for rec, g, c, r in zip(records, gens, choices, rows):
        preds.append({"id": rec["id"], "action": ACTIONS[c], "vision_tokens": g["vision_tokens"][ACTIONS[c]],
                      "output": g["outputs"][ACTIONS[c]], "parsed": r["parsed"], "score": r["score"],
                      "correct": None if r["score"] is None else r["score"] >= 1.0, "policy_scores": g["scores"],
                      "outputs_by_action": g["outputs"], "vision_tokens_by_action": g["vision_tokens"]})
    preds.sort(key=lambda p: p["id"])
    write_jsonl(out_dir / "predictions.jsonl", preds)
    write_json(out_dir / "pareto.json", sorted(pareto, key=lambda p: (p["vision_tokens"], p["policy"], p["cost_shift"] or 0)))
    write_json(out_dir / "metrics.json", metrics)
    return metrics
