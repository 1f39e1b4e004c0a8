"""Baselines at equal vision tokens beyond the action table: plain downsampling and token pruning.

- `resolution`: always-at-budget, one point per evaluation.resolution_sweep budget (each image resized within
  its pixel limits, answered as COARSE is: the instruct model, the text pass's prefix reused). Plain
  downsampling beats most token-compression methods at equal tokens (VTC-Bench, 2025).
- `prune_random`, `prune_attention`: the FULL image's merged vision tokens pruned to each kept share
  (vovnet/model/pruning.py); random pruning is a strong baseline (UniPruneBench, 2025), the attention rule is
  FastV's (Chen et al. 2024).
- `learned_then_prune`: the learned policy's choices, its COARSE and FULL images pruned by one rule (the
  original VoVNet's "policy + pruning" row).

Each is generated like the actions (batched, sharded over processes, one resumable log per variant; a sweep
budget equal to an action's, or a kept share of 1.0, takes that action's answers) and scored by substituting
its answers for the action it replaces; a curve is read at the learned policy's mean vision tokens (linear
between its points) and the learned policy's margin over it reported, with the margin's paired 95% interval
(vovnet/evaluation/comparisons.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vovnet import VovnetError, actions
from vovnet.evaluation import comparisons, policies, report, scoring
from vovnet.evaluation.generation_log import GenerationLog, batch_key, log_root
from vovnet.evaluation.intervals import question_clusters
from vovnet.evaluation.sharding import run_sharded
from vovnet.model.encoding import RecordDataset
from vovnet.model.generation import TokenIds, answer_action, text_prefill
from vovnet.model.pruning import PruneRule, answer_pruned

SWEEP_ACTION = "coarse"  # the action whose answering path (model, prompt, prefix reuse) the sweep takes
PRUNED_ACTION = actions.RICHEST


@dataclass(frozen=True)
class Variant:
    curve: str  # resolution | prune_<method> | learned_then_prune
    param: float | None  # resolution: max_pixels; pruning: the kept share
    action: str  # the action whose answers it replaces
    budget: tuple[int, int] | None = None  # resolution: the image's (min_pixels, max_pixels)
    rule: PruneRule | None = None


def check_budgets(sweep: list[dict], vision_budget: dict, image_processor) -> None:
    """One line naming the key of a sweep budget under the processor's smallest image or above the richest
    action's budget."""
    least = (image_processor.patch_size * image_processor.merge_size) ** 2
    most = vision_budget[actions.RICHEST]["max_pixels"]
    for i, b in enumerate(sweep):
        if not least <= b["max_pixels"] <= most:
            raise VovnetError(
                f"evaluation.resolution_sweep[{i}].max_pixels: {b['max_pixels']} outside [{least}, {most}] "
                f"(the processor's smallest image, {image_processor.patch_size}px patches merged "
                f"{image_processor.merge_size}x{image_processor.merge_size}, to vision_budget.{actions.RICHEST})"
            )


def variants(ecfg: dict) -> list[Variant]:
    """What the configured baselines generate, each once (learned_then_prune's FULL images are the pruning
    curve's point when that rule and share are swept)."""
    return list(dict.fromkeys(_canonical(v) for vs in variants_by_curve(ecfg).values() for v in vs))


def _rule(method: str, share: float, pcfg: dict, seed: int) -> PruneRule:
    return PruneRule(method, share, pcfg["attention_layer"], seed)


def _canonical(v: Variant) -> Variant:
    """The generation a variant needs, whichever curve it belongs to."""
    return Variant("generated", None, v.action, v.budget, v.rule)


def _answers(ev, v: Variant, encs_no, encs_vis, tids: TokenIds) -> list[dict]:
    """One batch under variant `v`: {output, vision_tokens, too_long} per record."""
    ecfg, model = ev.ecfg, ev.model
    prefill = text_prefill(model.lm, encs_no, tids.pad, tids.image, ev.shard.device)
    per = [
        {"output": "", "vision_tokens": int(e["vision_tokens"]), "too_long": len(e["input_ids"]) > ecfg["max_length"]}
        for e in encs_vis
    ]
    fits = [j for j, p in enumerate(per) if not p["too_long"]]
    pruned = [j for j in fits if v.rule is not None and "pixel_values" in encs_vis[j]]
    whole = [j for j in fits if j not in pruned]
    max_new = ecfg["thinking_max_new_tokens"] if model.thinks(v.action) else ecfg["max_new_tokens"]
    answers = dict(
        zip(whole, answer_action(model, prefill, whole, [encs_vis[j] for j in whole], v.action, tids, max_new))
    )
    if pruned:
        lm = model.lm_for(v.action)
        shared = prefill.prefix_end is not None and lm is model.lm
        tokens, kept = answer_pruned(lm, prefill, pruned, [encs_vis[j] for j in pruned], tids, max_new, v.rule, shared)
        answers.update(zip(pruned, tokens))
        for j, k in zip(pruned, kept):
            per[j]["vision_tokens"] = k
    for j, ans in answers.items():
        per[j]["output"] = ev.processor.tokenizer.decode(ans, skip_special_tokens=True).strip()
    return per


