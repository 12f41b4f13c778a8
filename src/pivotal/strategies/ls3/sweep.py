"""LIQUIDITY SWEEP V3 fast path: one market prepared once, any number of configurations evaluated (spec B.6).

API (stable; the optimiser builds on it)::

    LS3Params(pierce_depth, rejection_candles, volume_spike_threshold, reversal_candle_size,
              key_level_lookback, stop_distance, target_multiple)          # one configuration
    LS3Constants(atr_period=14, vma_period=20, pivot_k=2, max_hold_bars=50, fee_rate=0.001, slippage=0.0005)
    LS3_GRID: dict[str, tuple]        # spec B.3, table order; grid_size() == 201_600
    grid_point(i) -> LS3Params         # mixed radix, last dimension (target_multiple) fastest
    grid_index(params) -> int          # inverse of grid_point
    grid_choices(indices) -> ndarray   # [len, 7] value positions

    market = prepare_market(open, high, low, close, volume, ts=None, constants=LS3Constants())
    stats  = evaluate(market, params, start=0, end=None) -> TradeStats      # .metrics dict, .trades TradeList
    table  = evaluate_many(market, indices, start=0, end=None, return_trades=False) -> dict[str, ndarray]

Window semantics (``start``/``end``): indicators, key levels and level consumption always run over the whole series
from bar 0 (warm-up from the past is causal); only signals whose reclaim bar r satisfies ``start <= r < end`` are
traded, and a trade runs to its natural exit, which may lie after ``end`` (EOD only at the last bar of the series).
The event engine (``pivotal.execution``) gives the same trades with ``BacktestConfig(trade_window=(start, end))``.

``evaluate_many`` returns ``index`` plus one array per metric of ``pivotal.core.metrics.TRADE_METRICS``:
net_profit_pct (compounded, %), trades, win_rate (fraction), profit_factor, max_drawdown (positive fraction, on
trade-by-trade equity) and sharpe (per trade, not annualised); with ``return_trades=True`` also ``trade_returns``,
a list of per-trade net-return arrays (and ``trade_exit_bars``).

How it is fast: episodes depend only on (pierce_depth, key_level_lookback, rejection_candles) — 150 combinations,
cached per market and shared by ``evaluate`` and ``evaluate_many`` — and each level's episode is independent of the
others, so each level is simulated on its own (no per-bar loop over active levels). The first-pierce search is
market-only work done in ``prepare_market`` (``ls3.pierce``: per-level chains of new extremes and, for the grid's
pierce depths, the first pierce bar itself), so a configuration reads one pierce bar per level. Volume/size
thresholds become integer levels per episode, signals for a (volume, size) pair are a filter plus the per-bar conflict
rule, and trade outcomes per (episode, stop, target) are computed once per episode table; the one-position filter is
O(#signals) per config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pivotal.core.metrics import TRADE_METRICS, trade_stats
from pivotal.core.trades import Trade, TradeList, exit_reason_name
from pivotal.features.volatility import volume_ma, wilder_atr
from pivotal.strategies.ls3 import kernels as kern
from pivotal.strategies.ls3 import pierce as ls3_pierce
from pivotal.strategies.ls3.params import (
    GRID_RADICES,
    LS3_GRID,
    LS3Constants,
    LS3Params,
    grid_choices,
    grid_index,
    grid_point,
    grid_size,
)
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotParams, PivotSet

__all__ = [
    "LS3_GRID",
    "LS3Constants",
    "LS3Market",
    "LS3Params",
    "TradeStats",
    "evaluate",
    "evaluate_many",
    "grid_choices",
    "grid_index",
    "grid_point",
    "grid_size",
    "prepare_market",
    "signals",
]

_GRID_VALUES = {name: np.array(values, dtype=np.float64) for name, values in LS3_GRID.items()}
_GRID_POSITION = {name: {value: i for i, value in enumerate(values)} for name, values in LS3_GRID.items()}
# first-pierce records cover the largest grid lookback; longer lookbacks continue along the chain (exact, slower)
PIERCE_HORIZON = int(max(LS3_GRID["key_level_lookback"]))
_EPISODE_DIMS = ("pierce_depth", "rejection_candles", "volume_spike_threshold", "reversal_candle_size", "key_level_lookback")


@dataclass(frozen=True)
class LS3Market:
    """One series with everything LS3 needs precomputed (ATR, VMA, confirmed L1 levels)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    ts: np.ndarray
    constants: LS3Constants
    atr: np.ndarray
    vma: np.ndarray
    lvl_index: np.ndarray
    lvl_price: np.ndarray
    lvl_conf: np.ndarray
    lvl_side: np.ndarray
    next_lower: np.ndarray
    next_higher: np.ndarray
    pierce_records: tuple[np.ndarray, ...]  # per-level first-pierce candidates (``ls3_pierce.pierce_records``)
    pierce_at: np.ndarray  # [grid pierce depth, level]: first pierce bar within the records (``ls3_pierce.pierce_table``)
    _episodes: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return self.close.shape[0]

    @property
    def bars(self) -> tuple[np.ndarray, ...]:
        """The per-bar arrays in the order the kernels take them."""
        return (self.open, self.high, self.low, self.close, self.atr, self.volume, self.vma, self.next_lower, self.next_higher)

    @property
    def levels(self) -> tuple[np.ndarray, ...]:
        return (self.lvl_index, self.lvl_price, self.lvl_conf, self.lvl_side)


