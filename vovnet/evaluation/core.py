"""The one evaluation core: leakage guard, generation (sharded over processes), protocol scoring, baselines as
curves, Pareto sweep."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from vovnet import VovnetError, plots
from vovnet.config import processed_file
from vovnet.data.overlap import find_overlap
from vovnet.evaluation import comparisons, policies, report, scoring
from vovnet.evaluation.generation_log import GenerationLog, batch_key, generation_settings, log_root
from vovnet.evaluation.interfaces import EvalProtocol
from vovnet.evaluation.prompt_variants import STANDARD, question_text_of
from vovnet.evaluation.sharding import Shard, current_shard, run_sharded, shard_batches
from vovnet.evaluation.sweep import compare_at_equal_tokens, generate_baselines
from vovnet.io_utils import atomic_path, read_jsonl, write_json, write_jsonl
from vovnet.model.answer_parsing import answer_part
from vovnet.model.budgets import ACTIONS
from vovnet.model.encoding import Encoder, RecordDataset
from vovnet.model.factory import load_vovnet
from vovnet.model.generation import NonFiniteLogits, generate_batch, non_finite_error, text_entropies

log = logging.getLogger("vovnet.evaluate")
# Evaluation answers every action of every question, so its timings say nothing about a deployment.
LATENCY_NOTE = "not measured here: `python -m vovnet predict` reports request-to-answer latency (p50/p90 per action)"


def leakage_guard(records: list[dict], train_files: list[str], allow: bool) -> int:
    """Records that overlap any training file (stage 1's or stage 2's), by id, image+question or MMBench
    source index."""
    total = 0
    for path in train_files:
        train = list(read_jsonl(path)) if Path(path).exists() else []
        hits = find_overlap(records, train)
        if hits and not allow:
            examples = ", ".join(f"{a}~{b}" for a, b in hits[:3])
            raise VovnetError(
                f"evaluation: {len(hits)} of {len(records)} records overlap the training file {path} "
                f"(by id, image+question or MMBench source index; e.g. {examples}); "
                "set evaluation.allow_overlap: true to proceed"
            )
        total += len(hits)
    return total


def load_eval_records(name: str, set_cfg: dict, max_questions: int | None) -> list[dict]:
    path = processed_file(set_cfg["dataset"], set_cfg["split"])
    records = scoring.take_questions(list(read_jsonl(path)), max_questions)
    if not records:
        raise VovnetError(f"evaluation set {name}: no records in {path}")
    scoring.check_whole_groups(records, str(path))
    return records


def policy_split_records(params: dict, eval_path: Path) -> list[dict]:
    """The policy split: the uncertainty baseline's thresholds are chosen on it, never on the evaluated split."""
    path = Path(params["train"]["policy_file"])
    if not path.exists():
        raise VovnetError(
            f"evaluation: the policy split {path} (train.policy_file) is missing; the uncertainty "
            f"baseline's thresholds are chosen on it"
        )
    if path.resolve() == eval_path.resolve():
        raise VovnetError(
            f"evaluation: {path} is both the evaluated split and train.policy_file; thresholds must "
            f"not be chosen on the evaluated split"
        )
    records = list(read_jsonl(path))
    if not records:
        raise VovnetError(f"evaluation: the policy split {path} (train.policy_file) has no records")
    return records


def baselines(gens: list[dict], learned: list[int], reference: list[float], ecfg: dict) -> tuple[dict, dict, dict]:
    """(single points: name -> choices, curves: name -> [(param, choices)], the reported thresholds)."""
    ucfg, seed, n = ecfg["uncertainty"], ecfg["seed"], len(gens)
    ents = [g["entropy"] for g in gens]
    q_lo, q_hi = ucfg["coarse_quantiles"]
    thresholds = {
        "uncertainty": {"quantile": ucfg["quantile"], "full_above": policies.quantile(reference, ucfg["quantile"])},
        "uncertainty_coarse": {
            "quantiles": [q_lo, q_hi],
            "coarse_above": policies.quantile(reference, q_lo),
            "full_above": policies.quantile(reference, q_hi),
        },
    }
    points = {
        **{k: policies.constant(gens, a) for k, a in policies.FIXED.items()},
        "random": policies.random_matched(learned, seed),
        "uncertainty": policies.uncertainty(ents, thresholds["uncertainty"]["full_above"]),
        "uncertainty_coarse": policies.uncertainty(
            ents, thresholds["uncertainty_coarse"]["full_above"], thresholds["uncertainty_coarse"]["coarse_above"]
        ),
    }
    curves = {
        "random": [(r, policies.random_full(n, r, seed)) for r in ecfg["random_ratios"]],
        "uncertainty": policies.uncertainty_sweep(ents, reference, ucfg["sweep"]),
        "uncertainty_coarse": policies.uncertainty_sweep(ents, reference, ucfg["sweep"], q_hi - q_lo),
    }
    return points, curves, thresholds


