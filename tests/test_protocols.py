"""Questions and CircularEval (the same protocol for headline, per-action and per-category figures),
whole groups under max_samples, too_long rows; parsers never crash."""

import pytest
from conftest import get_protocol
from hypothesis import given, settings
from hypothesis import strategies as st

from vovnet import VovnetError
from vovnet.evaluation import scoring
from vovnet.tasks.mmbench import protocol as mmbench
from vovnet.tasks.mmmu import protocol as mmmu
from vovnet.tasks.textvqa import protocol as textvqa

ANIMALS = ["cat", "dog", "fish", "bird"]


def rec(group, rotation, label, cat="c", choices=ANIMALS):
    return {
        "id": f"r{group:03d}-{rotation}",
        "dataset": "mmbench",
        "choices": list(choices),
        "answer": {"label": label, "text": None, "all": []},
        "meta": {"circular_group": group, "circular_rotation": rotation, "category": cat, "l2_category": "l2"},
    }


def gens(outputs_by_action: list[dict], too_long=None):
    return [
        {
            "outputs": o,
            "vision_tokens": {"no": 0, "coarse": 4, "full": 16},
            "latency": {"no": 0.01, "coarse": 0.02, "full": 0.03},
            "too_long": (too_long or {}).get(k, {"no": False, "coarse": False, "full": False}),
        }
        for k, o in enumerate(outputs_by_action)
    ]


def same(out):
    return {"no": out, "coarse": out, "full": out}


def test_circular_question_needs_every_rotation_and_breakdowns_use_questions():
    recs = [
        rec(1, 0, 0, "x"),
        rec(1, 1, 3, "x"),
        rec(1, 2, 2, "x"),
        rec(1, 3, 1, "x"),
        rec(2, 0, 0, "y"),
        rec(2, 1, 1, "y"),
    ]
    g = gens(
        [
            same("A"),
            same("D"),
            same("C"),
            same("A"),  # question 1: the last rotation wrong
            same("A"),
            same("B"),
        ]
    )  # question 2: all right
    qs = scoring.questions(recs)
    rows = scoring.rows_by_action(get_protocol("mmbench"), recs, g, 0)
    choices = [0, 0, 0, 0, 2, 0]  # question 2's rotations took different actions: "mixed"
    fig = scoring.policy_figures(recs, qs, rows, g, choices, mmbench.BREAKDOWNS, detail=True)
    assert fig["accuracy"] == 0.5 and len(qs) == 2
    assert fig["per_action"]["no"] == {"questions": 1, "accuracy": 0.0}
    assert fig["per_action"]["mixed"] == {"questions": 1, "accuracy": 1.0}
    assert fig["per_category"] == {"x": {"questions": 1, "accuracy": 0.0}, "y": {"questions": 1, "accuracy": 1.0}}
    assert fig["vision_tokens"] == 16 / 6 and fig["ratio"]["full"] == 1 / 6


def test_unresolved_and_too_long_count_as_wrong():
    recs = [rec(1, 0, 0), rec(1, 1, 1), rec(2, 0, 0), rec(2, 1, 1)]
    g = gens(
        [same("A"), same("no idea"), same("A"), same("B")], too_long={3: {"no": False, "coarse": False, "full": True}}
    )
    rows = scoring.rows_by_action(get_protocol("mmbench"), recs, g, 0)
    qs = scoring.questions(recs)
    assert scoring.policy_figures(recs, qs, rows, g, [0, 0, 0, 0])["accuracy"] == 0.5
    full = scoring.policy_figures(recs, qs, rows, g, [2, 2, 2, 2])
    assert full["accuracy"] == 0.0 and full["too_long"] == 1 and full["unresolved"] == 1
    assert rows["full"][3] == {"parsed": None, "resolved": False, "score": 0.0, "too_long": True}


def test_max_samples_counts_questions_and_keeps_groups_whole():
    recs = [rec(g, r, 0) for g in (3, 1, 2) for r in range(4)]
    kept = scoring.take_questions(recs, 2)
    assert len(kept) == 8 and {r["meta"]["circular_group"] for r in kept} == {1, 2}
    scoring.check_whole_groups(kept, "x.jsonl")
    assert len(scoring.take_questions(recs, None)) == 12


def test_partial_circular_groups_fail_with_one_line():
    recs = [rec(1, r, 0) for r in range(4)] + [rec(2, r, 0) for r in range(3)]
    with pytest.raises(
        VovnetError, match=r"^split.jsonl: 1 of 2 circular questions lack rotations \(e.g. circular_group 2\)"
    ):
        scoring.check_whole_groups(recs, "split.jsonl")
    scoring.check_whole_groups([rec(g, 0, 0) for g in range(5)], "lite.jsonl")  # originals only: plain questions


def test_plain_records_are_their_own_questions():
    recs = [
        {
            "id": f"t{i}",
            "dataset": "textvqa",
            "choices": None,
            "meta": {},
            "answer": {"label": None, "text": "stop", "all": ["stop"] * 10},
        }
        for i in range(3)
    ]
    g = gens([same("stop"), same("go"), same("Stop.")])
    rows = scoring.rows_by_action(get_protocol("textvqa"), recs, g, 0)
    assert scoring.policy_figures(recs, scoring.questions(recs), rows, g, [0, 0, 0])["accuracy"] == 2 / 3


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parsers_never_crash_and_are_deterministic(text):
    ch = ["alpha", "beta", "gamma"]
    assert mmbench.match_option(text, ch) == mmbench.match_option(text, ch)
    assert mmmu.parse_multi_choice(text, ch) == mmmu.parse_multi_choice(text, ch)
    assert repr(mmmu.parse_open(text)) == repr(mmmu.parse_open(text))  # repr: a parsed "nan" never equals itself
    assert 0.0 <= textvqa.vqa_accuracy(text, ["a"] * 10) <= 1.0
