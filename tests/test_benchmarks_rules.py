"""benchmarks/ uses the public API only: no script edits sys.path, none imports a `_`-prefixed name from
vovnet or a module under tests/ (read with ast, so a function-level import counts too)."""

import ast

import pytest
from helpers import ROOT

SCRIPTS = sorted((ROOT / "benchmarks").rglob("*.py"))


def _edits_sys_path(node: ast.AST) -> bool:
    """sys.path.insert/append/extend/... or an assignment to sys.path (plain or augmented)."""
    is_sys_path = lambda n: ast.unparse(n) == "sys.path"  # noqa: E731
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return is_sys_path(node.func.value)
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(is_sys_path(t) or (isinstance(t, ast.Subscript) and is_sys_path(t.value)) for t in targets)
    return False


def _private_vovnet_imports(node: ast.AST) -> list[str]:
    """`from vovnet.x import _y`, `import vovnet._x`, `from vovnet._x import y`."""
    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "vovnet":
        parts = node.module.split(".") + [a.name for a in node.names]
        return [f"{node.module}.{a.name}" for a in node.names if any(p.startswith("_") for p in parts)]
    if isinstance(node, ast.Import):
        return [
            a.name
            for a in node.names
            if a.name.startswith("vovnet.") and any(p.startswith("_") for p in a.name.split("."))
        ]
    return []


def _private_attribute_uses(tree: ast.AST, vovnet_names: set[str]) -> list[str]:
    """`module._name` where `module` was imported from vovnet (e.g. `adapter._generate(...)`)."""
    return [
        ast.unparse(n)
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and n.attr.startswith("_")
        and not n.attr.startswith("__")
        and isinstance(n.value, ast.Name)
        and n.value.id in vovnet_names
    ]


def _vovnet_bindings(tree: ast.AST) -> set[str]:
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "vovnet":
            names |= {a.asname or a.name for a in n.names}
        elif isinstance(n, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in n.names if a.name.split(".")[0] == "vovnet"}
    return names


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    found = [f"line {n.lineno}: edits sys.path" for n in ast.walk(tree) if _edits_sys_path(n)]
    for n in ast.walk(tree):
        found += [f"line {n.lineno}: imports private {name}" for name in _private_vovnet_imports(n)]
        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith(("test_", "conftest", "helpers")):
            found.append(f"line {n.lineno}: imports the tests' {n.module}")
    found += [f"uses private {use}" for use in _private_attribute_uses(tree, _vovnet_bindings(tree))]
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_benchmark_script_uses_only_the_public_api(script):
    assert violations(script.read_text(encoding="utf-8")) == []


def test_the_rules_catch_each_way_of_breaking_them():
    assert SCRIPTS and (ROOT / "benchmarks" / "gpu_check.py") in SCRIPTS
    source = (
        "import sys\nfrom pathlib import Path\nsys.path.insert(0, '.')\n"
        "def f():\n    sys.path += ['x']\n    sys.path[:0] = ['y']\n"
        "from vovnet.presets import _overlay\nimport vovnet._hidden\n"
        "from vovnet.tasks.shapes_vqa import adapter as shapes\nshapes._generate('{}')\n"
        "from test_golden_scorers import MMBENCH\n"
    )
    found = violations(source)
    assert [v for v in found if "sys.path" in v] == [
        "line 3: edits sys.path",
        "line 5: edits sys.path",
        "line 6: edits sys.path",
    ]
    assert "line 7: imports private vovnet.presets._overlay" in found
    assert "line 8: imports private vovnet._hidden" in found
    assert "uses private shapes._generate" in found
    assert "line 11: imports the tests' test_golden_scorers" in found
    assert violations("import sys\nfrom vovnet.config import load_params\nprint(sys.path)\n") == []