@dataclass(frozen=True)
class TradeStats:
    """One configuration's result: metrics plus the trades as columns (``columns``) or as a :class:`TradeList`."""

    params: LS3Params
    metrics: dict[str, float]
    columns: dict[str, np.ndarray]
    ts: np.ndarray = field(repr=False)

    @property
    def returns(self) -> np.ndarray:
        return self.columns["net_return"]

    @property
    def trades(self) -> TradeList:
        col, ts = self.columns, self.ts
        return TradeList(
            tuple(
                Trade(
                    signal_bar=int(r),
                    direction=int(d),
                    level=float(lv),
                    entry_bar=int(r) + 1,
                    entry_time=int(ts[r + 1]),
                    entry_fill=float(ef),
                    stop=float(sl),
                    target=float(tp),
                    exit_bar=int(xb),
                    exit_time=int(ts[xb]),
                    exit_reason=exit_reason_name(why),
                    exit_fill=float(xf),
                    net_return=float(net),
                )
                for r, d, lv, ef, sl, tp, xb, why, xf, net in zip(
                    col["signal_bar"],
                    col["direction"],
                    col["level"],
                    col["entry_fill"],
                    col["stop"],
                    col["target"],
                    col["exit_bar"],
                    col["exit_reason"],
                    col["exit_fill"],
                    col["net_return"],
                    strict=True,
                )
            )
        )


def prepare_market(
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    ts: np.ndarray | None = None,
    constants: LS3Constants = LS3Constants(),
    pivots: PivotSet | None = None,
) -> LS3Market:
    """Precompute per-market inputs once. ``pivots`` (level 1 of WMS with ``k = constants.pivot_k``) is computed
    with ``wms_batch`` when not given; bars are validated there (NaN, high < low, ...)."""
    o, h, lo, c, v = (np.ascontiguousarray(a, dtype=np.float64) for a in (open, high, low, close, volume))
    n = c.shape[0]
    if not all(a.shape == (n,) for a in (o, h, lo, v)):
        raise ValueError("open, high, low, close and volume must be 1-D arrays of one length")
    if n >= 2**31:
        raise ValueError(f"series of {n:,} bars: the LS3 sweep indexes bars with int32; split it into parts below 2**31 bars")
    times = np.arange(n, dtype=np.int64) if ts is None else np.ascontiguousarray(ts, dtype=np.int64)
    if pivots is None:
        pivots = wms_batch(
            high=h, low=lo, open=o, close=c, params=PivotParams(k=constants.pivot_k, levels=1, tie="first", skip_inside=False)
        )
    sup, res = pivots.lows[0], pivots.highs[0]
    lvl_index = np.concatenate((sup.index, res.index)).astype(np.int64)
    lvl_conf = np.concatenate((sup.confirmed_at, res.confirmed_at)).astype(np.int64)
    lvl_side = np.concatenate((np.ones(len(sup), np.int64), -np.ones(len(res), np.int64)))
    next_lower, next_higher = ls3_pierce.next_beyond(lo, True), ls3_pierce.next_beyond(h, False)
    records = ls3_pierce.pierce_records(
        lo, h, next_lower, next_higher, lvl_index, lvl_conf, lvl_side, constants.warmup, PIERCE_HORIZON
    )
    lvl_price = np.concatenate((sup.price, res.price)).astype(np.float64)
    return LS3Market(
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        ts=times,
        constants=constants,
        atr=wilder_atr(h, lo, c, constants.atr_period),
        vma=volume_ma(v, constants.vma_period),
        lvl_index=lvl_index,
        lvl_price=lvl_price,
        lvl_conf=lvl_conf,
        lvl_side=lvl_side,
        next_lower=next_lower,
        next_higher=next_higher,
        pierce_records=records,
        pierce_at=ls3_pierce.pierce_table(records, lvl_price, lvl_side, _GRID_VALUES["pierce_depth"]),
    )


