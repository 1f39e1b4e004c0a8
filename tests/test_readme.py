"""The documented commands, run as a new user would in a fresh copy of the repository.

Every command in a ```bash block of README.md or docs/*.md is either run here (offline, seconds) or listed
in SLOW with the reason and the test that covers it instead, so a command added to or changed in the docs
fails this test until someone decides which.
"""

import re
import shlex
import sys

import pytest
from conftest import ROOT, copy_repo, sh

SLOW = {  # command -> why it is not run here (and what covers it)
    "pip install -r requirements.txt": "installs packages (what .ci/run does before the tests)",
    "pip install -r requirements-gpu.txt": "installs torch and torchvision from PyTorch's CUDA 12.6 index (GPU "
    "servers); tests/test_gpu_install.py checks the index, the versions and that the rest resolves",
    "python -m vovnet predict --model-dir models/vovnet --input requests.jsonl --output answers.jsonl "
    "[--policy learned|full|coarse|none] [--cost-shift X] [--batch-size N] [--image-root DIR]": "a synopsis; "
    "needs a trained models/vovnet (dvc repro train, minutes); tests/test_predict.py runs the CLI",
    "python -m vovnet preset demo && dvc repro": "the demo pipeline, up to 15 minutes (the preset switch itself is "
    "tested in tests/test_presets.py)",
    "python -m vovnet preset demo_easyvqa && dvc repro": "the easy-VQA demo pipeline, up to 15 minutes (its data "
    "path is tested in tests/test_easy_vqa.py, the preset switch in tests/test_presets.py)",
    "python -m vovnet preset demo_wide && dvc repro": "the demo at 64 FULL tokens with the equal-token baselines, "
    "about 9 minutes (tests/test_baselines_sweep.py checks the preset's budgets and runs every baseline path)",
    "dvc exp run -S 'evaluation.resolution_sweep=[{min_pixels: 256, max_pixels: 256}, {min_pixels: 1024, "
    "max_pixels: 1024}, {min_pixels: 2304, max_pixels: 2304}, {min_pixels: 1024, max_pixels: 4096}]' -S "
    "'evaluation.pruning.methods=[random, attention]' -S 'evaluation.pruning.keep_shares=[0.0625, 0.125, 0.25, "
    "0.5, 1.0]' -S evaluation.pruning.attention_layer=2 -S 'evaluation.pruning.policy_then_prune={method: "
    "attention, keep_share: 0.5}'": "the easy-VQA demo's evaluation with the baselines (after its pipeline, "
    "minutes); tests/test_baselines_sweep.py runs the baselines through evaluate_set",
    "python -m vovnet demo-report --set demo": "reads the outputs of the demo pipeline above; tests/test_demo.py "
    "runs the command on a small evaluation folder",
    "dvc repro": "the whole pipeline, minutes (tests/test_pipeline.py)",
    'python -m pytest -q -m "not slow"': "the tests themselves (the fast lane; .ci/run runs the whole suite)",
    "python -m pytest -q": "the tests themselves (what .ci/run runs)",
    "dvc exp run && dvc exp run -S model.prompt_order=text_first && python -m vovnet exps": (
        "two trainings of the paper preset on real weights (the user's, on GPUs); tests/test_prompts.py covers both "
        "orders, tests/test_experiments.py the exps table"
    ),
    "dvc exp run -S train.lr=1e-5": "training and evaluation, minutes (tests/test_pipeline.py)",
    "dvc exp run --queue -S policy.lambda_cost=0.05 && dvc queue start": "queued training and evaluation, "
    "minutes (tests/test_pipeline.py)",
    "dvc exp run --queue -S policy.lambda_cost=0.05": "queued training and evaluation, minutes; "
    "tests/test_queued_experiments.py queues and runs experiments",
    "dvc queue start": "runs the queue (tests/test_queued_experiments.py)",
    "dvc exp run --queue -S launch.gpus_per_experiment=2 -S train.lr=1e-5": "queued training on GPU servers; "
    "tests/test_gpu_claims.py runs two queued launches on fake GPU ids",
    "dvc queue start -j 4": "four queue workers on an 8-GPU server; tests/test_gpu_claims.py claims disjoint sets",
    "dvc exp run --temp -S train.lr=1e-5": "training and evaluation in a copy, minutes; "
    "tests/test_queued_experiments.py runs --temp",
    "dvc config --local cache.type reflink,hardlink,symlink": "changes the user's cache setting; "
    "tests/test_doctor.py sets it in a scratch repository and checks doctor's warning goes",
    "dvc remote add --local -d store /mnt/nfs/vovnet-dvc": "a server's NFS path; tests/test_queued_experiments.py "
    "adds a local remote the same way",
    "dvc exp push -r store origin <exp>": "needs a remote and an experiment; tests/test_queued_experiments.py "
    "pushes one",
    "dvc exp pull -r store origin <exp> && dvc exp branch <exp> <branch> && git checkout <branch> && dvc pull": (
        "tests/test_queued_experiments.py pulls a pushed experiment into a fresh clone this way"
    ),
    "python -m vovnet doctor": "needs the pipeline's outputs; tests/test_doctor.py runs it",
    "python -m vovnet prepare --mode fast_dev": "the data stages of a preset through DVC, a minute; "
    "tests/test_guide.py runs it with the hub sources swapped for the samples",
    "hf auth login": "asks for a token (huggingface_hub's CLI); the downloads read HF_TOKEN, tests/test_download.py",
    "dvc exp run -S 'evaluation.sets.mmstar.prompt=qwen' -S 'evaluation.sets.mmmu.prompt=qwen' "
    "-S evaluation.max_new_tokens=128": "evaluation of the paper preset on real weights (GPUs); "
    "tests/test_eval_prompts.py renders the variants and checks the set param",
    "cat eval/mmstar/baselines/always_full.json eval/mmmu/baselines/always_full.json": "reads the outputs of the "
    "run above (the paper preset's sets)",
}


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "zh").glob("*.md"))]


