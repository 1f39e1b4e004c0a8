"""MMBench: VLMEvalKit TSV (base64 images, circular copies) or the HF layouts (lmms-lab/MMBench_EN,
lmms-lab/MMBench). The reader is vovnet/data/mmbench_layout.py, which MMBench-Lite shares."""

from __future__ import annotations

from vovnet.data.mmbench_layout import build, hf_configs, iter_rows, row_from_cells, source_files

__all__ = ["build", "hf_configs", "iter_rows", "row_from_cells", "source_files"]
