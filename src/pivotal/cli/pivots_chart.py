"""Pictures for `pivotal pivots chart`: a PNG (matplotlib) and an interactive HTML (plotly) of candles and pivots.

What a trader should see at a glance: each level with its own colour and a marker that grows with the level; for
levels >= 2 a thin dotted line from the pivot to the bar whose close confirmed it (the lag before anyone could know);
the current trend lines of one level projected to the right edge; the level's zigzag, its last leg marked provisional.
The x axis of the PNG is the bar position (gaps in the data do not stretch it); dates label the ticks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from plotly.subplots import make_subplots

from pivotal.cli.pivots_render import iso
from pivotal.core.vocabulary import PivotKindName
from pivotal.data.candles import Candles
from pivotal.structure.trendlines import TrendLine, active_trend_line
from pivotal.structure.types import PivotSet
from pivotal.structure.zigzag import zigzag_of_level

LEVEL_COLOURS = ("#8d8d8d", "#1e88e5", "#f57c00", "#8e24aa", "#d81b60")
MARKER_SIZES = (14, 40, 75, 120, 175)  # matplotlib points^2: bigger for higher levels
UP, DOWN = "#26a69a", "#ef5350"


@dataclass(frozen=True)
class ChartSpec:
    """What to draw: ``first`` is the first bar shown (pivots are computed on all bars, so early ones warm up)."""

    bars: Candles
    pivots: PivotSet
    first: int
    title: str
    trend_level: int = 2
    tf_ms: int | None = None

    @property
    def last(self) -> int:
        return len(self.bars) - 1

    def visible(self, index: np.ndarray) -> np.ndarray:
        return index >= self.first


def _colour(level: int) -> str:
    return LEVEL_COLOURS[(level - 1) % len(LEVEL_COLOURS)]


def _current_lines(spec: ChartSpec) -> list[TrendLine]:
    if spec.trend_level > len(spec.pivots.highs):
        return []
    lines = [active_trend_line(spec.pivots, spec.last, spec.trend_level, kind, spec.bars.ts) for kind in ("H", "L")]
    return [line for line in lines if line is not None]


# --- PNG -------------------------------------------------------------------------------------------------------------
def _draw_candles(ax: Axes, spec: ChartSpec) -> None:
    b, x = spec.bars, np.arange(spec.first, len(spec.bars))
    o, h, lo, c = (a[spec.first :] for a in (b.open, b.high, b.low, b.close))
    colours = np.where(c >= o, UP, DOWN)
    ax.vlines(x, lo, h, colors=colours.tolist(), linewidth=0.7, zorder=2)
    body = np.maximum(np.abs(c - o), (h.max() - lo.min()) * 0.0008)  # doji stay visible
    ax.bar(x, body, bottom=np.minimum(o, c), width=0.65, color=colours, linewidth=0, zorder=3)


def _top_level_only(spec: ChartSpec, level: int, kind: str) -> np.ndarray:
    """Mask of the level's pivots that are not also pivots of the level above (one marker per pivot bar)."""
    arr = spec.pivots.get(level, kind)  # type: ignore[arg-type]
    if level == len(spec.pivots.highs):
        return np.ones(len(arr), dtype=bool)
    return ~np.isin(arr.index, spec.pivots.get(level + 1, kind).index)  # type: ignore[arg-type]


def _draw_pivots(ax: Axes, spec: ChartSpec, pad: float) -> None:
    """Each pivot bar gets one marker, of its highest level; L2+ also get their confirmation-lag line."""
    for level in range(1, len(spec.pivots.highs) + 1):
        colour, size = _colour(level), MARKER_SIZES[min(level, len(MARKER_SIZES)) - 1]
        kinds: tuple[tuple[PivotKindName, str, float], ...] = (("H", "v", 1.0), ("L", "^", -1.0))
        for kind, marker, sign in kinds:
            arr = spec.pivots.get(level, kind)
            keep = spec.visible(arr.index) & _top_level_only(spec, level, kind)
            idx, price, conf = arr.index[keep], arr.price[keep], arr.confirmed_at[keep]
            y = price + sign * pad * (1.0 + 0.25 * level)
            ax.scatter(idx, y, s=size, marker=marker, color=colour, edgecolors="black", linewidths=0.3, zorder=5 + level)
            if level >= 2 and len(idx):  # the confirmation lag: known only from the end of this line on
                ax.hlines(price, idx, conf, colors=colour, linewidth=1.0, linestyles=":", alpha=0.9, zorder=4)
                ax.scatter(conf, price, s=18, marker="|", color=colour, zorder=4)
            if level >= 3:
                for i, p, yy in zip(idx, price, y, strict=True):
                    ax.annotate(
                        f"L{level} {p:g}",
                        (i, yy),
                        xytext=(0, 9 * sign),
                        textcoords="offset points",
                        fontsize=7,
                        color=colour,
                        ha="center",
                        va="bottom" if sign > 0 else "top",
                    )