def _episode_table(
    market: LS3Market,
    pierce_depth: float,
    lookback: int,
    rejection: int,
    vst_values: np.ndarray = _GRID_VALUES["volume_spike_threshold"],
    rcs_values: np.ndarray = _GRID_VALUES["reversal_candle_size"],
) -> tuple[np.ndarray, ...]:
    pd_i = _GRID_POSITION["pierce_depth"].get(pierce_depth)
    if pd_i is None:
        pierce_at = ls3_pierce.pierce_column(market.pierce_records, market.lvl_price, market.lvl_side, pierce_depth)  # type: ignore[arg-type]
    else:
        pierce_at = market.pierce_at[pd_i]
    resume = market.pierce_records[3]
    return kern.episodes(
        market.bars, market.levels, pierce_at, resume, PIERCE_HORIZON, pierce_depth, lookback, rejection, vst_values, rcs_values
    )


def _window(market: LS3Market, start: int, end: int | None) -> tuple[int, int]:
    n = len(market)
    stop = n if end is None else end
    if not 0 <= start <= stop <= n:
        raise ValueError(f"window [{start}, {end}) outside the series of {n} bars")
    return start, stop


def evaluate(market: LS3Market, params: LS3Params, start: int = 0, end: int | None = None) -> TradeStats:
    """Trades and metrics of one configuration (any values, on or off the grid) for signals in bars [start, end)."""
    start, end = _window(market, start, end)
    m, c, p = market, market.constants, params
    table, vst_i, rcs_i = _config_episodes(m, p)
    bars, reason, vals = kern.trade_list(
        m.bars, table, vst_i, rcs_i, p.stop_distance, p.target_multiple, c.max_hold_bars, c.fee_rate, c.slippage, start, end
    )
    columns = {
        "signal_bar": bars[:, 0],
        "direction": bars[:, 1],
        "level": vals[:, 0],
        "entry_bar": bars[:, 0] + 1,
        "entry_fill": vals[:, 1],
        "stop": vals[:, 2],
        "target": vals[:, 3],
        "exit_bar": bars[:, 2],
        "exit_reason": reason,
        "exit_fill": vals[:, 4],
        "net_return": vals[:, 5],
    }
    metrics = dict(zip(TRADE_METRICS, trade_stats(vals[:, 5].copy()), strict=True))
    return TradeStats(params, metrics, columns, m.ts)


def _config_episodes(market: LS3Market, p: LS3Params) -> tuple[tuple[np.ndarray, ...], int, int]:
    """The episode table of one configuration and its threshold levels for ``kern.resolve``: a grid configuration
    shares the cached grid table of its (pierce_depth, lookback, rejection) with ``evaluate_many``; any other gets
    its own table (not cached, so off-grid searches do not grow the market)."""
    pos = [_GRID_POSITION[name].get(getattr(p, name)) for name in _EPISODE_DIMS]
    if None not in pos:
        pd_i, rc_i, vst_i, rcs_i, lb_i = (int(x) for x in pos if x is not None)
        return _grid_episodes(market, pd_i, lb_i, rc_i), vst_i, rcs_i
    vst, rcs = np.array([p.volume_spike_threshold]), np.array([p.reversal_candle_size])
    return _episode_table(market, p.pierce_depth, p.key_level_lookback, p.rejection_candles, vst, rcs), 0, 0


def signals(market: LS3Market, params: LS3Params) -> dict[str, np.ndarray]:
    """Every resolved signal of one configuration (before the one-position filter): bar r, direction, pierce bar s,
    level and atr_ref, in bar order."""
    m, p = market, params
    vst, rcs = np.array([p.volume_spike_threshold]), np.array([p.reversal_candle_size])
    ep = _episode_table(m, p.pierce_depth, p.key_level_lookback, p.rejection_candles, vst, rcs)
    ep_r, ep_side, ep_s, ep_price, ep_atr, ep_vol, ep_size = ep
    sig = kern.resolve(ep_r, ep_side, ep_s, ep_price, ep_vol, ep_size, 0, 0)
    return {"bar": ep_r[sig], "direction": ep_side[sig], "pierce_bar": ep_s[sig], "level": ep_price[sig], "atr_ref": ep_atr[sig]}


