"""Questions, and one policy's figures on them, under the protocol that gives the headline.

A question is a CircularEval group (records sharing `meta.circular_group`; MMBench's rotations) or a single
record. It scores the lowest score of its records, so a circular question counts only when every rotation
is right; for other protocols it is the record's own score. Accuracy, per-action and per-category figures
are all means over questions, so they can be compared with each other and with the headline.
"""

from __future__ import annotations

from collections import defaultdict

from vovnet import VovnetError
from vovnet.evaluation.interfaces import EvalProtocol
from vovnet.evaluation.intervals import clustered_interval, question_clusters
from vovnet.model.answer_parsing import answer_part
from vovnet.model.budgets import ACTIONS

TOO_LONG_ROW = {"parsed": None, "resolved": False, "score": 0.0, "too_long": True}


def score(
    protocol: EvalProtocol, records: list[dict], outputs: list[str], seed: int, thinking: bool = False
) -> tuple[list[dict], dict]:
    """The protocol's scores of the outputs; `thinking`: they are the Thinking model's, whose reasoning is
    stripped first (vovnet/model/answer_parsing.py, which predict parses with too)."""
    return protocol.score_records(records, [answer_part(o, thinking) for o in outputs], seed)


def official_figures(
    protocol: EvalProtocol,
    records: list[dict],
    gens: list[dict],
    choices: list[int],
    seed: int,
    thinking: tuple[str, ...] = (),
) -> dict:
    """The protocol's own summary (POPE: accuracy, precision, recall, F1, yes-ratio; overall and per category)
    of the outputs one policy picks. An output cut at max_new_tokens counts as empty, as it scores 0 here."""
    outputs = [
        "" if g["too_long"][ACTIONS[c]] else answer_part(g["outputs"][ACTIONS[c]], ACTIONS[c] in thinking)
        for g, c in zip(gens, choices)
    ]
    return protocol.score_records(records, outputs, seed)[1]


def question_key(rec: dict) -> tuple:
    group = (rec.get("meta") or {}).get("circular_group")
    return (rec["dataset"], "circular", group) if group is not None else (rec["dataset"], "record", rec["id"])


