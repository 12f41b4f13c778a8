"""The terminal status view of a running node: positions, queued orders, PnL (realised / unrealised / equity), the
risk engine's trading state (ACTIVE / REDUCING / HALTED with the reason), feed lag and events processed — all read
from ``TradingNode.snapshot()``, so the view never reaches into the engine. ``render`` builds one frame (tested on
an 80-column console); ``StatusView`` refreshes it in a ``rich.live.Live`` at most a few times a second, so a replay
at full speed spends its time trading, not drawing."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pivotal.core.events import MarketEvent
from pivotal.runtime.node import NodeSnapshot, TradingNode

_STATE_STYLE = {"ACTIVE": "green", "REDUCING": "yellow", "HALTED": "bold red"}


def utc(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _price(x: float | None) -> str:
    return "-" if x is None else f"{x:,.8g}"


def _lag(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms} ms" if abs(ms) < 10_000 else f"{ms / 1000:,.0f} s"


def risk_line(risk: dict[str, Any] | None) -> Text:
    """``risk: HALTED (max_daily_loss) since …``, or that no risk engine runs (the default gate)."""
    if risk is None:
        return Text("risk: default gate (no [risk] table: breakers of the risk engine are off)")
    state = str(risk.get("state", "ACTIVE"))
    line = Text("risk: ").append(state, style=_STATE_STYLE.get(state, ""))
    if risk.get("reason"):
        line.append(f" ({risk['reason']}) since {utc(risk.get('since'))}")
    trips = risk.get("trips") or []
    if len(trips) > 1:
        line.append(f", {len(trips)} active trips")
    return line


def render(snap: NodeSnapshot, *, title: str = "") -> RenderableType:
    """One frame of the status view."""
    head = Text(f"{title}  " if title else "", style="bold").append(
        f"{utc(snap.time)}  events {snap.events:,}  feed lag {_lag(snap.feed_lag_ms)}", style=""
    )
    pnl = Text(
        f"equity {_money(snap.equity)}  realised {_money(snap.realised_pnl)}  unrealised {_money(snap.unrealised_pnl)}"
        f"  trades {snap.trades}"
    )
    parts: list[RenderableType] = [head, risk_line(snap.risk), pnl]
    if snap.positions:
        pos = Table("symbol", "side", "qty", "entry", "mark", "unrealised", "stop", "target", box=None, pad_edge=False)
        for p in snap.positions:
            pos.add_row(
                p.symbol, "long" if p.direction > 0 else "short", f"{p.quantity:.6g}", _price(p.entry_price),
                _price(p.mark), _money(p.unrealised_pnl), _price(p.stop), _price(p.target),
            )  # fmt: skip
        parts.append(pos)
    else:
        parts.append(Text("positions: none"))
    if snap.open_orders:
        orders = Table("order", "symbol", "action", "side", "type", "tag", box=None, pad_edge=False)
        for o in snap.open_orders:
            side = "buy" if o.direction > 0 else "sell"
            orders.add_row(o.id, o.symbol, o.action, side if o.action == "enter" else "-", o.type, o.tag or "-")
        parts.append(orders)
    else:
        parts.append(Text("open orders: none"))
    return Group(*parts)


class StatusView:
    """A live frame over a node: ``attach(node)`` (the runner's ``on_start``), ``observe(event)`` after each event
    (redraws at most every ``interval`` seconds of wall time), ``close(final)`` draws the last frame and stops."""

    def __init__(
        self,
        console: Console,
        *,
        title: str = "",
        capital: float = 1.0,
        interval: float = 0.25,
        now: Callable[[], int] | None = None,
    ) -> None:
        self.console, self.title, self.capital, self.interval = console, title, capital, interval
        self.now = now  # the feed's clock in epoch ms (the feed lag); None: the last event's time (lag 0)
        self.node: TradingNode | None = None
        self._live = Live(console=console, auto_refresh=False, transient=False)
        self._next = 0.0

    def attach(self, node: TradingNode) -> None:
        self.node = node
        self._live.start()

    def snapshot(self) -> NodeSnapshot | None:
        node = self.node
        if node is None:
            return None
        return node.snapshot(self.now() if self.now is not None else node.last_time, self.capital)

    def observe(self, event: MarketEvent) -> None:
        t = time.monotonic()
        if t >= self._next:
            self._next = t + self.interval
            snap = self.snapshot()
            if snap is not None:
                self._live.update(render(snap, title=self.title), refresh=True)

    def close(self, final: NodeSnapshot | None = None) -> None:
        snap = final or self.snapshot()
        if snap is not None and self.node is not None:
            self._live.update(render(snap, title=self.title), refresh=True)
        self._live.stop()
        if not self.console.is_terminal:
            self.console.line()  # off a terminal, Live leaves the last frame without its line end


__all__ = ["StatusView", "render", "risk_line", "utc"]