def reused_action(ev, v: Variant) -> str | None:
    """The action whose answers are this variant's, already generated: a sweep budget equal to that action's,
    or a kept share of 1.0, answered by the same model (tests/test_baselines_sweep.py and
    tests/test_baselines_pruning.py check that the two paths give the same answers)."""
    if ev.model.thinks(v.action):
        return None
    if v.rule is not None:
        return v.action if v.rule.share == 1.0 else None
    for a in actions.VISION:
        b = ev.encoder.budgets[a.name]
        if (b["min_pixels"], b["max_pixels"]) == v.budget and not ev.model.thinks(a.name):
            return a.name
    return None


def generate_variant(ev, v: Variant) -> list[dict] | None:
    """Every record's answer under `v`, sharded like the actions' (main process; None elsewhere)."""
    budget = {"min_pixels": v.budget[0], "max_pixels": v.budget[1]} if v.budget else ev.encoder.budgets[v.action]
    encoder = ev.encoder.with_budget(v.action, budget)
    dataset = RecordDataset(ev.records, encoder, with_target=False)
    ids, tids = [r["id"] for r in ev.records], TokenIds.of(ev.processor)
    settings = {**ev.settings, "kind": "baseline", "variant": asdict(v)}
    root = log_root(ev.ecfg["generation_log"], f"{ev.name}.baselines")
    glog = GenerationLog(root, settings, f"rank-{ev.shard.rank}", f"evaluate@{ev.name} ({v.action}, {v.rule})")

    def run_batch(batch: range) -> list[dict]:
        recs = [ev.records[i] for i in batch]
        images = [dataset.images(r) for r in recs]
        encs_no = [ev.encoder.encode(r, im, actions.TEXT, with_target=False) for r, im in zip(recs, images)]
        encs_vis = [encoder.encode(r, im, v.action, with_target=False) for r, im in zip(recs, images)]
        key = batch_key(recs, [{"no": a, "vision": b} for a, b in zip(encs_no, encs_vis)])
        return glog.run(key, [ids[i] for i in batch], lambda: _answers(ev, v, encs_no, encs_vis, tids))

    return run_sharded(ids, ev.ecfg["batch_size"], ev.shard, run_batch, f"evaluate@{ev.name} ({v.action})")


def generate_baselines(ev) -> dict | None:
    """Every configured variant's answers that no action's answers give, keyed by variant (main process;
    None elsewhere, and where no baseline is configured)."""
    if ev.ecfg["resolution_sweep"]:
        check_budgets(ev.ecfg["resolution_sweep"], ev.params["vision_budget"], ev.processor.image_processor)
    configured, out = variants(ev.ecfg), {}
    for v in configured:
        if reused_action(ev, v) is None:
            out[v] = generate_variant(ev, v)
    return out if ev.shard.is_main and configured else None


def substituted(ev, sc, gens: list[dict], subs: dict[str, list[dict]]) -> tuple[dict, list[dict]]:
    """(rows, gens) with some actions' scored answers and vision tokens replaced by a variant's (`subs`:
    action -> answers)."""
    rows, gens = dict(sc.rows), [dict(g) for g in gens]
    for action, outs in subs.items():
        scored, _ = scoring.score(
            ev.protocol, ev.records, [o["output"] for o in outs], ev.ecfg["seed"], action in sc.thinking
        )
        rows[action] = [
            scoring.TOO_LONG_ROW if o["too_long"] else {**r, "too_long": False} for o, r in zip(outs, scored)
        ]
        for g, o in zip(gens, outs):
            g["vision_tokens"] = {**g["vision_tokens"], action: o["vision_tokens"]}
    return rows, gens


