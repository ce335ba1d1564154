"""Agreement chart: Krippendorff's alpha per code with its 95% bootstrap interval.

Drawn without pyplot (no global state shared between requests); SVG keeps text as text.
"""

from __future__ import annotations

import io

from matplotlib import rc_context
from matplotlib.figure import Figure

FORMATS = {"svg": "image/svg+xml", "png": "image/png"}
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "agreement",
}


def alpha_chart(rows: list[dict], fmt: str = "svg") -> bytes:
    """One row per code (label, alpha, low, high), best agreement at the top.

    Codes without an alpha (no variation) are left out; the page's table lists them.
    """
    shown = [row for row in rows if row["alpha"] is not None]
    shown.sort(key=lambda row: row["alpha"])
    with rc_context(STYLE):
        figure = Figure(figsize=(7.5, max(2.0, 0.32 * len(shown) + 1.1)))
        axes = figure.add_subplot()
        positions = list(range(len(shown)))
        alphas = [row["alpha"] for row in shown]
        low = [row["alpha"] - row["low"] if row["low"] is not None else 0 for row in shown]
        high = [row["high"] - row["alpha"] if row["high"] is not None else 0 for row in shown]
        axes.errorbar(
            alphas, positions, xerr=[low, high], fmt="o", color="#2f5f8f", ecolor="#8aa6c1",
            capsize=3, markersize=5,
        )  # fmt: skip
        for threshold, style in ((0.667, ":"), (0.8, "--")):
            axes.axvline(threshold, color="#9a6a00", linestyle=style, linewidth=1)
        axes.set_yticks(positions, [row["label"] for row in shown])
        axes.set_xlabel(
            "Krippendorff's alpha with 95% bootstrap interval (dashed: 0.8, dotted: 0.667)"
        )
        left = min([0.0, *[row["low"] for row in shown if row["low"] is not None]])
        axes.set_xlim(left - 0.05, 1.02)
        if not shown:
            axes.text(0.5, 0.5, "No code has an alpha yet", ha="center", transform=axes.transAxes)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=150 if fmt == "png" else None)
    return buffer.getvalue()
