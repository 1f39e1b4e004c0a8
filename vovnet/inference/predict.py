"""Adaptive inference: a text-only prefill per batch of questions and the policy head, then per-action
queues, so every question runs only its chosen branch and every branch runs in full batches.

The text pass takes the input in batches of `batch_size` and sends each question to its action's queue
(NO continues the prefill's cache; COARSE/FULL reuse the shared text prefix's cache and add the image at
their budget). A queue runs one batch as soon as it holds `batch_size` questions, and what it holds when
the input ends: every generate call runs at the configured batch size, except the last one per action.
Queued questions from different text passes are joined into one batch (vovnet/model/prefill_rows.py).
Images are decoded and preprocessed only for questions that look, when they join a queue.

Latency is per request, from its arrival (the start of its text-pass batch, the wait in its queue
included) to the moment its answer exists, measured after a warm-up that runs every branch once. Under
`accelerate launch` the input is sharded over processes and gathered back into one output, in input order.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from vovnet import VovnetError, actions
from vovnet.actions import NAMES as ACTIONS
from vovnet.data.image_store import set_pixel_limit
from vovnet.data.records import Reject
from vovnet.inference.requests import ImageSources, RejectedLine, Request, load_images, read_requests
from vovnet.io_utils import atomic_path, write_lines
from vovnet.model.answer_parsing import parse_choice
from vovnet.model.budgets import budget_tokens
from vovnet.model.encoding import Encoder
from vovnet.model.factory import load_vovnet
from vovnet.model.generation import NonFiniteLogits, Prefill, TokenIds, answer_action, non_finite_error, text_prefill
from vovnet.model.policy import choose_action
from vovnet.model.prefill_rows import join, take

log = logging.getLogger("vovnet.predict")
# --policy: the learned policy, or one action for every question (its CLI spelling -> its name), richest first
CONSTANT = {cli: actions.by_cli(cli).name for cli in actions.CLI}
POLICIES = ("learned", *actions.CLI)


@dataclass
class PredictOptions:
    policy: str = "learned"
    cost_shift: float = 0.0
    cost_norm: float = 0.0
    batch_size: int = 8
    max_new_tokens: int = 8
    thinking_max_new_tokens: int | None = None  # FULL from the Thinking model, when configured
    warmup: bool = True


@dataclass
class Queued:
    """A question past the text pass, waiting in its action's queue."""

    req: Request
    arrival: float  # time.perf_counter() when its text-pass batch started
    piece: Prefill  # its text pass's rows for this action (shared by those questions)
    row: int  # its row in `piece`
    enc: dict | None  # its encoding at the action's budget (None for the text-only action)
    scores: list[float]
    text_tokens: int  # its text-only prompt, prefilled by the text pass


@dataclass
class Answered:
    rows: list[dict] = field(default_factory=list)  # answers in input order, rejected requests left out
    rejects: list[RejectedLine] = field(default_factory=list)
    batch_sizes: dict[str, list[int]] = field(default_factory=lambda: {a: [] for a in ACTIONS})  # per generate call


