"""Adaptive inference: per batch, one text-only prefill, the policy head, then only each question's
chosen branch (NO continues the prefill's cache; COARSE/FULL reuse the shared text prefix's cache and
add the image at their budget). Images are decoded and preprocessed only for questions that look.

Latency is per request, from its batch's start (reading and decoding its images included) to the
moment its answer exists, measured after a warm-up that runs every branch once. Under
`accelerate launch` the input is sharded over processes and gathered back into one output, in input order.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from vovnet import VovnetError
from vovnet.data.image_store import set_pixel_limit
from vovnet.data.records import Reject
from vovnet.inference.requests import ImageSources, RejectedLine, Request, load_images, read_requests
from vovnet.io_utils import atomic_path, write_lines
from vovnet.model.answer_parsing import parse_choice
from vovnet.model.budgets import ACTIONS, budget_tokens
from vovnet.model.encoding import Encoder
from vovnet.model.factory import load_vovnet
from vovnet.model.generation import NonFiniteLogits, TokenIds, answer_action, non_finite_error, text_prefill
from vovnet.model.policy import choose_action

log = logging.getLogger("vovnet.predict")
POLICIES = ("learned", "full", "coarse", "none")
CONSTANT = {"full": "full", "coarse": "coarse", "none": "no"}


@dataclass
class PredictOptions:
    policy: str = "learned"
    cost_shift: float = 0.0
    cost_norm: float = 0.0
    batch_size: int = 8
    max_new_tokens: int = 8
    thinking_max_new_tokens: int | None = None  # FULL from the Thinking model, when configured
    warmup: bool = True


class Predictor:
    """A loaded VoVNet that answers batches of requests with only the chosen branch."""

    def __init__(self, model, processor, budgets: dict, max_length: int, device, opts: PredictOptions):
        """`max_length`: prompt tokens allowed per action (evaluation.max_length); a longer prompt is a reject."""
        if opts.policy not in POLICIES:
            raise VovnetError(f"--policy {opts.policy!r}: expected one of {', '.join(POLICIES)}")
        if opts.batch_size < 1 or opts.max_new_tokens < 1:
            raise VovnetError("--batch-size and max_new_tokens must be at least 1")
        self.model, self.processor, self.device, self.opts = model, processor, device, opts
        # the limit is checked here, per request
        self.encoder = Encoder(processor, budgets, None, model.prompt_order, model.full_template)
        self.max_length = max_length
        self.ids = TokenIds.of(processor)

    def _tokens_per_action(self, req: Request) -> list[int]:
        ip = self.processor.image_processor
        return [0] + [budget_tokens(ip, req.sizes, self.encoder.budgets[a]) for a in ACTIONS[1:]]

    def _choose(self, reqs: list[Request], scores: torch.Tensor) -> list[str]:
        if self.opts.policy != "learned":
            return [CONSTANT[self.opts.policy]] * len(reqs)
        return [ACTIONS[choose_action(scores[j].tolist(), self._tokens_per_action(r), self.opts.cost_shift,
                                      self.opts.cost_norm)] for j, r in enumerate(reqs)]

    def answer_batch(self, reqs: list[Request], forced: list[str] | None = None) -> tuple[list[dict], list[RejectedLine]]:
        """Answers (in `reqs` order, rejected ones left out) and the requests rejected on the way."""
        t0 = time.perf_counter()
        rejects: list[RejectedLine] = []
        encs_no = [self.encoder.encode(r.rec, [], "no", with_target=False) for r in reqs]
        fits = [j for j, e in enumerate(encs_no) if self._fits(reqs[j], e, "no", rejects)]
        if len(fits) < len(reqs):
            reqs, encs_no = [reqs[j] for j in fits], [encs_no[j] for j in fits]
            forced = [forced[j] for j in fits] if forced else None
            if not reqs:
                return [], rejects
        try:
            return self._answer_fitting(reqs, encs_no, forced, t0, rejects)
        except NonFiniteLogits as exc:  # rows are positions in `reqs`
            raise non_finite_error(exc, [r.id for r in reqs], next(self.model.lm.parameters()).dtype) from None

    def _answer_fitting(self, reqs: list[Request], encs_no: list[dict], forced: list[str] | None, t0: float,
                        rejects: list[RejectedLine]) -> tuple[list[dict], list[RejectedLine]]:
        prefill = text_prefill(self.model.lm, encs_no, self.ids.pad, self.ids.image, self.device)
        scores = self.model.policy_scores(prefill.features).float().cpu()
        actions = forced or self._choose(reqs, scores)
        answers: dict[int, dict] = {}
        for action in ACTIONS:  # regrouped by action; the cheapest answers are out first
            rows = [j for j, a in enumerate(actions) if a == action]
            encs: list[dict] | None = None
            if action != "no":
                kept, encs = [], []
                for j in rows:
                    try:
                        images = load_images(reqs[j])
                    except Reject as exc:
                        rejects.append(RejectedLine(reqs[j].line, reqs[j].id, exc.field, exc.reason))
                        continue
                    enc = self.encoder.encode(reqs[j].rec, images, action, with_target=False,
                                              prefix_len=encs_no[j]["prefix_len"])
                    if self._fits(reqs[j], enc, action, rejects):
                        kept.append(j)
                        encs.append(enc)
                rows = kept
            tokens = answer_action(self.model, prefill, rows, encs, action, self.ids, self.opts.max_new_tokens,
                                   self.opts.thinking_max_new_tokens)
            done = time.perf_counter()
            thinks = self.model.thinks(action)
            for k, (j, toks) in enumerate(zip(rows, tokens)):
                text = self.processor.tokenizer.decode(toks, skip_special_tokens=True).strip()
                choices = reqs[j].rec["choices"]
                answers[j] = {"id": reqs[j].id, "answer": text, "parsed": parse_choice(text, choices, thinks) if choices else None,
                              "action": action, "vision_tokens": 0 if encs is None else int(encs[k]["vision_tokens"]),
                              "latency_ms": (done - t0) * 1000.0, "policy_scores": scores[j].tolist(),
                              "_line": reqs[j].line}
        return [answers[j] for j in sorted(answers)], rejects

    def _fits(self, req: Request, enc: dict, action: str, rejects: list[RejectedLine]) -> bool:
        if len(enc["input_ids"]) <= self.max_length:
            return True
        rejects.append(RejectedLine(req.line, req.id, "question" if action == "no" else "image",
                                    f"prompt of {len(enc['input_ids'])} tokens with {action} vision exceeds "
                                    f"evaluation.max_length {self.max_length}"))
        return False

    def warm_up(self, reqs: list[Request]) -> None:
        """Every branch once on the first request, untimed (first calls allocate and pick kernels)."""
        if reqs:
            for action in ACTIONS:
                self.answer_batch(reqs[:1], forced=[action])

    def answer_all(self, reqs: list[Request], show_progress: bool = True) -> tuple[list[dict], list[RejectedLine]]:
        out, rejects = [], []
        bs = self.opts.batch_size
        for start in tqdm(range(0, len(reqs), bs), unit="batch", desc="predict", disable=not show_progress or len(reqs) <= bs):
            a, r = self.answer_batch(reqs[start:start + bs])
            out.extend(a)
            rejects.extend(r)
        return out, rejects


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 1])."""
    if not values:
        return None
    vals = sorted(values)
    return vals[min(len(vals) - 1, int(round(q * (len(vals) - 1))))]


