"""Fill rules of the backtest (spec B.2), in one place.

- Market orders decided at the close of bar t fill at ``open[t+1]`` with adverse slippage (buy higher, sell lower).
- Fees are charged per side on notional: a round trip returns ``dir*(xf-ef)/ef - fee*(1 + xf/ef)``.
- An open position's bracket is resolved inside each bar conservatively: SL_GAP, TP_GAP (only after the entry
  bar's opening print), then SL before TP, then TIME at the close; with finer *detail* bars the same checks run on
  each detail bar in time order, which settles which level was hit first. EOD: the engine closes what is still open
  at the last close.

The numba sweep kernels (``strategies.ls3.kernels.simulate_trade``) implement the same rules; the parity tests hold
the two to bit-identical trades.

Working entry orders (LIMIT, STOP, and market orders under a participation cap) are matched bar by bar by
:meth:`SimulatedVenue.match` (docs/backtest.md, "Order types and fills"):

- buy LIMIT L: fills only when price trades *through* L — at the open when the bar opens below L, else at L when the
  bar's low is strictly below L (a touch is no fill); sell symmetric. On its first bar an order whose limit the open
  already crosses is marketable: a taker fill at the open with slippage, never worse than L. Later fills are maker.
- with trade prints for the bar: a limit fills only against prints strictly through L, at L, up to their quantity.
- STOP T (stop-market): triggers when the bar trades at or through T and fills at ``max(open, T)`` (buy; sell
  ``min``) with slippage, taker; an untriggered remainder of a triggered stop fills at later opens like a market order.
- IOC: only the first bar's opening print can fill it; the rest is cancelled.
- same bar as a fill inside the bar: the bracket's stop is checked on the bar's range, the target only from the next
  bar (we cannot know whether the high came before the fill: conservative, as B.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pivotal.core.orders import Fill, Liquidity, Order
from pivotal.core.vocabulary import EXIT_SL, EXIT_SL_GAP, EXIT_TIME, EXIT_TP, EXIT_TP_GAP, ExitReason, OrderType
from pivotal.execution.portfolio import OpenPosition


@dataclass(frozen=True)
class FeeSchedule:
    """Maker / taker fee rates (fraction of notional) of one exchange tier; ``source`` says where they come from."""

    maker: float
    taker: float
    source: str = ""

    def __post_init__(self) -> None:
        if not (0 <= self.maker < 1 and 0 <= self.taker < 1):
            raise ValueError(f"fee rates must be in [0, 1) (got maker {self.maker}, taker {self.taker})")

    @classmethod
    def for_exchange(cls, name: str) -> FeeSchedule:
        """The default (lowest-volume, no-discount) spot schedule of ``name`` (a ccxt exchange id)."""
        try:
            return FEE_SCHEDULES[name.lower()]
        except KeyError:
            known = " ".join(sorted(FEE_SCHEDULES))
            raise ValueError(
                f"no fee schedule for exchange {name!r}; use one of: {known}, or FeeSchedule(maker, taker)"
            ) from None


# Regular-user (VIP 0 / lowest tier) rates without token discounts, as the exchanges publish them; check the source
# for your account's tier.
FEE_SCHEDULES: dict[str, FeeSchedule] = {
    "binance": FeeSchedule(0.001, 0.001, "https://www.binance.com/en/fee/schedule (spot, VIP 0, no BNB discount)"),
    "binanceusdm": FeeSchedule(0.0002, 0.0005, "https://www.binance.com/en/fee/futureFee (USD-M futures, VIP 0)"),
    "bybit": FeeSchedule(0.001, 0.001, "https://www.bybit.com/en/help-center/article/Trading-Fee-Structure (spot, VIP 0)"),
    "okx": FeeSchedule(0.0008, 0.001, "https://www.okx.com/fees (spot, regular user Lv1)"),
}


class Match(NamedTuple):
    """Where a working entry order executes inside one bar."""

    price: float  # slippage included (taker fills)
    liquidity: Liquidity
    available: float  # quantity the prints offer (inf: the bar does not limit it; a participation cap may)
    row: int  # detail row of the fill, -1: the bar itself
    at_open: bool  # at the opening print of the bar / row (the rest of it comes after the fill)


def limit_cross(direction: int, limit: float, o: float, h: float, lo: float) -> tuple[float, bool] | None:
    """A resting limit on one bar: (price, at the open) when price traded through it, else None."""
    if direction > 0:
        if o < limit:
            return o, True
        if lo < limit:
            return limit, False
    else:
        if o > limit:
            return o, True
        if h > limit:
            return limit, False
    return None


def stop_trigger(direction: int, trigger: float, o: float, h: float, lo: float) -> tuple[float, bool] | None:
    """A stop-market on one bar: (price before slippage, at the open) when the bar traded at or through the trigger."""
    if direction > 0:
        if o >= trigger:
            return o, True
        if h >= trigger:
            return trigger, False
    else:
        if o <= trigger:
            return o, True
        if lo <= trigger:
            return trigger, False
    return None


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
    """Next-open market fills with adverse ``slippage`` (fraction of price) and ``fee_rate`` per side; with a
    ``fees`` schedule, taker fills (market, stop, stop-loss, time/signal/end exits, marketable limits) pay
    ``fees.taker`` and maker fills (limits that rested, the bracket's target) ``fees.maker``."""

    def __init__(self, fee_rate: float = 0.001, slippage: float = 0.0005, fees: FeeSchedule | None = None) -> None:
        if fee_rate < 0 or slippage < 0:
            raise ValueError(f"fee_rate and slippage must be >= 0 (got {fee_rate}, {slippage})")
        self.fee_rate = fee_rate
        self.slippage = slippage
        self.fees = fees

    def fee_rate_for(self, liquidity: Liquidity) -> float:
        if self.fees is None:
            return self.fee_rate
        return self.fees.maker if liquidity == "maker" else self.fees.taker

    def fill_entry(self, order: Order, symbol: str, bar_index: int, ts: int, open_price: float, equity: float) -> Fill:
        """Entry at this bar's open; the quantity is ``order.quantity`` or ``order.fraction`` of ``equity``."""
        slip, d = self.slippage, order.direction
        ef = open_price * (1 + slip) if d > 0 else open_price * (1 - slip)
        alloc = order.quantity * ef if order.quantity is not None else order.fraction * equity
        qty = alloc / ef
        if self.fees is None:
            return Fill("entry", d, bar_index, ts, ef, None, symbol, qty, self.fee_rate * alloc, order.client_order_id)
        fee = self.fees.taker * alloc
        return Fill("entry", d, bar_index, ts, ef, None, symbol, qty, fee, order.client_order_id, "taker")

    def bracket(self, order: Order, entry_fill: float) -> tuple[float, float]:
        """Stop and target prices of an entry (NaN: none): the absolute prices when given, else offsets from the
        actual fill (of a position filled in parts: from its VWAP entry)."""
        d, ef = order.direction, entry_fill
        stop = math.nan if order.stop_offset is None else (ef - order.stop_offset if d > 0 else ef + order.stop_offset)
        target = math.nan if order.target_offset is None else (ef + order.target_offset if d > 0 else ef - order.target_offset)
        if order.stop_price is not None:
            stop = order.stop_price
        if order.target_price is not None:
            target = order.target_price
        return stop, target

    def fill_working(self, order: Order, symbol: str, bar_index: int, ts: int, match: Match, quantity: float) -> Fill:
        """The fill of ``quantity`` of a working entry order where :meth:`match` placed it (fee by its liquidity)."""
        fee = self.fee_rate_for(match.liquidity) * quantity * match.price
        return Fill("entry", order.direction, bar_index, ts, match.price, None, symbol, quantity, fee,
                    order.client_order_id, match.liquidity)  # fmt: skip

    def match(
        self,
        order: Order,
        first: bool,
        triggered: bool,
        o: float,
        h: float,
        lo: float,
        detail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        detail_rows: tuple[int, int] = (0, 0),
        prints: np.ndarray | None = None,
    ) -> Match | None:
        """Where the working entry ``order`` executes in this bar, or None. ``first``: the order's first bar (it
        arrives at the open); ``triggered``: a STOP already triggered (now a market order); ``prints``: the prices
        and quantities (2 x n) of the bar's trades, in time order, when trades are given."""
        d, slip = order.direction, self.slippage
        kind = order.order_type
        if kind is OrderType.MARKET or triggered:
            return Match(o * (1 + slip) if d > 0 else o * (1 - slip), "taker", math.inf, -1, True)
        price = order.price
        assert price is not None, "a LIMIT/STOP order carries its price"
        first_row, end = detail_rows
        rows = range(first_row, end) if detail is not None and end > first_row else None
        if kind is OrderType.LIMIT:
            if first and (o < price if d > 0 else o > price):  # marketable on arrival: takes liquidity at the open
                px = min(o * (1 + slip), price) if d > 0 else max(o * (1 - slip), price)
                return Match(px, "taker", math.inf, first_row if rows is not None else -1, True)
            if order.time_in_force == "IOC":
                return None
            if prints is not None:
                through = prints[0] < price if d > 0 else prints[0] > price
                qty = float(prints[1][through].sum())
                return Match(price, "maker", qty, -1, False) if qty > 0 else None
            if rows is not None:
                assert detail is not None
                d_open, d_high, d_low = detail
                for j in rows:
                    hit = limit_cross(d, price, float(d_open[j]), float(d_high[j]), float(d_low[j]))
                    if hit is not None:
                        return Match(hit[0], "maker", math.inf, j, hit[1])
                return None
            hit = limit_cross(d, price, o, h, lo)
            return None if hit is None else Match(hit[0], "maker", math.inf, -1, hit[1])
        # STOP (stop-market)
        if order.time_in_force == "IOC":
            hit = stop_trigger(d, price, o, o, o) if first else None
            row = first_row if rows is not None else -1
        elif rows is not None:
            assert detail is not None
            d_open, d_high, d_low = detail
            hit, row = None, -1
            for j in rows:
                hit = stop_trigger(d, price, float(d_open[j]), float(d_high[j]), float(d_low[j]))
                if hit is not None:
                    row = j
                    break
        else:
            hit, row = stop_trigger(d, price, o, h, lo), -1
        if hit is None:
            return None
        px = hit[0] * (1 + slip) if d > 0 else hit[0] * (1 - slip)
        return Match(px, "taker", math.inf, row, hit[1])

    def fill_exit(self, position: OpenPosition, bar_index: int, ts: int, price: float, reason: int) -> Fill:
        slip = self.slippage
        long = position.direction > 0
        xf = price * (1 - slip) if long else price * (1 + slip)
        fees = self.fees
        if fees is None:
            fee = self.fee_rate * position.quantity * xf
            return Fill(
                "exit", -position.direction, bar_index, ts, xf, ExitReason(reason), position.symbol, position.quantity,
                fee, position.client_order_id,
            )  # fmt: skip
        liquidity: Liquidity = "maker" if reason in (EXIT_TP, EXIT_TP_GAP) else "taker"  # the target is a resting limit
        fee = self.fee_rate_for(liquidity) * position.quantity * xf
        return Fill(
            "exit", -position.direction, bar_index, ts, xf, ExitReason(reason), position.symbol, position.quantity, fee,
            position.client_order_id, liquidity,
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
        if t == pos.entry_bar and (pos.entry_inside or pos.entry_row >= 0):
            hit = self._entry_bar_hit(pos, o, h, lo, detail, detail_rows)
        elif detail is not None and end > first:
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

    def _entry_bar_hit(
        self,
        pos: OpenPosition,
        o: float,
        h: float,
        lo: float,
        detail: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        detail_rows: tuple[int, int],
    ) -> tuple[float, int] | None:
        """The bracket in the bar of a resting order's fill: from the fill's detail row on; on the print that filled
        it (inside it, not at its open) only the stop counts (the target may have printed before the fill)."""
        first, end = detail_rows
        if detail is not None and end > first and pos.entry_row >= 0:
            d_open, d_high, d_low = detail
            for j in range(pos.entry_row, end):
                oj, hj, lj = float(d_open[j]), float(d_high[j]), float(d_low[j])
                if j == pos.entry_row and pos.entry_inside:
                    hit = _stop_only(pos, hj, lj)
                else:
                    hit = check_bar(pos, oj, hj, lj, j != pos.entry_row)
                if hit is not None:
                    return hit
            return None
        return _stop_only(pos, h, lo) if pos.entry_inside else check_bar(pos, o, h, lo, False)


def _stop_only(pos: OpenPosition, h: float, lo: float) -> tuple[float, int] | None:
    stop = pos.stop
    if stop == stop and (lo <= stop if pos.direction > 0 else h >= stop):
        return stop, EXIT_SL
    return None
