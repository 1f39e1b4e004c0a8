"""Adaptive inference vs always-full: wall and CPU time of `predict` per policy, the tokens each paid for,
and evaluation's all-branch pass, on one model and one split, with accuracy scored by the split's protocol.

Every row answers the same questions at the same batch size, from loaded weights, after a warm-up; the
wall time includes reading and preprocessing images (predict: only for the questions that look;
evaluation: every action's). Rows are run in turn, `--reps` rounds; the table shows the median round.
Tokens per question: vision tokens, text tokens prefilled (the text pass every question gets, which the
policy pays for, plus a vision branch's text around its image) and tokens generated.

The mix bound of the learned policy is what its action mix costs if adapting costs nothing:
sum over actions of (its share of questions) x (the always-action policy's wall time), from the same
round; the ratio printed is the median over rounds of learned wall / mix bound.

    python benchmarks/bench_predict.py                                   # tiny model, sample held-out split
    python benchmarks/bench_predict.py --model-dir models/vovnet --set demo --params params.yaml

Targets (issue 24): learned wall <= 1.05x its mix bound and below always-full; learned answers and
choices equal evaluate's.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from vovnet import VovnetError  # noqa: E402
from vovnet.config import load_params, processed_file  # noqa: E402
from vovnet.data.image_store import set_pixel_limit  # noqa: E402
from vovnet.evaluation import policies, scoring  # noqa: E402
from vovnet.evaluation.core import load_eval_records  # noqa: E402
from vovnet.evaluation.interfaces import EvalProtocol  # noqa: E402
from vovnet.evaluation.scoring import score  # noqa: E402
from vovnet.inference.predict import CONSTANT, PredictOptions, Predictor, mix_bound, summarize  # noqa: E402
from vovnet.inference.requests import ImageSources, parse_line  # noqa: E402
from vovnet.io_utils import dumps  # noqa: E402
from vovnet.model.budgets import ACTIONS  # noqa: E402
from vovnet.model.encoding import Encoder, RecordDataset  # noqa: E402
from vovnet.model.factory import load_vovnet  # noqa: E402
from vovnet.model.generation import generate_all  # noqa: E402
from vovnet.registry import get_protocol  # noqa: E402

POLICY_ROWS = ("learned", "full", "coarse", "none")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model-dir", default="models/vovnet")
    ap.add_argument("--set", default="mmbench", help="an evaluation set in params (its dataset/split is used)")
    ap.add_argument("--batch-size", type=int, help="default: evaluation.batch_size")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-samples", type=int, help="questions (whole circular groups), as evaluation.max_samples")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1: steadier on a shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    params = load_params(args.params)
    ecfg, pcfg = params["evaluation"], params["policy"]
    set_cfg = ecfg["sets"][args.set]
    records = load_eval_records(args.set, set_cfg, args.max_samples)  # evaluate's records, in its order
    bs = args.batch_size or ecfg["batch_size"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    set_pixel_limit(params["normalize"]["max_image_pixels"])
    model, processor, _ = load_vovnet(args.model_dir, params, device)
    sources = ImageSources(".")
    reqs = [parse_line(dumps(r), i + 1, sources) for i, r in enumerate(records)]  # as predict reads the file
    predictors = {
        p: Predictor(
            model,
            processor,
            params["vision_budget"],
            ecfg["max_length"],
            device,
            PredictOptions(
                policy=p,
                cost_shift=pcfg["cost_shift"],
                cost_norm=pcfg["cost_norm"],
                batch_size=bs,
                max_new_tokens=ecfg["max_new_tokens"],
            ),
        )
        for p in POLICY_ROWS
    }
    encoder = Encoder(processor, params["vision_budget"], None, model.prompt_order, model.full_template)

    def run_eval(recs=records):
        return generate_all(
            model,
            processor,
            RecordDataset(recs, encoder, with_target=False),
            bs,
            ecfg["max_new_tokens"],
            device,
            ecfg["max_length"],
            progress=False,
        )

    for p in predictors.values():  # warm-up: every branch once
        p.warm_up(reqs)
    run_eval(records[:1])
    runs = {
        name: (run_eval if name == "evaluate" else lambda p=predictors[name]: p.answer_all(reqs, show_progress=False))
        for name in (*POLICY_ROWS, "evaluate")
    }
    walls, cpus, outs = measure(runs, args.reps, device)
    print(
        f"model {args.model_dir}, set {args.set} ({processed_file(set_cfg['dataset'], set_cfg['split'])}, "
        f"{len(records)} records, {len(scoring.questions(records))} questions), batch {bs}, device {device}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}; median of {args.reps} rounds"
    )
    report(records, params, set_cfg, walls, cpus, outs)


def measure(runs: dict, reps: int, device) -> tuple[dict, dict, dict]:
    """`reps` rounds of every run in turn: wall and CPU seconds per run per round, and each run's last output."""
    walls: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    outs: dict = {}
    for _ in range(reps):
        for name, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            outs[name] = run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
    return walls, cpus, outs


