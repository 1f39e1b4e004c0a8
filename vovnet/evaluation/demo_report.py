"""A demo's figures from `dvc repro` outputs: targets, per-family actions, baselines at equal cost, plot.

`python -m vovnet demo-report --set demo` (after `python -m vovnet preset demo && dvc repro`) reads
eval/<set>/predictions.jsonl, its report.json and the held-out records it scored, prints the targets with
measured values, and writes the figures as JSON (<out-dir>/<set>_report.json) and the Pareto plot
(<out-dir>/<set>_pareto.svg; docs/figures by default, the plots docs/results.md shows).

Baselines at the learned policy's mean vision tokens (linear interpolation on each curve):
  - random: NO/FULL drawn at random with P(FULL) set to spend the same tokens (its expectation, no seed noise);
  - random with the learned policy's own action ratios (expectation);
  - uncertainty: the evaluation's own threshold sweep (quantiles of the policy split's text-pass
    entropy, never the held-out split's), read from eval/<set>/report.json.
Each target on a margin gives the margin's paired 95% interval (per question, clustered by shared image;
vovnet/evaluation/intervals.py) and says whether the margin is beyond it (the interval excludes 0): random's
is on its expectation, uncertainty's is the evaluation's own (report.json `comparisons`, on the same
interpolated figure).
Where the evaluation measured them (evaluation.resolution_sweep, evaluation.pruning), the downsampling and
pruning curves are read the same way, with the learned policy's paired margin over each from report.json's
`equal_token_baselines`, and the learned-then-prune row at its own tokens; the plot draws them.
The oracle is no policy: each question's cheapest action that answers it right, at the same tokens. It is
the ceiling of any policy over this model's answers, so `oracle - uncertainty` bounds what the learned
policy can gain over uncertainty (an analysis of the held-out outputs; nothing is chosen with it).

The protocol that scores every action's output is the set's own (report.json names it); the command
resolves it from the task registry and hands the resolver in, so this module imports no task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vovnet import VovnetError
from vovnet.config import processed_file
from vovnet.evaluation import policies
from vovnet.evaluation.intervals import paired_interval, question_clusters
from vovnet.evaluation.svg_chart import svg_plot
from vovnet.io_utils import atomic_path, read_jsonl
from vovnet.model.budgets import ACTIONS

DEFAULT_SHIFTS = "-1,-0.5,-0.2,0,0.1,0.2,0.3,0.5,0.75,1,1.5,2,3,5,10"
NAN = float("nan")


@dataclass
class HeldOut:
    """Every action's correctness and vision tokens on each held-out question, from the generated outputs."""

    records: list[dict]
    preds: list[dict]
    correct: dict[str, list[float]]
    tokens: dict[str, list[int]]
    report: dict  # eval/<set>/report.json

    def evaluate(self, choice: list[int]) -> tuple[float, float]:
        """(accuracy, mean vision tokens) of one action index per question."""
        n = len(choice)
        acc = sum(self.correct[ACTIONS[c]][i] for i, c in enumerate(choice)) / n
        return acc, sum(self.tokens[ACTIONS[c]][i] for i, c in enumerate(choice)) / n


def load_held_out(eval_dir: Path, get_protocol: Callable, processed_root: str = "data/processed") -> HeldOut:
    """Read eval/<set>'s report and predictions and the records they answer; score every action's output."""
    report_file = eval_dir / "report.json"
    if not report_file.exists():
        raise VovnetError(f"{report_file}: not found; run the demo's pipeline first (`dvc repro`)")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    preds = {p["id"]: p for p in read_jsonl(eval_dir / "predictions.jsonl")}
    records = [
        r for r in read_jsonl(processed_file(report["dataset"], report["split"], processed_root)) if r["id"] in preds
    ]
    if not records:
        raise VovnetError(f"{eval_dir / 'predictions.jsonl'}: no prediction matches a record of {report['dataset']}")
    p = [preds[r["id"]] for r in records]
    score_records = get_protocol(report["protocol"]).score_records
    correct = {
        a: [row["score"] for row in score_records(records, [q["outputs_by_action"][a] for q in p])[0]] for a in ACTIONS
    }
    tokens = {a: [q["vision_tokens_by_action"][a] for q in p] for a in ACTIONS}
    return HeldOut(records, p, correct, tokens, report)


