"""Line and scatter charts of the forum-vs-Hub series, drawn with matplotlib as SVG or PNG.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state), so
concurrent requests never share a figure.
"""

from __future__ import annotations

import io

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter, PercentFormatter

from .correlation import CountTable
from .trends import CardShare, top_names

COLORS = ["#2f5f8f", "#c0632d", "#2e7d4f", "#8a4f9e", "#a33a2c", "#5b6670", "#b08a00", "#1f8a8a"]
FORMATS = {"svg": "image/svg+xml", "png": "image/png"}


def _figure() -> tuple[Figure, object]:
    figure = Figure(figsize=(9, 3.8), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#dfe2e5", linewidth=0.8)
    return figure, axes


def _render(figure: Figure, fmt: str) -> bytes:
    out = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {}
    # SVG text stays text (searchable, selectable, read by screen readers), not outlines.
    with rc_context({"svg.fonttype": "none"}):
        figure.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def _empty(figure: Figure, axes, message: str) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.5, message, ha="center", va="center", color="#5b6670", fontsize=12)


def _month_ticks(axes, periods: list[str]) -> None:
    step = max(1, len(periods) // 12)
    positions = list(range(0, len(periods), step))
    axes.set_xticks(positions, [periods[i] for i in positions], rotation=45, ha="right")


def series_chart(table: CountTable, *, ylabel: str, fmt: str, limit: int = 8) -> bytes:
    """Monthly counts of the ``limit`` largest names, one line each."""
    figure, axes = _figure()
    names = top_names(table, limit)
    if not names or not table.periods:
        _empty(figure, axes, "No data yet")
    else:
        x = list(range(len(table.periods)))
        for index, name in enumerate(names):
            axes.plot(
                x,
                table.series(name, table.periods),
                label=name,
                color=COLORS[index % len(COLORS)],
                linewidth=1.6,
            )
        _month_ticks(axes, table.periods)
        axes.set_ylabel(ylabel)
        axes.set_ylim(bottom=0)
        axes.legend(frameon=False, fontsize=8, loc="upper left", ncols=2)
    return _render(figure, fmt)


def totals_chart(totals: dict[str, tuple[float, float]], *, fmt: str) -> bytes:
    """Each shared type as a point: forum threads mentioning it vs Hub models created."""
    figure, axes = _figure()
    points = {n: t for n, t in totals.items() if t[0] > 0 and t[1] > 0}
    if len(points) < 2:
        _empty(figure, axes, "Too few model types with both mentions and uploads")
    else:
        xs = [t[1] for t in points.values()]
        ys = [t[0] for t in points.values()]
        axes.scatter(xs, ys, color=COLORS[0], s=22)
        for name, (forum, hub) in points.items():
            axes.annotate(name, (hub, forum), fontsize=7, xytext=(3, 2), textcoords="offset points")
        axes.set_xscale("log")
        axes.set_yscale("log")
        plain = FuncFormatter(lambda value, _position: f"{value:g}")
        for axis in (axes.xaxis, axes.yaxis):
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("Hub models created (total)")
        axes.set_ylabel("forum threads (total)")
    return _render(figure, fmt)


def cards_chart(shares: list[CardShare], *, fmt: str) -> bytes:
    """The share of newly created models with model-card data, per month."""
    figure, axes = _figure()
    if not shares:
        _empty(figure, axes, "No Hub models with a known creation date yet")
    else:
        periods = [s.period for s in shares]
        axes.plot(range(len(shares)), [s.share for s in shares], color=COLORS[1], linewidth=1.8)
        _month_ticks(axes, periods)
        axes.set_ylim(0, 1)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_ylabel("new models with a card")
    return _render(figure, fmt)
