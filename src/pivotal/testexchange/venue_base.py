"""A local WebSocket + REST server replaying one book tape in another venue's real wire format (Coinbase, Bybit, OKX):
what the consolidator's venue adapters are tested against, with the unmodified ccxt.pro client of each venue.

Why one base: the replay, the snapshot-on-subscribe, the per-socket send order and the injected faults are the same
for every venue; a venue module (``venue_coinbase``, ``venue_bybit``, ``venue_okx``) only says how its REST market list,
its subscribe/ping messages and its snapshot/delta messages look.

The tape (``BookTape``) is a starting book and a list of steps (event time, update id, changed levels). The replay
starts when the first socket subscribes and applies one step every ``interval_s`` while a socket is subscribed (it
waits while the client reconnects, so a test sees most of the tape whatever the machine's load); a socket that subscribes gets a
snapshot of the server's book at that moment, then every later step. Faults by step index (each served once):
``"drop"`` (the step is applied but never sent: the client sees a sequence gap), ``"disconnect"`` (every socket is
closed after the step), ``"corrupt"`` (the step is sent with a wrong checksum, where the venue has one). A fault is
served only once the client has subscribed again after the previous one, so each is seen on its own whatever the
machine's load.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from aiohttp import WSMsgType, web

from pivotal.data.orderbook.book import OrderBook
from pivotal.testexchange.server import start_site

__all__ = [
    "BookStep",
    "BookTape",
    "Socket",
    "VenueServer",
    "binance_tape",
    "book15_levels",
    "book15_snapshots",
    "coinbase_book15_tape",
]


@dataclass(frozen=True)
class BookStep:
    event_ms: int
    update_id: int
    bids: np.ndarray  # (k, 2) price, absolute qty (0 removes)
    asks: np.ndarray


@dataclass(frozen=True)
class BookTape:
    """A starting book (``update_id`` = its id) and the steps after it; ``source`` says where it came from."""

    symbol: str  # the venue's market id the server publishes (e.g. BTC-USD, BTCUSDT, BTC-USDT)
    update_id: int
    event_ms: int
    bids: np.ndarray
    asks: np.ndarray
    steps: list[BookStep]
    source: str


def _side_levels(frame: pd.DataFrame, side: str) -> np.ndarray:
    rows = frame[frame.side == side]
    return np.column_stack([rows.price.to_numpy(np.float64), rows.qty.to_numpy(np.float64)])


def binance_tape(folder: Path, raw_symbol: str, market_id: str, messages: int) -> BookTape:
    """The recorded Binance capture (``<folder>/<raw_symbol>-book_snapshot`` and ``-depth_updates``): the snapshot,
    then the first ``messages`` diffs after it, each a step with ``update_id`` = Binance ``u``. Used to test other
    venues' *protocols* only: it is Binance market data, whatever wire format carries it."""
    snap = pd.read_parquet(folder / f"{raw_symbol}-book_snapshot.parquet")
    last = int(snap["last_update_id"].to_numpy()[0])
    diffs = pd.read_parquet(folder / f"{raw_symbol}-depth_updates.parquet")
    diffs = diffs[diffs.final_update_id > last]
    keys = diffs[["local_ts_ns", "first_update_id", "final_update_id"]].drop_duplicates().head(messages)
    diffs = diffs[diffs.final_update_id <= int(keys.final_update_id.max())]
    steps = [
        BookStep(
            int(group["event_ts_ms"].to_numpy()[0]),
            int(group["final_update_id"].to_numpy()[0]),
            _side_levels(group, "bid"),
            _side_levels(group, "ask"),
        )
        for _, group in diffs.groupby("final_update_id", sort=True)
    ]
    snap_ms = snap.local_ts_ns.iloc[0] // 1_000_000
    return BookTape(
        market_id, last, int(snap_ms), _side_levels(snap, "bid"), _side_levels(snap, "ask"), steps,
        f"binance capture {folder.name}/{raw_symbol}",
    )  # fmt: skip


def book15_levels(row: pd.Series, side: str) -> np.ndarray:
    """One side of a Coinbase book15 row as exchange-precision levels: price = midpoint × (1 + distance) rounded to
    the $0.01 tick, size = notional / price rounded to 1e-8 BTC (PROVENANCE.md); levels that round onto one price are
    summed, empty ones dropped."""
    mid = float(row["midpoint"])
    out: dict[float, float] = {}
    for i in range(15):
        notional = float(row[f"{side}_notional_{i}"])
        distance = float(row[f"{side}_distance_{i}"])
        if not (np.isfinite(notional) and np.isfinite(distance)) or notional <= 0:
            continue
        price = round(mid * (1.0 + distance), 2)
        size = round(notional / price, 8)
        if size > 0:
            out[price] = round(out.get(price, 0.0) + size, 8)
    prices = sorted(out, reverse=side == "bids")
    return np.asarray([(p, out[p]) for p in prices], np.float64).reshape(-1, 2)


