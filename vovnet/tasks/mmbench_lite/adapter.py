"""MMBench-Lite: the MMBench layout (TSV/HF), typically split `lite` (lmms-lab/LMMs-Eval-Lite, mmbench_en_dev).

It is a subset of MMBench dev, so its answers are known; merge keeps it out of the held-out part. The reader
is vovnet/data/mmbench_layout.py, shared with MMBench.
"""

from __future__ import annotations

from vovnet.data.mmbench_layout import build, hf_configs, iter_rows, source_files  # the same raw layout

__all__ = ["build", "hf_configs", "iter_rows", "source_files"]
