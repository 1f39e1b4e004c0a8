"""The project code each dvc.yaml stage runs: the static import graph of its cmd, read with `ast`.

A stage runs the scripts and `python -m` modules its cmd names, every project module they import
(transitively, at any depth of the file: imports inside functions run too), and the packages above
each module (their `__init__.py` run on import). Nothing is executed.

Plugins are imported by name (`importlib.import_module(f"vovnet.tasks.{name}.adapter")`, the name from
params). Such a call makes a *family* (`vovnet/tasks/{}/adapter.py`); a foreach stage lists the member
its item uses with a template, `vovnet/tasks/${item.adapter}/adapter.py`, and that member's imports join
the item's closure. Where no item field names the member, the stage lists the folder of every member
(`vovnet/tasks`) and depends on all of it. A family belongs to the top-level function that makes the call:
a stage that imports `get_adapter` from vovnet/registry.py uses the adapters, not the protocols beside it.
A DVC foreach entry cannot list a different number of files per item, so a module that one family member
imports from a sibling member is listed for every item of every stage of that family (see `shared_members`).

`python -m vovnet deps` prints each stage's code deps as dvc.yaml should hold them and what differs;
tests/test_dvc_deps.py fails on any difference.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("vovnet", "stages")  # where dvc.yaml deps are project code (the rest is data)
INTERP = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class Family:
    """Modules imported by a name known only at run time: `pattern` with `{}` for the name."""

    pattern: str  # dotted, e.g. "vovnet.data.adapters.{}"

    def path_pattern(self) -> str:
        return self.pattern.replace(".", "/") + ".py"

    def regex(self) -> re.Pattern:
        return re.compile(re.escape(self.path_pattern()).replace(re.escape("{}"), r"([A-Za-z_][A-Za-z0-9_]*)") + "$")

    def members(self, root: Path = ROOT) -> list[str]:
        rx = self.regex()
        glob = self.path_pattern().replace("{}", "*")
        return sorted(
            p.relative_to(root).as_posix()
            for p in root.glob(glob)
            if rx.match(p.relative_to(root).as_posix()) and p.stem != "__init__"
        )


@dataclass
class Closure:
    """What one entry point runs: project files (relative paths) and the families it imports by name."""

    files: set[str] = field(default_factory=set)
    families: set[Family] = field(default_factory=set)


@lru_cache(maxsize=None)
def module_file(name: str, root: Path = ROOT) -> str | None:
    """The project file of a dotted module name (a module or a package's __init__), if there is one."""
    base = root.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand.relative_to(root).as_posix()
    return None


def file_module(rel: str) -> str:
    parts = Path(rel).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(rel: str) -> str:
    parts = Path(rel).with_suffix("").parts
    return ".".join(parts[:-1])


@lru_cache(maxsize=None)
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


OPAQUE = Family("?")  # an import_module call whose name has no readable shape


def _family_of(call: ast.Call, module: str, package: str) -> Family | None:
    """`importlib.import_module(f"a.b.{x}")` / `(f"{__package__}.{x}.c")` -> Family("a.b.{}"); a call whose
    name cannot be read (a variable, two holes) -> OPAQUE; any other call -> None."""
    func = call.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )
    if not named:
        return None
    known = {"__package__": package, "__name__": module}
    parts = call.args[0].values if call.args and isinstance(call.args[0], ast.JoinedStr) else None
    if parts is None:
        return OPAQUE
    text, holes = "", 0
    for v in parts:
        if isinstance(v, ast.Constant):
            text += str(v.value)
        elif isinstance(v.value, ast.Name) and v.value.id in known:
            text += known[v.value.id]
        else:
            text, holes = text + "{}", holes + 1
    return Family(text) if holes == 1 and re.fullmatch(r"[\w.]*\{\}[\w.]*", text) else OPAQUE


