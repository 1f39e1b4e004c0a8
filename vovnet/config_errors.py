"""pydantic's ValidationError as one line: the full key path, the value given, and what is allowed."""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

_EXPECTED = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "none_required": "expected null",
}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _unwrap(tp: Any) -> Any:
    """Annotated[X, ...] -> X and Optional[X] -> X; a real union of several types is kept."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _walk(model: type[BaseModel], loc: tuple) -> tuple[int, type[BaseModel] | None]:
    """How many parts of `loc` name places in params.yaml (the rest are pydantic's union-member tags),
    and the model holding the last of them (for a did-you-mean on an unknown key)."""
    tp: Any = model
    parent = None
    for n, part in enumerate(loc):
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            parent = tp
            field = tp.model_fields.get(part)
            if field is None:
                return n + 1, parent
            tp = field.annotation
        elif get_origin(tp) in (dict, list):
            tp = get_args(tp)[-1]
        else:
            return n, parent
    return len(loc), parent


def _path(parts: tuple) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _value(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


# keys an older params.yaml may still hold, and what replaced them
RETIRED = {
    "grad_accum": "no longer a param: train.batch_size is the global batch of one optimizer step and "
    "gradient accumulation is derived from it, train.micro_batch_size and the processes"
}


# the server guide's configs/*.yaml keys (docs/zh/), and this project's key for each
GUIDE_KEYS = {
    "base_model_name": "the server guide's model.base_model_name is model.name here (a local directory or hub id)",
    "train_jsonl": "the server guide's data.train_jsonl is train.train_file here (the merge stage writes it: "
    "data/processed/mmbench_core/mmbench_core_train.jsonl)",
    "eval_jsonl": "the server guide's data.eval_jsonl is a set under evaluation.sets here "
    "(mmbench_test: {dataset: mmbench, split: test}), each scored by its own evaluate@ stage",
}


def _guide_key(loc: tuple, value: Any) -> str | None:
    """The replacement for a guide key, whether written inside a section or in the guide's own `data:` section."""
    if loc[-1] in GUIDE_KEYS:
        return GUIDE_KEYS[loc[-1]]
    if loc == ("data",) and isinstance(value, dict):
        known = [GUIDE_KEYS[k] for k in value if k in GUIDE_KEYS]
        return "; ".join(known) or None
    return None


def _detail(err: dict, parent: type[BaseModel] | None) -> tuple[str, bool]:
    """(what is wrong or allowed, whether to append the value given)."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        if err["loc"][-1] in RETIRED:
            return RETIRED[err["loc"][-1]], False
        guide = _guide_key(err["loc"], err.get("input"))
        if guide:
            return guide, False
        known = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"unknown key ({hint}known: {', '.join(known)})", False
    if kind == "missing":
        return "missing (required)", False
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        bound = ctx[key]
        return f"must be {op} {int(bound) if isinstance(bound, float) and bound.is_integer() else bound}", True
    if kind == "literal_error":
        return f"must be {ctx['expected']}", True
    if kind == "too_short":
        return f"needs at least {ctx['min_length']} item(s)", True
    if kind == "too_long":
        return f"allows at most {ctx['max_length']} item(s)", True
    if kind == "string_pattern_mismatch":
        return ("expected 'dataset/split'" if "/" in ctx["pattern"] else f"must match {ctx['pattern']}"), True
    if kind == "value_error":
        return err["msg"].removeprefix("Value error, "), False
    return _EXPECTED.get(kind, err["msg"]), True


def _drop_shared_verb(first: str, other: str) -> str:
    """'expected a string or expected a list' reads 'expected a string or a list'."""
    verbs = ("expected ", "must be ")
    if first.startswith(verbs):
        for verb in verbs:
            if other.startswith(verb):
                return other[len(verb) :]
    return other


def one_line(exc: ValidationError, model: type[BaseModel], where: str, prefix: tuple = ()) -> str:
    """`where: full.key.path: what is allowed, got <value>`; several fields wrong: the first and a count."""
    groups: dict[tuple, list[tuple[dict, type[BaseModel] | None]]] = {}
    for err in exc.errors():
        n, parent = _walk(model, err["loc"])
        groups.setdefault(err["loc"][:n], []).append((err, parent))
    loc, errs = next(iter(groups.items()))
    details = []
    for err, parent in errs:
        text, show = _detail(err, parent)
        if text not in details:
            details.append(text)
    show_value = all(_detail(e, p)[1] for e, p in errs)
    joined = details[:1] + [_drop_shared_verb(details[0], d) for d in details[1:]]
    msg = f"{where}: {_path(prefix + loc)}: " + " or ".join(joined)
    if show_value:
        msg += f", got {_value(errs[0][0]['input'])}"
    if len(groups) > 1:
        msg += f" (and {len(groups) - 1} more wrong key(s))"
    return msg
