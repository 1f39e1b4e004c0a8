import json

import pytest

from vovnet import VovnetError
from vovnet.evaluation import policies
from vovnet.evaluation.core import leakage_guard, policy_metrics
from vovnet.evaluation.protocols import mmbench


def rec(i, q, sha, label=0):
    return {"id": f"d-{i}", "dataset": "d", "question": q, "choices": ["x", "y"], "meta": {"circular_group": i},
            "answer": {"label": label, "text": None, "all": []},
            "images": [{"sha256": sha, "width": 1, "height": 1, "format": "jpeg"}]}


def test_leakage_guard_by_id_and_by_image_question(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps(rec(1, "q1", "a")) + "\n" + json.dumps({**rec(2, "q2", "b"), "id": "other"}) + "\n")
    evalset = [rec(1, "q1", "a"), rec(5, "q2", "b"), rec(6, "q3", "c")]
    with pytest.raises(VovnetError, match=r"2 of 3 records overlap the training file"):
        leakage_guard(evalset, str(train), allow=False)
    assert leakage_guard(evalset, str(train), allow=True) == {"overlap_with_train": 2, "overlap_allowed": True}
    assert leakage_guard([rec(6, "q3", "c")], str(train), allow=False)["overlap_with_train"] == 0


def gens_for(outputs_no, outputs_full, scores):
    return [{"outputs": {"no": a, "coarse": a, "full": b}, "vision_tokens": {"no": 0, "coarse": 4, "full": 16},
             "latency": {"no": 0.01, "coarse": 0.02, "full": 0.03}, "scores": s, "entropy": e}
            for (a, b, s, e) in zip(outputs_no, outputs_full, scores, [0.1, 2.0, 0.5, 3.0])]


def test_policies_metrics_and_cost_shift():
    recs = [rec(i, f"q{i}", f"s{i}") for i in range(4)]
    gens = gens_for(["A", "B", "A", "B"], ["A", "A", "A", "A"],
                    [[1.0, 0.0, 0.5], [0.0, 0.0, 1.0], [0.2, 0.0, 0.9], [0.0, 0.0, 2.0]])
    learned = policies.learned(gens, cost_shift=0.0, cost_norm=0)
    assert learned == [0, 2, 2, 2]
    assert policies.learned(gens, cost_shift=5.0, cost_norm=0) == [0, 0, 0, 0]  # cost dominates: no vision
    m, rows = policy_metrics(mmbench, recs, gens, learned, seed=0)
    assert m["accuracy"] == 1.0 and m["mean_vision_tokens"] == 12.0
    assert m["action_ratio"] == {"no": 0.25, "coarse": 0.0, "full": 0.75}
    assert m["accuracy_per_action"] == {"no": 1.0, "coarse": None, "full": 1.0}
    no_vision = policy_metrics(mmbench, recs, gens, policies.constant(gens, 0), seed=0)[0]
    assert no_vision["accuracy"] == 0.5 and no_vision["mean_vision_tokens"] == 0
    unc, thr = policies.uncertainty(gens, None)
    assert thr == 1.25 and unc == [0, 2, 0, 2]
    rnd = policies.random_matched(learned, seed=0)
    assert sorted(rnd) == sorted(learned) and rnd == policies.random_matched(learned, seed=0)
