"""The Chinese server guide's words on this project (issue 38, docs/zh/): its spellings work, or get one line
naming what to type, and that line names what docs/zh/guide-map.md's table gives."""

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, copy_repo, ran, sh

from vovnet import VovnetError
from vovnet import __main__ as vovnet_main
from vovnet.cli import python_too_old
from vovnet.config import json_schema, load_params, read_yaml
from vovnet.prepare import GUIDE_OPTIONS

TABLE = ROOT / "docs" / "zh" / "guide-map.md"


def table_rows() -> list[tuple[str, str]]:
    """(the guide's cell, this project's cell) of every row of the mapping tables."""
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            rows.append((cells[0], cells[1]))
    return rows


def project_names(guide_flag: str) -> list[str]:
    """The code spans of this project's cell in the row whose guide cell holds `guide_flag`."""
    hits = [proj for guide, proj in table_rows() if re.search(rf"`[^`]*{re.escape(guide_flag)}\b[^`]*`", guide)]
    assert hits, f"{TABLE.name} has no row for the guide's {guide_flag}"
    return re.findall(r"`([^`]+)`", hits[0])


def run(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=300)


def one_error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and lines[0].startswith("error: ")
    return lines[0]


def test_guide_normalize_command_runs_as_the_guide_spells_it(tmp_path):
    """3.2 of the guide: dashed flags, a comma list of splits, --streaming; max_samples counts questions."""
    shutil.copytree(ROOT / "data" / "samples" / "mmbench", tmp_path / "raw")
    out = tmp_path / "out"
    proc = run(
        "stages/normalize.py", "--dataset", "mmbench", "--raw", str(tmp_path / "raw"), "--out", str(out),
        "--stats", str(tmp_path / "stats.json"),
        "--subset", "en", "--splits", "dev,test", "--download-images", "--max_samples", "10", "--export-parquet",
        "--streaming",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = json.loads((tmp_path / "stats.json").read_text())["splits"]
    assert sorted(stats) == ["dev", "test"]
    for split, s in stats.items():
        records = (out / f"mmbench_{split}.jsonl").read_text().splitlines()
        assert s["questions"] == 10 and len(records) == s["records"] > 10  # circular copies kept together
        assert (out / f"mmbench_{split}.parquet").exists()
        summary = next(line for line in proc.stdout.splitlines() if line.startswith(f"mmbench/{split}:"))
        assert f"-> {s['records']:,} records (10 questions)" in summary
    dev = stats["dev"]
    assert dev["rows"] == dev["records"] + dev["rejects"] + dev["left_out_by_max_samples"]
    assert f"{dev['questions_left_out_by_max_samples']} questions ({dev['left_out_by_max_samples']} rows) left out" in (
        proc.stdout
    )
    assert "--streaming needs no switch" in proc.stderr


@pytest.mark.parametrize("flag", sorted(GUIDE_OPTIONS))
def test_download_and_prepare_options_get_the_tables_replacement(flag):
    before = (ROOT / "params.yaml").read_bytes()
    line = one_error_line(run("-m", "vovnet", "prepare", "--mode", "fast_dev", flag, "x"))
    assert line.startswith(f"error: {flag} is the server guide's flag: ")
    assert any(name in line for name in project_names(flag)), (line, project_names(flag))
    assert (ROOT / "params.yaml").read_bytes() == before  # refused before the preset was written


def test_train_config_flag_gets_the_tables_replacement():
    proc = run("stages/train.py", "--config", "configs/base.yaml", "--config", "configs/train_mmbench.yaml")
    line = one_error_line(proc)
    assert line.startswith("error: --config is the server guide's flag: there is no configs/*.yaml here")
    assert "dvc repro train" in project_names("--config") and "`dvc repro train`" in line


def test_every_guide_option_of_the_normalize_stage_is_in_the_table():
    for flag in ("--subset", "--splits", "--download-images", "--export-parquet", "--max_samples", "--streaming"):
        assert any(name.startswith(("datasets.", "normalize.")) for name in project_names(flag)), flag


def _broken_indent(tmp_path):
    lines = (ROOT / "params.yaml").read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.startswith("  name: ") and lines[i - 1].startswith("  enabled"))
    lines[n] = " " + lines[n]  # one space too many, as a hand edit leaves it
    path = tmp_path / "params.yaml"
    path.write_text("".join(lines))
    return path, n + 1


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "vovnet", "doctor", "--params", "{p}"],
        ["-m", "vovnet", "preset", "fast_dev", "--params", "{p}"],
        ["stages/normalize.py", "--dataset", "mmbench", "--params", "{p}"],
        ["stages/download.py", "--dataset", "mmbench", "--params", "{p}"],
    ],
    ids=["doctor", "preset", "normalize", "download"],
)
def test_bad_indentation_in_params_gets_its_line_and_column(tmp_path, argv):
    path, lineno = _broken_indent(tmp_path)
    before = path.read_bytes()
    line = one_error_line(run(*[a.replace("{p}", str(path)) for a in argv]))
    assert f"{path}: invalid YAML: line {lineno}, column " in line and "indentation" in line
    assert path.read_bytes() == before


