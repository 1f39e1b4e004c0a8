"""model.prompt_order: prefill tokens per action and evaluation's all-branch wall time, image_first vs text_first.

One trained model, one split, both orders in turn (`--reps` rounds, the median round shown), after a warm-up.
Prefill tokens are what each action's branch runs through the model before decoding: NO the text-only prompt
(both orders); COARSE/FULL under text_first only the suffix after the reused text prefix (image, end of
turn, assistant header), under image_first the whole vision prompt. The wall time is `generate_all`, the
evaluation core's pass over every action of every question, images read and preprocessed included.
Accuracy is printed for reference only: the model was trained under one order, so the other order's
accuracy says how far a prompt change moves that model, not which order trains better (that is the
`dvc exp run -S model.prompt_order=...` comparison on real weights, README "The method").

    python benchmarks/bench_prompt_order.py --set demo --reps 3        # after `python -m vovnet preset demo && dvc repro`
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from vovnet.config import load_params  # noqa: E402
from vovnet.data.image_store import set_pixel_limit  # noqa: E402
from vovnet.evaluation import policies, scoring  # noqa: E402
from vovnet.evaluation.core import load_eval_records  # noqa: E402
from vovnet.evaluation.interfaces import EvalProtocol  # noqa: E402
from vovnet.model.budgets import ACTIONS  # noqa: E402
from vovnet.model.encoding import Encoder, RecordDataset  # noqa: E402
from vovnet.model.factory import load_vovnet  # noqa: E402
from vovnet.model.generation import generate_all  # noqa: E402
from vovnet.model.prompts import PROMPT_ORDERS  # noqa: E402
from vovnet.registry import get_protocol  # noqa: E402


def prefill_tokens(encs: list[dict]) -> dict[str, float]:
    """Mean tokens each action's branch prefills per question (see the module docstring)."""
    out = {}
    for action in ACTIONS:
        counts = [len(e[action]["input_ids"]) - (e[action]["prefix_len"] or 0 if action != "no" else 0) for e in encs]
        out[action] = sum(counts) / len(counts)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model-dir", default="models/vovnet")
    ap.add_argument("--set", default="mmbench", help="an evaluation set in params (its dataset/split is used)")
    ap.add_argument("--batch-size", type=int, help="default: evaluation.batch_size")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-samples", type=int, help="questions, as evaluation.max_samples")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    ecfg = params["evaluation"]
    set_cfg = ecfg["sets"][args.set]
    records = load_eval_records(args.set, set_cfg, args.max_samples)
    bs = args.batch_size or ecfg["batch_size"]
    set_pixel_limit(params["normalize"]["max_image_pixels"])
    model, processor, trained = load_vovnet(args.model_dir, params, "cpu")
    protocol = get_protocol(set_cfg["protocol"], EvalProtocol)
    datasets = {
        o: RecordDataset(records, Encoder(processor, params["vision_budget"], None, o), with_target=False)
        for o in PROMPT_ORDERS
    }
    tokens = {o: prefill_tokens([ds[i] for i in range(len(ds))]) for o, ds in datasets.items()}
    walls: dict[str, list[float]] = {o: [] for o in PROMPT_ORDERS}
    accuracy: dict[str, float] = {}
    for ds in datasets.values():  # warm-up
        generate_all(
            model,
            processor,
            RecordDataset(records[:bs], ds.encoder, with_target=False),
            bs,
            ecfg["max_new_tokens"],
            "cpu",
            ecfg["max_length"],
            progress=False,
        )
    for _ in range(args.reps):
        for order, ds in datasets.items():
            t0 = time.perf_counter()
            gens = generate_all(
                model, processor, ds, bs, ecfg["max_new_tokens"], "cpu", ecfg["max_length"], progress=False
            )
            walls[order].append(time.perf_counter() - t0)
            rows = scoring.rows_by_action(protocol, records, gens, ecfg["seed"])
            qs = scoring.questions(records)
            full = policies.constant(gens, policies.FIXED["always_full"])
            accuracy[order] = scoring.policy_figures(records, qs, rows, gens, full)["accuracy"]
    print(
        f"# {platform.node()} {torch.get_num_threads()} thread(s); {len(records)} records of {args.set}, batch {bs}, "
        f"{args.reps} rounds; model trained with prompt_order={trained['model'].get('prompt_order', 'text_first')}"
    )
    print(
        f"{'order':<12} {'NO':>6} {'COARSE':>7} {'FULL':>6} {'all-branch s':>13} {'min':>7} {'max':>7} {'always-full acc':>16}"
    )
    for order in PROMPT_ORDERS:
        t, w = tokens[order], walls[order]
        print(
            f"{order:<12} {t['no']:>6.1f} {t['coarse']:>7.1f} {t['full']:>6.1f} {statistics.median(w):>13.2f} "
            f"{min(w):>7.2f} {max(w):>7.2f} {accuracy[order]:>16.3f}"
        )
    ratio = statistics.median(walls["image_first"]) / statistics.median(walls["text_first"])
    extra = {a: tokens["image_first"][a] - tokens["text_first"][a] for a in ("coarse", "full")}
    print(
        f"image_first / text_first all-branch time: {ratio:.2f}x; extra prefill tokens per question: "
        f"COARSE +{extra['coarse']:.1f}, FULL +{extra['full']:.1f}"
    )


if __name__ == "__main__":
    main()
