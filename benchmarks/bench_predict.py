"""Adaptive inference vs always-full: wall time and questions/s of `predict` per policy, and of
evaluation's all-branch pass, on one model and one split, with accuracy scored by the split's protocol.

Every row answers the same questions at the same batch size, from loaded weights, after a warm-up; the
wall time includes reading and preprocessing images (predict: only for the questions that look;
evaluation: every action's). Rows are run in turn, `--reps` rounds; the table shows the median round.

    python benchmarks/bench_predict.py                                   # tiny model, sample held-out split
    python benchmarks/bench_predict.py --model-dir models/vovnet --set mmbench --params params.yaml

Target (issue 12): learned wall <= 0.7x always-full's wherever learned mean vision tokens <= 0.6x full's,
and learned accuracy equal to evaluate's learned accuracy.
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
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from vovnet import VovnetError  # noqa: E402
from vovnet.config import load_params, processed_file  # noqa: E402
from vovnet.data.image_store import set_pixel_limit  # noqa: E402
from vovnet.evaluation import policies, scoring  # noqa: E402
from vovnet.evaluation.core import load_eval_records  # noqa: E402
from vovnet.evaluation.scoring import score  # noqa: E402
from vovnet.inference.predict import PredictOptions, Predictor  # noqa: E402
from vovnet.inference.requests import ImageSources, parse_line  # noqa: E402
from vovnet.io_utils import dumps  # noqa: E402
from vovnet.model.budgets import ACTIONS  # noqa: E402
from vovnet.model.encoding import Encoder, RecordDataset  # noqa: E402
from vovnet.model.factory import load_vovnet  # noqa: E402
from vovnet.model.generation import generate_all  # noqa: E402
from vovnet.tasks.protocols import get_protocol  # noqa: E402

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
    path = processed_file(set_cfg["dataset"], set_cfg["split"])
    records = load_eval_records(args.set, set_cfg, args.max_samples)  # evaluate's records, in its order
    bs = args.batch_size or ecfg["batch_size"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    set_pixel_limit(params["normalize"]["max_image_pixels"])
    model, processor, _ = load_vovnet(args.model_dir, params, device)
    protocol = get_protocol(set_cfg["protocol"])
    sources = ImageSources(".")
    reqs = [parse_line(dumps(r), i + 1, sources) for i, r in enumerate(records)]  # as predict reads the file
    predictors = {p: Predictor(model, processor, params["vision_budget"], ecfg["max_length"], device,
                               PredictOptions(policy=p, cost_shift=pcfg["cost_shift"], cost_norm=pcfg["cost_norm"],
                                              batch_size=bs, max_new_tokens=ecfg["max_new_tokens"]))
                  for p in POLICY_ROWS}
    encoder = Encoder(processor, params["vision_budget"], None, model.prompt_order, model.full_template)

    def run_eval(recs=records):
        return generate_all(model, processor, RecordDataset(recs, encoder, with_target=False), bs,
                            ecfg["max_new_tokens"], device, ecfg["max_length"], progress=False)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for p in predictors.values():  # warm-up: every branch once
        p.warm_up(reqs)
    run_eval(records[:1])
    walls: dict[str, list[float]] = {k: [] for k in (*POLICY_ROWS, "evaluate")}
    cpus: dict[str, list[float]] = {k: [] for k in walls}
    outs: dict[str, list[dict]] = {}
    for _ in range(args.reps):
        for name in (*POLICY_ROWS, "evaluate"):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            outs[name] = run_eval() if name == "evaluate" else predictors[name].answer_all(reqs, show_progress=False)[0]
            sync()
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)

    gens = outs.pop("evaluate")
    eval_choices = policies.learned(gens, pcfg["cost_shift"], pcfg["cost_norm"])
    qs = scoring.questions(records)
    eval_acc = scoring.policy_figures(records, qs, scoring.rows_by_action(protocol, records, gens, ecfg["seed"]), gens,
                                      eval_choices)["accuracy"]
    n = len(records)
    table = {}
    for name, rows in outs.items():
        assert [r["id"] for r in rows] == [r["id"] for r in records], "a request was rejected"
        per_record = score(protocol, records, [r["answer"] for r in rows], ecfg["seed"])[0]
        acc = sum(min(per_record[i]["score"] for i in q) for q in qs) / len(qs)  # questions, as evaluate
        wall = statistics.median(walls[name])
        table[name] = {"wall": wall, "cpu": statistics.median(cpus[name]), "qps": n / wall, "acc": acc, "vt": sum(r["vision_tokens"] for r in rows) / n,
                       "ratio": {a: sum(r["action"] == a for r in rows) / n for a in ACTIONS}}
    ew = statistics.median(walls["evaluate"])
    evt = sum(g["vision_tokens"][ACTIONS[c]] for g, c in zip(gens, eval_choices)) / n
    same = [r["action"] for r in outs["learned"]] == [ACTIONS[c] for c in eval_choices]

    print(f"model {args.model_dir}, set {args.set} ({path}, {n} records, {len(qs)} questions), batch {bs}, device {device}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}; median of {args.reps} rounds")
    print("| run | wall s | CPU s | records/s | mean vision tokens | no / coarse / full | accuracy |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for name in POLICY_ROWS:
        t = table[name]
        ratios = " / ".join(f"{t['ratio'][a]:.2f}" for a in ACTIONS)
        print(f"| predict --policy {name} | {t['wall']:.2f} | {t['cpu']:.2f} | {t['qps']:.1f} | {t['vt']:.1f} | {ratios} | {t['acc']:.4f} |")
    print(f"| evaluation all-branch pass | {ew:.2f} | {statistics.median(cpus['evaluate']):.2f} | {n / ew:.1f} | (all three) | - | learned {eval_acc:.4f} |")
    full, learned = table["full"], table["learned"]
    wr, cr = learned["wall"] / full["wall"], learned["cpu"] / full["cpu"]
    vr = learned["vt"] / full["vt"] if full["vt"] else float("nan")
    applies = vr <= 0.6
    print(f"learned/full: wall {wr:.2f}x (CPU time {cr:.2f}x), vision tokens {vr:.2f}x; target wall <= 0.7x "
          f"{'applies' if applies else 'does not apply (vision tokens > 0.6x)'}"
          f"{(': met' if wr <= 0.7 else ': MISSED') if applies else ''}")
    print(f"learned accuracy: predict {learned['acc']:.4f} vs evaluate {eval_acc:.4f} "
          f"({'equal' if learned['acc'] == eval_acc else 'DIFFERENT'}); choices equal: {same}; "
          f"mean vision tokens predict {learned['vt']:.1f} vs evaluate {evt:.1f}; "
          f"evaluate all-branch / full wall {ew / full['wall']:.2f}x")


if __name__ == "__main__":
    try:
        main()
    except VovnetError as exc:  # e.g. no trained model yet: `dvc repro` builds models/vovnet
        sys.exit(f"error: {exc}")
