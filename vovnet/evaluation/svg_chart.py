"""The demo report's Pareto plot as plain SVG: text, diffable, no plotting library."""

from __future__ import annotations


def svg_plot(series: list, x_max: float, w: int = 560, h: int = 360) -> str:
    """A plain SVG line/point chart (text, diffable, no plotting library): accuracy vs vision tokens."""
    left, right, top, bottom = 50, 190, 15, 40
    px = lambda x: left + (w - left - right) * x / max(1e-9, x_max)  # noqa: E731
    py = lambda y: top + (h - top - bottom) * (1 - y)  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
    ]
    for k in range(6):
        y = k / 5
        out.append(
            f'<line x1="{left}" x2="{w - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.1f}</text>'
        )
        x = x_max * k / 5
        out.append(f'<text x="{px(x):.1f}" y="{h - bottom + 15}" text-anchor="middle">{x:.1f}</text>')
    out.append(
        f'<text x="{(left + w - right) / 2}" y="{h - 8}" text-anchor="middle">mean vision tokens per question</text>'
        f'<text x="12" y="{(top + h - bottom) / 2}" transform="rotate(-90 12 {(top + h - bottom) / 2})" '
        'text-anchor="middle">accuracy (held-out)</text>'
    )
    for n, (name, colour, pts, dots) in enumerate(series):
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        if len(pts) > 1 and not name.startswith("always"):
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if dots:
            out += [
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{5 if len(pts) == 1 else 3}" fill="{colour}"/>'
                for x, y in pts
            ]
        ly = top + 14 + 18 * n
        out.append(
            f'<rect x="{w - right + 10}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{w - right + 26}" y="{ly + 1}">{name}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
