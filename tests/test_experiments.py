"""`python -m vovnet exps`: experiments side by side from `dvc exp show --json` (real output, trimmed)."""

import json
from pathlib import Path

from vovnet.experiments import rows_from_json, table

FIXTURE = Path(__file__).parent / "fixtures" / "dvc_exp_show.json"


def test_rows_cover_the_workspace_the_baseline_commit_and_each_experiment():
    rows = rows_from_json(json.loads(FIXTURE.read_text()))
    assert [r["name"] for r in rows] == ["workspace", "main", "└─ dotty-yawl"]
    assert [r["params"]["train.lr"] for r in rows] == [1e-05, 0.002, 1e-05]
    # only eval/<set>/metrics.json feeds the table, not the baseline rows beside it
    assert rows[1]["sets"]["mmmu"] == {"acc": 0.125, "acc_se": None, "tokens": 0.75}  # before the intervals
    assert rows[2]["sets"]["mmmu"] == {"acc": 0.25, "acc_se": 0.0625, "tokens": 0.75}
    assert rows[0]["sets"]["mmbench_test"] == {"acc": None, "acc_se": None, "tokens": 1.0}


def test_table_keeps_changed_params_and_headline_figures_within_160_columns():
    text = table(rows_from_json(json.loads(FIXTURE.read_text())))
    header, *body, note = text.splitlines()
    cols = header.split("  ")
    assert "train.lr" in header and "train.batch_size" not in header and "policy.cost_shift" not in header
    assert "mmmu acc" in header and "mmmu tokens" in header and "mmbench_test tokens" in header
    assert "mmbench_test acc" not in header  # no answers, no accuracy column
    assert body[1].split()[:2] == ["main", "0.002"] and "0.125" in body[1] and "0.25" in body[2]
    # acc with half its 95% interval (1.96 x acc_se) where the row has acc_se; the old commit's bare
    assert "0.25±0.12" in body[2] and "±" not in body[1] and note.startswith("acc: ") and "95% interval" in note
    assert len(body) == 3 and max(map(len, text.splitlines())) <= 160 and cols[0].startswith("experiment")


def test_a_failed_experiment_is_marked_and_does_not_widen_the_table():
    data = json.loads(FIXTURE.read_text())
    rev = data[1]["experiments"][0]["revs"][0]
    rev["error"], rev["data"] = {"type": "ReproductionError", "msg": "stage failed"}, None
    text = table(rows_from_json(data))
    assert "dotty-yawl (failed)" in text
    # only workspace and main have params: they differ in train.lr alone
    assert text.splitlines()[0].split()[:2] == ["experiment", "train.lr"] and "train.seed" not in text


def test_commits_from_before_the_row_layout_still_show_their_headline():
    data = json.loads(FIXTURE.read_text())
    m = data[1]["data"]["metrics"]["eval/mmmu/metrics.json"]
    m["data"] = {"learned": {"acc": 0.5, "tokens": 2.0}, "questions": 8}
    assert rows_from_json(data)[1]["sets"]["mmmu"] == {"acc": 0.5, "acc_se": None, "tokens": 2.0}


def test_seeds_are_summarised_as_mean_and_std():
    """`dvc exp run --queue -S train.seed=...`: rows that differ only in train.seed get a mean ± std row; the
    workspace, which repeats the seed-0 experiment, counts once."""
    import copy
    import statistics

    data = json.loads(FIXTURE.read_text())
    exp = data[1]["experiments"][0]
    for seed, acc in ((1, 0.5), (2, 0.375)):
        rev = copy.deepcopy(exp["revs"][0])
        rev["name"] = f"seed-{seed}"
        rev["data"]["params"]["params.yaml"]["data"]["train"]["seed"] = seed
        rev["data"]["metrics"]["eval/mmmu/metrics.json"]["data"]["acc"] = acc
        data[1]["experiments"].append({**exp, "name": f"seed-{seed}", "revs": [rev]})
    rows = rows_from_json(data)
    (summary,) = [r for r in table(rows).splitlines() if r.startswith("mean ± std, 3 seeds")]
    accs = [0.25, 0.5, 0.375]  # seeds 0 (workspace and dotty-yawl: one run), 1, 2
    assert f"{statistics.mean(accs):.4g}±{statistics.stdev(accs):.2g}" in summary
    assert "0.75±0" in summary  # tokens: the same under every seed
    text = table(rows)
    assert "train.seed" in text.splitlines()[0] and text.splitlines()[-1].startswith("mean ± std rows")
    assert max(map(len, text.splitlines())) <= 160