@dataclass
class Point:
    """One baseline point: its figures and each question's score (for the paired comparison)."""

    fig: dict
    scores: list[float]


def point(ev, sc, gens: list[dict], subs: dict[str, list[dict]], choices: list[int]) -> Point:
    rows, sub_gens = substituted(ev, sc, gens, subs)
    return Point(
        scoring.policy_figures(ev.records, sc.questions, rows, sub_gens, choices),
        scoring.question_scores(sc.questions, rows, choices),
    )


def _taken(ev, generated: dict, v: Variant) -> tuple[str, dict[str, list[dict]]]:
    """(the action whose answers are `v`'s, the substitution that puts them there: none where an action's own
    answers are `v`'s)."""
    same = reused_action(ev, v)
    return (same, {}) if same is not None else (v.action, {v.action: generated[_canonical(v)]})


def _curve_point(ev, sc, gens: list[dict], generated: dict, v: Variant) -> Point:
    action, subs = _taken(ev, generated, v)
    return point(ev, sc, gens, subs, _constant(gens, action))


def compare_at_equal_tokens(ev, sc, gens: list[dict], generated: dict) -> tuple[dict, list[dict]]:
    """(report section, Pareto points): each curve, its accuracy at the learned policy's tokens, the learned
    policy's margin over it with the margin's paired 95% interval (`comparisons`, as the evaluation's other
    curve baselines get), and the learned-then-prune row, paired with the learned policy at its own tokens."""
    vs = variants_by_curve(ev.ecfg)
    clusters = question_clusters(ev.records, sc.questions)
    mine = scoring.question_scores(sc.questions, sc.rows, sc.learned)
    tokens, acc = sc.learned_fig["vision_tokens"], sc.learned_fig["accuracy"]
    curves, points, paired = {}, [], {}
    for curve, members in vs.items():
        if curve == "learned_then_prune":
            continue
        pts = [_curve_point(ev, sc, gens, generated, v) for v in members]
        marks = [report.pareto_point(curve, p.fig, v.param) for p, v in zip(pts, members)]
        curves[curve] = sorted(marks, key=lambda p: (p["vision_tokens"], p["param"]))
        points.extend(marks)
        costs = [p.fig["vision_tokens"] for p in pts]
        paired[curve] = comparisons.compared(
            mine, comparisons.interpolated([p.scores for p in pts], costs, tokens), clusters, tokens
        )
    at = {c: policies.at_cost(p, tokens) for c, p in curves.items()}
    section = {
        "curves": curves,
        "accuracy_at_learned_tokens": at,
        "learned_margin": {c: None if a is None or acc is None else acc - a for c, a in at.items()},
    }
    if "learned_then_prune" in vs:
        subs = {a: outs for v in vs["learned_then_prune"] for a, outs in _taken(ev, generated, v)[1].items()}
        then = point(ev, sc, gens, subs, sc.learned)
        rule = vs["learned_then_prune"][0].rule
        section["learned_then_prune"] = {"method": rule.method, "keep_share": rule.share, **then.fig}
        paired["learned_then_prune"] = comparisons.compared(mine, then.scores, clusters, then.fig["vision_tokens"])
        points.append(report.pareto_point("learned_then_prune", then.fig))
    section["comparisons"] = paired
    return section, points


def variants_by_curve(ecfg: dict) -> dict[str, list[Variant]]:
    pcfg, seed = ecfg["pruning"], ecfg["seed"]
    out: dict[str, list[Variant]] = {}
    for b in ecfg["resolution_sweep"]:
        budget = (b["min_pixels"], b["max_pixels"])
        out.setdefault("resolution", []).append(Variant("resolution", b["max_pixels"], SWEEP_ACTION, budget))
    for method in pcfg["methods"]:
        for share in pcfg["keep_shares"]:
            rule = _rule(method, share, pcfg, seed)
            out.setdefault(f"prune_{method}", []).append(Variant(f"prune_{method}", share, PRUNED_ACTION, None, rule))
    then = pcfg["policy_then_prune"]
    if then:
        rule = _rule(then["method"], then["keep_share"], pcfg, seed)
        out["learned_then_prune"] = [
            Variant("learned_then_prune", then["keep_share"], a.name, None, rule) for a in actions.VISION
        ]
    return out


def _constant(gens: list[dict], action: str) -> list[int]:
    return policies.constant(gens, actions.index(action))