def uncertainty_full_share(entropy: list[float], tokens: dict, budget: float) -> list[float]:
    """The uncertainty policy at exactly the learned policy's tokens: FULL for the highest text-pass
    entropies, in order, until `budget` vision tokens are spent (the last question a fraction), else NO."""
    share, left = [0.0] * len(entropy), budget
    for i in sorted(range(len(entropy)), key=lambda i: -entropy[i]):
        cost = tokens["full"][i] - tokens["no"][i]
        if left <= 0:
            break
        share[i] = min(1.0, left / cost) if cost > 0 else 1.0
        left -= share[i] * cost
    return share


def oracle_accuracy(correct: dict, tokens: dict, budget: float) -> float:
    """The ceiling of any policy over this model's answers at `budget` vision tokens in all: each question
    takes its cheapest action that answers it right, cheapest questions first (optimal for 0/1 scores)."""
    n = len(tokens["no"])
    costs = [
        min(tokens[a][i] for a in ACTIONS if correct[a][i]) for i in range(n) if any(correct[a][i] for a in ACTIONS)
    ]
    taken = 0
    for cost in sorted(costs):  # questions right at NO cost 0 and are always taken
        if cost > budget:
            break
        budget, taken = budget - cost, taken + 1
    return taken / n


def family_table(h: HeldOut, learned_choice: list[int], frac: float, p_full: list[float]) -> dict:
    """Per meta.family: the learned policy's actions and accuracy, every fixed action's, and random
    (NO/FULL with the learned tokens' FULL share) and uncertainty (p_full) at equal tokens."""
    out = {}
    for fam in sorted({r["meta"].get("family", "?") for r in h.records}):
        idx = [i for i, r in enumerate(h.records) if r["meta"].get("family") == fam]
        mean = lambda xs: sum(xs) / len(idx)  # noqa: E731
        row = {
            "questions": len(idx),
            "learned_actions": {a: mean([learned_choice[i] == k for i in idx]) for k, a in enumerate(ACTIONS)},
            "learned": mean([h.correct[ACTIONS[learned_choice[i]]][i] for i in idx]),
            **{f"always_{a}": mean([h.correct[a][i] for i in idx]) for a in ACTIONS},
            "uncertainty": mean([p_full[i] * h.correct["full"][i] + (1 - p_full[i]) * h.correct["no"][i] for i in idx]),
        }
        row["random"] = (1 - frac) * row["always_no"] + frac * row["always_full"]
        out[fam] = row
    return out


def parse_shifts(text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",")]
    except ValueError:
        raise VovnetError(f"--shifts: expected comma-separated numbers, got {text!r}") from None


