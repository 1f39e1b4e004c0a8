"""A demo's figures from `dvc repro` outputs: targets, per-family actions, baselines at equal cost, plot.

`python benchmarks/demo_report.py` (after `python -m vovnet preset demo && dvc repro`) reads
eval/demo/predictions.jsonl and the held-out records, prints the targets with measured values, and writes
the Pareto plot (benchmarks/demo_pareto.svg) and the figures as JSON (benchmarks/demo_report.json).
`--set easy_vqa` does the same after `python -m vovnet preset demo_easyvqa && dvc repro`
(benchmarks/easy_vqa_pareto.svg, benchmarks/easy_vqa_report.json).

Baselines at the learned policy's mean vision tokens (linear interpolation on each curve):
  - random: NO/FULL drawn at random with P(FULL) set to spend the same tokens (its expectation, no seed noise);
  - random with the learned policy's own action ratios (expectation);
  - uncertainty: the evaluation's own threshold sweep (quantiles of the policy split's text-pass
    entropy, never the held-out split's), read from eval/demo/report.json.
The oracle is no policy: each question's cheapest action that answers it right, at the same tokens. It is
the ceiling of any policy over this model's answers, so `oracle - uncertainty` bounds what the learned
policy can gain over uncertainty (an analysis of the held-out outputs; nothing is chosen with it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vovnet.evaluation import policies  # noqa: E402
from vovnet.io_utils import read_jsonl  # noqa: E402
from vovnet.model.budgets import ACTIONS  # noqa: E402
from vovnet.tasks.short_answer import protocol as short_answer  # noqa: E402


def svg_plot(series: list, x_max: float, w: int = 560, h: int = 360) -> str:
    """A plain SVG line/point chart (text, diffable, no plotting library): accuracy vs vision tokens."""
    left, right, top, bottom = 50, 190, 15, 40
    px = lambda x: left + (w - left - right) * x / max(1e-9, x_max)  # noqa: E731
    py = lambda y: top + (h - top - bottom) * (1 - y)  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
    ]
    for k in range(6):
        y = k / 5
        out.append(
            f'<line x1="{left}" x2="{w - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.1f}</text>'
        )
        x = x_max * k / 5
        out.append(f'<text x="{px(x):.1f}" y="{h - bottom + 15}" text-anchor="middle">{x:.1f}</text>')
    out.append(
        f'<text x="{(left + w - right) / 2}" y="{h - 8}" text-anchor="middle">mean vision tokens per question</text>'
        f'<text x="12" y="{(top + h - bottom) / 2}" transform="rotate(-90 12 {(top + h - bottom) / 2})" '
        'text-anchor="middle">accuracy (held-out)</text>'
    )
    for n, (name, colour, pts, dots) in enumerate(series):
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        if len(pts) > 1 and not name.startswith("always"):
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if dots:
            out += [
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{5 if len(pts) == 1 else 3}" fill="{colour}"/>'
                for x, y in pts
            ]
        ly = top + 14 + 18 * n
        out.append(
            f'<rect x="{w - right + 10}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{w - right + 26}" y="{ly + 1}">{name}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


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


def family_table(records, correct, learned_choice, frac: float, p_full: list[float]) -> dict:
    """Per meta.family: the learned policy's actions and accuracy, every fixed action's, and random
    (NO/FULL with the learned tokens' FULL share) and uncertainty (p_full) at equal tokens."""
    out = {}
    print("\nper family: the learned policy's actions; accuracy: learned, always FULL / COARSE / NO, and random and")
    print("uncertainty at the learned policy's tokens")
    print(
        f"{'family':8} {'n':>4} {'NO':>5} {'COARSE':>6} {'FULL':>5} {'learned':>8} "
        f"{'full':>6} {'coarse':>6} {'no':>6} {'random':>7} {'uncert.':>7}"
    )
    for fam in sorted({r["meta"].get("family", "?") for r in records}):
        idx = [i for i, r in enumerate(records) if r["meta"].get("family") == fam]
        mean = lambda xs: sum(xs) / len(idx)  # noqa: E731
        share = [mean([learned_choice[i] == a for i in idx]) for a in range(3)]
        row = {
            "questions": len(idx),
            "learned_actions": dict(zip(ACTIONS, share)),
            "learned": mean([correct[ACTIONS[learned_choice[i]]][i] for i in idx]),
            **{f"always_{a}": mean([correct[a][i] for i in idx]) for a in ACTIONS},
            "uncertainty": mean([p_full[i] * correct["full"][i] + (1 - p_full[i]) * correct["no"][i] for i in idx]),
        }
        row["random"] = (1 - frac) * row["always_no"] + frac * row["always_full"]
        out[fam] = row
        print(
            f"{fam:8} {len(idx):4} {share[0]:5.2f} {share[1]:6.2f} {share[2]:5.2f} {row['learned']:8.3f} "
            f"{row['always_full']:6.3f} {row['always_coarse']:6.3f} {row['always_no']:6.3f} {row['random']:7.3f} "
            f"{row['uncertainty']:7.3f}"
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--set", default="demo", help="the evaluation set (and dataset) of the preset that ran")
    ap.add_argument("--shifts", default="-1,-0.5,-0.2,0,0.1,0.2,0.3,0.5,0.75,1,1.5,2,3,5,10")
    args = ap.parse_args()
    args.eval_dir = f"eval/{args.set}"
    args.records = f"data/processed/{args.set}/{args.set}_heldout.jsonl"
    args.plot = f"benchmarks/{args.set}_pareto.svg"
    preds = {p["id"]: p for p in read_jsonl(Path(args.eval_dir) / "predictions.jsonl")}
    records = [r for r in read_jsonl(args.records) if r["id"] in preds]
    n = len(records)
    p = [preds[r["id"]] for r in records]
    # correctness of every action on every question, from the real generated outputs
    correct = {
        a: [row["score"] for row in short_answer.score_records(records, [q["outputs_by_action"][a] for q in p])[0]]
        for a in ACTIONS
    }
    tokens = {a: [q["vision_tokens_by_action"][a] for q in p] for a in ACTIONS}

    def evaluate(choice: list[int]) -> tuple[float, float]:
        acc = sum(correct[ACTIONS[c]][i] for i, c in enumerate(choice)) / n
        return acc, sum(tokens[ACTIONS[c]][i] for i, c in enumerate(choice)) / n

    const = {a: evaluate([i] * n) for i, a in enumerate(ACTIONS)}
    learned_choice = [ACTIONS.index(q["action"]) for q in p]
    acc_l, tok_l = evaluate(learned_choice)
    gens = [{"scores": q["policy_scores"], "vision_tokens": q["vision_tokens_by_action"]} for q in p]
    learned_curve = [evaluate(policies.learned(gens, float(s), 0)) for s in args.shifts.split(",")]
    full_acc, full_tok = const["full"]
    no_acc, no_tok = const["no"]
    frac = (tok_l - no_tok) / max(1e-9, full_tok - no_tok)
    random_eq = (1 - frac) * no_acc + frac * full_acc
    ratios = [learned_choice.count(i) / n for i in range(3)]
    random_ratios = sum(r * const[a][0] for r, a in zip(ratios, ACTIONS))
    report = json.loads((Path(args.eval_dir) / "report.json").read_text())
    at = report.get("accuracy_at_learned_tokens", {})
    unc_eq = at.get("uncertainty")
    unc_eq = unc_eq if unc_eq is not None else float("nan")
    unc_curve = [(c["vision_tokens"], c["accuracy"]) for c in report.get("curves", {}).get("uncertainty", [])]
    random_curve = at.get("random")

    print(f"held-out questions: {n}")
    print(f"{'policy':34} {'accuracy':>8} {'vision tokens':>13}")
    for a in ACTIONS:
        print(f"{'always ' + a:34} {const[a][0]:8.3f} {const[a][1]:13.2f}")
    print(f"{'learned (cost_shift 0)':34} {acc_l:8.3f} {tok_l:13.2f}")
    print(f"{'random NO/FULL, equal tokens':34} {random_eq:8.3f} {tok_l:13.2f}")
    print(f"{'random, learned ratios':34} {random_ratios:8.3f} {tok_l:13.2f}")
    print(f"{'uncertainty threshold, equal tokens':34} {unc_eq:8.3f} {tok_l:13.2f}")
    print(
        f"{'random curve (evaluation), equal tokens':34} {random_curve if random_curve is not None else float('nan'):8.3f}"
        f" {tok_l:13.2f}"
    )
    p_full = uncertainty_full_share([q["text_entropy"] for q in p], tokens, tok_l * n)
    exact = sum(f * correct["full"][i] + (1 - f) * correct["no"][i] for i, f in enumerate(p_full)) / n
    print(f"{'uncertainty, exact equal tokens':34} {exact:8.3f} {tok_l:13.2f}")
    print(f"{'uncertainty+COARSE, equal tokens':34} {at.get('uncertainty_coarse') or float('nan'):8.3f} {tok_l:13.2f}")
    oracle = oracle_accuracy(correct, tokens, tok_l * n)
    print(f"{'oracle (cheapest right action)':34} {oracle:8.3f} {tok_l:13.2f}")
    per_family = family_table(records, correct, learned_choice, frac, p_full)
    checks = [
        ("always-full beats no-vision by >= 10 pts", full_acc - no_acc >= 0.1, f"{100 * (full_acc - no_acc):+.1f} pts"),
        ("learned >= 97% of always-full accuracy", acc_l >= 0.97 * full_acc, f"{acc_l / max(1e-9, full_acc):.3f}"),
        ("learned <= 60% of always-full tokens", tok_l <= 0.6 * full_tok, f"{tok_l / max(1e-9, full_tok):.3f}"),
        (
            "learned - random (equal tokens) >= 3 pts",
            acc_l - random_eq >= 0.03,
            f"{100 * (acc_l - random_eq):+.1f} pts",
        ),
        ("learned - uncertainty (equal tokens) >= 3 pts", acc_l - unc_eq >= 0.03, f"{100 * (acc_l - unc_eq):+.1f} pts"),
    ]
    print("\ntargets")
    for name, ok, value in checks:
        print(f"  {'MET ' if ok else 'MISS'} {name}: {value}")
    figures = {
        "set": args.set,
        "questions": n,
        **{f"always_{a}": {"accuracy": const[a][0], "vision_tokens": const[a][1]} for a in ACTIONS},
        "learned": {"accuracy": acc_l, "vision_tokens": tok_l},
        "at_learned_tokens": {
            "random": random_eq,
            "random_learned_ratios": random_ratios,
            "uncertainty": unc_eq,
            "uncertainty_exact": exact,
            "oracle": oracle,
        },
        "per_family": per_family,
        "targets": {name: {"met": ok, "value": value} for name, ok, value in checks},
    }
    out = Path(f"benchmarks/{args.set}_report.json")
    out.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nfigures: {out}")
    if args.plot:
        series = [
            ("uncertainty threshold (sweep)", "#e08020", sorted(unc_curve), False),
            ("random NO/FULL", "#888888", [(no_tok, no_acc), (full_tok, full_acc)], False),
            ("learned (cost-shift sweep)", "#1f5fbf", sorted((t, a) for a, t in learned_curve), True),
            ("always NO / COARSE / FULL", "#000000", [const[a][::-1] for a in ACTIONS], True),
            ("learned (cost_shift 0)", "#d02020", [(tok_l, acc_l)], True),
        ]
        Path(args.plot).write_text(svg_plot(series, full_tok), encoding="utf-8")
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
