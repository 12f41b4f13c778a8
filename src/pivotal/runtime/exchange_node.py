"""Paper, testnet and live runs: the live feed (ccxt.pro, ``runtime.feeds.live``) drives the trading node.

- **paper**: the node's venue is the backtest's ``SimulatedVenue`` (fills at the next bar's open), so a paper run on
  the bars the feed delivers trades exactly as ``pivotal backtest`` on the same closed bars.
- **testnet / live**: the same node, and every order the gate accepts is sent to the exchange through
  ``execution.ccxt_venue.CcxtVenue`` at the decision (``ExchangeBook.submit``, the node's ``submitter``): the
  journal holds the order's intent (synced) before the request leaves, and the exchange's answer with its fills
  (``sent`` record, synced) before anything books it. At the next bar the engine asks its venue for the fill and
  ``ExchangeBook`` hands it the exchange's own execution (average price, filled quantity, fee), so the portfolio
  books what the exchange did. Exits the engine decides inside a bar (stop, target, end of the window) are sent
  when the engine books them, journaled first the same way.

Restart (kill -9): the node re-derives the run from its journal's start as a replay does; an order the journal
already holds is never sent blindly again: with its ``sent`` record (a closed order) the recorded execution is used,
otherwise the venue is asked by client id (``CcxtVenue.fetch``) and only an order the exchange never received is
sent, with the same id. The runtime reaches a local test exchange only through its URLs (``rest_url``/``ws_url``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import numpy as np

from pivotal.core.errors import UserInputError
from pivotal.core.orders import Bar, Fill, Order
from pivotal.core.vocabulary import ExitReason, OrderSide, OrderStatus
from pivotal.execution.ccxt_venue import point_rest
from pivotal.execution.exchange_venue import Accepted, ExchangeOrder, ExchangeVenue, OrderRequest
from pivotal.execution.portfolio import OpenPosition
from pivotal.execution.simulated_venue import SimulatedVenue
from pivotal.runtime.node import TradingNode

CCXT_OPTIONS = {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False}


def ws_url_for(rest_url: str) -> str:
    """The WebSocket base of a test exchange given its REST base (``http://h:p`` -> ``ws://h:p/ws``)."""
    u = urlparse(rest_url)
    return f"{'wss' if u.scheme == 'https' else 'ws'}://{u.netloc}/ws"


def point_client(client: Any, rest_url: str | None, ws_url: str | None) -> None:
    """Send a ccxt(.pro) client's REST and spot WebSocket URLs (live, testnet and demo sets) to another host — a local
    test exchange speaking the same API. Call it after ``set_sandbox_mode``, which would swap the URLs back."""
    if rest_url:
        point_rest(client, rest_url)
        ws_url = ws_url or ws_url_for(rest_url)
    if not ws_url:
        return
    base = ws_url[: -len("/ws")] if ws_url.endswith("/ws") else ws_url
    for section in ("api", "test", "demo"):
        ws = client.urls.get(section, {}).get("ws") if isinstance(client.urls.get(section), dict) else None
        if isinstance(ws, dict):
            ws.update(spot=ws_url, margin=ws_url)
            if isinstance(ws.get("ws-api"), dict):
                ws["ws-api"] = dict(ws["ws-api"], spot=base + "/ws-api/v3")


def feed_client_factory(exchange: str, *, sandbox: bool, rest_url: str | None, ws_url: str | None) -> Callable[[], Any]:
    """A factory of the ccxt.pro client the live feed watches (public streams: no keys), called on the feed's thread."""

    def make() -> Any:
        import ccxt.pro

        if exchange not in ccxt.pro.exchanges:
            raise UserInputError(f"unknown exchange {exchange!r} for the live feed; ccxt.pro knows e.g. binance, okx")
        client = getattr(ccxt.pro, exchange)({"enableRateLimit": True, "options": dict(CCXT_OPTIONS)})
        if sandbox:
            client.set_sandbox_mode(True)
        point_client(client, rest_url, ws_url)
        return client

    return make


class ExchangeBook:
    """The node's venue in testnet/live: orders go to an exchange at the decision, fills are the exchange's.

    Also the node's ``submitter`` (attach with :meth:`attach`). Spot only: an entry buys, an exit sells what the
    exchange's fills left in base currency (fees charged in base are deducted); short entries are refused."""

    def __init__(self, venue: ExchangeVenue, *, capital: float, fee_rate: float = 0.001) -> None:
        self.venue, self.capital = venue, capital
        self.rules = SimulatedVenue(fee_rate, 0.0)  # brackets and net returns: the engine's arithmetic
        self.orders: dict[str, ExchangeOrder | dict[str, Any]] = {}  # client id -> the exchange's answer
        self.held: dict[str, float] = {}  # symbol -> base quantity the fills left
        self.exit_for: dict[str, str] = {}  # symbol -> client id of the exit order sent for its position
        self.sent = 0  # requests that reached the venue's submit in this process
        self.node: TradingNode | None = None
        self._known: set[str] = set()

    def attach(self, node: TradingNode) -> None:
        self.node = node
        node.submitter = self.submit
        if node.journal is not None:  # orders an earlier process may have sent
            self._known = {r["id"] for r in node.journal.records if r.get("k") == "order" and r.get("status") == "accepted"}

    # -- submit (at the decision) -------------------------------------------------------------------------------------
    def submit(self, order: Order, bar: Bar) -> str | None:
        symbol, cid = order.symbol or bar.symbol, order.client_order_id
        if order.action == "exit":
            amount = self.held.get(symbol, 0.0)
            if amount <= 0:
                return "nothing held to sell"
            side = OrderSide.SELL
        else:
            if order.direction < 0:
                return "short entries are not supported on a spot exchange"
            assert self.node is not None
            equity = self.node.engine.portfolio.equity()
            alloc = order.quantity * bar.close if order.quantity is not None else order.fraction * equity * self.capital
            amount, side = alloc / bar.close, OrderSide.BUY
        refused = self._send(OrderRequest(symbol, side, amount, client_order_id=cid, reference_price=bar.close,
                                          kind="exit" if side is OrderSide.SELL else "entry"))  # fmt: skip
        if refused is None and side is OrderSide.SELL:
            self.exit_for[symbol] = cid
        return refused

    def _send(self, request: OrderRequest) -> str | None:
        """Send once (or find what an earlier process sent), journal the answer, update the base held."""
        cid, node = request.client_order_id, self.node
        assert node is not None
        journal = node.journal
        record = next((r for r in journal.records if r.get("key") == f"sent:{cid}"), None) if journal is not None else None
        found: ExchangeOrder | None = None
        if record is not None and record["status"] == str(OrderStatus.FILLED):
            answer: ExchangeOrder | dict[str, Any] = record
        else:
            if cid in self._known:  # sent before the crash? ask by client id before anything is sent again
                found = self.venue.fetch(request.symbol, cid)
            if found is None:
                self.sent += 1
                result = self.venue.submit(request)
                if not isinstance(result, Accepted):
                    return f"{result.reason}: {result.message}"
                found = result.order
            if not found.status.is_final:  # a market order: wait for its fills (the exchange's answer)
                found = self.venue.fetch(request.symbol, cid) or found
            answer = found
            node.record("sent", f"sent:{cid}", _sent_record(found))
        self.orders[cid] = answer
        filled, base_fee = _amounts(answer, request.symbol)
        delta = filled - base_fee if request.side is OrderSide.BUY else -filled
        self.held[request.symbol] = max(0.0, self.held.get(request.symbol, 0.0) + delta)
        return None

    # -- the engine's Venue protocol ------------------------------------------------------------------------------------
    def fill_entry(self, order: Order, symbol: str, bar_index: int, ts: int, open_price: float, equity: float) -> Fill:
        a = self.orders[order.client_order_id]
        price, qty, fee = _execution(a)
        return Fill("entry", order.direction, bar_index, ts, price, None, symbol, qty / self.capital, fee / self.capital,
                    order.client_order_id)  # fmt: skip

    def fill_exit(self, position: OpenPosition, bar_index: int, ts: int, price: float, reason: int) -> Fill:
        symbol = position.symbol
        cid = self.exit_for.pop(symbol, None)
        if cid is None:  # an exit the engine decided inside the bar (stop, target, end): send it now, intent first
            assert self.node is not None
            cid = f"{position.client_order_id}-x"
            self.node.record("order", f"order:{cid}", {"id": cid, "symbol": symbol, "action": "exit", "direction": -1,
                                                      "status": "accepted", "reason": ExitReason(reason).name})  # fmt: skip
            refused = self._send(OrderRequest(symbol, OrderSide.SELL, self.held.get(symbol, 0.0), client_order_id=cid,
                                              reference_price=price, kind="exit"))  # fmt: skip
            if refused is not None:
                raise UserInputError(f"the exchange refused the {ExitReason(reason).name} exit of {symbol}: {refused}")
            self.exit_for.pop(symbol, None)
        xp, _, fee = _execution(self.orders[cid])
        return Fill("exit", -position.direction, bar_index, ts, xp, ExitReason(reason), symbol, position.quantity,
                    fee / self.capital, position.client_order_id)  # fmt: skip

    def bracket(self, order: Order, entry_fill: float) -> tuple[float, float]:
        return self.rules.bracket(order, entry_fill)

    def net_return(self, direction: int, entry_fill: float, exit_fill: float) -> float:
        return self.rules.net_return(direction, entry_fill, exit_fill)

    def resolve(
        self, pos: OpenPosition, t: int, o: float, h: float, lo: float, close: float,
        detail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, detail_rows: tuple[int, int] = (0, 0),
    ) -> tuple[float, int] | None:  # fmt: skip
        return self.rules.resolve(pos, t, o, h, lo, close, detail, detail_rows)


def _sent_record(o: ExchangeOrder) -> dict[str, Any]:
    fee_quote = sum(f.fee for f in o.fills)
    return {"id": o.client_order_id, "exchange_id": o.exchange_order_id, "symbol": o.symbol, "side": str(o.side),
            "status": str(o.status), "filled": o.filled, "average": o.average, "fee_quote": fee_quote,
            "fees": dict(o.fees), "trades": len(o.fills)}  # fmt: skip


def _execution(a: ExchangeOrder | dict[str, Any]) -> tuple[float, float, float]:
    """(average price, filled base quantity, fee in quote) of an exchange answer or its journal record."""
    if isinstance(a, dict):
        avg, filled, fee = a["average"], a["filled"], a["fee_quote"]
    else:
        avg, filled, fee = a.average, a.filled, sum(f.fee for f in a.fills)
    if not filled or avg is None or math.isnan(avg):
        raise UserInputError(f"order {a['id'] if isinstance(a, dict) else a.client_order_id} has no fill on the exchange yet")
    return float(avg), float(filled), float(fee)


def _amounts(a: ExchangeOrder | dict[str, Any], symbol: str) -> tuple[float, float]:
    """(filled base quantity, fee charged in the base asset)."""
    base = symbol.split("/")[0]
    fees = a["fees"] if isinstance(a, dict) else a.fees
    filled = a["filled"] if isinstance(a, dict) else a.filled
    return float(filled or 0.0), float(fees.get(base, 0.0))


__all__ = ["ExchangeBook", "feed_client_factory", "point_client", "ws_url_for"]