def _draw_zigzag_and_lines(ax: Axes, spec: ChartSpec) -> None:
    if spec.trend_level <= len(spec.pivots.highs):
        zz = zigzag_of_level(spec.pivots, spec.trend_level, spec.bars.open, spec.bars.close)
        keep = np.flatnonzero(spec.visible(zz.index))
        if len(keep) >= 2:
            ax.plot(zz.index[keep[:-1]], zz.price[keep[:-1]], color="#546e7a", linewidth=0.8, alpha=0.55, zorder=1)
            ax.plot(zz.index[keep[-2:]], zz.price[keep[-2:]], color="#546e7a", linewidth=0.8, alpha=0.55, linestyle="--")
    right = spec.last + max(5, (spec.last - spec.first) // 12)
    for line in _current_lines(spec):
        start = max(line.i1, spec.first)
        colour = DOWN if line.kind == "H" else UP
        label = f"L{line.level}{line.kind} trend line: {line.direction}, {line.slope:+.4g} per bar"
        ax.plot(
            [start, right],
            [float(line.value_at(start)), float(line.value_at(right))],
            color=colour,
            lw=1.6,
            ls="--",
            zorder=6,
            label=label,
        )


def _date_ticks(ax: Axes, spec: ChartSpec) -> None:
    ticks = np.linspace(spec.first, spec.last, num=min(9, spec.last - spec.first + 1)).astype(int)
    ax.set_xticks(ticks)
    ax.set_xticklabels([iso(int(spec.bars.ts[t]))[:16].replace("T", "\n") for t in ticks], fontsize=8)


def _legend(ax: Axes, spec: ChartSpec) -> None:
    lines, _ = ax.get_legend_handles_labels()
    handles: list[Artist] = [
        Line2D(
            [],
            [],
            marker="v",
            linestyle="",
            color=_colour(lv),
            markersize=3 + 2 * lv,
            label=f"L{lv} high / low (marker of its highest level)" if lv == 1 else f"L{lv} high / low",
        )
        for lv in range(1, len(spec.pivots.highs) + 1)
    ]
    handles += [
        Line2D([], [], color="#444444", linestyle=":", label="pivot → bar that confirmed it (L2+)"),
        Line2D([], [], color="#546e7a", label=f"L{spec.trend_level} zigzag (dashed leg: provisional)"),
        *lines,
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, framealpha=0.9, borderaxespad=0)


def render_png(spec: ChartSpec, path: Path) -> None:
    # A bare Figure renders with the Agg canvas: no pyplot global state, never a window.
    fig = Figure(figsize=(18, 9.5))
    ax, vol = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [5, 1], "hspace": 0.04})
    shown = slice(spec.first, None)
    lo, hi = float(spec.bars.low[shown].min()), float(spec.bars.high[shown].max())
    pad = (hi - lo) * 0.012
    _draw_candles(ax, spec)
    _draw_pivots(ax, spec, pad)
    _draw_zigzag_and_lines(ax, spec)
    ax.set_ylim(lo - pad * 7, hi + pad * 7)
    ax.set_xlim(spec.first - 1, spec.last + max(6, (spec.last - spec.first) // 12))
    ax.grid(alpha=0.25)
    ax.set_title(spec.title, fontsize=11)
    _legend(ax, spec)
    x = np.arange(spec.first, len(spec.bars))
    up = spec.bars.close[shown] >= spec.bars.open[shown]
    vol.bar(x, spec.bars.volume[shown], width=0.65, color=np.where(up, UP, DOWN), alpha=0.7)
    vol.set_ylabel("volume", fontsize=8)
    vol.grid(alpha=0.25)
    _date_ticks(vol, spec)
    fig.savefig(path, dpi=110, bbox_inches="tight")


# --- HTML ------------------------------------------------------------------------------------------------------------
def _times(spec: ChartSpec, index: np.ndarray) -> np.ndarray:
    return spec.bars.ts[index].astype("datetime64[ms]")


def _html_pivots(fig: go.Figure, spec: ChartSpec) -> None:
    for level in range(1, len(spec.pivots.highs) + 1):
        html_kinds: tuple[tuple[PivotKindName, str], ...] = (("H", "triangle-down"), ("L", "triangle-up"))
        for kind, symbol in html_kinds:
            arr = spec.pivots.get(level, kind)
            keep = spec.visible(arr.index)
            idx, price, conf = arr.index[keep], arr.price[keep], arr.confirmed_at[keep]
            hover = [
                f"L{level}{kind} {p:g}<br>bar {i} {iso(int(spec.bars.ts[i]))}<br>confirmed at bar {c} (lag {c - i})"
                for i, p, c in zip(idx, price, conf, strict=True)
            ]
            fig.add_trace(
                go.Scatter(
                    x=_times(spec, idx),
                    y=price,
                    mode="markers",
                    name=f"L{level}{kind}",
                    legendgroup=f"L{level}",
                    marker={"symbol": symbol, "size": 5 + 3 * level, "color": _colour(level), "line": {"width": 0.5}},
                    hovertext=hover,
                    hoverinfo="text",
                ),
                row=1,
                col=1,
            )
            if level >= 2 and len(idx):
                xs = np.full(3 * len(idx), np.datetime64("NaT"), dtype="datetime64[ms]")
                ys = np.full(3 * len(idx), np.nan)
                xs[0::3], xs[1::3] = _times(spec, idx), _times(spec, conf)
                ys[0::3] = ys[1::3] = price
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        mode="lines",
                        line={"color": _colour(level), "width": 1, "dash": "dot"},
                        name=f"L{level}{kind} lag",
                        legendgroup=f"L{level}",
                        showlegend=False,
                        hoverinfo="skip",
                    ),
                    row=1,
                    col=1,
                )


