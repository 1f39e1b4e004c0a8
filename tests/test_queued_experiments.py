"""Experiments rebuild from what they record: a queued or `--temp` experiment runs the code of its own copy
(not the editable install's workspace), and a queued training run that failed resumes when queued again.

The edit below makes merge's figures say which file ran, so the experiment's own outputs show whose code
made them."""

import json
import shutil
import subprocess
import time
from subprocess import DEVNULL

import pytest
from conftest import ENV, copy_repo, ran, sh
from ruamel.yaml import YAML

MERGE = "vovnet/data/merge.py"
EDIT = """

_unedited_merge = merge


def merge(*args, **kwargs):  # a test's edit: the figures name the file that ran
    out, stats = _unedited_merge(*args, **kwargs)
    return out, {**stats, "ran_from": __file__}
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A repository whose committed lock has merge and everything above it built (in the DVC cache)."""
    repo = copy_repo(tmp_path_factory.mktemp("queue") / "vovnet")
    sh(repo, "dvc", "repro", "merge")
    sh(repo, "git", "add", "dvc.lock")
    sh(repo, "git", "commit", "--allow-empty", "-qm", "merge built")
    return repo


@pytest.fixture
def repo(base, tmp_path):
    return shutil.copytree(base, tmp_path / "vovnet", symlinks=True)


def merge_figures_of(repo, exp: str) -> dict:
    """metrics/merge.json as the experiment `exp` wrote it: its md5 in the experiment's dvc.lock, read from the
    DVC cache."""
    lock = YAML(typ="safe").load(sh(repo, "git", "show", f"{exp_ref(repo, exp)}:dvc.lock"))
    md5 = next(o["md5"] for o in lock["stages"]["merge"]["outs"] if o["path"] == "metrics/merge.json")
    return json.loads((repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).read_text())


def exp_ref(repo, name: str) -> str:
    refs = sh(repo, "git", "for-each-ref", "--format=%(refname)", "refs/exps").split()
    return next(r for r in refs if r.endswith(f"/{name}"))


def start_queue(repo) -> None:
    """`dvc queue start` detaches a worker that keeps the command's stdout and stderr: with pipes, the caller
    would wait for the whole queue."""
    subprocess.run(["dvc", "queue", "start"], cwd=repo, env=ENV, stdout=DEVNULL, stderr=DEVNULL, check=True)


def run_queue(repo) -> None:
    start_queue(repo)
    for _ in range(600):
        status = sh(repo, "dvc", "queue", "status")
        if not any(word in status for word in ("Queued", "Running")):
            return
        time.sleep(1)
    raise AssertionError(f"the queue did not finish:\n{status}")


@pytest.fixture(scope="module")
def queued(base, tmp_path_factory):
    """Two queued experiments, run by one queue: `edited` queued with an edit the workspace then reverted,
    `plain` queued unchanged before the workspace was edited."""
    repo = shutil.copytree(base, tmp_path_factory.mktemp("queued") / "vovnet", symlinks=True)
    (repo / MERGE).write_text((repo / MERGE).read_text() + EDIT)
    sh(repo, "dvc", "exp", "run", "--queue", "-n", "edited", "merge")
    sh(repo, "git", "checkout", "-q", "--", MERGE)  # the workspace no longer has the edit
    sh(repo, "dvc", "exp", "run", "--queue", "-f", "-n", "plain", "merge")
    (repo / MERGE).write_text((repo / MERGE).read_text() + EDIT)  # edited after queueing
    run_queue(repo)
    sh(repo, "git", "checkout", "-q", "--", MERGE)
    return repo


@pytest.mark.slow
def test_a_queued_code_change_runs_after_the_workspace_is_reverted(queued):
    assert "_unedited_merge" in sh(queued, "git", "show", f"{exp_ref(queued, 'edited')}:{MERGE}")  # what it recorded
    ran_from = merge_figures_of(queued, "edited")["ran_from"]
    assert "/.dvc/tmp/exps/" in ran_from and ran_from.startswith(str(queued.resolve()))


@pytest.mark.slow
def test_a_workspace_edit_made_after_queueing_stays_out_of_the_experiment(queued):
    assert "Running stage 'merge'" in sh(queued, "dvc", "queue", "logs", "plain")
    assert "_unedited_merge" not in sh(queued, "git", "show", f"{exp_ref(queued, 'plain')}:{MERGE}")
    assert "ran_from" not in merge_figures_of(queued, "plain")


