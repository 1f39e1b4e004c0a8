"""The clustered interval agrees with a direct clustered bootstrap (resampling whole clusters) within 0.01;
clustering widens it where questions share an image; a paired difference is the interval on differences."""

import random

import pytest

from vovnet.evaluation.intervals import clustered_interval, paired_interval, question_clusters


def bootstrap_se(values, clusters, draws=4000, seed=0):
    by = {}
    for v, c in zip(values, clusters):
        by.setdefault(c, []).append(v)
    groups = list(by.values())
    rng, means = random.Random(seed), []
    for _ in range(draws):
        pick = [groups[rng.randrange(len(groups))] for _ in groups]
        vals = [v for g in pick for v in g]
        means.append(sum(vals) / len(vals))
    m = sum(means) / draws
    return (sum((x - m) ** 2 for x in means) / (draws - 1)) ** 0.5


def fixture(seed=1, images=60, per_image=4):
    rng = random.Random(seed)
    values, clusters = [], []
    for i in range(images):
        p = rng.random()  # questions on one image succeed together more often: correlated
        values += [float(rng.random() < p) for _ in range(per_image)]
        clusters += [i] * per_image
    return values, clusters


def test_clustered_interval_matches_a_clustered_bootstrap():
    values, clusters = fixture()
    got = clustered_interval(values, clusters)
    assert abs(got["se"] - bootstrap_se(values, clusters)) < 0.01
    assert abs(got["ci95"][1] - got["mean"] - 1.96 * got["se"]) < 1e-3
    plain = clustered_interval(values, list(range(len(values))))
    assert got["se"] > plain["se"]  # correlated questions: the clustered interval is wider
    assert got["clusters"] == 60 and plain["clusters"] == len(values)


def test_paired_interval_is_the_interval_on_differences():
    a, clusters = fixture(seed=2)
    b = [1.0 - x if k % 5 == 0 else x for k, x in enumerate(a)]
    got = paired_interval(a, b, clusters)
    diffs = [x - y for x, y in zip(a, b)]
    assert abs(got["mean"] - sum(diffs) / len(diffs)) < 1e-12
    assert abs(got["se"] - bootstrap_se(diffs, clusters)) < 0.01
    same = paired_interval(a, a, clusters)
    assert same["se"] == 0 and not same["beyond_interval"]


def test_questions_sharing_an_image_are_one_cluster():
    recs = [{"images": [{"sha256": "x"}]}, {"images": [{"sha256": "x"}]}, {"images": []}, {"images": []}]
    assert question_clusters(recs, [[0], [1], [2], [3]]) == [
        ("image", "x"),
        ("image", "x"),
        ("question", 2),
        ("question", 3),
    ]


# ---- the intervals in the evaluation's outputs: every policy's accuracy and the paired comparisons ----

ACTS = ("no", "coarse", "full")
TOKENS = {"no": 0, "coarse": 1, "full": 4}


def scored_fixture(seed=3, images=40, per_image=3, circular_every=0):
    """Records on shared images, each action's 0/1 score (FULL right more often), and the gens a policy
    reads; every `circular_every`-th image's questions form one circular group of `per_image` rotations."""
    rng = random.Random(seed)
    records, rows = [], {a: [] for a in ACTS}
    for i in range(images):
        skill = rng.random()
        for k in range(per_image):
            circular = circular_every and i % circular_every == 0
            meta = {"circular_group": i, "circular_rotation": k} if circular else {}
            records.append({"id": f"r{i}-{k}", "dataset": "d", "meta": meta, "images": [{"sha256": f"img{i}"}]})
            for a, p in zip(ACTS, (0.3 * skill, 0.6 * skill, 0.4 + 0.6 * skill)):
                rows[a].append({"score": float(rng.random() < p), "resolved": True, "too_long": False})
    gens = [{"vision_tokens": dict(TOKENS)} for _ in records]
    return records, rows, gens


def test_every_policys_accuracy_carries_its_clustered_interval():
    from vovnet.evaluation import scoring

    records, rows, gens = scored_fixture()
    qs = scoring.questions(records)
    choices = [2 if k % 3 else 0 for k in range(len(records))]
    fig = scoring.policy_figures(records, qs, rows, gens, choices)
    per_q = scoring.question_scores(qs, rows, choices)
    assert fig["interval"]["mean"] == fig["accuracy"] == sum(per_q) / len(per_q)
    clusters = [records[q[0]]["images"][0]["sha256"] for q in qs]
    assert abs(fig["interval"]["se"] - bootstrap_se(per_q, clusters)) < 0.01
    assert fig["interval"]["clusters"] == 40 and fig["interval"]["questions"] == 120
    assert scoring.without_accuracy(fig)["interval"] is None