def compare_policies(
    records,
    qs,
    rows,
    gens,
    learned: list[int],
    learned_fig: dict,
    reference: list[float],
    params: dict,
    breakdowns: tuple,
) -> tuple[dict, list[dict]]:
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
    return {
        "baselines": figs,
        "thresholds": thresholds,
        "curves": curve_points,
        "accuracy_at_learned_tokens": at_learned,
        "comparisons": comparisons.paired_comparisons(records, qs, rows, gens, learned, curves),
    }, pareto


@dataclass
class Evaluation:
    """One evaluation set, loaded on this process: what generation and scoring read."""

    name: str
    set_cfg: dict
    params: dict
    records: list[dict]
    overlap: int
    protocol: EvalProtocol
    model: object
    processor: object
    encoder: Encoder
    shard: Shard
    settings: dict  # what, beside each batch's prompts, determines the generated bytes (the log's key)

    @property
    def ecfg(self) -> dict:
        return self.params["evaluation"]

    @property
    def has_answers(self) -> bool:
        return any(r["answer"]["label"] is not None or r["answer"]["text"] is not None for r in self.records)


def evaluate_set(name: str, set_cfg: dict, params: dict, out_dir: str | Path, protocol: EvalProtocol) -> dict | None:
    """The recipe for one set, scored by `protocol` (the set's, which the stage loads): guard, generate
    (sharded over processes), then on the main process score, baselines and write metrics.json, baselines/,
    report.json, pareto.json/png, predictions.jsonl and submission.tsv.
    Returns {"metrics", "report", "table"} on the main process, None on the others."""
    ev = setup(name, set_cfg, params, current_shard(), protocol)
    gens = generate(ev)
    reference = policy_split_entropies(ev) if ev.has_answers else None
    generated = generate_baselines(ev) if ev.has_answers else None  # downsampling and pruning at equal tokens
    if not ev.shard.is_main:
        return None
    scored = score(ev, gens)
    rep, baseline_figs, at_learned, pareto = compare(ev, scored, gens, reference)
    if generated is not None:
        rep["equal_token_baselines"], points = compare_at_equal_tokens(ev, scored, gens, generated)
        pareto.extend(points)
    write_outputs(ev, Path(out_dir), gens, scored, rep, baseline_figs, at_learned, pareto)
    table_rows = [("learned", scored.learned_fig), *baseline_figs.items()]
    paired = {**rep.get("comparisons", {}), **rep.get("equal_token_baselines", {}).get("comparisons", {})}
    table = report.table(name, table_rows, paired, rep["overlap"])
    return {"metrics": scored.metrics, "report": rep, "table": table}


def setup(name: str, set_cfg: dict, params: dict, shard: Shard, protocol: EvalProtocol) -> Evaluation:
    """The records (leakage-guarded) and the trained model on this process's device."""
    ecfg = params["evaluation"]
    records = load_eval_records(name, set_cfg, ecfg["max_samples"])
    overlap = leakage_guard(
        records, [params["train"]["train_file"], params["train"]["policy_file"]], ecfg["allow_overlap"]
    )
    torch.manual_seed(ecfg["seed"])
    if ecfg["cpu_threads"]:
        torch.set_num_threads(ecfg["cpu_threads"])
    model, processor, trained = load_vovnet(ecfg["model_dir"], params, shard.device)
    # evaluation.max_length applies per action; the set's prompt variant is its protocol's (prompt_variants.py)
    text = question_text_of(protocol, set_cfg.get("prompt", STANDARD), name)
    encoder = Encoder(processor, params["vision_budget"], None, model.prompt_order, model.full_template, text)
    batches = len(shard_batches(len(records), ecfg["batch_size"], shard))
    log.info(
        "evaluate@%s: process %d of %d on %s: %d of the %d-question batches",
        name,
        shard.rank,
        shard.world,
        shard.device,
        batches,
        ecfg["batch_size"],
    )
    mcfg = params["model"]
    settings = generation_settings(ecfg, mcfg, params["vision_budget"], trained["model"]["name"], shard.device.type)
    return Evaluation(name, set_cfg, params, records, overlap, protocol, model, processor, encoder, shard, settings)


