"""The matching engine: orders, balances and fills against the replayed market.

Fill rules (they mirror the backtest's fill model, so backtest and paper trading can agree):
- A *step* is one recorded trade where trades were captured, else one bar of the finest recorded klines.
- MARKET fills at once against the step current at placement: the next recorded trade at or after "now", else the
  open of the bar containing "now". Each step offers its recorded volume (trade quantity / bar volume) once across
  all orders; what is left of an order fills at the following steps (PARTIALLY_FILLED meanwhile).
- LIMIT that is marketable at placement fills the same way (taker, at the step price); IOC cancels what that step
  could not fill, FOK fills completely there or expires unfilled; a GTC remainder rests and fills
  at its limit price only when price trades *through* it (a later trade strictly beyond the limit; or a bar, from the
  bar containing the placement on, whose low/high is strictly beyond it), as maker.
- STOP_LOSS_LIMIT triggers when a trade (bar low/high) reaches the stop price; it then becomes a LIMIT order, taking
  at the trigger price if that is marketable. A stop that would trigger at once is rejected, as Binance does.
- Commission is charged in the asset received (buy: base, sell: quote), ``taker_fee``/``maker_fee`` (0.1 % default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

import numpy as np

from pivotal.core.timeframes import TIMEFRAMES
from pivotal.testexchange.markets import SymbolRules
from pivotal.testexchange.tape import BAR_CLOSE, BAR_OPEN, TRADE, Event, SymbolData

E8 = Decimal("0.00000001")
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


class Reject(Exception):
    """A request Binance would refuse: HTTP status, Binance error code and Binance's message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def dec(x: float | str | Decimal) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(repr(x) if isinstance(x, float) else x)


@dataclass
class Fill:
    trade_id: int
    order_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass
class Order:
    order_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time: int
    ref_bar: int  # open time of the bar containing the placement: bars from here on may fill a resting order
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    update_time: int = 0
    triggered: bool = False
    locked: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass
class Step:
    """Where a fill can happen now: a price and the liquidity key it draws its recorded volume from."""

    price: Decimal
    time: int
    key: tuple[str, str, int]
    volume: Decimal


Notify = Callable[[Order, str, "Fill | None"], None]


