"""The one evaluation core: leakage guard, generation, protocol scoring, baselines as curves, Pareto sweep."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import torch

from vovnet import VovnetError, plots
from vovnet.config import processed_file
from vovnet.data.overlap import find_overlap
from vovnet.evaluation import policies, report, scoring
from vovnet.evaluation.protocols import get_protocol
from vovnet.io_utils import atomic_path, read_jsonl, write_json, write_jsonl
from vovnet.model.answer_parsing import answer_part
from vovnet.model.budgets import ACTIONS
from vovnet.model.encoding import Encoder, RecordDataset
from vovnet.model.factory import load_vovnet
from vovnet.model.generation import generate_all, text_pass_entropies

log = logging.getLogger("vovnet.evaluate")
SUBMISSION_COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "prediction", "category", "l2-category", "split"]
# Evaluation answers every action of every question, so its timings say nothing about a deployment.
LATENCY_NOTE = "not measured here: `python -m vovnet predict` reports request-to-answer latency (p50/p90 per action)"


def leakage_guard(records: list[dict], train_files: list[str], allow: bool) -> int:
    """Records that overlap any training file (stage 1's or stage 2's), by id, image+question or MMBench source index."""
    total = 0
    for path in train_files:
        train = list(read_jsonl(path)) if Path(path).exists() else []
        hits = find_overlap(records, train)
        if hits and not allow:
            examples = ", ".join(f"{a}~{b}" for a, b in hits[:3])
            raise VovnetError(f"evaluation: {len(hits)} of {len(records)} records overlap the training file {path} "
                              f"(by id, image+question or MMBench source index; e.g. {examples}); set evaluation.allow_overlap: true to proceed")
        total += len(hits)
    return total


def load_eval_records(name: str, set_cfg: dict, max_questions: int | None) -> list[dict]:
    path = processed_file(set_cfg["dataset"], set_cfg["split"])
    records = scoring.take_questions(list(read_jsonl(path)), max_questions)
    if not records:
        raise VovnetError(f"evaluation set {name}: no records in {path}")
    scoring.check_whole_groups(records, str(path))
    return records


def policy_split_entropies(model, processor, encoder, params: dict, eval_path: Path, device) -> list[float]:
    """Text-pass entropies on the policy split: the uncertainty baseline's thresholds come from here."""
    path = Path(params["train"]["policy_file"])
    if not path.exists():
        raise VovnetError(f"evaluation: the policy split {path} (train.policy_file) is missing; the uncertainty "
                          f"baseline's thresholds are chosen on it")
    if path.resolve() == eval_path.resolve():
        raise VovnetError(f"evaluation: {path} is both the evaluated split and train.policy_file; thresholds must "
                          f"not be chosen on the evaluated split")
    records = list(read_jsonl(path))
    if not records:
        raise VovnetError(f"evaluation: the policy split {path} (train.policy_file) has no records")
    return text_pass_entropies(model, processor, encoder, records, params["evaluation"]["batch_size"], device)


def baselines(gens: list[dict], learned: list[int], reference: list[float], ecfg: dict) -> tuple[dict, dict, dict]:
    """(single points: name -> choices, curves: name -> [(param, choices)], the reported thresholds)."""
    ucfg, seed, n = ecfg["uncertainty"], ecfg["seed"], len(gens)
    ents = [g["entropy"] for g in gens]
    q_lo, q_hi = ucfg["coarse_quantiles"]
    thresholds = {"uncertainty": {"quantile": ucfg["quantile"], "full_above": policies.quantile(reference, ucfg["quantile"])},
                  "uncertainty_coarse": {"quantiles": [q_lo, q_hi], "coarse_above": policies.quantile(reference, q_lo),
                                         "full_above": policies.quantile(reference, q_hi)}}
    points = {**{k: policies.constant(gens, a) for k, a in policies.FIXED.items()},
              "random": policies.random_matched(learned, seed),
              "uncertainty": policies.uncertainty(ents, thresholds["uncertainty"]["full_above"]),
              "uncertainty_coarse": policies.uncertainty(ents, thresholds["uncertainty_coarse"]["full_above"],
                                                         thresholds["uncertainty_coarse"]["coarse_above"])}
    curves = {"random": [(r, policies.random_full(n, r, seed)) for r in ecfg["random_ratios"]],
              "uncertainty": policies.uncertainty_sweep(ents, reference, ucfg["sweep"]),
              "uncertainty_coarse": policies.uncertainty_sweep(ents, reference, ucfg["sweep"], q_hi - q_lo)}
    return points, curves, thresholds


