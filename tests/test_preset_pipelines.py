"""Every preset builds its data (download@, normalize@, merge) offline wherever its sources are local: the
hub sources of `paper` and `fast_dev` swapped for the shipped samples of the same datasets."""

import pytest
from conftest import copy_repo, ran, sh
from ruamel.yaml import YAML

SAMPLES = "data/samples"


def swap_hub_sources(params_path) -> list[str]:
    """Point every `hf:` source at the shipped sample of its dataset; the names swapped."""
    yaml = YAML()
    params = yaml.load(params_path.read_text())
    swapped = []
    for name, entry in params["datasets"].items():
        if str(entry.get("source", "")).startswith("hf:"):
            entry["source"] = f"{SAMPLES}/{name}"
            swapped.append(name)
    with open(params_path, "w") as fh:
        yaml.dump(params, fh)
    return swapped


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["paper", "fast_dev"])
def test_a_hub_preset_builds_merge_offline_from_the_samples(preset, tmp_path):
    work = copy_repo(tmp_path)
    sh(work, "python", "-m", "vovnet", "preset", preset)
    assert swap_hub_sources(work / "params.yaml") == [
        "mmbench",
        "mmbench_lite",
        "mmmu",
        "textvqa",
        "mmstar",
        "pope",
        "scienceqa_img",
    ]
    out = sh(work, "dvc", "repro", "merge")
    assert "merge" in ran(out) and {f"normalize@{d}" for d in ("llava", "mmbench", "mmbench_lite")} <= ran(out)
    assert (work / "data" / "processed" / "mmbench_core" / "mmbench_core_train.jsonl").stat().st_size > 0