def open_log(ev: Evaluation, kind: str) -> GenerationLog:
    """This process's generation log for `kind` (answers, or the policy split's text entropies)."""
    root = log_root(ev.ecfg["generation_log"], ev.name)
    return GenerationLog(root, {**ev.settings, "kind": kind}, f"rank-{ev.shard.rank}", f"evaluate@{ev.name}")


def generate(ev: Evaluation) -> list[dict] | None:
    """Every action's answer for every record (main process; None elsewhere)."""
    ecfg = ev.ecfg
    dataset = RecordDataset(ev.records, ev.encoder, with_target=False)
    ids = [r["id"] for r in ev.records]

    glog = open_log(ev, "answers")

    def run_batch(batch: range) -> list[dict]:
        encs = [dataset[i] for i in batch]
        try:
            return glog.run(
                batch_key([ev.records[i] for i in batch], encs),
                [ids[i] for i in batch],
                lambda: generate_batch(
                    ev.model,
                    ev.processor,
                    encs,
                    ecfg["max_new_tokens"],
                    ev.shard.device,
                    ecfg["max_length"],
                    ecfg["thinking_max_new_tokens"],
                ),
            )
        except NonFiniteLogits as exc:
            raise non_finite_error(exc, [ids[i] for i in batch], model_dtype(ev.model)) from None

    gens = run_sharded(ids, ecfg["batch_size"], ev.shard, run_batch, f"evaluate@{ev.name}")
    log.info("evaluate@%s: process %d generated %d batch(es), reused %d", ev.name, ev.shard.rank, *glog.counts())
    return gens


def policy_split_entropies(ev: Evaluation) -> list[float] | None:
    """Text-pass entropies on the policy split, sharded like generation (main process; None elsewhere)."""
    records = policy_split_records(ev.params, processed_file(ev.set_cfg["dataset"], ev.set_cfg["split"]))
    ids = [r["id"] for r in records]
    glog = open_log(ev, "policy_split_entropy")

    def run_batch(batch: range) -> list[float]:
        encs = [ev.encoder.encode(records[i], [], "no", with_target=False) for i in batch]
        try:
            return glog.run(
                batch_key([records[i] for i in batch], encs),
                [ids[i] for i in batch],
                lambda: text_entropies(ev.model, ev.processor, encs, ev.shard.device),
            )
        except NonFiniteLogits as exc:
            raise non_finite_error(exc, [ids[i] for i in batch], model_dtype(ev.model)) from None

    return run_sharded(ids, ev.ecfg["batch_size"], ev.shard, run_batch, f"evaluate@{ev.name} (policy split)")


def model_dtype(model) -> torch.dtype:
    return next(model.lm.parameters()).dtype


@dataclass
class Scored:
    """The learned policy on this set: its choices, every action's protocol rows, its figures."""

    learned: list[int]
    thinking: tuple[str, ...]  # the actions the Thinking model answered (their reasoning is stripped)
    questions: list
    rows: dict
    breakdowns: tuple
    learned_fig: dict
    counts: dict
    metrics: dict


def score(ev: Evaluation, gens: list[dict]) -> Scored:
    pcfg = ev.params["policy"]
    learned = policies.learned(gens, pcfg["cost_shift"], pcfg["cost_norm"])
    qs = scoring.questions(ev.records)
    thinking = tuple(a for a in ACTIONS if ev.model.thinks(a))
    rows = scoring.rows_by_action(ev.protocol, ev.records, gens, ev.ecfg["seed"], thinking)
    breakdowns = ev.protocol.BREAKDOWNS
    learned_fig = scoring.policy_figures(ev.records, qs, rows, gens, learned, breakdowns, detail=True)
    if not ev.has_answers:
        learned_fig = scoring.without_accuracy(learned_fig)
    counts = {
        "questions": len(qs),
        "unresolved": learned_fig["unresolved"],
        "too_long": learned_fig["too_long"],
        "overlap": ev.overlap,
    }
    return Scored(
        learned,
        thinking,
        qs,
        rows,
        breakdowns,
        learned_fig,
        counts,
        report.headline(learned_fig, counts, ev.has_answers),
    )