def compare_policies(records, qs, rows, gens, learned: list[int], learned_fig: dict, reference: list[float],
                     params: dict, breakdowns: tuple) -> tuple[dict, list[dict]]:
    """Baselines (points and curves), each curve read at the learned policy's cost, and the learned
    policy's cost-shift sweep: (report entries, Pareto points)."""
    ecfg, cost_norm = params["evaluation"], params["policy"]["cost_norm"]
    points, curves, thresholds = baselines(gens, learned, reference, ecfg)
    figs = {k: scoring.policy_figures(records, qs, rows, gens, c, breakdowns, detail=True) for k, c in points.items()}
    pareto, curve_points, at_learned = [], {}, {}
    for cname, curve in curves.items():
        pts = [report.pareto_point(cname, scoring.policy_figures(records, qs, rows, gens, c), p) for p, c in curve]
        curve_points[cname] = sorted(pts, key=lambda p: (p["vision_tokens"], p["param"]))
        at_learned[cname] = policies.at_cost(pts, learned_fig["vision_tokens"])
        pareto.extend(pts)
    for shift in ecfg["cost_shifts"]:
        fig = scoring.policy_figures(records, qs, rows, gens, policies.learned(gens, shift, cost_norm))
        pareto.append(report.pareto_point("learned", fig, shift))
    pareto.extend(report.pareto_point(k, f) for k, f in [("learned", learned_fig), *figs.items()])
    return {"baselines": figs, "thresholds": thresholds, "curves": curve_points,
            "accuracy_at_learned_tokens": at_learned}, pareto


def write_submission(path: Path, records: list[dict], outputs: list[str], protocol: str) -> None:
    """MMBench's upload layout (source columns + `prediction`, an option letter); other protocols:
    id, question, prediction (the raw answer)."""
    from vovnet.evaluation.protocols.mmbench import extract_choice

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        if protocol != "mmbench":
            w.writerow(["id", "question", "prediction"])
            for rec, out in sorted(zip(records, outputs), key=lambda t: t[0]["id"]):
                w.writerow([rec["meta"].get("source_id", rec["id"]), rec["question"], out])
            return
        w.writerow(SUBMISSION_COLUMNS)
        for rec, out in sorted(zip(records, outputs), key=lambda t: t[0]["meta"].get("index", 0)):
            opts = (rec["choices"] or []) + [""] * (4 - len(rec["choices"] or []))
            pred = extract_choice(out, rec["choices"] or []) or ""
            w.writerow([rec["meta"].get("index", rec["id"]), rec["question"], rec["hint"] or "", *opts[:4], pred,
                        rec["meta"].get("category") or "", rec["meta"].get("l2_category") or "", rec["split"]])


