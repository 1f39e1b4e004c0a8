"""Shared CLI plumbing for the stage entry points: one-line errors, logging, offline defaults."""

from __future__ import annotations

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