def summarize(rows: list[dict], n_rejected: int, wall_s: float) -> dict:
    n = len(rows)
    per_action = {a: [r["latency_ms"] for r in rows if r["action"] == a] for a in ACTIONS}
    return {"questions": n, "rejected": n_rejected, "wall_s": wall_s, "questions_per_s": n / wall_s if wall_s > 0 else None,
            "mean_vision_tokens": sum(r["vision_tokens"] for r in rows) / n if n else 0.0,
            "action_ratio": {a: (len(v) / n if n else 0.0) for a, v in per_action.items()},
            "latency_ms": {a: {"n": len(v), "p50": percentile(v, 0.5), "p90": percentile(v, 0.9)}
                           for a, v in per_action.items()}}


def summary_line(s: dict) -> str:
    ratios = " ".join(f"{a}={s['action_ratio'][a]:.2f}" for a in ACTIONS)
    lat = " ".join(f"{a}:p50={v['p50']:.1f}/p90={v['p90']:.1f}" for a, v in s["latency_ms"].items() if v["n"])
    qps = f"{s['questions_per_s']:.2f}" if s["questions_per_s"] is not None else "n/a"
    return (f"predict: {s['questions']} questions ({s['rejected']} rejected) in {s['wall_s']:.2f} s, {qps} questions/s, "
            f"mean vision tokens {s['mean_vision_tokens']:.1f}, actions {ratios}; latency ms {lat or 'n/a'}")