class MatchingEngine:
    def __init__(
        self,
        rules: dict[str, SymbolRules],
        markets: dict[str, SymbolData],
        balances: dict[str, Decimal],
        taker_fee: Decimal = Decimal("0.001"),
        maker_fee: Decimal = Decimal("0.001"),
    ) -> None:
        self.rules, self.markets = rules, markets
        self.free: dict[str, Decimal] = {a: dec(v) for a, v in balances.items()}
        self.locked: dict[str, Decimal] = {a: Decimal(0) for a in self.free}
        self.taker_fee, self.maker_fee = dec(taker_fee), dec(maker_fee)
        self.orders: dict[int, Order] = {}
        self.client_ids: dict[tuple[str, str], int] = {}
        self.trades: list[Fill] = []
        self.liquidity: dict[tuple[str, str, int], Decimal] = {}
        self._next_order_id = 1
        self._next_trade_id = 1
        self.listeners: list[Notify] = []
        self.updated_assets: set[str] = set()

    # --- balances --------------------------------------------------------------------------------------------------
    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        return self.free.get(asset, Decimal(0)), self.locked.get(asset, Decimal(0))

    def _move(self, asset: str, free: Decimal = Decimal(0), locked: Decimal = Decimal(0)) -> None:
        self.free[asset] = self.free.get(asset, Decimal(0)) + free
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + locked
        self.updated_assets.add(asset)

    # --- the replayed market -----------------------------------------------------------------------------------------
    def _trades_cover(self, symbol: str, t: int) -> bool:
        tr = self.markets[symbol].trades
        return tr is not None and tr.covers(t)

    def _bar_index(self, symbol: str, t: int) -> tuple[str, int]:
        """Finest timeframe and the bar containing ``t`` (or the next one after a gap)."""
        data = self.markets[symbol]
        tf = data.finest
        c = data.klines[tf]
        i = int(np.searchsorted(c.ts, t, side="right")) - 1
        if i < 0 or t >= int(c.ts[i]) + TIMEFRAMES[tf]:
            i += 1
        if i >= len(c.ts):
            raise Reject(400, -1013, "Market is closed.")  # past the end of the recording
        return tf, i

    def reference(self, symbol: str, t: int) -> Step:
        """The step an order placed at ``t`` meets first: the next recorded trade, else the current bar's open."""
        data = self.markets[symbol]
        if self._trades_cover(symbol, t) and data.trades is not None:
            tr = data.trades
            i = tr.next_index(t)
            return Step(dec(float(tr.price[i])), int(tr.ts[i]), ("T", symbol, i), dec(float(tr.qty[i])))
        tf, i = self._bar_index(symbol, t)
        c = data.klines[tf]
        return Step(dec(float(c.open[i])), max(t, int(c.ts[i])), ("B", symbol, i), dec(float(c.volume[i])))

    def last_price(self, symbol: str, t: int) -> Decimal:
        return self.reference(symbol, t).price

    # --- orders -----------------------------------------------------------------------------------------------------
    def _check_filters(self, r: SymbolRules, qty: Decimal, price: Decimal | None, notional_price: Decimal) -> None:
        if qty < r.min_qty or qty > r.max_qty or qty % r.step_size != 0:
            raise Reject(400, -1013, "Filter failure: LOT_SIZE")
        for p in (price,) if price is not None else ():
            if p < r.min_price or p > r.max_price or p % r.tick_size != 0:
                raise Reject(400, -1013, "Filter failure: PRICE_FILTER")
        if qty * notional_price < r.min_notional:
            raise Reject(400, -1013, "Filter failure: NOTIONAL")

    def place(
        self,
        symbol: str,
        side: str,
        type_: str,
        qty: Decimal,
        price: Decimal | None,
        stop_price: Decimal | None,
        time_in_force: str,
        client_id: str,
        now: int,
    ) -> Order:
        if symbol not in self.rules or symbol not in self.markets:
            raise Reject(400, -1121, "Invalid symbol.")
        if side not in ("BUY", "SELL"):
            raise Reject(400, -1100, "Illegal characters found in parameter 'side'; legal range is 'BUY, SELL'.")
        if type_ not in ("MARKET", "LIMIT", "STOP_LOSS_LIMIT"):
            raise Reject(400, -1116, "Invalid orderType.")
        if type_ != "MARKET" and (price is None or time_in_force == ""):
            raise Reject(400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        if type_ == "STOP_LOSS_LIMIT" and stop_price is None:
            raise Reject(400, -1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.")
        if (symbol, client_id) in self.client_ids:
            raise Reject(400, -2010, "Duplicate order sent.")
        r = self.rules[symbol]
        ref = self.reference(symbol, now)
        if type_ == "MARKET":
            price = None
        self._check_filters(r, qty, price, price if price is not None else ref.price)
        if (
            stop_price is not None
            and type_ == "STOP_LOSS_LIMIT"
            and (ref.price <= stop_price if side == "SELL" else ref.price >= stop_price)
        ):
            raise Reject(400, -2010, "Stop price would trigger immediately.")
        lock_asset = r.quote if side == "BUY" else r.base
        need = qty * (price if price is not None else ref.price) if side == "BUY" else qty
        if self.free.get(lock_asset, Decimal(0)) < need:
            raise Reject(400, -2010, "Account has insufficient balance for requested action.")
        tf, bar = self._bar_index(symbol, now)
        order = Order(
            self._next_order_id,
            client_id,
            symbol,
            side,
            type_,
            time_in_force if type_ != "MARKET" else "GTC",
            qty,
            price,
            stop_price,
            now,
            int(self.markets[symbol].klines[tf].ts[bar]),
            update_time=now,
            locked=need,
        )
        self._next_order_id += 1
        self.orders[order.order_id] = order
        self.client_ids[(symbol, client_id)] = order.order_id
        self._move(lock_asset, free=-need, locked=need)
        self._notify(order, "NEW", None)
        marketable = type_ == "MARKET" or (type_ == "LIMIT" and self._marketable(order, ref.price))
        fill_or_kill = order.time_in_force == "FOK" and type_ == "LIMIT"
        if marketable and not (fill_or_kill and self.liquidity.get(ref.key, ref.volume) < qty):
            self._take(order, ref, maker=False)
        if type_ == "LIMIT" and order.time_in_force in ("IOC", "FOK") and order.is_open:
            order.status = "EXPIRED"  # what the first step could not fill is cancelled, as Binance does
            self._release(order)
            self._notify(order, "EXPIRED", None)
        return order

    def _marketable(self, order: Order, price: Decimal) -> bool:
        assert order.price is not None
        return price <= order.price if order.side == "BUY" else price >= order.price

    def find(self, symbol: str, order_id: int | None = None, client_id: str | None = None) -> Order:
        oid = order_id if order_id is not None else self.client_ids.get((symbol, client_id or ""))
        order = self.orders.get(oid) if oid is not None else None
        if order is None or order.symbol != symbol:
            raise Reject(400, -2013, "Order does not exist.")
        return order

    def cancel(self, symbol: str, order_id: int | None, client_id: str | None, now: int) -> Order:
        try:
            order = self.find(symbol, order_id, client_id)
        except Reject:
            raise Reject(400, -2011, "Unknown order sent.") from None
        if not order.is_open:
            raise Reject(400, -2011, "Unknown order sent.")
        order.status, order.update_time = "CANCELED", now
        self._release(order)
        self._notify(order, "CANCELED", None)
        return order

    def _release(self, order: Order) -> None:
        r = self.rules[order.symbol]
        asset = r.quote if order.side == "BUY" else r.base
        if order.locked:
            self._move(asset, free=order.locked, locked=-order.locked)
            order.locked = Decimal(0)

    def _notify(self, order: Order, exec_type: str, fill: Fill | None) -> None:
        for listener in self.listeners:
            listener(order, exec_type, fill)

    # --- fills --------------------------------------------------------------------------------------------------------
    def _take(self, order: Order, step: Step, maker: bool, price: Decimal | None = None) -> None:
        """Fill as much of ``order`` as the step's unused recorded volume allows, at ``price`` (default: step price)."""
        r = self.rules[order.symbol]
        px = price if price is not None else step.price
        avail = self.liquidity.get(step.key, step.volume)
        qty = min(order.remaining, avail).quantize(r.step_size, rounding=ROUND_DOWN)
        if order.side == "BUY":
            affordable = ((order.locked + self.free.get(r.quote, Decimal(0))) / px).quantize(r.step_size, rounding=ROUND_DOWN)
            qty = min(qty, affordable)
        if qty <= 0:
            return
        self.liquidity[step.key] = avail - qty
        fee_rate = self.maker_fee if maker else self.taker_fee
        cost = qty * px
        if order.side == "BUY":
            from_lock = min(order.locked, cost)
            order.locked -= from_lock
            self._move(r.quote, free=-(cost - from_lock), locked=-from_lock)
            commission, fee_asset = (qty * fee_rate).quantize(E8), r.base
            self._move(r.base, free=qty - commission)
        else:
            order.locked -= qty
            self._move(r.base, locked=-qty)
            commission, fee_asset = (cost * fee_rate).quantize(E8), r.quote
            self._move(r.quote, free=cost - commission)
        fill = Fill(
            self._next_trade_id,
            order.order_id,
            order.symbol,
            px,
            qty,
            commission,
            fee_asset,
            step.time,
            order.side == "BUY",
            maker,
        )
        self._next_trade_id += 1
        order.fills.append(fill)
        self.trades.append(fill)
        order.executed += qty
        order.cum_quote += cost
        order.update_time = step.time
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order)
        self._notify(order, "TRADE", fill)

    def on_event(self, event: Event) -> None:
        """Let the open orders of the event's symbol meet one replayed step."""
        if event.kind not in (TRADE, BAR_OPEN, BAR_CLOSE):
            return
        symbol = event.symbol
        data = self.markets[symbol]
        if event.kind != TRADE and (event.timeframe != data.finest or self._trades_cover(symbol, event.time)):
            return
        open_orders = [o for o in self.orders.values() if o.symbol == symbol and o.is_open]
        if not open_orders:
            return
        if event.kind == TRADE:
            assert data.trades is not None
            tr, i = data.trades, event.index
            px = dec(float(tr.price[i]))
            step = Step(px, event.time, ("T", symbol, i), dec(float(tr.qty[i])))
            for o in open_orders:
                if o.time <= event.time:
                    self._meet(o, step, px, px, px, later=o.time < event.time)
            return
        c = data.klines[event.timeframe]
        i = event.index
        bar_ts = int(c.ts[i])
        step = Step(dec(float(c.open[i])), event.time, ("B", symbol, i), dec(float(c.volume[i])))
        for o in open_orders:
            if event.kind == BAR_OPEN and o.type == "MARKET" and o.time <= event.time:
                self._take(o, step, maker=False)
            elif event.kind == BAR_CLOSE and o.type != "MARKET" and bar_ts >= o.ref_bar:
                self._meet(o, step, dec(float(c.high[i])), dec(float(c.low[i])), step.price, later=True)

    def _meet(self, o: Order, step: Step, high: Decimal, low: Decimal, open_: Decimal, later: bool) -> None:
        if o.type == "MARKET":
            self._take(o, step, maker=False)
            return
        assert o.price is not None
        if o.type == "STOP_LOSS_LIMIT" and not o.triggered:
            assert o.stop_price is not None
            hit = low <= o.stop_price if o.side == "SELL" else high >= o.stop_price
            if not hit:
                return
            o.triggered = True
            trigger = min(o.stop_price, open_) if o.side == "SELL" else max(o.stop_price, open_)
            if self._marketable(o, trigger):
                self._take(o, step, maker=False, price=trigger)
            return
        through = low < o.price if o.side == "BUY" else high > o.price
        if later and through:
            self._take(o, step, maker=True, price=o.price)