def figures(h: HeldOut, shifts: list[float]) -> dict:
    """Every figure the report prints and saves, plus the curves the plot draws (under "_curves")."""
    n = len(h.records)
    const = {a: h.evaluate([k] * n) for k, a in enumerate(ACTIONS)}
    learned_choice = [ACTIONS.index(q["action"]) for q in h.preds]
    acc_l, tok_l = h.evaluate(learned_choice)
    gens = [{"scores": q["policy_scores"], "vision_tokens": q["vision_tokens_by_action"]} for q in h.preds]
    learned_curve = [h.evaluate(policies.learned(gens, s, 0)) for s in shifts]
    (full_acc, full_tok), (no_acc, no_tok) = const["full"], const["no"]
    frac = (tok_l - no_tok) / max(1e-9, full_tok - no_tok)
    ratios = [learned_choice.count(k) / n for k in range(len(ACTIONS))]
    at = h.report.get("accuracy_at_learned_tokens", {})
    p_full = uncertainty_full_share([q["text_entropy"] for q in h.preds], h.tokens, tok_l * n)
    return {
        "set": h.report["set"],
        "questions": n,
        **{f"always_{a}": {"accuracy": const[a][0], "vision_tokens": const[a][1]} for a in ACTIONS},
        "learned": {"accuracy": acc_l, "vision_tokens": tok_l},
        "at_learned_tokens": {
            "random_full_share": frac,
            "random": (1 - frac) * no_acc + frac * full_acc,
            "random_learned_ratios": sum(r * const[a][0] for r, a in zip(ratios, ACTIONS)),
            "random_curve": at.get("random"),
            "uncertainty": NAN if at.get("uncertainty") is None else at["uncertainty"],
            "uncertainty_exact": sum(
                f * h.correct["full"][i] + (1 - f) * h.correct["no"][i] for i, f in enumerate(p_full)
            )
            / n,
            "uncertainty_coarse": at.get("uncertainty_coarse"),
            "oracle": oracle_accuracy(h.correct, h.tokens, tok_l * n),
        },
        "per_family": family_table(h, learned_choice, frac, p_full),
        "equal_tokens": equal_tokens(h.report),
        "_curves": {
            **{c: [(p["vision_tokens"], p["accuracy"]) for p in pts] for c, pts in _eq(h.report)["curves"].items()},
            "learned": sorted((t, a) for a, t in learned_curve),
            "uncertainty": sorted(
                (c["vision_tokens"], c["accuracy"]) for c in h.report.get("curves", {}).get("uncertainty", [])
            ),
        },
    }


EQUAL_TOKEN_CURVES = {  # report.json's equal_token_baselines curves (vovnet/evaluation/sweep.py): label, colour
    "resolution": ("resolution sweep (one budget for all)", "#2a9d4a"),
    "prune_random": ("FULL, random token pruning", "#8a5cc2"),
    "prune_attention": ("FULL, attention pruning", "#c25c9a"),
}


def _eq(report: dict) -> dict:
    return report.get("equal_token_baselines") or {"curves": {}}


def equal_tokens(report: dict) -> dict:
    """The downsampling and pruning baselines the evaluation measured (none when evaluation.resolution_sweep
    and evaluation.pruning are off): each curve's accuracy at the learned policy's tokens and the learned
    policy's paired margin over it, and the learned-then-prune row with its pairing."""
    eq = _eq(report)
    paired = eq.get("comparisons") or {}
    out = {c: {"accuracy": a, "margin": paired.get(c)} for c, a in eq.get("accuracy_at_learned_tokens", {}).items()}
    then = eq.get("learned_then_prune")
    if then:
        out["learned_then_prune"] = {
            "accuracy": then["accuracy"],
            "vision_tokens": then["vision_tokens"],
            "rule": f"{then['method']} {then['keep_share']:g}",
            "margin": paired.get("learned_then_prune"),
        }
    return out


def _print_equal_tokens(fig: dict) -> None:
    if not fig["equal_tokens"]:
        return
    print("\ndownsampling and pruning at equal tokens (report.json equal_token_baselines): learned minus each")
    tok_l, acc_l = fig["learned"]["vision_tokens"], fig["learned"]["accuracy"]
    for curve, row in fig["equal_tokens"].items():
        label = EQUAL_TOKEN_CURVES[curve][0] if curve in EQUAL_TOKEN_CURVES else f"learned, then {row['rule']}"
        tok = row.get("vision_tokens", tok_l)
        if row["accuracy"] is None:
            print(f"  {label:34} n/a: no point of it at {tok:.2f} tokens")
            continue
        diff = 100 * (acc_l - row["accuracy"])
        print(f"  {label:34} {row['accuracy']:8.3f} {tok:13.2f}   {diff:+.1f} pts ({_beyond(row['margin'])})")