def readme_commands() -> list[str]:
    """The commands of every ```bash block in README.md and docs/*.md, in order (repeats kept)."""
    cmds, inside = [], False
    for line in (line for page in DOCS for line in page.read_text(encoding="utf-8").splitlines()):
        if line.startswith("```"):
            inside = line.strip() in ("```bash", "```sh")
            continue
        if inside:
            cmd = line.split(" #")[0].strip()
            if cmds and cmds[-1].endswith("\\"):  # a continued line
                cmds[-1] = cmds[-1][:-1].rstrip() + " " + cmd
            elif cmd:
                cmds.append(cmd)
    return [re.sub(r"\s+", " ", c) for c in cmds]


def test_every_readme_command_is_run_or_excused():
    cmds = readme_commands()
    assert "python -m vovnet preset paper" in cmds
    unknown = [c for c in cmds if c not in SLOW and c not in RUN_CHECKS]
    assert not unknown, f"README commands neither run by this test nor excused in SLOW: {unknown}"
    stale = [c for c in list(SLOW) + list(RUN_CHECKS) if c not in cmds]
    assert not stale, f"commands listed here that the README no longer has: {stale}"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("readme") / "vovnet")


def _run(repo, cmd: str, tmp):
    argv = [a.replace("/tmp/", f"{tmp}/") for a in shlex.split(cmd)]  # keep /tmp of the machine clean
    if argv[0] == "python":
        argv[0] = sys.executable
    return sh(repo, *argv)


def _preset(repo, out, tmp):
    text = (repo / "params.yaml").read_text()
    assert text.startswith("# VoVNet parameters. Preset: paper"), text[:80]
    assert "source: hf:lmms-lab/MMBench\n" in text and "subset: en" in text
    sh(repo, sys.executable, "-m", "vovnet", "preset", "sample")
    assert (repo / "params.yaml").read_bytes() == (ROOT / "params.yaml").read_bytes()


def _export(repo, out, tmp):
    n = int(re.search(r"wrote (\d+) images", out).group(1))
    assert n > 0 and len(list((tmp / "mmbench_images").iterdir())) == n


def _metrics(repo, out, tmp):
    assert "Traceback" not in out


def _exps(repo, out, tmp):
    lines = out.splitlines()
    assert lines[0].startswith("experiment") and lines[1].startswith("workspace"), out


RUN_CHECKS = {
    "python -m vovnet preset paper": _preset,
    "python -m vovnet.data export-images --dataset mmbench --split dev --out /tmp/mmbench_images": _export,
    "python -m vovnet schema": lambda repo, out, tmp: sh(repo, "git", "diff", "--exit-code", "params.schema.json"),
    "dvc metrics show": _metrics,
    "dvc plots show": _metrics,
    "python -m vovnet exps": _exps,
}


SETUP = {
    "python -m vovnet.data export-images --dataset mmbench --split dev --out /tmp/mmbench_images": [
        "dvc repro normalize@mmbench"
    ],
}


@pytest.mark.parametrize("cmd", [c for c in dict.fromkeys(readme_commands()) if c in RUN_CHECKS])  # each once
def test_readme_command_runs_in_a_fresh_copy(fresh, cmd, tmp_path):
    for setup in SETUP.get(cmd, []):  # what the command needs, made by the pipeline as a user would
        sh(fresh, *setup.split())
    out = _run(fresh, cmd, tmp_path)
    RUN_CHECKS[cmd](fresh, out, tmp_path)