@lru_cache(maxsize=None)
def imports_of(rel: str, root: Path = ROOT) -> tuple[frozenset[str], frozenset[Family]]:
    """The dotted names one file imports (absolute; `from a import b` names a.b, a module or a name in a)
    and the families it defines."""
    names: set[str] = set()
    families: set[Family] = set()
    package = _package_of(rel) if not rel.endswith("__init__.py") else file_module(rel)
    for node in ast.walk(_parse(root / rel)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.update(f"{mod}.{alias.name}" if alias.name != "*" else mod for alias in node.names)
        elif isinstance(node, ast.Call) and (fam := _family_of(node, file_module(rel), package)):
            families.add(fam)
    return frozenset(names), frozenset(families)


@lru_cache(maxsize=None)
def families_by_owner(rel: str, root: Path = ROOT) -> dict[str | None, frozenset[Family]]:
    """The families one file defines, by the top-level function or class whose body makes the call (None:
    the module's own code, which runs on import)."""
    package = _package_of(rel) if not rel.endswith("__init__.py") else file_module(rel)
    out: dict[str | None, set[Family]] = {}
    for top in _parse(root / rel).body:
        owner = top.name if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
        for node in ast.walk(top):
            if isinstance(node, ast.Call) and (fam := _family_of(node, file_module(rel), package)):
                out.setdefault(owner, set()).add(fam)
    return {k: frozenset(v) for k, v in out.items()}


def _families_used(rel: str, names: set[str | None], root: Path) -> set[Family]:
    """The families of `rel` that importing `names` from it can call (None: the module itself, so all)."""
    owned = families_by_owner(rel, root)
    if None in names:
        return {f for fams in owned.values() for f in fams}
    return {f for owner, fams in owned.items() if owner is None or owner in names for f in fams}


def _longest_module(name: str, root: Path) -> str | None:
    """The file of the longest prefix of `name` that is a module (`a.b.f` -> a/b.py when f is a name in it)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if f := module_file(".".join(parts[:i]), root):
            return f
    return None


def _script_sibling(name: str, rel: str, root: Path) -> str | None:
    """`python stages/x.py` puts stages/ first on sys.path, so `import y` there runs stages/y.py (a script's
    folder is no package: stages/this_checkout.py)."""
    here = Path(rel).parent
    if here == Path(".") or (root / here / "__init__.py").exists():
        return None
    cand = here / f"{name.split('.')[0]}.py"
    return cand.as_posix() if (root / cand).is_file() else None


def closure(entries: list[str], root: Path = ROOT) -> Closure:
    """Every project file that running `entries` (relative .py paths) executes, and the families it uses.

    A family counts when some file imports the module that defines it, or the name of the function that
    makes the call (`get_adapter`); importing only a member (`from vovnet.data.adapters import shapes_vqa`) runs the
    package's __init__ but imports nothing by name."""
    out = Closure()
    defined: dict[str, set[Family]] = {}
    used: dict[str, set[str | None]] = {}
    todo = list(entries)
    while todo:
        rel = todo.pop()
        if rel in out.files:
            continue
        out.files.add(rel)
        names, defined[rel] = imports_of(rel, root)
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c runs a/__init__, a/b/__init__, then a/b/c
                f = module_file(".".join(parts[:i]), root)
                if f and f not in out.files:
                    todo.append(f)
            if (target := _longest_module(name, root)) and target != rel:
                rest = name[len(file_module(target)) + 1 :].split(".")[0] if name != file_module(target) else None
                used.setdefault(target, set()).add(rest or None)
            if (sibling := _script_sibling(name, rel, root)) and sibling not in out.files:
                todo.append(sibling)
    out.families = {fam for rel, names in used.items() if defined.get(rel) for fam in _families_used(rel, names, root)}
    return out


def cmd_entries(cmd: str, root: Path = ROOT) -> list[str]:
    """The project files a stage cmd runs: scripts named on it and `python -m` modules (with their packages)."""
    tokens = shlex.split(cmd)
    found: list[str] = []
    for i, tok in enumerate(tokens):
        if tok == "-m" and i + 1 < len(tokens):
            parts = tokens[i + 1].split(".")
            found += [f for j in range(1, len(parts) + 1) if (f := module_file(".".join(parts[:j]), root))]
            if (main := module_file(tokens[i + 1] + ".__main__", root)) and main.endswith("__main__.py"):
                found.append(main)
        elif tok.endswith(".py") and "${" not in tok and (root / tok).is_file():
            found.append(Path(tok).as_posix())
    return found


def family_extras(family: Family, static: set[str], root: Path = ROOT) -> set[str]:
    """Files some member of `family` imports beyond the stage's own closure (`static`), itself aside.

    A DVC foreach entry cannot list a different number of files per item, so every item lists these: a
    member that imports a sibling member (or any module the stage does not import itself) makes that
    module a dep of every stage of the family."""
    extras: set[str] = set()
    for member in family.members(root):
        extras |= closure([member], root).files - static - {member}
    return extras


def registry_folder(family: Family, deps: list[str], root: Path = ROOT) -> str | None:
    """A listed folder holding every member of `family`, where no item field can name the member (an
    evaluation set's protocol comes from its images dataset's task defaults, not from dvc.yaml's item)."""
    members = family.members(root)
    for dep in deps:
        if members and (root / dep).is_dir() and all(m.startswith(dep.rstrip("/") + "/") for m in members):
            return dep
    return None


def code_paths(deps: list[str], root: Path = ROOT) -> set[str]:
    """The project .py files a resolved dep list names (a folder names every .py file under it)."""
    out: set[str] = set()
    for dep in deps:
        if Path(dep).parts[:1] and Path(dep).parts[0] in CODE_DIRS:
            p = root / dep
            if p.is_dir():
                out |= {q.relative_to(root).as_posix() for q in p.rglob("*.py")}
            elif dep.endswith(".py"):
                out.add(Path(dep).as_posix())  # a data file there (a task's defaults.yaml) is not code
    return out


# --- dvc.yaml's stages, resolved per foreach item -------------------------------------------------


@dataclass
class StageCode:
    """One resolved stage: the code deps dvc.yaml lists and those its cmd runs."""

    name: str  # e.g. normalize@mmbench
    group: str  # the dvc.yaml entry, e.g. normalize
    listed: set[str]
    shared: set[str]  # what every item of the entry runs: the cmd's closure, its families' extras
    templates: dict[str, str]  # the item's family member -> the dvc.yaml entry naming it (...${item.adapter}.py)
    problems: list[str] = field(default_factory=list)
    key: object = None  # a foreach stage's ${key} and ${item}
    item: object = None

    @property
    def expected(self) -> set[str]:
        return self.shared | set(self.templates)

    @property
    def missing(self) -> list[str]:
        return sorted(self.expected - self.listed)

    @property
    def extra(self) -> list[str]:
        return sorted(self.listed - self.expected)


def _lookup(data, dotted: str, where: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            raise KeyError(f"{where}: ${{{dotted}}} names nothing in params.yaml")
        data = data[part]
    return data


def interpolate(text: str, params: dict, key: str | None = None, item=None) -> str:
    """dvc.yaml's `${key}`, `${item.x}` and `${a.b}` (params.yaml), as DVC resolves them in a path or cmd."""

    def value(m: re.Match) -> str:
        expr = m.group(1).strip()
        if expr == "key":
            return str(key)
        if expr == "item":
            return str(item)
        if expr.startswith("item."):
            return str(_lookup(item, expr[5:], text))
        return str(_lookup(params, expr, text))

    return INTERP.sub(value, text)


def _dep_path(entry) -> str:
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


def resolve_stages(dvc_yaml: dict, params: dict, root: Path = ROOT) -> list[StageCode]:
    """Every stage of dvc.yaml (foreach items expanded) with its listed and expected code deps."""
    out: list[StageCode] = []
    for group, spec in (dvc_yaml.get("stages") or {}).items():
        if "foreach" in spec:
            items = spec["foreach"]
            if isinstance(items, str):
                items = _lookup(params, INTERP.fullmatch(items.strip()).group(1), f"{group}.foreach")
            pairs = list(items.items()) if isinstance(items, dict) else [(None, i) for i in items]
            body = spec["do"]
        else:
            pairs, body = [(None, None)], spec
        for key, item in pairs:
            name = group if key is None and item is None else f"{group}@{key if key is not None else item}"
            out.append(_stage_code(name, group, body, params, key, item, root))
    return out


def _stage_code(name: str, group: str, body: dict, params: dict, key, item, root: Path) -> StageCode:
    resolved = [(interpolate(d, params, key, item), d) for d in map(_dep_path, body.get("deps") or [])]
    static = closure(cmd_entries(interpolate(body["cmd"], params, key, item), root), root)
    shared, templates, problems = set(static.files), {}, []
    if OPAQUE in static.families:
        problems.append(
            "imports a module by a name vovnet/deps.py cannot read: write the call as "
            'importlib.import_module(f"package.{name}") so each item can list its module'
        )
    for fam in sorted(static.families - {OPAQUE}, key=lambda f: f.pattern):
        shared |= family_extras(fam, static.files, root)
        chosen = [(p, d) for p, d in resolved if "${" in d and fam.regex().match(p)]
        folder = registry_folder(fam, [p for p, _ in resolved], root)
        if not chosen and folder is not None:  # no item field names the member: the whole registry
            shared |= code_paths([folder], root)
            continue
        if len(chosen) != 1:
            problems.append(
                f"imports {fam.pattern} by name: list the item's module once, as "
                f"{fam.path_pattern().replace('{}', '${item.<field>}')}, or the folder of all"
            )
            continue
        path, entry = chosen[0]
        if not (root / path).is_file():
            problems.append(f"{entry} resolves to {path}, which does not exist")
            continue
        templates[path] = entry
    return StageCode(name, group, code_paths([p for p, _ in resolved], root), shared, templates, problems, key, item)


def load_pipeline(root: Path = ROOT) -> list[StageCode]:
    from vovnet.config import read_yaml

    return resolve_stages(read_yaml(root / "dvc.yaml"), read_yaml(root / "params.yaml"), root)


def wanted_deps(stages: list[StageCode]) -> dict[str, list[str]]:
    """Per dvc.yaml entry, the code deps it should list (a foreach entry: the items' shared part plus
    the template of each family member)."""
    groups: dict[str, list[StageCode]] = {}
    for s in stages:
        groups.setdefault(s.group, []).append(s)
    out = {}
    for group, members in groups.items():
        common = set.intersection(*(s.shared for s in members))
        out[group] = sorted(common) + sorted({t for s in members for t in s.templates.values()})
    return out


def report(stages: list[StageCode]) -> list[str]:
    """One line per difference, naming the stage and the module; empty when dvc.yaml is exact."""
    lines = []
    for s in stages:
        lines += [f"{s.name}: {p}" for p in s.problems]
        lines += [f"{s.name}: missing dep {m} (the stage imports it)" for m in s.missing]
        lines += [f"{s.name}: extra dep {e} (the stage does not import it)" for e in s.extra]
    return lines


def run_deps(root: Path = ROOT) -> int:
    """`python -m vovnet deps`: the code deps each dvc.yaml entry should list, then what differs."""
    stages = load_pipeline(root)
    for group, deps in wanted_deps(stages).items():
        print(f"{group}:")
        print("\n".join(f"  - {d}" for d in deps))
    problems = report(stages)
    print("\n".join(problems) if problems else "dvc.yaml lists exactly the code each stage imports")
    return 1 if problems else 0


def import_chain(entries: list[str], target: str, root: Path = ROOT) -> list[str]:
    """A shortest chain of files by which `entries` reach `target` (empty when they do not)."""
    parent: dict[str, str | None] = {e: None for e in entries}
    queue = list(entries)
    while queue:
        rel = queue.pop(0)
        if rel == target:
            chain = [rel]
            while parent[chain[-1]] is not None:
                chain.append(parent[chain[-1]])
            return chain[::-1]
        for name in sorted(imports_of(rel, root)[0]):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                f = module_file(".".join(parts[:i]), root)
                if f and f not in parent:
                    parent[f] = rel
                    queue.append(f)
    return []