def margins(h: HeldOut, fig: dict) -> dict[str, dict | None]:
    """The paired 95% intervals of the targets' margins, per question: always-FULL minus no-vision, learned
    minus 0.97 always-FULL (>= 0 is the 97% target), learned minus random's expectation at equal tokens, and
    learned minus uncertainty (the evaluation's, from report.json; None in a report from before them)."""
    n, c = len(h.records), h.correct
    clusters = question_clusters(h.records, [[i] for i in range(n)])
    learned = [c[q["action"]][i] for i, q in enumerate(h.preds)]
    frac = fig["at_learned_tokens"]["random_full_share"]
    return {
        "gain": paired_interval(c["full"], c["no"], clusters),
        "keeps_full": paired_interval(learned, [0.97 * x for x in c["full"]], clusters),
        "random": paired_interval(learned, [(1 - frac) * x + frac * y for x, y in zip(c["no"], c["full"])], clusters),
        "uncertainty": (h.report.get("comparisons") or {}).get("uncertainty"),
    }


def _beyond(interval: dict | None) -> str:
    """The margin's 95% interval in points, and whether the margin is beyond it (the interval excludes 0)."""
    if interval is None:
        return "no interval: report.json predates them; rerun evaluate@"
    lo, hi = (100 * x for x in interval["ci95"])
    return f"95% CI {lo:+.1f} to {hi:+.1f} pts, {'beyond' if interval['beyond_interval'] else 'within'} its interval"


def targets(fig: dict) -> list[tuple[str, bool, str]]:
    """The demo's targets: (name, met, measured value; on a margin, its 95% interval and whether the margin
    is beyond it)."""
    full, no, learned, ci = fig["always_full"], fig["always_no"], fig["learned"], fig["margins"]
    rnd, unc = fig["at_learned_tokens"]["random"], fig["at_learned_tokens"]["uncertainty"]
    gain, acc_l = full["accuracy"] - no["accuracy"], learned["accuracy"]
    return [
        (
            "always-full beats no-vision by >= 10 pts",
            gain >= 0.1,
            f"{100 * gain:+.1f} pts ({_beyond(ci['gain'])})",
        ),
        (
            "learned >= 97% of always-full accuracy",
            acc_l >= 0.97 * full["accuracy"],
            f"{acc_l / max(1e-9, full['accuracy']):.3f} (learned - 0.97 always-full: {_beyond(ci['keeps_full'])})",
        ),
        (
            "learned <= 60% of always-full tokens",
            learned["vision_tokens"] <= 0.6 * full["vision_tokens"],
            f"{learned['vision_tokens'] / max(1e-9, full['vision_tokens']):.3f}",
        ),
        (
            "learned - random (equal tokens) >= 3 pts",
            acc_l - rnd >= 0.03,
            f"{100 * (acc_l - rnd):+.1f} pts ({_beyond(ci['random'])})",
        ),
        (
            "learned - uncertainty (equal tokens) >= 3 pts",
            acc_l - unc >= 0.03,
            f"{100 * (acc_l - unc):+.1f} pts ({_beyond(ci['uncertainty'])})",
        ),
    ]


def _num(value) -> float:
    return NAN if value is None else value