@pytest.mark.slow
def test_a_temp_experiment_runs_its_own_copy(repo):
    (repo / MERGE).write_text((repo / MERGE).read_text() + EDIT)
    out = sh(repo, "dvc", "exp", "run", "--temp", "-n", "temp", "merge")
    assert "merge" in ran(out)
    sh(repo, "git", "checkout", "-q", "--", MERGE)
    assert "/.dvc/tmp/exps/" in merge_figures_of(repo, "temp")["ran_from"]


@pytest.mark.slow
def test_a_failed_queued_training_resumes_when_queued_again(repo):
    yaml = YAML()
    params = yaml.load((repo / "params.yaml").read_text())
    params["train"]["save_every"] = 20
    params["train"]["stage1"]["epochs"] = 60  # about a minute: long enough to be killed after its first checkpoint
    with open(repo / "params.yaml", "w") as fh:
        yaml.dump(params, fh)
    sh(repo, "git", "commit", "-qam", "a longer run, checkpointed every 20 steps")
    sh(repo, "dvc", "exp", "run", "--queue", "-n", "first", "train")
    start_queue(repo)
    # the workspace keeps the checkpoints: the run's own copy under .dvc/tmp/exps is deleted when it fails
    saved = repo / "checkpoints" / "train"
    for _ in range(1800):
        if any(saved.glob("*/step-*/state.json")):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(sh(repo, "dvc", "queue", "logs", "first", check=False))
    sh(repo, "dvc", "queue", "kill", "first")
    run_queue(repo)
    assert "Failed" in sh(repo, "dvc", "queue", "status")
    assert any(saved.glob("*/step-*/state.json"))
    sh(repo, "dvc", "exp", "run", "--queue", "-n", "again", "train")
    run_queue(repo)
    logs = sh(repo, "dvc", "queue", "logs", "again")
    assert f"resuming from {saved.resolve()}" in logs, logs[-3000:]
    assert (
        "Success"
        in subprocess.run(["dvc", "queue", "status"], cwd=repo, env=ENV, capture_output=True, text=True).stdout
    )
    assert not any(saved.glob("*/step-*"))  # removed once the run completed


@pytest.mark.slow
def test_an_experiment_pushed_with_the_docs_commands_pulls_into_a_fresh_clone(repo, tmp_path):
    origin, store = tmp_path / "origin.git", tmp_path / "store"
    sh(tmp_path, "git", "init", "-q", "--bare", str(origin))
    sh(repo, "git", "remote", "add", "origin", str(origin))
    sh(repo, "git", "push", "-q", "origin", "HEAD:main")
    # the docs' setup: the DVC remote in .dvc/config.local, which DVC reads for every experiment's commit
    sh(repo, "dvc", "remote", "add", "--local", "-d", "store", str(store))
    sh(repo, "dvc", "exp", "run", "-n", "shared", "-S", "merge.heldout_fraction=0.4", "merge")
    assert "uploaded" in sh(repo, "dvc", "exp", "push", "-r", "store", "origin", "shared")

    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", "-b", "main", str(origin), str(clone))
    sh(clone, "dvc", "remote", "add", "--local", "-d", "store", str(store))
    sh(clone, "dvc", "exp", "pull", "-r", "store", "origin", "shared")
    sh(clone, "dvc", "exp", "branch", "shared", "from-shared")
    sh(clone, "git", "checkout", "-q", "from-shared")
    sh(clone, "dvc", "pull", "-r", "store", "--with-deps", "merge")
    assert "up to date" in sh(clone, "dvc", "status", "--with-deps", "merge")
    assert json.loads((clone / "metrics" / "merge.json").read_text()) == merge_figures_of(repo, "shared")


@pytest.mark.slow
def test_pushing_to_a_remote_the_experiment_does_not_know_fails_in_one_line(repo, tmp_path):
    sh(tmp_path, "git", "init", "-q", "--bare", str(tmp_path / "origin.git"))
    sh(repo, "git", "remote", "add", "origin", str(tmp_path / "origin.git"))
    sh(repo, "dvc", "exp", "run", "-n", "unshared", "-S", "merge.heldout_fraction=0.4", "merge")
    sh(repo, "dvc", "remote", "add", "-d", "late", str(tmp_path / "store"))  # after the experiment's commit
    p = subprocess.run(
        ["dvc", "exp", "push", "-r", "late", "origin", "unshared"], cwd=repo, env=ENV, capture_output=True, text=True
    )
    assert p.returncode != 0 and "remote 'late' doesn't exist" in p.stderr
    assert not (tmp_path / "store").exists()  # nothing pretended to upload
