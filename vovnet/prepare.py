"""`python -m vovnet prepare --mode fast_dev|paper`: the server guide's `scripts/prepare_all.py` (docs/zh/).

The guide's script downloaded and normalised every dataset of a recipe in one process. Here a preset is the
recipe and the data stages are DVC's: the command sets the preset in params.yaml and runs `dvc repro` on the
data stages (download@, normalize@ and merge), so dvc.lock records what each produced from which source.
"""

from __future__ import annotations

import subprocess
import sys

from vovnet import cli

DATA_STAGES = ("download", "normalize", "merge")  # foreach groups: DVC expands download to every download@<name>

# The guide's download_and_prepare.py options, and the params key each is here (`dvc exp run -S KEY=VALUE` or
# an edit of params.yaml): the sources are params so that DVC records them.
GUIDE_OPTIONS = {
    "--lang": "set datasets.mmbench.lang (en | cn) in params.yaml",
    "--mmbench_lite_url": "set datasets.mmbench_lite.source: <URL> in params.yaml (or VOVNET_MMBENCH_LITE_URL)",
    "--prepare_only": "not needed: download@ skips a source that has not changed (`python -m vovnet update` rechecks)",
    "--mmbench_hf_id": "set datasets.mmbench.source: hf:<id> in params.yaml",
    "--mmbench_splits": "set datasets.mmbench.splits: [dev, test] in params.yaml",
    "--mmbench_train_split": "list the split in merge.sources (mmbench/dev) in params.yaml",
    "--mmbench_lite_hf_id": "set datasets.mmbench_lite.source: hf:<id> in params.yaml",
}


def add_parser(sub) -> None:
    pp = sub.add_parser("prepare", help="the guide's prepare_all.py: set a preset, then dvc repro the data stages")
    pp.add_argument("--mode", required=True, help="the preset: fast_dev | paper (or any under presets/)")
    for flag, instead in GUIDE_OPTIONS.items():
        pp.add_argument(flag, action=cli.refused(instead))


def run_prepare(mode: str) -> int:
    """The preset, then the data stages; DVC reads params.yaml of the working directory, so no --params."""
    from vovnet.presets import write_preset

    write_preset(mode, "params.yaml")
    print(f"params.yaml now uses the {mode} preset; running dvc repro {' '.join(DATA_STAGES)}", flush=True)
    return subprocess.call(["dvc", "repro", *DATA_STAGES], stdout=sys.stdout, stderr=sys.stderr)