def questions(records: list[dict]) -> list[list[int]]:
    """Record indices per question, questions ordered by their first record."""
    groups: dict[tuple, list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault(question_key(rec), []).append(i)
    return list(groups.values())


def take_questions(records: list[dict], limit: int | None) -> list[dict]:
    """The first `limit` questions of the id-sorted records, each with all its records."""
    records = sorted(records, key=lambda r: r["id"])
    if limit is None:
        return records
    kept = questions(records)[:limit]
    return [records[i] for q in kept for i in q]


def check_whole_groups(records: list[dict], source: str) -> None:
    """A circular split must hold every rotation of every question: a partial group would be scored on
    fewer rotations, which inflates CircularEval accuracy."""
    qs = [q for q in questions(records) if question_key(records[q[0]])[1] == "circular"]
    if not any(len(q) > 1 for q in qs):
        return  # no rotations at all: plain (single-record) questions
    partial = []
    for q in qs:
        rotations = sorted((records[i]["meta"].get("circular_rotation") or 0) for i in q)
        if rotations != list(range(len(records[q[0]]["choices"] or []))):
            partial.append(records[q[0]]["meta"]["circular_group"])
    if partial:
        raise VovnetError(
            f"{source}: {len(partial)} of {len(qs)} circular questions lack rotations "
            f"(e.g. circular_group {partial[0]}); CircularEval needs whole groups"
        )


def rows_by_action(
    protocol, records: list[dict], gens: list[dict], seed: int, thinking: tuple[str, ...] = ()
) -> dict[str, list[dict]]:
    """Every action's output scored once; a policy then just picks one row per record. `thinking`: the
    actions the Thinking model answered (their reasoning is stripped first)."""
    out = {}
    for action in ACTIONS:
        rows, _ = score(protocol, records, [g["outputs"][action] for g in gens], seed, action in thinking)
        out[action] = [TOO_LONG_ROW if g["too_long"][action] else {**r, "too_long": False} for g, r in zip(gens, rows)]
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def question_scores(qs: list[list[int]], rows: dict[str, list[dict]], choices: list[int]) -> list[float]:
    """Each question's score under one policy: the lowest score of its records at their chosen actions."""
    return [min(rows[ACTIONS[choices[i]]][i]["score"] for i in q) for q in qs]


def expected_question_scores(qs: list[list[int]], rows: dict[str, list[dict]], probs: dict[str, float]) -> list[float]:
    """Each question's expected score when every record independently takes action a with probability
    probs[a] (a random policy's expectation, not one draw). A question scores its lowest record, and for
    independent records P(min >= v) is the product of each record's P(score >= v), so the expectation is
    the sum over the scores' distinct levels v_j of (v_j - v_(j-1)) * P(min >= v_j) (scores lie in [0, 1])."""
    out = []
    for q in qs:
        levels = sorted({rows[a][i]["score"] for i in q for a, p in probs.items() if p > 0} | {0.0})
        expected = 0.0
        for lower, level in zip(levels, levels[1:]):
            at_least = 1.0
            for i in q:
                at_least *= sum(p for a, p in probs.items() if rows[a][i]["score"] >= level)
            expected += (level - lower) * at_least
        out.append(expected)
    return out


def mean_vision_tokens(gens: list[dict], choices: list[int]) -> float:
    """Mean vision tokens per record of one policy (what "equal tokens" compares)."""
    return sum(g["vision_tokens"][ACTIONS[c]] for g, c in zip(gens, choices)) / max(1, len(choices))


def policy_figures(
    records: list[dict],
    qs: list[list[int]],
    rows: dict[str, list[dict]],
    gens: list[dict],
    choices: list[int],
    breakdowns: tuple = (),
    detail: bool = False,
) -> dict:
    """Headline figures of one policy, its accuracy's 95% interval clustered by shared image
    (vovnet/evaluation/intervals.py); with `detail`, per-action and per-field breakdowns too (latency is
    predict's to measure: evaluation runs every action)."""
    picked = [rows[ACTIONS[c]][k] for k, c in enumerate(choices)]
    q_scores = question_scores(qs, rows, choices)
    n = max(1, len(choices))
    fig = {
        "accuracy": _mean(q_scores),
        "interval": clustered_interval(q_scores, question_clusters(records, qs)),
        "vision_tokens": mean_vision_tokens(gens, choices),
        "ratio": {a: sum(c == i for c in choices) / n for i, a in enumerate(ACTIONS)},
        "unresolved": sum(not r["resolved"] and not r["too_long"] for r in picked),
        "too_long": sum(r["too_long"] for r in picked),
    }
    if not detail:
        return fig
    # a question's action: the one all its records took, else "mixed" (rotations may differ)
    by_action: dict[str, list[float]] = defaultdict(list)
    for q, s in zip(qs, q_scores):
        acts = {ACTIONS[choices[i]] for i in q}
        by_action[acts.pop() if len(acts) == 1 else "mixed"].append(s)
    fig["per_action"] = {
        a: {"questions": len(by_action.get(a, [])), "accuracy": _mean(by_action.get(a, []))}
        for a in (*ACTIONS, "mixed")
    }
    for field in breakdowns:
        per: dict[str, list[float]] = defaultdict(list)
        for q, s in zip(qs, q_scores):
            per[str(records[q[0]]["meta"].get(field) or "unknown")].append(s)
        fig[f"per_{field}"] = {k: {"questions": len(v), "accuracy": _mean(v)} for k, v in sorted(per.items())}
    return fig


def without_accuracy(fig: dict) -> dict:
    """A split without answers scores nothing: every accuracy (and its interval) in a policy's figures becomes
    None."""
    return {
        k: None if k in ("accuracy", "interval") else without_accuracy(v) if isinstance(v, dict) else v
        for k, v in fig.items()
    }