def rejects_path(output: str | Path) -> Path:
    out = Path(output)
    return out.with_name(out.stem + ".rejects.jsonl")


def check_trained_dir(model_dir: str | Path) -> None:
    """One line naming what a trained model directory lacks (before any weights are read)."""
    d = Path(model_dir)
    if not d.is_dir():
        raise VovnetError(f"model directory {d} not found (run `dvc repro train` or `dvc pull`)")
    missing = [f for f in ("vovnet_config.json", "head.safetensors", "head_config.json") if not (d / f).exists()]
    if not [p for p in d.glob("*.safetensors") if p.name != "head.safetensors"]:
        missing.append("model or adapter weights (*.safetensors)")
    if missing:
        raise VovnetError(f"model directory {d} is incomplete: missing {', '.join(missing)}")


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path, params: dict,
                 opts: PredictOptions, image_root: str | Path | None = None,
                 processed_root: str | Path = "data/processed") -> dict | None:
    """Answer every line of `input_path` into `output_path` (atomically) and its rejects file.

    Returns the summary on the main process (None on the others)."""
    from accelerate.utils import gather_object

    from vovnet.launch import process_state

    state = process_state()
    check_trained_dir(model_dir)
    set_pixel_limit(params["normalize"]["max_image_pixels"])
    sources = ImageSources(image_root if image_root is not None else Path(input_path).parent, processed_root)
    rank, world = state.process_index, state.num_processes
    reqs, rejects = read_requests(input_path, sources, keep=lambda n: n % world == rank)
    log.info("predict: process %d of %d on %s: %d requests", rank, world, state.device, len(reqs))
    model, processor, _ = load_vovnet(model_dir, params, state.device)
    predictor = Predictor(model, processor, params["vision_budget"], params["evaluation"]["max_length"], state.device,
                          opts)
    if opts.warmup:
        predictor.warm_up(reqs)
    state.wait_for_everyone()
    t0 = time.perf_counter()
    rows, late = predictor.answer_all(reqs, show_progress=state.is_main_process)
    rejects += late
    if world > 1:
        rows, rejects = gather_object(rows), gather_object(rejects)
    wall = time.perf_counter() - t0
    if not state.is_main_process:
        return None
    rows.sort(key=lambda r: r.pop("_line"))
    rejects.sort(key=lambda r: r.line)
    with atomic_path(output_path) as tmp_out, atomic_path(rejects_path(output_path)) as tmp_rej:
        write_lines(tmp_out, rows)
        write_lines(tmp_rej, [r.row() for r in rejects])
    summary = summarize(rows, len(rejects), wall)
    if rejects:
        log.warning("%d input lines rejected (see %s)", len(rejects), rejects_path(output_path))
    return summary
