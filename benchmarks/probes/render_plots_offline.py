"""Render `dvc plots show` in headless Chromium with the network cut, and count the Vega plots that drew.

    python benchmarks/probes/render_plots_offline.py [--out /tmp/vovnet-plots]   # needs a reproduced workspace

Chromium is not a project dependency (Debian: `apt-get install -y chromium`). Every request leaves through
a proxy on a closed port, so a page that needed a CDN would stay blank. Prints, per plot, whether its
<svg class="marks"> exists; writes the page, its rendered DOM and a screenshot under --out.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

OFFLINE = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--virtual-time-budget=10000",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/vovnet-plots"))
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        sys.exit("no chromium on PATH (Debian: apt-get install -y chromium)")
    shutil.rmtree(args.out, ignore_errors=True)
    subprocess.run(["dvc", "plots", "show", "-o", str(args.out / "page")], check=True, capture_output=True)
    page = (args.out / "page" / "index.html").resolve()
    dom = subprocess.run(
        [browser, *OFFLINE, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=300
    ).stdout
    (args.out / "dom.html").write_text(dom)
    subprocess.run(
        [browser, *OFFLINE, "--window-size=1400,6000", f"--screenshot={args.out / 'screenshot.png'}", page.as_uri()],
        capture_output=True,
        timeout=300,
    )
    ids = re.findall(r"vegaEmbed\('#([^']+)'", page.read_text(encoding="utf-8"))
    drawn = 0
    for i, div in enumerate(ids):
        nxt = dom.find(f'<div id="{ids[i + 1]}"') if i + 1 < len(ids) else len(dom)
        ok = 'class="marks"' in dom[dom.find(f'<div id="{div}"') : nxt]
        drawn += ok
        print(f"{'drawn' if ok else 'BLANK'}  {div}")
    images = len(re.findall(r"<img ", dom))
    print(
        f"{drawn} of {len(ids)} Vega plots drawn offline, {images} image plots; "
        f"screenshot {args.out / 'screenshot.png'}"
    )
    return 0 if ids and drawn == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
