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

Reconciliation at start (``ExchangeBook.reconcile_account``, run by ``attach`` before the first event, at the first
start and after every restart): the account must be what the journal says before anything trades. Open orders on a
traded symbol whose client id is not this run's (``<run id>-n``) refuse the start, unless ``adopt_foreign_orders``;
each traded base asset's exchange balance (``total``) must equal the journal's ``start_balance`` (recorded at the
first start) plus what the run's orders moved (the ``sent`` records; orders whose answer the crash lost are asked by
client id, as the re-derivation will) within the market's amount step. A refusal journals ``halted`` (state
HALTED, reason ``reconcile``) and raises ``ReconcileRefused``, one line; agreement journals ``reconciled``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlparse

import numpy as np

from pivotal.core.errors import PivotalError, UserInputError
from pivotal.core.orders import Bar, Fill, Order
from pivotal.core.vocabulary import ExitReason, OrderSide, OrderStatus
from pivotal.execution.ccxt_venue import point_rest
from pivotal.execution.exchange_venue import Accepted, ExchangeOrder, ExchangeVenue, OrderRequest
from pivotal.execution.portfolio import OpenPosition
from pivotal.execution.simulated_venue import SimulatedVenue
from pivotal.runtime.node import TradingNode

RECONCILE_SNAPSHOT_TRIES = 5  # balance reads around the lookups of lost answers until no fill lands in between


class ReconcileRefused(PivotalError):
    """The exchange account disagrees with the journal at start (foreign open orders, a balance moved outside the
    run): the node does not start (HALTED, reason ``reconcile``). The message is one line with the fix."""


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

    def __init__(
        self, venue: ExchangeVenue, *, capital: float, fee_rate: float = 0.001, adopt_foreign_orders: bool = False
    ) -> None:
        """``adopt_foreign_orders``: start although open orders this run did not place rest on a traded symbol (they
        are journaled in ``reconciled`` and left alone); the default refuses the start and names them."""
        self.venue, self.capital = venue, capital
        self.adopt_foreign_orders = adopt_foreign_orders
        self.reconciled: dict[str, Any] | None = None  # what the last reconcile_account compared
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
        self.reconciled = self.reconcile_account()

    # -- reconciliation at start ----------------------------------------------------------------------------------------
    def reconcile_account(self) -> dict[str, Any]:
        """Compare the exchange account with the journal before the node trades (see the module docstring): returns
        the ``reconciled`` record's fields, or journals ``halted`` and raises ``ReconcileRefused``."""
        node = self.node
        assert node is not None, "attach the book to a node first"
        symbols = sorted(node.markets)
        venue, prefix = self.venue, node.ids.prefix + "-"
        records = node.journal.records if node.journal is not None else []
        where = getattr(venue, "exchange", "the exchange")
        resting = [o for s in symbols for o in venue.open_orders(s)]
        foreign = [o for o in resting if not o.client_order_id.startswith(prefix)]
        if foreign and not self.adopt_foreign_orders:
            named = ", ".join(f"{o.client_order_id or o.exchange_order_id} ({o.symbol} {o.side.value} {o.quantity:g}"
                              + (f" @ {o.price:g})" if o.price else ")") for o in foreign)  # fmt: skip
            self._refuse(
                f"open orders on {where} not placed by this run (client ids not {prefix}*): {named}; cancel them on "
                "the exchange, or start with --adopt-foreign-orders to leave them alone",
                {"foreign_orders": [_open_view(o) for o in foreign]},
            )
        bases = {s: s.split("/")[0] for s in symbols}
        assets = sorted(set(bases.values()))
        start = next((r for r in records if r.get("k") == "start_balance"), None)
        sent_before = any(r.get("k") == "order" and r.get("status") == "accepted" for r in records)
        if start is None and sent_before:
            self._refuse(
                f"the journal has orders but no start_balance record (written before balances were reconciled), so "
                f"the {'/'.join(assets)} balance on {where} cannot be checked; finish with a new --journal",
                {},
            )
        lost = self._lost_answers(records)
        totals, moved, looked_up = self._snapshot(assets, bases, records, lost)
        if start is None:  # the first start: the account as it is now is the run's starting point
            start = {"balances": {a: totals[a] for a in assets}, "exchange": where}
            if node.journal is not None:
                node.record("start_balance", "start_balance", start)
        compared: dict[str, dict[str, float | None]] = {}
        for asset in assets:
            steps = [venue.amount_step(s) for s in symbols if bases[s] == asset]
            step = min((x for x in steps if x), default=None)
            began = float(start["balances"].get(asset, 0.0))
            journal_qty, exchange_qty = began + moved.get(asset, 0.0), totals[asset]
            compared[asset] = {"journal": journal_qty, "exchange": exchange_qty, "start": began, "step": step}
            if not _within_step(journal_qty, exchange_qty, step):
                self._refuse(
                    f"{asset} on {where} is {exchange_qty:.10g} but the journal implies {journal_qty:.10g} (start "
                    f"{began:.10g} + {moved.get(asset, 0.0):.10g} moved by this run; difference "
                    f"{exchange_qty - journal_qty:+.10g}, amount step {step if step is not None else 'unknown'}): the "
                    f"account changed outside this run; restore {asset} to {journal_qty:.10g} or start a new --journal",
                    {"assets": compared},
                )
        fields = {"exchange": where, "symbols": symbols, "assets": compared, "looked_up": looked_up,
                  "own_open_orders": [o.client_order_id for o in resting if o.client_order_id.startswith(prefix)],
                  "adopted_foreign_orders": [_open_view(o) for o in foreign]}  # fmt: skip
        if node.journal is not None:
            node.journal.append("reconciled", None, {"t": node.now, **fields})
        return fields

    def _lost_answers(self, records: list[dict[str, Any]]) -> dict[str, str]:
        """Client id -> symbol of the accepted orders whose exchange answer the journal lacks or holds unfinished:
        the exchange is asked for them, as ``_send`` will when the re-derivation reaches them."""
        final = {r["id"] for r in records if r.get("k") == "sent" and r.get("status") == str(OrderStatus.FILLED)}
        final |= {r["id"] for r in records if r.get("k") == "order_done" and r.get("status") == "rejected"}  # never held
        return {r["id"]: r["symbol"] for r in records
                if r.get("k") == "order" and r.get("status") == "accepted" and r["id"] not in final}  # fmt: skip

    def _snapshot(
        self, assets: list[str], bases: dict[str, str], records: list[dict[str, Any]], lost: dict[str, str]
    ) -> tuple[dict[str, float], dict[str, float], list[str]]:
        """(exchange totals, base moved per asset by the run's orders, ids looked up). With orders to look up, the
        balances are read before and after the lookups until they agree, so a fill landing in between is not taken
        for a trade outside the run."""
        sent = {r["id"]: r for r in records if r.get("k") == "sent"}
        for _ in range(RECONCILE_SNAPSHOT_TRIES):
            before = _totals(self.venue.balances(), assets)
            moved: dict[str, float] = {}
            looked_up: list[str] = []
            for cid, answer in sent.items():
                if cid not in lost:
                    _add_move(moved, bases, answer, str(answer["symbol"]))
            for cid, symbol in lost.items():
                found: ExchangeOrder | dict[str, Any] | None = self.venue.fetch(symbol, cid)
                looked_up.append(cid)
                found = found if found is not None else sent.get(cid)
                if found is not None:
                    _add_move(moved, bases, found, symbol)
            if not lost:
                return before, moved, looked_up
            after = _totals(self.venue.balances(), assets)
            if after == before:
                break
        return after, moved, looked_up

    def _refuse(self, message: str, fields: dict[str, Any]) -> NoReturn:
        assert self.node is not None
        text = f"HALTED (reconcile): {message}"
        if self.node.journal is not None:
            self.node.journal.append("halted", None, {"t": self.node.now, "state": "HALTED", "reason": "reconcile",
                                                      "message": text, **fields})  # fmt: skip
        raise ReconcileRefused(text)

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
        record = journal.get(f"sent:{cid}") if journal is not None else None
        done = journal.get(f"order_done:{cid}") if journal is not None else None
        if record is None and done is not None and done.get("status") == "rejected":
            return str(done["reason"])  # refused before a restart: the re-derived run is refused the same, nothing sent
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
        delta = _base_delta(answer, request.symbol, request.side)
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


