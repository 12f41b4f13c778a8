"""WebSocket streams: market data on ``/ws`` (raw) and ``/stream?streams=`` (combined, ``{"stream", "data"}``), the
user data stream on ``/ws/<listenKey>``, and the WebSocket API's ``userDataStream.subscribe.signature`` on
``/ws-api/v3`` (what ccxt.pro 4.5 uses for spot ``watch_orders``), with the faults of ``Faults.ws``/``user_ws``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from pivotal.testexchange.faults import Faults

_CLOSE = "\x00close"  # queued by a stream "disconnect" fault: the sender closes the socket when it reaches it


@dataclass(eq=False)
class Subscriber:
    ws: web.WebSocketResponse
    combined: bool = False  # /stream: wrap as {"stream": name, "data": payload}
    user: bool = False
    ws_api: bool = False  # WebSocket API: wrap as {"subscriptionId": 0, "event": payload}
    streams: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


class Hub:
    """Fans replayed messages out to the sockets subscribed to them; one sender task per socket applies the faults."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.subscribers: list[Subscriber] = []
        self.sent = 0
        self.progress = asyncio.Event()  # set whenever a sender empties its queue (speed 0 waits on it)
        self.dropped: list[tuple[str, dict]] = []  # messages a "drop" stream fault never sent (stream, payload)

    def has_market_subscribers(self) -> bool:
        return any(not s.user and s.streams for s in self.subscribers)

    def drained(self) -> bool:
        return all(s.queue.empty() for s in self.subscribers if not s.user)

    def wants(self, stream: str) -> bool:
        """Is any socket subscribed to ``stream``? (The replay skips building messages nobody reads.)"""
        return any(not s.user and stream in s.streams for s in self.subscribers)

    def publish(self, stream: str, payload: dict) -> None:
        fault = self.faults.stream_fault(stream) if self.faults.streams else None
        if fault == "drop":
            self.dropped.append((stream, payload))
            return
        for s in self.subscribers:
            if not s.user and stream in s.streams:
                text = json.dumps({"stream": stream, "data": payload} if s.combined else payload)
                s.queue.put_nowait(text)
                if fault == "duplicate":
                    s.queue.put_nowait(text)
                elif fault == "disconnect":
                    s.queue.put_nowait(_CLOSE)

    def publish_user(self, payload: dict) -> None:
        for s in self.subscribers:
            if s.user:
                s.queue.put_nowait(json.dumps({"subscriptionId": 0, "event": payload} if s.ws_api else payload))

    async def sender(self, sub: Subscriber) -> None:
        """Send a socket's queue in order, applying the scheduled faults (each fault is served once)."""
        held: str | None = None
        while not sub.ws.closed:
            text = await sub.queue.get()
            if text is _CLOSE:  # a stream fault's disconnect, queued after the message it follows
                await sub.ws.close(code=1001, message=b"test exchange: injected disconnect")
                return
            fault = self.faults.user_ws_fault() if sub.user else self.faults.ws_fault()
            if fault == "disconnect":
                await sub.ws.close(code=1001, message=b"test exchange: injected disconnect")
                return
            if fault == "delay":
                await asyncio.sleep(self.faults.delay_s)
            if fault == "reorder" and held is None:
                held = text
                continue
            await self._send(sub, text)
            if fault == "duplicate":
                await self._send(sub, text)
            if held is not None:
                await self._send(sub, held)
                held = None
            if sub.queue.empty():
                self.progress.set()

    async def _send(self, sub: Subscriber, text: str) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await sub.ws.send_str(text)
            self.sent += 1


def _stream_names(text: str) -> set[str]:
    return {s for s in text.split("/") if s}


class StreamHandlers:
    """aiohttp handlers; ``state`` is the ExchangeState (typed loosely to keep this module free of a cycle)."""

    def __init__(self, state: Any, verify_ws_api: Callable[[dict], str | None]) -> None:
        self.state = state
        self.verify_ws_api = verify_ws_api

    async def _serve(
        self, request: web.Request, sub: Subscriber, on_text: Callable[[Subscriber, dict], Any]
    ) -> web.WebSocketResponse:
        ws = sub.ws
        hub: Hub = self.state.hub
        hub.subscribers.append(sub)  # before the handshake completes: nothing published after the client connects is lost
        try:
            await ws.prepare(request)
        except BaseException:
            hub.subscribers.remove(sub)
            raise
        task = asyncio.create_task(hub.sender(sub))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    body = json.loads(msg.data)
                except ValueError:
                    await ws.send_str(
                        json.dumps({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}})
                    )
                    continue
                reply = on_text(sub, body)
                if reply is not None:
                    await ws.send_str(json.dumps(reply))
        finally:
            hub.subscribers.remove(sub)
            hub.progress.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return ws

    async def raw(self, request: web.Request) -> web.WebSocketResponse:
        tail = request.match_info.get("tail", "")
        if tail in self.state.listen_keys:
            return await self._serve(request, Subscriber(web.WebSocketResponse(), user=True), lambda s, b: None)
        sub = Subscriber(web.WebSocketResponse(), streams={n for n in _stream_names(tail) if "@" in n})
        return await self._serve(request, sub, self._market_request)

    async def combined(self, request: web.Request) -> web.WebSocketResponse:
        sub = Subscriber(web.WebSocketResponse(), combined=True, streams=_stream_names(request.query.get("streams", "")))
        return await self._serve(request, sub, self._market_request)

    def _market_request(self, sub: Subscriber, body: dict) -> dict | None:
        method, params, rid = body.get("method"), body.get("params") or [], body.get("id")
        if method == "SUBSCRIBE":
            sub.streams.update(str(p) for p in params)
            self.state.catch_up()
            return {"result": None, "id": rid}
        if method == "UNSUBSCRIBE":
            sub.streams.difference_update(str(p) for p in params)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(sub.streams), "id": rid}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": rid}

    async def ws_api(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, Subscriber(web.WebSocketResponse(), ws_api=True), self._api_request)

    def _api_request(self, sub: Subscriber, body: dict) -> dict:
        method, rid, params = body.get("method"), body.get("id"), body.get("params") or {}
        if method == "userDataStream.subscribe.signature":
            error = self.verify_ws_api(params)
            if error is not None:
                return {"id": rid, "status": 400, "error": json.loads(error)}
            sub.user = True
            return {"id": rid, "status": 200, "result": {"subscriptionId": 0}}
        if method == "ping":
            return {"id": rid, "status": 200, "result": {}}
        if method == "time":
            return {"id": rid, "status": 200, "result": {"serverTime": self.state.now()}}
        return {
            "id": rid,
            "status": 400,
            "error": {"code": -1, "msg": f"test exchange does not serve WebSocket API method {method!r}"},
        }
