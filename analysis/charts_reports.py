"""Report figures with matplotlib: frequency bars, trend lines, a co-occurrence heatmap.

Each figure is drawn from exactly the table the report page shows and offers as CSV, in
the codebook's colors, with fonts readable in a paper. ``render`` writes SVG (text kept as
text), PNG (200 dpi) or PDF. Figures are built without pyplot, so no global state is shared
between requests.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure

FORMATS = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "report",
}
FALLBACK = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]
WIDTH = 8.0
NAME_COLUMNS = ("code", "label", "term")


def distinct_colors(keys: list[str], colors: dict[str, str]) -> dict[str, str]:
    """The codebook's color per code, unless an earlier code took it: then a palette color."""
    taken: set[str] = set()
    result: dict[str, str] = {}
    spare = iter([c for c in FALLBACK if c not in set(colors.values())] + FALLBACK * 10)
    for key in keys:
        color = (colors.get(key) or "").lower()
        if not color or color in taken:
            color = next(spare)
        taken.add(color)
        result[key] = color
    return result


def _empty(message: str) -> Figure:
    fig = Figure(figsize=(WIDTH, 1.6))
    fig.text(0.5, 0.5, message, ha="center", va="center", color="#5b6670")
    return fig


def frequency_chart(table: pd.DataFrame, colors: dict[str, str], title: str = "") -> Figure:
    """Horizontal bars of ``units`` per code, grouped under ``group``, labelled n (share)."""
    with rc_context(STYLE):
        if not len(table):
            return _empty("No codes for these filters.")
        groups = list(dict.fromkeys(table["group"]))
        positions, labels, heads = [], [], []
        y = 0.0
        for group in groups:
            rows = table[table["group"] == group]
            if group:
                heads.append((y, group))
                y += 1.0
            for row in rows.itertuples():
                positions.append((y, row))
                labels.append(row.label)
                y += 1.0
            y += 0.5
        fig = Figure(figsize=(WIDTH, 0.8 + 0.27 * y), layout="constrained")
        ax = fig.add_subplot()
        ys = [p for p, _ in positions]
        values = [int(r.units) for _, r in positions]
        bar_colors = [colors.get(r.code) or "#4c72b0" for _, r in positions]
        ax.barh(ys, values, color=bar_colors, height=0.75)
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        top = max(values) if values else 0
        ax.set_xlim(0, max(top * 1.18, 1))
        for (pos, row), value in zip(positions, values, strict=True):
            share = row.share_of_units
            text = f"{value}" if pd.isna(share) else f"{value} ({share:.0%})"
            ax.text(value + top * 0.01, pos, text, va="center", fontsize=8.5, color="#333333")
        for pos, group in heads:
            ax.text(
                -0.01,
                pos,
                group,
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="center",
                fontweight="bold",
            )
        ax.set_xlabel("units")
        if title:
            ax.set_title(title, loc="left")
        return fig


def trend_chart(wide: pd.DataFrame, colors: dict[str, str], ylabel: str, title: str = "") -> Figure:
    """One line per row of ``wide``: its name (``code`` and ``label``, or ``term``), then
    one column per period."""
    with rc_context(STYLE):
        names = [c for c in wide.columns if c in NAME_COLUMNS]
        periods = [c for c in wide.columns if c not in NAME_COLUMNS]
        if not len(wide) or not periods:
            return _empty("No units in this window.")
        fig = Figure(figsize=(WIDTH + 2.2, 4.2), layout="constrained")
        ax = fig.add_subplot()
        x = np.arange(len(periods))
        keys = [str(k) for k in wide[names[0]]]
        labels = [str(k) for k in wide["label" if "label" in names else names[0]]]
        palette = distinct_colors(keys, colors)
        for key, label, values in zip(keys, labels, wide[periods].to_numpy(), strict=True):
            series = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
            ax.plot(
                x, series, marker="o", markersize=3, linewidth=1.6, color=palette[key], label=label
            )
        step = max(1, math.ceil(len(periods) / 16))
        ax.set_xticks(x[::step], periods[::step], rotation=45, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#e5e5e5")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8.5)
        if title:
            ax.set_title(title, loc="left")
        return fig


def cooccurrence_chart(matrix: pd.DataFrame, measure: str, title: str = "") -> Figure:
    """A heatmap of ``matrix`` (code, label, then one column per code), values written in."""
    with rc_context(STYLE):
        keys = [c for c in matrix.columns if c not in ("code", "label")]
        if not len(matrix) or not keys:
            return _empty("No codes applied for these filters.")
        values = matrix[keys].to_numpy(dtype=float)
        n = len(keys)
        size = min(max(3.5, 0.42 * n + 2.5), 14)
        fig = Figure(figsize=(size + 1.5, size), layout="constrained")
        ax = fig.add_subplot()
        # The diagonal (a code with itself) is grey, so the pairs use the whole scale.
        shown = values.copy()
        np.fill_diagonal(shown, np.nan)
        cmap = colormaps["Blues"].with_extremes(bad="#e9ebee")
        top = float(np.nanmax(shown)) if np.isfinite(shown).any() else 0.0
        image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=top or 1.0, aspect="equal")
        labels = list(matrix["label"])
        ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8.5)
        ax.set_yticks(range(n), labels, fontsize=8.5)
        ax.spines[:].set_visible(False)
        if n <= 25:
            for i in range(n):
                for j in range(n):
                    v = values[i, j]
                    text = f"{v:.2f}" if measure == "jaccard" else f"{int(v)}"
                    ax.text(
                        j,
                        i,
                        text,
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if i != j and top and v > top * 0.6 else "#1d232a",
                    )
        fig.colorbar(image, ax=ax, shrink=0.7, label=measure)
        if title:
            ax.set_title(title, loc="left")
        return fig


def render(fig: Figure, fmt: str) -> bytes:
    """The figure as SVG, PNG or PDF bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else {}
    with rc_context(STYLE):
        fig.savefig(buffer, format=fmt, dpi=200, metadata=metadata)
    return buffer.getvalue()
