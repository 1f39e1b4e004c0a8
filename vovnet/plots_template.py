"""The HTML page `dvc plots show` fills (DVC's `plots.html_template`, set in .dvc/config), with Vega, Vega-Lite
and Vega-Embed inlined from the pinned vl-convert-python: the interactive plots render with no network.

DVC fills `{plot_divs}` and would put its CDN <script> tags where a template says `{scripts}`; this one has no
`{scripts}`. The page is committed (.dvc/offline_plots.html), so a fresh clone has it before any repro;
tests/test_plots_template.py checks it equals what the installed vl-convert builds. After changing the
vl-convert pin: `python -m vovnet plots-template`.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / ".dvc" / "offline_plots.html"
VEGA_LITE = "v5.21"  # DVC's plot templates are Vega-Lite 5 specs

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>VoVNet plots</title>
    <!-- Vega {vega}, Vega-Lite {vega_lite}, Vega-Embed {embed}: vl_convert.javascript_bundle() of
         vl-convert-python {vl_convert}, inlined so that the plots render offline -->
    <script type="text/javascript">
{bundle}
    </script>
    <style>
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def offline_page() -> str:
    import importlib.metadata

    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE)
    if "</script" in bundle.lower() or "{plot_divs}" in bundle:
        raise ValueError("vl-convert's bundle cannot be inlined in a <script> element as it is")
    return PAGE.format(
        vega=vl_convert.get_vega_version(),
        vega_lite=VEGA_LITE,
        embed=vl_convert.get_vega_embed_version(),
        vl_convert=importlib.metadata.version("vl-convert-python"),
        bundle=bundle,
    )


def write_offline_page(path: str | Path = TEMPLATE) -> Path:
    from vovnet.io_utils import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(offline_page(), encoding="utf-8")
    return path
