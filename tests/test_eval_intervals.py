"""The clustered interval agrees with a direct clustered bootstrap (resampling whole clusters) within 0.01;
clustering widens it where questions share an image; a paired difference is the interval on differences."""

import random

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
