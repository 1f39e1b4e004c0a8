"""`dvc plots show` writes a page that renders offline: Vega, Vega-Lite and Vega-Embed inlined from the
pinned vl-convert-python (the committed .dvc/offline_plots.html, DVC's plots.html_template)."""

import configparser
import json
import re
import shutil

import pytest
from conftest import ROOT, sh

from vovnet.plots_template import TEMPLATE, offline_page

SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc\s*=\s*['\"]?\s*(?:https?:)?//", re.IGNORECASE)


def test_the_committed_page_is_what_the_pinned_vl_convert_builds():
    import vl_convert

    assert TEMPLATE.read_text(encoding="utf-8") == offline_page(), "run `python -m vovnet plots-template`"
    assert vl_convert.javascript_bundle(vl_version="v5.21") in TEMPLATE.read_text(encoding="utf-8")
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert (ROOT / ".dvc" / config["plots"]["html_template"]).resolve() == TEMPLATE
    assert "{plot_divs}" in TEMPLATE.read_text() and "{scripts}" not in TEMPLATE.read_text()


@pytest.mark.slow
def test_dvc_plots_show_writes_html_with_the_bundle_and_no_remote_script(tmp_path):
    import vl_convert

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp", "config.local"))
    pareto = [{"policy": "learned", "vision_tokens": t, "accuracy": a} for t, a in ((1, 0.4), (8, 0.6), (16, 0.7))]
    (repo / "eval").mkdir()
    (repo / "eval" / "pareto.json").write_text(json.dumps(pareto))
    (repo / "dvc.yaml").write_text(
        "plots:\n  - eval/pareto.json:\n      x: vision_tokens\n      y: accuracy\n      template: scatter\n"
    )
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "plots", "show", "-o", "out")
    html = (repo / "out" / "index.html").read_text(encoding="utf-8")
    assert not SCRIPT_SRC.search(html), SCRIPT_SRC.search(html).group(0)
    assert vl_convert.javascript_bundle(vl_version="v5.21") in html
    assert "vegaEmbed(" in html and '"vision_tokens"' in html