def compare(ev: Evaluation, sc: Scored, gens: list[dict], reference: list[float] | None):
    """(report, baseline figures, baseline accuracy at the learned policy's cost, Pareto points)."""
    rep: dict = {
        "set": ev.name,
        "dataset": ev.set_cfg["dataset"],
        "split": ev.set_cfg["split"],
        "protocol": ev.set_cfg["protocol"],
        "records": len(ev.records),
        **sc.counts,
        "overlap_allowed": bool(ev.ecfg["allow_overlap"] and ev.overlap),
        "too_long_by_action": {a: sum(g["too_long"][a] for g in gens) for a in ACTIONS},
        "learned": sc.learned_fig,
        "latency": LATENCY_NOTE,
    }
    if ev.has_answers:
        compared, pareto = compare_policies(
            ev.records, sc.questions, sc.rows, gens, sc.learned, sc.learned_fig, reference, ev.params, sc.breakdowns
        )
        rep.update(compared)
        rep["value_of_vision"] = report.value_of_vision(sc.learned_fig, compared["baselines"])
        rep["official"] = {
            k: scoring.official_figures(ev.protocol, ev.records, gens, c, ev.ecfg["seed"], sc.thinking)
            for k, c in [
                ("learned", sc.learned),
                ("always_full", policies.constant(gens, policies.FULL)),
                ("no_vision", policies.constant(gens, policies.NO)),
            ]
        }
        return rep, compared["baselines"], compared["accuracy_at_learned_tokens"], pareto
    rep["note"] = "this split has no answers: predictions written in the benchmark's upload layout, no score"
    # what each fixed action would cost on this split
    baseline_figs = {
        k: scoring.without_accuracy(
            scoring.policy_figures(ev.records, sc.questions, sc.rows, gens, policies.constant(gens, a))
        )
        for k, a in policies.FIXED.items()
    }
    rep["baselines"] = baseline_figs
    return rep, baseline_figs, {}, []


def write_outputs(
    ev: Evaluation,
    out_dir: Path,
    gens: list[dict],
    sc: Scored,
    rep: dict,
    baseline_figs: dict,
    at_learned: dict,
    pareto: list[dict],
) -> None:
    """Every output of evaluate@<set>, each written atomically; the headline (metrics.json) last."""
    outputs = [answer_part(g["outputs"][ACTIONS[c]], ACTIONS[c] in sc.thinking) for g, c in zip(gens, sc.learned)]
    ev.protocol.write_submission(out_dir / "submission.tsv", ev.records, outputs)
    write_jsonl(out_dir / "predictions.jsonl", predictions(ev, gens, sc))
    pareto.sort(key=lambda p: (p["vision_tokens"], p["policy"], p["param"] is not None, p["param"] or 0))
    write_json(out_dir / "pareto.json", pareto)
    plots.pareto_png(
        pareto,
        f"{ev.name}: accuracy against vision tokens"
        if ev.has_answers
        else f"{ev.name}: no answers in this split, nothing to plot",
        out_dir / "pareto.png",
    )
    write_json(out_dir / "report.json", rep)
    with atomic_path(out_dir / "baselines") as tmp:
        tmp.mkdir()
        for bname, brow in report.baseline_rows(baseline_figs, at_learned, ev.has_answers).items():
            (tmp / f"{bname}.json").write_text(json.dumps(brow, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    write_json(out_dir / "metrics.json", sc.metrics)


def predictions(ev: Evaluation, gens: list[dict], sc: Scored) -> list[dict]:
    """One row per record, sorted by id: the learned policy's action and answer, and every action's."""
    preds = []
    for k, (rec, g, c) in enumerate(zip(ev.records, gens, sc.learned)):
        r = sc.rows[ACTIONS[c]][k]
        preds.append(
            {
                "id": rec["id"],
                "action": ACTIONS[c],
                "vision_tokens": g["vision_tokens"][ACTIONS[c]],
                "output": g["outputs"][ACTIONS[c]],
                "parsed": r["parsed"],
                "score": r["score"] if ev.has_answers else None,
                "too_long": r["too_long"],
                "policy_scores": g["scores"],
                "text_entropy": g["entropy"],  # what the uncertainty baseline thresholds
                "outputs_by_action": g["outputs"],
                "vision_tokens_by_action": g["vision_tokens"],
            }
        )
    return sorted(preds, key=lambda p: p["id"])