def _within_step(a: float, b: float, step: float | None) -> bool:
    """Equal within the market's amount step: a difference below one step is rounding (dust), one step or more is
    an amount someone traded. Without a step, equal to 1e-12 relative."""
    if step is None:
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return abs(a - b) < step * (1.0 - 1e-9)


def _totals(balances: dict[str, Any], assets: list[str]) -> dict[str, float]:
    return {a: float(balances[a].total) if a in balances else 0.0 for a in assets}


def _add_move(moved: dict[str, float], bases: dict[str, str], answer: ExchangeOrder | dict[str, Any], symbol: str) -> None:
    if symbol in bases:
        side = OrderSide(answer["side"]) if isinstance(answer, dict) else answer.side
        moved[bases[symbol]] = moved.get(bases[symbol], 0.0) + _base_delta(answer, symbol, side)


def _base_delta(answer: ExchangeOrder | dict[str, Any], symbol: str, side: OrderSide) -> float:
    """The base an exchange answer moved: a buy's fill less the fee charged in base; a sell's fill, out."""
    filled, base_fee = _amounts(answer, symbol)
    return filled - base_fee if side is OrderSide.BUY else -filled


def _open_view(o: ExchangeOrder) -> dict[str, Any]:
    return {"id": o.client_order_id, "exchange_id": o.exchange_order_id, "symbol": o.symbol, "side": o.side.value,
            "quantity": o.quantity, "price": o.price}  # fmt: skip


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


__all__ = ["ExchangeBook", "ReconcileRefused", "feed_client_factory", "point_client", "ws_url_for"]
