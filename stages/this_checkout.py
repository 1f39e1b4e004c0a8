"""Imported first by every stage: the stage runs the `vovnet` of the checkout it lives in.

`python stages/<x>.py` puts only `<checkout>/stages` on the import path, so `import vovnet` would fall
through to the editable install, which points at the workspace. A queued or `--temp` experiment runs in a
copy of the repository: without this, its outputs would come from the workspace's code while its dvc.lock
records the copy's. Loading the package from this checkout (its submodules follow the package's own
__path__) keeps the stage commands, and so every stage's lock entry, unchanged; the import path is left alone.
"""

import importlib.util
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vovnet"

if "vovnet" not in sys.modules:
    spec = importlib.util.spec_from_file_location(
        "vovnet", PACKAGE / "__init__.py", submodule_search_locations=[str(PACKAGE)]
    )
    sys.modules["vovnet"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["vovnet"])

IMPORTED = Path(sys.modules["vovnet"].__file__).resolve().parent
if IMPORTED != PACKAGE:
    # vovnet was imported before this module ran (a sitecustomize, a wrapper): it is another checkout's code
    sys.exit(f"error: {sys.argv[0]} runs in the checkout {PACKAGE.parent} but imported vovnet from {IMPORTED}")
