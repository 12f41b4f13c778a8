"""Faults injected per test, on a schedule keyed by request or message number (1-based, each served once).

REST (``rest``: path → {request number on that path → fault}):
- ``"429"``: Binance's rate-limit answer, code -1003 with ``Retry-After``; ``"418"``: the IP-ban answer
- ``"500"``: Binance's JSON internal error (code -1001); ``"503"``: code -1008 "Server is currently overloaded", with
  ``Retry-After``
- ``"insufficient"``: reject with -2010 "Account has insufficient balance for requested action."
- ``"filter"``: reject with -1013 "Filter failure: LOT_SIZE"
- ``"timeout_after_accept"`` (order placement only): the order is accepted and stored, the response never comes
  (the server holds it ``hold_s`` seconds, then drops the connection)

WebSocket (``ws``: message number across all market-data sockets → fault):
- ``"disconnect"``: the socket is closed before that message (the client must reconnect and resubscribe)
- ``"delay"``: that message is sent ``delay_s`` seconds late (later messages wait behind it)
- ``"duplicate"``: that message is sent twice
- ``"reorder"``: that message is held back and sent after the next one
``user_ws`` does the same for user-data messages (executionReport, outboundAccountPosition).

``open_klines``: also stream Binance's in-progress kline updates (``"x": false``): when a bar closes, the next bar's
kline as it stands at its open (o = h = l = c = its recorded open, volume 0, event time = its open time) follows the
closed one on the same stream. Recorded values only, nothing of the open bar's future; a client that takes such an
update for a closed candle (e.g. when a ``reorder`` puts it before the previous bar's closed kline) is caught.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

REST_FAULTS = ("429", "418", "500", "503", "insufficient", "filter", "timeout_after_accept")
WS_FAULTS = ("disconnect", "delay", "duplicate", "reorder")
STREAM_FAULTS = ("drop", "duplicate", "disconnect")


@dataclass
class Faults:
    rest: dict[str, dict[int, str]] = field(default_factory=dict)
    ws: dict[int, str] = field(default_factory=dict)
    user_ws: dict[int, str] = field(default_factory=dict)
    streams: dict[str, dict[int, str]] = field(default_factory=dict)
    retry_after_s: int = 1
    delay_s: float = 0.5
    hold_s: float = 30.0
    open_klines: bool = False
    served: list[str] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        for path, plan in self.rest.items():
            for fault in plan.values():
                if fault not in REST_FAULTS:
                    raise ValueError(f"unknown REST fault {fault!r} for {path}; use one of: {' '.join(REST_FAULTS)}")
        for fault in (*self.ws.values(), *self.user_ws.values()):
            if fault not in WS_FAULTS:
                raise ValueError(f"unknown WebSocket fault {fault!r}; use one of: {' '.join(WS_FAULTS)}")
        for stream, plan in self.streams.items():
            for fault in plan.values():
                if fault not in STREAM_FAULTS:
                    raise ValueError(f"unknown stream fault {fault!r} for {stream}; use one of: {' '.join(STREAM_FAULTS)}")

    def _take(self, counter: str, plan: dict[int, str]) -> str | None:
        with self._lock:
            n = self._counts.get(counter, 0) + 1
            self._counts[counter] = n
            fault = plan.pop(n, None)
            if fault:
                self.served.append(f"{counter}#{n}:{fault}")
            return fault

    def rest_fault(self, method: str, path: str) -> str | None:
        """The fault for this request, if any (counted per path; ``"POST /api/v3/order"`` keys win over plain paths)."""
        keyed = f"{method} {path}"
        if keyed in self.rest:
            return self._take(keyed, self.rest[keyed])
        return self._take(path, self.rest.get(path, {}))

    def ws_fault(self) -> str | None:
        return self._take("ws", self.ws)

    def user_ws_fault(self) -> str | None:
        return self._take("user_ws", self.user_ws)

    def stream_fault(self, stream: str) -> str | None:
        """The fault for the next message published on ``stream`` (counted per stream name)."""
        plan = self.streams.get(stream)
        return None if plan is None else self._take(f"stream:{stream}", plan)

    def count(self, counter: str) -> int:
        with self._lock:
            return self._counts.get(counter, 0)