def print_report(fig: dict, checks: list[tuple[str, bool, str]]) -> None:
    tok_l, at = fig["learned"]["vision_tokens"], fig["at_learned_tokens"]
    rows = [(f"always {a}", fig[f"always_{a}"]["accuracy"], fig[f"always_{a}"]["vision_tokens"]) for a in ACTIONS]
    rows += [
        ("learned (cost_shift 0)", fig["learned"]["accuracy"], tok_l),
        ("random NO/FULL, equal tokens", at["random"], tok_l),
        ("random, learned ratios", at["random_learned_ratios"], tok_l),
        ("uncertainty threshold, equal tokens", at["uncertainty"], tok_l),
        ("random curve (evaluation), equal tokens", _num(at["random_curve"]), tok_l),
        ("uncertainty, exact equal tokens", at["uncertainty_exact"], tok_l),
        ("uncertainty+COARSE, equal tokens", _num(at["uncertainty_coarse"]), tok_l),
        ("oracle (cheapest right action)", at["oracle"], tok_l),
    ]
    print(f"held-out questions: {fig['questions']}")
    print(f"{'policy':34} {'accuracy':>8} {'vision tokens':>13}")
    for name, acc, tok in rows:
        print(f"{name:34} {acc:8.3f} {tok:13.2f}")
    _print_equal_tokens(fig)
    print("\nper family: the learned policy's actions; accuracy: learned, always each action, and random and")
    print("uncertainty at the learned policy's tokens")
    print(f"{'family':8} {'n':>4} " + " ".join(f"{a.upper():>6}" for a in ACTIONS) + f" {'learned':>8} ", end="")
    print(" ".join(f"{a:>6}" for a in ACTIONS) + f" {'random':>7} {'uncert.':>7}")
    for fam, row in fig["per_family"].items():
        shares = " ".join(f"{row['learned_actions'][a]:6.2f}" for a in ACTIONS)
        always = " ".join(f"{row[f'always_{a}']:6.3f}" for a in ACTIONS)
        print(
            f"{fam:8} {row['questions']:4} {shares} {row['learned']:8.3f} {always} {row['random']:7.3f} "
            f"{row['uncertainty']:7.3f}"
        )
    print("\ntargets")
    for name, ok, value in checks:
        print(f"  {'MET ' if ok else 'MISS'} {name}: {value}")


def plot_series(fig: dict) -> list[tuple]:
    """(legend, colour, points (tokens, accuracy), dots) per line of the Pareto plot."""
    no, full = fig["always_no"], fig["always_full"]
    learned, curves = fig["learned"], fig["_curves"]
    return [
        ("uncertainty threshold (sweep)", "#e08020", fig["_curves"]["uncertainty"], False),
        (
            "random NO/FULL",
            "#888888",
            [(no["vision_tokens"], no["accuracy"]), (full["vision_tokens"], full["accuracy"])],
            False,
        ),
        *[(label, colour, fig["_curves"][c], True) for c, (label, colour) in EQUAL_TOKEN_CURVES.items() if c in curves],
        ("learned (cost-shift sweep)", "#1f5fbf", fig["_curves"]["learned"], True),
        (
            "always " + " / ".join(a.upper() for a in ACTIONS),
            "#000000",
            [(fig[f"always_{a}"]["vision_tokens"], fig[f"always_{a}"]["accuracy"]) for a in ACTIONS],
            True,
        ),
        ("learned (cost_shift 0)", "#d02020", [(learned["vision_tokens"], learned["accuracy"])], True),
    ] + [
        (f"learned, then {then['rule']} pruning", "#f0a0a0", [(then["vision_tokens"], then["accuracy"])], True)
        for then in [fig["equal_tokens"].get("learned_then_prune")]
        if then
    ]


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def run_demo_report(set_name: str, get_protocol: Callable, out_dir: str, shifts: str = DEFAULT_SHIFTS) -> int:
    """The `demo-report` command: print the figures and targets; write <set>_report.json and <set>_pareto.svg."""
    h = load_held_out(Path("eval") / set_name, get_protocol)
    fig = figures(h, parse_shifts(shifts))
    fig["margins"] = margins(h, fig)
    checks = targets(fig)
    print_report(fig, checks)
    saved = {k: v for k, v in fig.items() if not k.startswith("_")}
    saved["targets"] = {name: {"met": ok, "value": value} for name, ok, value in checks}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(saved, indent=1, sort_keys=True, allow_nan=True) + "\n"
    _write_text(out / f"{set_name}_report.json", text)
    _write_text(out / f"{set_name}_pareto.svg", svg_plot(plot_series(fig), fig["always_full"]["vision_tokens"]))
    print(f"\nfigures: {out / f'{set_name}_report.json'}\nplot: {out / f'{set_name}_pareto.svg'}")
    return 0