def test_other_yaml_errors_carry_a_line_too(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 0\nmodel:\n  name: a\n  name: b\n")
    with pytest.raises(VovnetError, match=r"line 4, column \d+: found duplicate key"):
        read_yaml(path)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda t: t.replace("\n  name: models/", "\n  base_model_name: models/"), "is model.name here"),
        (lambda t: t.replace("\n  full_model_name: null", "\n  base_model_name: models/x"), "is model.name here"),
        (lambda t: t + "data:\n  train_jsonl: a.jsonl\n", "data.train_jsonl is train.train_file here"),
        (lambda t: t + "data:\n  eval_jsonl: b.jsonl\n", "data.eval_jsonl is a set under evaluation.sets here"),
    ],
    ids=["base_model_name-for-name", "base_model_name-beside-name", "train_jsonl", "eval_jsonl"],
)
def test_a_guide_key_in_params_names_this_projects_key(tmp_path, edit, expected):
    path = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    path.write_text(edit(text))
    assert path.read_text() != text
    with pytest.raises(VovnetError) as info:
        load_params(path)
    msg = str(info.value)
    assert expected in msg and "\n" not in msg and "did you mean" not in msg


def test_an_older_python_is_refused_in_one_line(monkeypatch, capsys):
    assert python_too_old((3, 11, 0)) is None and python_too_old((3, 13, 1)) is None
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    assert vovnet_main.main(["doctor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: VoVNet needs Python 3.11 or later, this is 3.10.13; make a new environment, e.g. "
        "`conda create -n vovnet python=3.11`, then `pip install -r requirements.txt`"
    )


def test_max_samples_says_it_counts_questions():
    desc = json_schema()["$defs"]["Dataset"]["properties"]["max_samples"]["description"]
    assert "questions" in desc and "not rows" in desc
    assert "数的是**题目**，不是行" in (ROOT / "docs" / "zh" / "troubleshooting.md").read_text(encoding="utf-8")


def test_the_guides_troubleshooting_string_is_findable():
    text = (ROOT / "docs" / "zh" / "troubleshooting.md").read_text(encoding="utf-8")
    assert "Failed to load image from path 000000101038.jpg" in text and "not found under any root" in text
    assert "hf auth login" in text and "[docs/zh/README.md](docs/zh/README.md)" in (ROOT / "README.md").read_text()


@pytest.mark.slow
def test_prepare_mode_runs_the_data_stages_through_dvc(tmp_path):
    """The guide's prepare_all.py --mode fast_dev, with the hub sources of the paper preset (fast_dev's base)
    swapped for the shipped samples."""
    repo = copy_repo(tmp_path / "vovnet")
    paper = repo / "presets" / "paper.yaml"
    text = re.sub(r"(?m)^  (\w+):\n((?:    .*\n)*?)    source: hf:\S+\n", r"  \1:\n\2    source: data/samples/\1\n",
                  paper.read_text())  # fmt: skip
    text = re.sub(r"(?m)^    subset: .*\n", "", text)
    assert "hf:" not in re.sub(r"#.*", "", text)
    paper.write_text(text)
    out = sh(repo, sys.executable, "-m", "vovnet", "prepare", "--mode", "fast_dev")
    assert (repo / "params.yaml").read_text().startswith("# VoVNet parameters. Preset: fast_dev")
    stages = ran(out)
    names = load_params(repo / "params.yaml")["datasets"]
    assert stages == {f"{g}@{n}" for g in ("download", "normalize") for n in names} | {"merge"}, stages
    lock = (repo / "dvc.lock").read_text()
    assert all(f"normalize@{n}:" in lock for n in names) and "\n  merge:" in lock
    assert "train" not in stages and not (repo / "models" / "vovnet").exists()
    mmbench = json.loads((repo / "metrics" / "normalize" / "mmbench.json").read_text())["splits"]["dev"]
    assert mmbench["questions"] == 200 or mmbench["questions_left_out_by_max_samples"] == 0