def test_random_is_compared_against_its_expectation_over_draws():
    from vovnet.evaluation import scoring

    records, rows, gens = scored_fixture(circular_every=4)
    qs = scoring.questions(records)
    assert len(qs) < len(records)  # circular groups: a question scores its lowest rotation
    expected = scoring.expected_question_scores(qs, rows, {"no": 0.7, "full": 0.3})
    rng, draws, total = random.Random(5), 3000, [0.0] * len(qs)
    for _ in range(draws):
        choice = [2 if rng.random() < 0.3 else 0 for _ in records]
        total = [t + s for t, s in zip(total, scoring.question_scores(qs, rows, choice))]
    assert max(abs(t / draws - e) for t, e in zip(total, expected)) < 0.04
    assert sum(expected) / len(qs) == pytest.approx(sum(total) / draws / len(qs), abs=0.01)
    # graded scores (TextVQA's thirds): the expectation of the lowest record, exactly
    two = {a: [{"score": s} for s in pair] for a, pair in (("no", (1 / 3, 1.0)), ("full", (1.0, 2 / 3)))}
    got = scoring.expected_question_scores([[0, 1]], two, {"no": 0.5, "full": 0.5})
    assert got[0] == pytest.approx(0.25 * (1 / 3 + 1 / 3 + 1.0 + 2 / 3))


def test_paired_comparisons_at_equal_tokens_match_the_reported_figures_and_a_bootstrap():
    from vovnet.evaluation import policies, scoring
    from vovnet.evaluation.comparisons import paired_comparisons

    records, rows, gens = scored_fixture(seed=4)
    qs, n = scoring.questions(records), len(records)
    learned = [2 if rows["full"][k]["score"] > rows["no"][k]["score"] else 0 for k in range(n)]  # an oracle-ish
    ents = [random.Random(k).random() for k in range(n)]
    curves = {
        "random": [(r, policies.random_full(n, r, 0)) for r in (0.0, 0.5, 1.0)],
        "uncertainty": policies.uncertainty_sweep(ents, ents, [0.2, 0.5, 0.8]),
    }
    got = paired_comparisons(records, qs, rows, gens, learned, curves)
    assert set(got) == {"always_full", "random", "uncertainty"}
    tokens = scoring.mean_vision_tokens(gens, learned)
    pts = [report_point(records, qs, rows, gens, c) for _, c in curves["uncertainty"]]
    assert got["uncertainty"]["baseline"] == pytest.approx(policies.at_cost(pts, tokens))
    share = tokens / TOKENS["full"]
    no, full = (scoring.policy_figures(records, qs, rows, gens, [a] * n)["accuracy"] for a in (0, 2))
    assert got["random"]["baseline"] == pytest.approx((1 - share) * no + share * full)
    assert got["always_full"]["baseline"] == full and got["always_full"]["baseline_tokens"] == TOKENS["full"]
    mine = scoring.question_scores(qs, rows, learned)
    clusters = [records[q[0]]["images"][0]["sha256"] for q in qs]
    for name in got:
        c = got[name]
        assert c["difference"] == pytest.approx(c["learned"] - c["baseline"]) and c["learned"] == sum(mine) / len(qs)
    diffs = [x - y for x, y in zip(mine, scoring.question_scores(qs, rows, [2] * n))]
    assert abs(got["always_full"]["se"] - bootstrap_se(diffs, clusters)) < 0.01
    assert got["random"]["beyond_interval"] and got["random"]["ci95"][0] > 0  # the oracle beats random clearly
    # a learned policy cheaper than every point of a curve has no comparison on it
    cheap = paired_comparisons(records, qs, rows, gens, [0] * n, {"uncertainty": curves["uncertainty"][2:]})
    assert cheap["uncertainty"] is None and cheap["random"]["difference"] == 0


def report_point(records, qs, rows, gens, choices):
    from vovnet.evaluation import report, scoring

    return report.pareto_point("p", scoring.policy_figures(records, qs, rows, gens, choices))


def test_cost_weights_reproduce_the_interpolation():
    from vovnet.evaluation.policies import cost_weights

    assert cost_weights([0.0, 10.0, 10.0, 20.0], 5.0) == {0: 0.5, 1: 0.25, 2: 0.25}
    assert cost_weights([0.0, 10.0], 10.0) == {0: 0.0, 1: 1.0}
    assert cost_weights([3.0], 3.0) == {0: 1.0} and cost_weights([0.0, 1.0], 1.5) is None
