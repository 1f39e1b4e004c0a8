"""Imported first by every stage: the stage runs the `vovnet` of the checkout it lives in.

`python stages/<x>.py` puts only `<checkout>/stages` on sys.path, so `import vovnet` would fall through to
the editable install, which points at the workspace. A queued or `--temp` experiment runs in a copy of the
repository: without this, its outputs would come from the workspace's code while its dvc.lock records the
copy's. Putting the checkout first keeps the stage commands (and so every stage's lock entry) unchanged.
"""

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
if sys.path[0] != str(CHECKOUT):
    sys.path.insert(0, str(CHECKOUT))

import vovnet  # noqa: E402  (after the path: this is the import being steered)

IMPORTED = Path(vovnet.__file__).resolve().parent
if IMPORTED != CHECKOUT / "vovnet":
    # vovnet was imported before the path was set (a sitecustomize, a parent process's module)
    sys.exit(f"error: {sys.argv[0]} runs in the checkout {CHECKOUT} but imported vovnet from {IMPORTED}")
