"""The project is a package: pyproject.toml names it, its console script and its data; the stages import it
without editing sys.path."""

import importlib
import tomllib
from fnmatch import fnmatch

from helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_console_script_is_the_module_entry_point():
    module, func = PYPROJECT["project"]["scripts"]["vovnet"].split(":")
    assert module == "vovnet.__main__" and callable(getattr(importlib.import_module(module), func))


def test_every_package_and_every_task_default_is_packaged():
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in (ROOT / "vovnet").rglob("__init__.py")}
    assert packages and all(any(fnmatch(p, pat) for pat in include) for p in packages)
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["vovnet.tasks"]
    tasks = ROOT / "vovnet" / "tasks"
    defaults = [p.relative_to(tasks).as_posix() for p in tasks.glob("*/*.yaml")]
    assert defaults and all(any(fnmatch(d, pat) for pat in data) for d in defaults)


def test_requirements_install_the_project_and_stages_do_not_edit_sys_path():
    lines = [x.strip() for x in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "-e ." in lines
    for stage in (ROOT / "stages").glob("*.py"):
        assert "sys.path" not in stage.read_text(), stage.name