def evaluate_set(name: str, set_cfg: dict, params: dict, out_dir: str | Path) -> dict:
    """Writes metrics.json and baselines/<name>.json (the headline), report.json, pareto.json,
    predictions.jsonl, submission.tsv;
    returns {"metrics", "report", "table"}."""
    ecfg, pcfg = params["evaluation"], params["policy"]
    out_dir = Path(out_dir)
    records = load_eval_records(name, set_cfg, ecfg["max_samples"])
    overlap = leakage_guard(records, [params["train"]["train_file"], params["train"]["policy_file"]],
                            ecfg["allow_overlap"])
    protocol = get_protocol(set_cfg["protocol"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(ecfg["seed"])
    if ecfg["cpu_threads"]:
        torch.set_num_threads(ecfg["cpu_threads"])
    model, processor, _ = load_vovnet(ecfg["model_dir"], params, device)
    encoder = Encoder(processor, params["vision_budget"], None, model.prompt_order, model.full_template)  # evaluation.max_length applies per action
    gens = generate_all(model, processor, RecordDataset(records, encoder, with_target=False), ecfg["batch_size"],
                        ecfg["max_new_tokens"], device, ecfg["max_length"], ecfg["thinking_max_new_tokens"])
    learned = policies.learned(gens, pcfg["cost_shift"], pcfg["cost_norm"])
    has_answers = any(r["answer"]["label"] is not None or r["answer"]["text"] is not None for r in records)
    qs = scoring.questions(records)
    thinking = tuple(a for a in ACTIONS if model.thinks(a))
    rows = scoring.rows_by_action(protocol, records, gens, ecfg["seed"], thinking)
    breakdowns = getattr(protocol, "BREAKDOWNS", ())
    learned_fig = scoring.policy_figures(records, qs, rows, gens, learned, breakdowns, detail=True)
    if not has_answers:
        learned_fig = scoring.without_accuracy(learned_fig)
    counts = {"questions": len(qs), "unresolved": learned_fig["unresolved"], "too_long": learned_fig["too_long"],
              "overlap": overlap}
    rep: dict = {"set": name, "dataset": set_cfg["dataset"], "split": set_cfg["split"], "protocol": set_cfg["protocol"],
                 "records": len(records), **counts, "overlap_allowed": bool(ecfg["allow_overlap"] and overlap),
                 "too_long_by_action": {a: sum(g["too_long"][a] for g in gens) for a in ACTIONS},
                 "learned": learned_fig, "latency": LATENCY_NOTE}
    pareto: list[dict] = []
    if has_answers:
        reference = policy_split_entropies(model, processor, encoder, params,
                                           processed_file(set_cfg["dataset"], set_cfg["split"]), device)
        compared, pareto = compare_policies(records, qs, rows, gens, learned, learned_fig, reference, params, breakdowns)
        rep.update(compared)
        baseline_figs, at_learned = compared["baselines"], compared["accuracy_at_learned_tokens"]
    else:
        rep["note"] = "this split has no answers: predictions written in the benchmark's upload layout, no score"
        # what each fixed action would cost on this split
        baseline_figs = {k: scoring.without_accuracy(scoring.policy_figures(records, qs, rows, gens,
                                                                             policies.constant(gens, a)))
                         for k, a in policies.FIXED.items()}
        rep["baselines"], at_learned = baseline_figs, {}
    metrics = report.headline(learned_fig, counts, has_answers)
    table_rows = [("learned", learned_fig), *baseline_figs.items()]
    outputs = [answer_part(g["outputs"][ACTIONS[c]], ACTIONS[c] in thinking) for g, c in zip(gens, learned)]
    write_submission(out_dir / "submission.tsv", records, outputs, set_cfg["protocol"])
    preds = []
    for k, (rec, g, c) in enumerate(zip(records, gens, learned)):
        r = rows[ACTIONS[c]][k]
        preds.append({"id": rec["id"], "action": ACTIONS[c], "vision_tokens": g["vision_tokens"][ACTIONS[c]],
                      "output": g["outputs"][ACTIONS[c]], "parsed": r["parsed"],
                      "score": r["score"] if has_answers else None, "too_long": r["too_long"],
                      "policy_scores": g["scores"], "outputs_by_action": g["outputs"],
                      "vision_tokens_by_action": g["vision_tokens"]})
    preds.sort(key=lambda p: p["id"])
    write_jsonl(out_dir / "predictions.jsonl", preds)
    pareto.sort(key=lambda p: (p["vision_tokens"], p["policy"], p["param"] is not None, p["param"] or 0))
    write_json(out_dir / "pareto.json", pareto)
    plots.pareto_png(pareto, f"{name}: accuracy against vision tokens" if has_answers
                     else f"{name}: no answers in this split, nothing to plot", out_dir / "pareto.png")
    write_json(out_dir / "report.json", rep)
    with atomic_path(out_dir / "baselines") as tmp:
        tmp.mkdir()
        for bname, brow in report.baseline_rows(baseline_figs, at_learned, has_answers).items():
            (tmp / f"{bname}.json").write_text(json.dumps(brow, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    write_json(out_dir / "metrics.json", metrics)
    return {"metrics": metrics, "report": rep, "table": report.table(name, table_rows)}
