"""Pictures of one backtest for `pivotal backtest --out DIR` (and `make demo`): a PNG (matplotlib) and an interactive
HTML (plotly) with the price and the trades on top, and below the strategy's equity in money beside buy-and-hold.

What a trader should see at a glance: where the strategy was in the market, and whether holding would have done
better. Long charts are thinned to at most ``MAX_POINTS`` points per line (every k-th bar; extremes of a price line
are not what these pictures are for), so the HTML stays small; plotly.js is written once next to the HTML
(``plotly.min.js``), not inlined into every file, and works offline.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from pivotal.data.candles import Candles
    from pivotal.services.backtest import BacktestRun

MAX_POINTS = 4000
STRATEGY, HOLD, UP, DOWN = "#1e88e5", "#8d8d8d", "#26a69a", "#ef5350"


def _step(n: int) -> int:
    return max(1, -(-n // MAX_POINTS))


def _curves(run: BacktestRun, bars: Candles) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Times (datetime64), close, strategy equity in money and buy-and-hold equity in money, thinned alike."""
    curve = run.result.equity
    step = _step(len(curve.ts))
    keep = np.unique(np.concatenate((np.arange(0, len(curve.ts), step), [len(curve.ts) - 1])))
    ts = np.asarray(curve.ts, dtype=np.int64)[keep]
    pos = np.searchsorted(bars.ts, ts).clip(0, len(bars) - 1)
    close = np.asarray(bars.close, dtype=np.float64)[pos]
    equity = np.asarray(curve.equity, dtype=np.float64)[keep] * run.capital
    fee, slip = run.config.fee_rate, run.config.slippage
    # as if sold at each close: the same costs as the buy-and-hold line of the printed table, so the ends agree
    hold = run.capital * (1 - fee) ** 2 * close * (1 - slip) / (float(bars.open[0]) * (1 + slip))
    return ts.astype("datetime64[ms]"), close, equity, hold


def _entries(run: BacktestRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    trades = run.result.trades.trades
    times = np.array([t.entry_time for t in trades], dtype=np.int64).astype("datetime64[ms]")
    fills = np.array([t.entry_fill for t in trades], dtype=np.float64)
    longs = np.array([t.direction > 0 for t in trades], dtype=bool)
    return times, fills, longs


def title_of(run: BacktestRun) -> str:
    params = ", ".join(f"{k}={v}" for k, v in run.params.items())
    return "\n".join(textwrap.wrap(f"{run.strategy} on {run.source} ({params})", width=110))


def render_png(run: BacktestRun, bars: Candles, path: Path) -> None:
    # A bare Figure renders with the Agg canvas: no pyplot global state, never a window.
    times, close, equity, hold = _curves(run, bars)
    fig = Figure(figsize=(12, 7.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2], "hspace": 0.06})
    top.plot(times, close, color="#37474f", lw=0.8, label="close")
    e_times, e_fills, longs = _entries(run)
    if len(e_times):
        top.scatter(e_times[longs], e_fills[longs], marker="^", s=16, color=UP, zorder=3, label="long entry")
        top.scatter(e_times[~longs], e_fills[~longs], marker="v", s=16, color=DOWN, zorder=3, label="short entry")
    top.set_yscale("log")
    top.set_ylabel("price (log)")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title_of(run), fontsize=10)
    bottom.plot(times, equity, color=STRATEGY, lw=1.2, label=f"strategy: {equity[-1]:,.0f}")
    bottom.plot(times, hold, color=HOLD, lw=1.0, ls="--", label=f"buy and hold: {hold[-1]:,.0f}")
    bottom.axhline(run.capital, color="black", lw=0.6, alpha=0.5)
    bottom.set_yscale("log")
    bottom.set_ylabel(f"equity (start {run.capital:,.0f}, log)")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def render_html(run: BacktestRun, bars: Candles, path: Path) -> None:
    times, close, equity, hold = _curves(run, bars)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.6, 0.4], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=times, y=close, mode="lines", name="close", line={"color": "#37474f", "width": 1}), 1, 1)
    e_times, e_fills, longs = _entries(run)
    for mask, name, symbol, colour in ((longs, "long entry", "triangle-up", UP), (~longs, "short entry", "triangle-down", DOWN)):
        if mask.any():
            marker = {"symbol": symbol, "color": colour, "size": 7}
            fig.add_trace(go.Scatter(x=e_times[mask], y=e_fills[mask], mode="markers", name=name, marker=marker), 1, 1)
    fig.add_trace(go.Scatter(x=times, y=equity, mode="lines", name="strategy equity", line={"color": STRATEGY}), 2, 1)
    fig.add_trace(go.Scatter(x=times, y=hold, mode="lines", name="buy and hold", line={"color": HOLD, "dash": "dash"}), 2, 1)
    fig.update_yaxes(type="log", title_text="price", row=1, col=1)
    fig.update_yaxes(type="log", title_text=f"equity (start {run.capital:,.0f})", row=2, col=1)
    fig.update_layout(title=title_of(run).replace("\n", "<br>"), template="plotly_white", height=800, hovermode="x unified")
    fig.write_html(path, include_plotlyjs="directory", full_html=True)
