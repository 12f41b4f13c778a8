"""Fill rules of the backtest (spec B.2), in one place.

- Market orders decided at the close of bar t fill at ``open[t+1]`` with adverse slippage (buy higher, sell lower).
- Fees are charged per side on notional: a round trip returns ``dir*(xf-ef)/ef - fee*(1 + xf/ef)``.
- An open position's bracket is resolved inside each bar conservatively: SL_GAP, TP_GAP (only after the entry
  bar's opening print), then SL before TP, then TIME at the close; with finer *detail* bars the same checks run on
  each detail bar in time order, which settles which level was hit first. EOD: the engine closes what is still open
  at the last close.

The numba sweep kernels (``strategies.ls3.kernels.simulate_trade``) implement the same rules; the parity tests hold
the two to bit-identical trades.
"""

from __future__ import annotations

import math

import numpy as np

from pivotal.core.orders import Fill, Order
from pivotal.core.vocabulary import EXIT_SL, EXIT_SL_GAP, EXIT_TIME, EXIT_TP, EXIT_TP_GAP, ExitReason
from pivotal.execution.portfolio import OpenPosition


def check_bar(pos: OpenPosition, o: float, h: float, lo: float, gap_ok: bool) -> tuple[float, int] | None:
    """B.2 checks 1-4 on one (detail) bar; ``gap_ok`` is False at the entry bar's opening print."""
    d, stop, target = pos.direction, pos.stop, pos.target
    if gap_ok:
        if stop == stop and (o <= stop if d > 0 else o >= stop):  # x == x: not NaN
            return o, EXIT_SL_GAP
        if target == target and (o >= target if d > 0 else o <= target):
            return o, EXIT_TP_GAP
    if stop == stop and (lo <= stop if d > 0 else h >= stop):
        return stop, EXIT_SL
    if target == target and (h >= target if d > 0 else lo <= target):
        return target, EXIT_TP
    return None


class SimulatedVenue:
    """Next-open market fills with adverse ``slippage`` (fraction of price) and ``fee_rate`` per side."""

    def __init__(self, fee_rate: float = 0.001, slippage: float = 0.0005) -> None:
        if fee_rate < 0 or slippage < 0:
            raise ValueError(f"fee_rate and slippage must be >= 0 (got {fee_rate}, {slippage})")
        self.fee_rate = fee_rate
        self.slippage = slippage

    def fill_entry(self, order: Order, symbol: str, bar_index: int, ts: int, open_price: float, equity: float) -> Fill:
        """Entry at this bar's open; the quantity is ``order.quantity`` or ``order.fraction`` of ``equity``."""
        slip, d = self.slippage, order.direction
        ef = open_price * (1 + slip) if d > 0 else open_price * (1 - slip)
        alloc = order.quantity * ef if order.quantity is not None else order.fraction * equity
        qty = alloc / ef
        return Fill("entry", d, bar_index, ts, ef, None, symbol, qty, self.fee_rate * alloc, order.client_order_id)

    def bracket(self, order: Order, entry_fill: float) -> tuple[float, float]:
        """Stop and target prices of an entry (NaN: none), as offsets from the actual fill."""
        d, ef = order.direction, entry_fill
        stop = math.nan if order.stop_offset is None else (ef - order.stop_offset if d > 0 else ef + order.stop_offset)
        target = math.nan if order.target_offset is None else (ef + order.target_offset if d > 0 else ef - order.target_offset)
        return stop, target

    def fill_exit(self, position: OpenPosition, bar_index: int, ts: int, price: float, reason: int) -> Fill:
        slip = self.slippage
        long = position.direction > 0
        xf = price * (1 - slip) if long else price * (1 + slip)
        fee = self.fee_rate * position.quantity * xf
        return Fill(
            "exit", -position.direction, bar_index, ts, xf, ExitReason(reason), position.symbol, position.quantity, fee,
            position.client_order_id,
        )  # fmt: skip

    def net_return(self, direction: int, entry_fill: float, exit_fill: float) -> float:
        ef, xf = entry_fill, exit_fill
        gross = (xf - ef) / ef if direction > 0 else (ef - xf) / ef
        return gross - self.fee_rate * (1 + xf / ef)

    def resolve(
        self,
        pos: OpenPosition,
        t: int,
        o: float,
        h: float,
        lo: float,
        close: float,
        detail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        detail_rows: tuple[int, int] = (0, 0),
    ) -> tuple[float, int] | None:
        """Bracket checks inside bar t (on its detail bars ``detail_rows`` when given), then the time stop at the close.

        Returns (price before slippage, exit reason code) or None."""
        hit = None
        first, end = detail_rows
        if detail is not None and end > first:
            d_open, d_high, d_low = detail
            for j in range(first, end):
                opening_fill = t == pos.entry_bar and j == first
                hit = check_bar(pos, float(d_open[j]), float(d_high[j]), float(d_low[j]), not opening_fill)
                if hit is not None:
                    break
        else:
            hit = check_bar(pos, o, h, lo, t > pos.entry_bar)
        if hit is not None:
            return hit
        if pos.max_hold is not None and t - pos.entry_bar + 1 >= pos.max_hold:
            return close, EXIT_TIME
        return None