class Predictor:
    """A loaded VoVNet that answers requests with only the chosen branch, through per-action queues."""

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
        ip, budgets = self.processor.image_processor, self.encoder.budgets
        return [0 if a.text_only else budget_tokens(ip, req.sizes, budgets[a.name]) for a in actions.ACTIONS]

    def _choose(self, reqs: list[Request], scores: torch.Tensor) -> list[str]:
        if self.opts.policy != "learned":
            return [CONSTANT[self.opts.policy]] * len(reqs)
        return [
            ACTIONS[
                choose_action(scores[j].tolist(), self._tokens_per_action(r), self.opts.cost_shift, self.opts.cost_norm)
            ]
            for j, r in enumerate(reqs)
        ]

    def answer_all(self, reqs: list[Request], show_progress: bool = True, action: str | None = None) -> Answered:
        """Answers of `reqs` (in their order) and the requests rejected on the way. `action`: send every
        request to this action instead of the policy's choice (the warm-up)."""
        bs, out = self.opts.batch_size, Answered()
        queues: dict[str, deque[Queued]] = {a: deque() for a in ACTIONS}
        batch: list[tuple[Request, dict]] = []
        arrival = time.perf_counter()
        for req in tqdm(reqs, unit="question", desc="predict", disable=not show_progress or len(reqs) <= bs):
            enc_no = self.encoder.encode(req.rec, [], actions.TEXT, with_target=False)
            if self._fits(req, enc_no, actions.TEXT, out.rejects):
                batch.append((req, enc_no))
            if len(batch) == bs:
                self._text_pass(batch, arrival, queues, out.rejects, action)
                batch = []
                for a in ACTIONS:  # full queues run now; the others wait for more questions
                    while len(queues[a]) >= bs:
                        self._run(a, [queues[a].popleft() for _ in range(bs)], out)
                arrival = time.perf_counter()
        if batch:
            self._text_pass(batch, arrival, queues, out.rejects, action)
        for a in ACTIONS:  # the input has ended: what is queued runs
            while queues[a]:
                self._run(a, [queues[a].popleft() for _ in range(min(bs, len(queues[a])))], out)
        out.rows.sort(key=lambda r: r["_line"])
        return out

    def _text_pass(
        self,
        batch: list[tuple[Request, dict]],
        arrival: float,
        queues: dict[str, deque],
        rejects: list[RejectedLine],
        action: str | None,
    ) -> None:
        """The text-only prefill and the head over `batch`; each question joins its action's queue."""
        reqs, encs_no = [r for r, _ in batch], [e for _, e in batch]
        try:
            prefill = text_prefill(self.model.lm, encs_no, self.ids.pad, self.ids.image, self.device)
        except NonFiniteLogits as exc:  # rows are positions in `reqs`
            raise non_finite_error(exc, [r.id for r in reqs], self._dtype()) from None
        scores = self.model.policy_scores(prefill.features).float().cpu()
        chosen_actions = [action] * len(reqs) if action else self._choose(reqs, scores)
        for a in ACTIONS:
            text_only = actions.by_name(a).text_only
            rows, encs = [], []
            for j in (j for j, chosen in enumerate(chosen_actions) if chosen == a):
                enc = None if text_only else self._vision_encoding(reqs[j], a, encs_no[j]["prefix_len"], rejects)
                if text_only or enc is not None:
                    rows.append(j)
                    encs.append(enc)
            if rows:
                piece = take(prefill, rows)
                queues[a].extend(
                    Queued(reqs[j], arrival, piece, k, enc, scores[j].tolist(), len(encs_no[j]["input_ids"]))
                    for k, (j, enc) in enumerate(zip(rows, encs))
                )

    def _vision_encoding(self, req: Request, action: str, prefix_len: int, rejects: list[RejectedLine]) -> dict | None:
        """The request's prompt with its images at the action's budget; None (and a reject) when it cannot run."""
        try:
            images = load_images(req)
        except Reject as exc:
            rejects.append(RejectedLine(req.line, req.id, exc.field, exc.reason))
            return None
        enc = self.encoder.encode(req.rec, images, action, with_target=False, prefix_len=prefix_len)
        return enc if self._fits(req, enc, action, rejects) else None

    def _run(self, action: str, batch: list[Queued], out: Answered) -> None:
        """One generate call: `batch` (one action's queued questions) answered and appended to `out`."""
        pieces = [
            take(group[0].piece, [q.row for q in group])
            for group in (list(g) for _, g in itertools.groupby(batch, key=lambda q: id(q.piece)))
        ]  # one text pass each
        encs = None if actions.by_name(action).text_only else [q.enc for q in batch]
        try:
            tokens = answer_action(
                self.model,
                join(pieces, self.ids.pad),
                list(range(len(batch))),
                encs,
                action,
                self.ids,
                self.opts.max_new_tokens,
                self.opts.thinking_max_new_tokens,
            )
        except NonFiniteLogits as exc:  # rows are positions in `batch`
            raise non_finite_error(exc, [q.req.id for q in batch], self._dtype()) from None
        done = time.perf_counter()
        out.batch_sizes[action].append(len(batch))
        thinks = self.model.thinks(action)  # the Thinking model prefills its whole prompt, and reasons first
        for k, (q, toks) in enumerate(zip(batch, tokens)):
            text = self.processor.tokenizer.decode(toks, skip_special_tokens=True).strip()
            choices = q.req.rec["choices"]
            vision = 0 if encs is None else int(encs[k]["vision_tokens"])
            # the text this branch prefills itself: all of its prompt's text, less a prefix reused from the text pass
            reused = 0 if encs is None or thinks or encs[k]["prefix_len"] is None else encs[k]["prefix_len"]
            branch_text = 0 if encs is None else len(encs[k]["input_ids"]) - vision - reused
            out.rows.append(
                {
                    "id": q.req.id,
                    "answer": text,
                    "parsed": parse_choice(text, choices, thinks) if choices else None,
                    "action": action,
                    "vision_tokens": vision,
                    "text_tokens": q.text_tokens + branch_text,
                    "generated_tokens": len(toks),
                    "latency_ms": (done - q.arrival) * 1000.0,
                    "policy_scores": q.scores,
                    "_line": q.req.line,
                }
            )

    def _dtype(self) -> torch.dtype:
        return next(self.model.lm.parameters()).dtype

    def _fits(self, req: Request, enc: dict, action: str, rejects: list[RejectedLine]) -> bool:
        if len(enc["input_ids"]) <= self.max_length:
            return True
        rejects.append(
            RejectedLine(
                req.line,
                req.id,
                "question" if actions.by_name(action).text_only else "image",
                f"prompt of {len(enc['input_ids'])} tokens with {action} vision exceeds "
                f"evaluation.max_length {self.max_length}",
            )
        )
        return False

    def warm_up(self, reqs: list[Request]) -> None:
        """Every branch once on the first request, untimed (first calls allocate and pick kernels)."""
        if not reqs:
            return
        for action in ACTIONS:
            self.answer_all(reqs[:1], show_progress=False, action=action)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 1])."""
    if not values:
        return None
    vals = sorted(values)
    return vals[min(len(vals) - 1, int(round(q * (len(vals) - 1))))]


def summarize(
    rows: list[dict],
    n_rejected: int,
    wall_s: float,
    cpu_s: float | None = None,
    batch_sizes: dict[str, list[int]] | None = None,
) -> dict:
    """The run's figures: time, the tokens it paid for (the text pass of every question included), actions,
    latency, and the rows of each generate call per action (`batch_sizes`, from Answered)."""
    n = len(rows)
    per_action = {a: [r["latency_ms"] for r in rows if r["action"] == a] for a in ACTIONS}
    tokens = {k: sum(r[f"{k}_tokens"] for r in rows) for k in ("vision", "text", "generated")}
    return {
        "questions": n,
        "rejected": n_rejected,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "questions_per_s": n / wall_s if wall_s > 0 else None,
        "tokens": tokens,
        "mean_vision_tokens": tokens["vision"] / n if n else 0.0,
        "action_ratio": {a: (len(v) / n if n else 0.0) for a, v in per_action.items()},
        "generate_batches": batch_sizes if batch_sizes is not None else {a: [] for a in ACTIONS},
        "latency_ms": {
            a: {"n": len(v), "p50": percentile(v, 0.5), "p90": percentile(v, 0.9)} for a, v in per_action.items()
        },
    }


def mix_bound(shares: dict[str, float], walls: dict[str, float]) -> float:
    """What an action mix costs if adapting costs nothing: the sum over actions of the share of questions
    sent there times the wall time of the policy that always takes it (`walls` by policy name, as POLICIES)."""
    return sum(shares[action] * walls[policy] for policy, action in CONSTANT.items())


def summary_line(s: dict) -> str:
    n = max(1, s["questions"])
    ratios = " ".join(f"{a}={s['action_ratio'][a]:.2f}" for a in ACTIONS)
    calls = " ".join(f"{a}={len(v)}" for a, v in s["generate_batches"].items())
    lat = " ".join(f"{a}:p50={v['p50']:.1f}/p90={v['p90']:.1f}" for a, v in s["latency_ms"].items() if v["n"])
    qps = f"{s['questions_per_s']:.2f}" if s["questions_per_s"] is not None else "n/a"
    cpu = f" (CPU {s['cpu_s']:.2f} s)" if s["cpu_s"] is not None else ""
    t = s["tokens"]
    return (
        f"predict: {s['questions']} questions ({s['rejected']} rejected) in {s['wall_s']:.2f} s{cpu}, "
        f"{qps} questions/s; "
        f"per question: vision tokens {t['vision'] / n:.1f}, text tokens prefilled {t['text'] / n:.1f}, "
        f"tokens generated {t['generated'] / n:.1f}; actions {ratios}; generate calls {calls}; "
        f"latency ms {lat or 'n/a'}"
    )


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


def predict_file(
    model_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    params: dict,
    opts: PredictOptions,
    image_root: str | Path | None = None,
    processed_root: str | Path = "data/processed",
) -> dict | None:
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
    predictor = Predictor(
        model, processor, params["vision_budget"], params["evaluation"]["max_length"], state.device, opts
    )
    if opts.warmup:
        predictor.warm_up(reqs)
    state.wait_for_everyone()
    t0, c0 = time.perf_counter(), time.process_time()
    answered = predictor.answer_all(reqs, show_progress=state.is_main_process)
    cpu = [time.process_time() - c0]
    rows, rejects, batches = answered.rows, rejects + answered.rejects, [answered.batch_sizes]
    if world > 1:
        rows, rejects, cpu, batches = (
            gather_object(rows),
            gather_object(rejects),
            gather_object(cpu),
            gather_object(batches),
        )
    wall = time.perf_counter() - t0
    if not state.is_main_process:
        return None
    rows.sort(key=lambda r: r.pop("_line"))
    rejects.sort(key=lambda r: r.line)
    with atomic_path(output_path) as tmp_out, atomic_path(rejects_path(output_path)) as tmp_rej:
        write_lines(tmp_out, rows)
        write_lines(tmp_rej, [r.row() for r in rejects])
    summary = summarize(rows, len(rejects), wall, sum(cpu), {a: [n for b in batches for n in b[a]] for a in ACTIONS})
    if rejects:
        log.warning("%d input lines rejected (see %s)", len(rejects), rejects_path(output_path))
    return summary
