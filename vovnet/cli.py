"""Shared CLI plumbing for the stage entry points: one-line errors, logging, offline defaults."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

from vovnet import VovnetError


def str2bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def refused(instead: str) -> type[argparse.Action]:
    """An argparse action for a server-guide flag (docs/zh/) that this project spells another way: instead of
    argparse's "unrecognized arguments" and its usage text, one line saying what to type, exit status 2."""

    class Refused(argparse.Action):
        def __init__(self, option_strings, dest, **kwargs):
            super().__init__(option_strings, dest, nargs="*", help=f"the server guide's flag: {instead}")

        def __call__(self, parser, namespace, values, option_string=None):
            parser.exit(2, f"error: {option_string} is the server guide's flag: {instead}\n")

    return Refused


MIN_PYTHON = (3, 11)  # pyproject.toml's requires-python; numpy 2.4 and the other pins need it too


def python_too_old(version: tuple | None = None) -> str | None:
    """One line for an older Python (default: this one): pip stops on the numpy pin before it reaches
    requires-python, and a checkout run from its folder has no pip check at all."""
    version = tuple(version or sys.version_info)
    if version[:2] >= MIN_PYTHON:
        return None
    return (
        f"VoVNet needs Python {'.'.join(map(str, MIN_PYTHON))} or later, this is {'.'.join(map(str, version[:3]))}; "
        "make a new environment, e.g. `conda create -n vovnet python=3.11`, then `pip install -r requirements.txt`"
    )


def run(main: Callable[[], int | None]) -> None:
    logging.basicConfig(
        level=os.environ.get("VOVNET_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Stages must never phone home; datasets/transformers telemetry off.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    try:
        code = main()
    except VovnetError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever the message holds
        sys.exit(2)
    except OSError as exc:  # disk full, read-only folder, ...: the outputs were written atomically, so none is partial
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; earlier outputs are untouched", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