def book15_snapshots(path: Path) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The real Coinbase BTC-USD 15-level book, one (timestamp ms, bids, asks) per 1-minute snapshot."""
    frame = pd.read_parquet(path).sort_values("timestamp")
    return [(int(r["timestamp"]), book15_levels(r, "bids"), book15_levels(r, "asks")) for _, r in frame.iterrows()]


def _diff(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    before = {float(p): float(q) for p, q in old}
    after = {float(p): float(q) for p, q in new}
    rows = [(p, q) for p, q in after.items() if before.get(p) != q]
    rows += [(p, 0.0) for p in before if p not in after]
    return np.asarray(sorted(rows), np.float64).reshape(-1, 2)


def coinbase_book15_tape(path: Path, steps: int | None = None) -> BookTape:
    """Coinbase level2 from the real book15 file: the first snapshot, then per later snapshot the level changes that
    turn the previous one into it (a DERIVED diff stream: the real snapshots are 1 minute apart, the individual
    level2 messages in between were not recorded). The rebuilt book equals every real snapshot exactly."""
    snaps = book15_snapshots(path)
    t0, bids0, asks0 = snaps[0]
    out = []
    for i in range(1, len(snaps) if steps is None else min(len(snaps), steps + 1)):
        t, bids, asks = snaps[i]
        out.append(BookStep(t, i, _diff(snaps[i - 1][1], bids), _diff(snaps[i - 1][2], asks)))
    return BookTape("BTC-USD", 0, t0, bids0, asks0, out, "coinbase book15 1-minute snapshots (derived diffs)")


@dataclass(eq=False)
class Socket:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    subscribed: bool = False
    sent: int = 0  # messages queued on this socket (Coinbase numbers them per connection)
    info: dict[str, Any] = field(default_factory=dict)


class VenueServer:
    """Base of the venue servers: subclasses set ``ws_path`` and implement ``rest_routes``, ``on_text``,
    ``snapshot_message`` and ``step_message``."""

    ws_path = "/ws"
    name = "venue"

    def __init__(self, tape: BookTape, *, interval_s: float = 0.002, faults: dict[int, str] | None = None) -> None:
        self.tape = tape
        self.interval_s = interval_s
        self.faults = dict(faults or {})
        self.served: list[tuple[int, str]] = []  # (step index, fault) as served
        self.book = OrderBook()
        self.book.apply_snapshot(tape.update_id, tape.bids, tape.asks)
        self.position = -1  # index of the last applied step (-1: the starting book)
        self.update_id = tape.update_id
        self.event_ms = tape.event_ms
        self.sockets: list[Socket] = []
        self.subscriptions = 0
        self.host, self.port = "127.0.0.1", 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._started = asyncio.Event()

    # --- venue specifics ------------------------------------------------------------------------------------------
    def rest_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def on_text(self, sock: Socket, text: str) -> None:
        """Answer one client message (subscribe, ping); call ``self.subscribe(sock)`` on a book subscription."""
        raise NotImplementedError

    def snapshot_message(self, sock: Socket) -> dict[str, Any]:
        raise NotImplementedError

    def step_message(self, sock: Socket, step: BookStep, prev_id: int, corrupt: bool) -> dict[str, Any]:
        raise NotImplementedError

    def skip(self, sock: Socket) -> None:
        """A dropped step still took its number on the socket (it existed; it never arrives)."""
        sock.sent += 1

    # --- shared ---------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.ws_path}"

    def send(self, sock: Socket, payload: dict[str, Any] | str) -> None:
        sock.queue.put_nowait(payload if isinstance(payload, str) else json.dumps(payload))
        sock.sent += 1

    def subscribe(self, sock: Socket) -> None:
        """A book subscription: the snapshot of the book now, then every later step."""
        sock.subscribed = True
        self.subscriptions += 1
        self.send(sock, self.snapshot_message(sock))
        self._started.set()

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        sock = Socket(ws)
        self.sockets.append(sock)
        sender = asyncio.create_task(self._sender(sock))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.on_text(sock, msg.data)
        finally:
            sender.cancel()
            with contextlib.suppress(ValueError):
                self.sockets.remove(sock)
        return ws

    async def _sender(self, sock: Socket) -> None:
        while not sock.ws.closed:
            text = await sock.queue.get()
            if text is None:
                await sock.ws.close(code=1001, message=b"venue server: injected disconnect")
                return
            await sock.ws.send_str(text)

    async def _replay(self) -> None:
        await self._started.wait()
        recovered = 0  # subscriptions when the last fault was served
        for i, step in enumerate(self.tape.steps):
            await asyncio.sleep(self.interval_s)
            while not any(sock.subscribed and not sock.ws.closed for sock in self.sockets):
                await asyncio.sleep(0.001)  # a client between connections: the tape waits (keeps tests short)
            if i in self.faults:  # one fault at a time: the client has recovered (subscribed again) from the last
                while self.subscriptions <= recovered:
                    await asyncio.sleep(0.001)
            prev_id = self.update_id
            self.book.apply_levels(step.update_id, step.bids, step.asks)
            self.position, self.update_id, self.event_ms = i, step.update_id, step.event_ms
            fault = self.faults.pop(i, None)
            if fault is not None:
                self.served.append((i, fault))
                recovered = self.subscriptions
            for sock in list(self.sockets):
                if not sock.subscribed:
                    continue
                if fault == "drop":
                    self.skip(sock)
                    continue
                self.send(sock, self.step_message(sock, step, prev_id, fault == "corrupt"))
                if fault == "disconnect":
                    sock.subscribed = False
                    sock.queue.put_nowait(None)

    # --- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> VenueServer:
        self._thread = threading.Thread(target=self._serve, name=f"pivotal-{self.name}", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        app = web.Application()
        self.rest_routes(app)
        app.router.add_get(self.ws_path, self._ws)
        runner, self.port = await start_site(app, self.host, self.port)
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        replay = asyncio.create_task(self._replay())
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            replay.cancel()
            for sock in list(self.sockets):
                await sock.ws.close()
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def __enter__(self) -> VenueServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