def evaluate_many(
    market: LS3Market, param_indices: np.ndarray, start: int = 0, end: int | None = None, return_trades: bool = False
) -> dict[str, np.ndarray | list[np.ndarray]]:
    """Metrics of many grid points (flat indices of ``LS3_GRID``), in the order given."""
    start, end = _window(market, start, end)
    indices = np.asarray(param_indices, dtype=np.int64).reshape(-1)
    choice = grid_choices(indices)  # columns: pd, rc, vst, rcs, lb, stop, tm
    table = np.zeros((indices.size, len(TRADE_METRICS)))
    per_trade: list[np.ndarray] = [np.empty(0)] * indices.size
    exit_bars: list[np.ndarray] = [np.empty(0, np.int64)] * indices.size
    combo_key = (choice[:, 0] * GRID_RADICES[1] + choice[:, 1]) * GRID_RADICES[4] + choice[:, 4]
    for key in np.unique(combo_key):
        rows = np.flatnonzero(combo_key == key)
        rows = rows[np.lexsort((choice[rows, 3], choice[rows, 2]))]
        ep_r, ep_side, ep_s, ep_price, ep_atr, ep_vol, ep_size = _grid_episodes(market, *choice[rows[0], [0, 4, 1]])
        need = np.zeros((len(LS3_GRID["stop_distance"]), len(LS3_GRID["target_multiple"])), dtype=np.bool_)
        need[choice[rows, 5], choice[rows, 6]] = True
        out_exit, out_net = _grid_outcomes(market, ep_r, ep_side, ep_atr, need)
        table[rows] = kern.run_configs(
            ep_r,
            ep_side,
            ep_s,
            ep_price,
            ep_vol,
            ep_size,
            out_exit,
            out_net,
            choice[rows, 2],
            choice[rows, 3],
            choice[rows, 5],
            choice[rows, 6],
            start,
            end,
        )
        if return_trades:
            for row in rows:
                sig = kern.resolve(ep_r, ep_side, ep_s, ep_price, ep_vol, ep_size, choice[row, 2], choice[row, 3])
                ex = out_exit[:, choice[row, 5], choice[row, 6]]
                taken = kern.take_trades(sig, ep_r, ex, start, end)
                per_trade[row] = out_net[taken, choice[row, 5], choice[row, 6]]
                exit_bars[row] = ex[taken]
    result: dict[str, np.ndarray | list[np.ndarray]] = {"index": indices}
    for q, name in enumerate(TRADE_METRICS):
        result[name] = table[:, q].astype(np.int64) if name == "trades" else table[:, q]
    if return_trades:
        result["trade_returns"] = per_trade
        result["trade_exit_bars"] = exit_bars
    return result


def _grid_episodes(market: LS3Market, pd_i: int, lb_i: int, rc_i: int) -> tuple[np.ndarray, ...]:
    key = (int(pd_i), int(lb_i), int(rc_i))
    cached = market._episodes.get(key)
    if cached is None:
        cached = _episode_table(
            market,
            float(_GRID_VALUES["pierce_depth"][pd_i]),
            int(LS3_GRID["key_level_lookback"][lb_i]),
            int(LS3_GRID["rejection_candles"][rc_i]),
        )
        market._episodes[key] = cached
    return cached


def _grid_outcomes(market: LS3Market, ep_r: np.ndarray, ep_side: np.ndarray, ep_atr: np.ndarray, need: np.ndarray):
    c = market.constants
    return kern.outcomes(
        market.bars, ep_r, ep_side, ep_atr, _GRID_VALUES["stop_distance"], _GRID_VALUES["target_multiple"], need,
        c.max_hold_bars, c.fee_rate, c.slippage,
    )  # fmt: skip


def evaluate_index(market: LS3Market, index: int, start: int = 0, end: int | None = None) -> TradeStats:
    """:func:`evaluate` of a flat grid index."""
    return evaluate(market, grid_point(int(index)), start, end)
