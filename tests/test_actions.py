"""The actions are one table (vovnet/actions.py): its rules, its readers, the head that records the actions
it scores, and a fourth action added in one row that trains and evaluates on the sample."""

import json
import shutil

import pytest
import torch
from conftest import ROOT, sh
from ruamel.yaml import YAML

from vovnet import VovnetError, actions
from vovnet.actions import Action, check
from vovnet.config import Mix, VisionBudget
from vovnet.evaluation import policies, report
from vovnet.inference.predict import CONSTANT, POLICIES
from vovnet.model.policy import PolicyHead
from vovnet.model.vovnet import HEAD_CONFIG, load_head, save_head

NO, COARSE, FULL = actions.ACTIONS
MEDIUM = Action("medium", "MEDIUM_VISION", "medium", (4096, 16384), 0.2)


@pytest.mark.parametrize(
    "table, says",
    [
        ((NO, COARSE, COARSE), "unique"),
        ((NO, COARSE, Action("medium", "M", "coarse", (2048, 4096), 0.1)), "unique"),
        ((COARSE, NO, FULL), "text-only"),
        ((NO, Action("none2", "N", "n2", None, 0.1), FULL), "text-only"),
        ((NO, FULL, COARSE), "ordered by max_pixels"),
        ((NO, Action("bad", "B", "b", (10, 5), 0.1)), "min <= max"),
        ((NO, Action("learned", "L", "learned", (1, 2), 0.1)), "learned"),
    ],
)
def test_a_table_that_breaks_a_rule_fails_in_one_line(table, says):
    with pytest.raises(VovnetError, match=says) as exc:
        check(table)
    assert "\n" not in str(exc.value) and str(exc.value).startswith("vovnet/actions.py: ")


def test_a_medium_row_between_coarse_and_full_passes_the_rules():
    check((NO, COARSE, MEDIUM, FULL))


def test_the_schema_policies_predict_and_reports_read_the_table():
    assert list(VisionBudget.model_fields) == [a.name for a in actions.VISION]
    assert VisionBudget().coarse.max_pixels == COARSE.pixels[1]
    assert set(Mix.model_fields) == set(actions.NAMES) and Mix().full == FULL.mix
    assert POLICIES == ("learned", "full", "coarse", "none") and CONSTANT["none"] == actions.TEXT
    assert policies.FIXED == {"always_full": 2, "always_coarse": 1, "no_vision": 0}
    assert report.POINT_BASELINES == ("always_full", "always_coarse", "no_vision")
    fig = {"accuracy": 0.5, "vision_tokens": 3.0, "ratio": dict(zip(actions.NAMES, (0.25, 0.25, 0.5)))}
    assert "NO / COARSE / FULL" in report.table("s", [("learned", fig)])
    assert Mix(no=0, coarse=0, full=0.5).full == 0.5
    with pytest.raises(ValueError, match="must not all be 0"):
        Mix(no=0, coarse=0, full=0)


def test_the_saved_head_names_its_actions_and_an_old_head_config_still_loads(tmp_path):
    head = PolicyHead(hidden_size=8, width=4)
    assert head.mlp[-1].out_features == len(actions.ACTIONS)
    save_head(head, tmp_path)
    cfg = json.loads((tmp_path / HEAD_CONFIG).read_text())
    assert cfg["actions"] == list(actions.NAMES)
    del cfg["actions"]  # as saved before the key: those heads scored no, coarse, full
    (tmp_path / HEAD_CONFIG).write_text(json.dumps(cfg))
    loaded = load_head(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), loaded.state_dict().values()))


def test_a_head_saved_for_other_actions_is_refused_in_one_line(tmp_path):
    save_head(PolicyHead(hidden_size=8, width=4, actions=("no", "coarse", "medium", "full")), tmp_path)
    with pytest.raises(VovnetError, match="head scores the actions no, coarse, medium, full") as exc:
        load_head(tmp_path)
    assert "\n" not in str(exc.value) and "dvc repro train" in str(exc.value)


@pytest.fixture(scope="module")
def four_actions(workspace, tmp_path_factory):
    """The workspace (samples normalized and merged, the tiny model) with this checkout's stages and package,
    the copy's table given a MEDIUM row between COARSE and FULL (the one edit docs/adding-an-action.md names),
    and a shorter run: one epoch per stage, 12 evaluation questions."""
    repo = tmp_path_factory.mktemp("four") / "vovnet"
    shutil.copytree(workspace, repo)
    for code in ("stages", "vovnet"):
        shutil.copytree(ROOT / code, repo / code, ignore=shutil.ignore_patterns("__pycache__"))
    table = repo / "vovnet" / "actions.py"
    row = '    Action("medium", "MEDIUM_VISION", "medium", (4096, 16384), 0.2),\n'
    anchor = '    Action("full", '
    assert table.read_text().count(anchor) == 1
    table.write_text(table.read_text().replace(anchor, row + anchor))
    yaml = YAML()
    params = yaml.load(repo / "params.yaml")
    params["train"]["stage1"]["epochs"] = params["train"]["stage2"]["epochs"] = 1
    params["evaluation"]["max_samples"] = 12
    yaml.dump(params, repo / "params.yaml")
    sh(repo, "python", "stages/train.py")
    sh(repo, "python", "stages/evaluate.py", "--set", "mmbench")
    return repo


def test_a_fourth_action_trains_and_evaluates_on_the_sample(four_actions):
    four = ["no", "coarse", "medium", "full"]
    head = json.loads((four_actions / "models" / "vovnet" / HEAD_CONFIG).read_text())
    assert head["actions"] == four
    trained = json.loads((four_actions / "models" / "vovnet" / "vovnet_config.json").read_text())
    assert trained["vision_budget"]["medium"] == {"min_pixels": 4096, "max_pixels": 16384}
    assert trained["train"]["stage1"]["mix"]["medium"] == 0.2
    ev = four_actions / "eval" / "mmbench"
    metrics = json.loads((ev / "metrics.json").read_text())
    assert set(four) <= set(metrics)
    assert sum(metrics[a] for a in four) == pytest.approx(1.0, abs=0.01)
    medium = json.loads((ev / "baselines" / "always_medium.json").read_text())
    coarse = json.loads((ev / "baselines" / "always_coarse.json").read_text())
    full = json.loads((ev / "baselines" / "always_full.json").read_text())
    assert medium["medium"] == 1.0 and medium["tokens"] > 0
    assert coarse["tokens"] <= medium["tokens"] <= full["tokens"]  # the budgets' order is the cost's order
    pareto = json.loads((ev / "pareto.json").read_text())
    assert all("ratio_medium" in p for p in pareto)


def test_a_fourth_action_is_a_predict_policy(four_actions, tmp_path):
    records = (four_actions / "data" / "processed" / "mmbench_core" / "mmbench_core_heldout.jsonl").read_text()
    (tmp_path / "in.jsonl").write_text("".join(records.splitlines(keepends=True)[:3]))
    out = tmp_path / "out.jsonl"
    args = ["--input", str(tmp_path / "in.jsonl"), "--output", str(out), "--policy", "medium"]
    sh(four_actions, "python", "-m", "vovnet", "predict", *args)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and {r["action"] for r in rows} == {"medium"}
    assert all(len(r["policy_scores"]) == 4 for r in rows)
    assert "learned,full,medium,coarse,none" in sh(four_actions, "python", "-m", "vovnet", "predict", "-h")
