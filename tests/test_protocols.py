import random

from hypothesis import given, settings
from hypothesis import strategies as st

from vovnet.evaluation.protocols import mmbench, mmmu, textvqa


def rec(group, label, choices=("cat", "dog", "fish", "bird"), cat="c"):
    return {"id": f"r{group}-{label}", "dataset": "mmbench", "choices": list(choices),
            "answer": {"label": label, "text": None, "all": []},
            "meta": {"circular_group": group, "category": cat, "l2_category": "l2"}}


def test_mmbench_extraction_rules():
    ch = ["cat", "dog", "fish", "bird"]
    assert mmbench.extract_choice("B", ch) == "B"
    assert mmbench.extract_choice("(C) fish.", ch) == "C"
    assert mmbench.extract_choice("I believe the answer is D", ch) == "D"
    assert mmbench.extract_choice("It is clearly a dog in the picture", ch) == "B"  # option text, one match
    assert mmbench.extract_choice("a cat or a dog", ch) is None                      # two option texts: unresolved
    assert mmbench.extract_choice("B or C", ch) is None                              # two letters
    assert mmbench.extract_choice("E", ch) is None                                   # not an option


def test_circular_eval_one_wrong_rotation_fails_the_question():
    recs = [rec(1, 0), rec(1, 3), rec(1, 2), rec(1, 1), rec(2, 0), rec(2, 1)]
    outs = ["A", "D", "C", "A",   # group 1: the last rotation wrong
            "A", "B"]             # group 2: all right
    rows, summary = mmbench.score_records(recs, outs)
    assert summary["accuracy"] == 0.5 and summary["questions"] == 2
    assert summary["vanilla_accuracy"] == 5 / 6
    assert [r["score"] for r in rows] == [1, 1, 1, 0, 1, 1]


def test_circular_eval_unresolved_counts_as_wrong():
    rows, summary = mmbench.score_records([rec(1, 0), rec(1, 1)], ["A", "no idea"])
    assert summary["accuracy"] == 0.0 and rows[1]["resolved"] is False


def test_mmmu_multiple_choice_rules():
    rng = random.Random(0)
    ch = ["red", "green", "blue"]
    assert mmmu.parse_multi_choice("The answer is (B).", ch, rng) == ("B", True)
    assert mmmu.parse_multi_choice("A", ch, rng) == ("A", True)
    assert mmmu.parse_multi_choice("(A) is wrong, the correct one is (C)", ch, rng) == ("C", True)  # last occurring
    assert mmmu.parse_multi_choice("I am quite sure that it is green here", ch, rng) == ("B", True)  # text, >5 words
    letter, resolved = mmmu.parse_multi_choice("green", ch, random.Random(1))  # short: no text match -> random
    assert resolved is False and letter in "ABC"
    assert mmmu.parse_multi_choice("??", ch, random.Random(1)) == mmmu.parse_multi_choice("??", ch, random.Random(1))


def test_mmmu_open_numerics():
    assert mmmu.eval_open(["1234.5"], mmmu.parse_open("So the total is 1,234.50 dollars."))
    assert mmmu.eval_open(["0.03"], mmmu.parse_open("Thus x = 3e-2"))
    assert mmmu.eval_open(["3.14"], mmmu.parse_open("The answer is 3.1416"))  # rounded to 2 decimals
    assert not mmmu.eval_open(["7"], mmmu.parse_open("The answer is 8"))
    assert mmmu.eval_open(["Paris"], mmmu.parse_open("I think the capital is paris"))
    recs = [{"choices": None, "answer": {"label": None, "text": "5", "all": ["5", "five"]}, "meta": {"subject": "Math"}}]
    rows, summary = mmmu.score_records(recs, ["2 + 3 = 5"])
    assert summary["accuracy"] == 1.0 and summary["per_subject"] == {"Math": 1.0}


def test_textvqa_accuracy_two_and_three_annotators():
    answers = ["two", "2", "3", "three", "3", "4", "4", "4", "4", "4"]
    # '2' matched by 2 annotators (two -> 2): 8 subsets see both (2/3), 2 subsets see one (1/3)
    assert abs(textvqa.vqa_accuracy("2", answers) - (8 * 2 / 3 + 2 * 1 / 3) / 10) < 1e-9
    # '3' matched by 3 annotators: 7 subsets see all three (1.0), 3 see two (2/3)
    assert abs(textvqa.vqa_accuracy("Three.", answers) - (7 * 1.0 + 3 * 2 / 3) / 10) < 1e-9
    assert textvqa.vqa_accuracy("4", answers) == 1.0
    assert textvqa.normalize("The Cafe's sign!") == "cafe's sign"
    assert textvqa.normalize("dont stop") == "don't stop"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parsers_never_crash_and_are_deterministic(text):
    ch = ["alpha", "beta", "gamma"]
    assert mmbench.extract_choice(text, ch) == mmbench.extract_choice(text, ch)
    assert mmmu.parse_multi_choice(text, ch, random.Random(3)) == mmmu.parse_multi_choice(text, ch, random.Random(3))
    assert mmmu.parse_open(text) == mmmu.parse_open(text)
    assert 0.0 <= textvqa.vqa_accuracy(text, ["a"] * 10) <= 1.0