def report(records: list[dict], params: dict, set_cfg: dict, walls: dict, cpus: dict, outs: dict) -> None:
    ecfg, pcfg = params["evaluation"], params["policy"]
    protocol = get_protocol(set_cfg["protocol"], EvalProtocol)
    gens = outs.pop("evaluate")
    eval_choices = [ACTIONS[c] for c in policies.learned(gens, pcfg["cost_shift"], pcfg["cost_norm"])]
    qs, n = scoring.questions(records), len(records)
    eval_acc = scoring.policy_figures(
        records,
        qs,
        scoring.rows_by_action(protocol, records, gens, ecfg["seed"]),
        gens,
        [ACTIONS.index(c) for c in eval_choices],
    )["accuracy"]
    table = {}
    for name, answered in outs.items():
        assert [r["id"] for r in answered.rows] == [r["id"] for r in records], "a request was rejected"
        per_record = score(protocol, records, [r["answer"] for r in answered.rows], ecfg["seed"])[0]
        table[name] = {
            **summarize(
                answered.rows, 0, statistics.median(walls[name]), statistics.median(cpus[name]), answered.batch_sizes
            ),
            "acc": sum(min(per_record[i]["score"] for i in q) for q in qs) / len(qs),
        }  # as evaluate
    print(
        "| run | wall s | CPU s | records/s | vision tokens | text tokens prefilled | tokens generated "
        "| no / coarse / full | generate calls | accuracy |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for name in POLICY_ROWS:
        t, tok = table[name], table[name]["tokens"]
        mix = " / ".join(f"{t['action_ratio'][a]:.2f}" for a in ACTIONS)
        calls = " / ".join(str(len(t["generate_batches"][a])) for a in ACTIONS)
        print(
            f"| predict --policy {name} | {t['wall_s']:.2f} | {t['cpu_s']:.2f} | {n / t['wall_s']:.1f} "
            f"| {tok['vision'] / n:.1f} | {tok['text'] / n:.1f} | {tok['generated'] / n:.2f} | {mix} | {calls} "
            f"| {t['acc']:.4f} |"
        )
    ew = statistics.median(walls["evaluate"])
    print(
        f"| evaluation all-branch pass | {ew:.2f} | {statistics.median(cpus['evaluate']):.2f} | {n / ew:.1f} "
        f"| (all three) | | | - | | learned {eval_acc:.4f} |"
    )
    learned, full = table["learned"], table["full"]
    shares = learned["action_ratio"]
    per_round = {
        kind: sorted(
            series["learned"][i] / mix_bound(shares, {p: series[p][i] for p in POLICY_ROWS[1:]})
            for i in range(len(series["learned"]))
        )
        for kind, series in (("wall", walls), ("CPU", cpus))
    }
    ratio = statistics.median(per_round["wall"])
    bound = mix_bound(shares, {p: table[p]["wall_s"] for p in POLICY_ROWS[1:]})
    terms = " + ".join(f"{shares[a]:.2f} x {table[p]['wall_s']:.2f}" for p, a in CONSTANT.items())
    print(
        f"mix bound: learned wall {learned['wall_s']:.2f} s vs {bound:.2f} s ({terms}, share x always-action "
        f"wall); learned / mix bound per round: wall {ratio:.3f}x (min {per_round['wall'][0]:.3f}, "
        f"max {per_round['wall'][-1]:.3f}), CPU {statistics.median(per_round['CPU']):.3f}x; "
        f"target <= 1.05x: {'met' if ratio <= 1.05 else 'MISSED'}"
    )
    wr = learned["wall_s"] / full["wall_s"]
    vr = learned["tokens"]["vision"] / full["tokens"]["vision"] if full["tokens"]["vision"] else float("nan")
    print(
        f"learned / always-full: wall {wr:.2f}x (CPU time {learned['cpu_s'] / full['cpu_s']:.2f}x), vision tokens "
        f"{vr:.2f}x, text tokens prefilled {learned['tokens']['text'] / full['tokens']['text']:.2f}x; "
        f"target learned below always-full: {'met' if wr < 1 else 'MISSED'}"
    )
    rows = outs["learned"].rows
    same = [r["action"] for r in rows] == eval_choices
    same_answers = [r["answer"] for r in rows] == [g["outputs"][c] for g, c in zip(gens, eval_choices)]
    print(
        f"learned: accuracy predict {learned['acc']:.4f} vs evaluate {eval_acc:.4f} "
        f"({'equal' if learned['acc'] == eval_acc else 'DIFFERENT'}); choices equal: {same}; answers equal: "
        f"{same_answers}; evaluate all-branch / always-full wall {ew / full['wall_s']:.2f}x"
    )


if __name__ == "__main__":
    try:
        main()
    except VovnetError as exc:  # e.g. no trained model yet: `dvc repro` builds models/vovnet
        sys.exit(f"error: {exc}")