def _html_lines(fig: go.Figure, spec: ChartSpec) -> None:
    tf = spec.tf_ms or (int(np.median(np.diff(spec.bars.ts))) if len(spec.bars) > 1 else 0)
    extra = max(5, (spec.last - spec.first) // 12)
    for line in _current_lines(spec):
        start = max(line.i1, spec.first)
        x = [np.datetime64(int(spec.bars.ts[start]), "ms"), np.datetime64(int(spec.bars.ts[spec.last]) + extra * tf, "ms")]
        y = [line.value_at(start), line.value_at(spec.last + extra)]
        colour = DOWN if line.kind == "H" else UP
        name = f"L{line.level}{line.kind} trend ({line.direction}, {line.slope:+.4g}/bar)"
        fig.add_trace(
            go.Scatter(x=x, y=y, mode="lines", line={"color": colour, "dash": "dash", "width": 2}, name=name), row=1, col=1
        )


def render_html(spec: ChartSpec, path: Path) -> None:
    b, shown = spec.bars, slice(spec.first, None)
    times = b.ts[shown].astype("datetime64[ms]")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.8, 0.2], vertical_spacing=0.02)
    fig.add_trace(
        go.Candlestick(
            x=times,
            open=b.open[shown],
            high=b.high[shown],
            low=b.low[shown],
            close=b.close[shown],
            name="bars",
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    _html_pivots(fig, spec)
    _html_lines(fig, spec)
    fig.add_trace(go.Bar(x=times, y=b.volume[shown], name="volume", marker_color="#90a4ae", showlegend=False), row=2, col=1)
    fig.update_layout(title=spec.title, xaxis_rangeslider_visible=False, template="plotly_white", height=850, hovermode="closest")
    # plotly.js (4.8 MB) once beside the HTML, not inlined into every chart; still works offline
    fig.write_html(path, include_plotlyjs="directory", full_html=True)
