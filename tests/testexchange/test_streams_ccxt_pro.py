"""ccxt.pro (unmodified) against the test exchange's WebSocket streams: replayed klines and trades, order updates
from the user data stream, raw Binance message shapes on /ws, /stream and /ws/<listenKey>, and the injected
WebSocket faults as the client sees them. Async tests run under ``asyncio.run`` (no pytest-asyncio here)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import numpy as np
import pandas as pd
import pytest

from pivotal.data.loaders import load_candles_file
from pivotal.testexchange import Faults, TestExchange

pytestmark = [pytest.mark.realdata, pytest.mark.timeout(60)]

Make = Callable[..., TestExchange]


def _recorded_trade_ids(shared: Path, after_ms: int, n: int) -> list[int]:
    tr = pd.read_parquet(shared / "binance" / "BTCUSDT-trades.parquet").sort_values(["timestamp", "trade_id"], kind="stable")
    return [int(x) for x in tr[tr.timestamp > after_ms].trade_id.head(n)]


def _with_pro(ex: TestExchange, body: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        client = ex.ccxt_pro_client()
        try:
            await client.load_markets()
            return await body(client)
        finally:
            await client.close()

    return asyncio.run(main())


async def _trade_ids(client: Any, n: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < n:
        ids += [int(t["id"]) for t in await client.watch_trades("BTC/USDT")]
    return ids[:n]


def test_watch_ohlcv_receives_the_recorded_closed_bars(make_exchange: Make, shared_data: Path) -> None:
    recorded = load_candles_file(shared_data / "binance" / "BTCUSDT-1m-2024.parquet", timeframe="1m")
    with make_exchange() as ex:

        async def body(client: Any) -> list[tuple[list, int]]:
            seen: list[tuple[list, int]] = []
            while len(seen) < 3:
                candles = await client.watch_ohlcv("BTC/USDT", "1m")
                seen += [(c, ex.now_ms()) for c in candles]
            return seen

        seen = _with_pro(ex, body)
    for candle, server_now in seen:
        i = int(np.searchsorted(recorded.ts, candle[0]))
        expected = [
            int(recorded.ts[i]),
            *(float(a[i]) for a in (recorded.open, recorded.high, recorded.low, recorded.close, recorded.volume)),
        ]
        assert candle == expected
        assert candle[0] + 60_000 <= server_now  # sent only once closed on the exchange clock
    assert [c[0] for c, _ in seen] == [seen[0][0][0] + k * 60_000 for k in range(3)]


def test_watch_trades_receives_the_recorded_trades_in_order(make_exchange: Make, shared_data: Path) -> None:
    with make_exchange() as ex:
        ids = _with_pro(ex, lambda client: _trade_ids(client, 30))
        start = ex.start_ms
    assert ids == _recorded_trade_ids(shared_data, start, 30)


def test_watch_orders_sees_the_fill_of_a_market_order(make_exchange: Make) -> None:
    with make_exchange() as ex:

        async def body(client: Any) -> list[dict]:
            watching = asyncio.create_task(client.watch_orders("BTC/USDT"))
            while not ex.call(lambda state: any(sub.user for sub in state.hub.subscribers)):
                await asyncio.sleep(0.05)  # the user-data subscription is acknowledged before the order goes in
            await asyncio.sleep(0.1)
            placed = await client.create_order("BTC/USDT", "market", "buy", 0.001, params={"newClientOrderId": "w-1"})
            orders = await asyncio.wait_for(watching, 10)
            while orders[-1]["status"] != "closed":
                orders = await asyncio.wait_for(client.watch_orders("BTC/USDT"), 10)
            return [placed, *orders]

        placed, *updates = _with_pro(ex, body)
    last = updates[-1]
    assert (last["id"], last["clientOrderId"], last["status"], last["filled"]) == (placed["id"], "w-1", "closed", 0.001)


def _signed_listen_key(ex: TestExchange) -> str:
    request = urllib.request.Request(ex.url + "/api/v3/userDataStream", method="POST", headers={"X-MBX-APIKEY": ex.api_key})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())["listenKey"]


def test_listen_key_stream_carries_execution_reports_and_account_positions(make_exchange: Make) -> None:
    with make_exchange(faults=Faults(user_ws={1: "duplicate"})) as ex:
        key = _signed_listen_key(ex)
        client = ex.ccxt_client()

        async def main() -> list[dict]:
            async with aiohttp.ClientSession() as session, session.ws_connect(f"{ex.urls['ws']}/{key}") as ws:
                await asyncio.sleep(0.2)
                await asyncio.to_thread(client.create_order, "BTC/USDT", "market", "buy", 0.001)
                return [json.loads((await ws.receive(timeout=5)).data) for _ in range(5)]

        events = asyncio.run(main())
    assert [(e["e"], e.get("x")) for e in events] == [
        ("executionReport", "NEW"),
        ("executionReport", "NEW"),  # the injected duplicate
        ("outboundAccountPosition", None),
        ("executionReport", "TRADE"),
        ("outboundAccountPosition", None),
    ]
    assert events[3]["X"] == "FILLED" and events[3]["l"] == "0.00100000"
    assert {b["a"] for b in events[4]["B"]} == {"BTC", "USDT"}


def test_raw_and_combined_streams_use_binances_shapes(make_exchange: Make, shared_data: Path) -> None:
    with make_exchange() as ex:

        async def main() -> tuple[dict, list[dict]]:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"{ex.urls['ws']}/btcusdt@kline_1m") as raw:
                    kline = json.loads((await raw.receive(timeout=10)).data)
                url = f"{ex.urls['stream']}?streams=btcusdt@trade/btcusdt@depth@100ms"
                async with session.ws_connect(url) as combined:
                    wrapped: list[dict] = []
                    while len({w["stream"] for w in wrapped}) < 2 and len(wrapped) < 2000:
                        wrapped.append(json.loads((await combined.receive(timeout=10)).data))
            return kline, wrapped

        kline, wrapped = asyncio.run(main())
    k = kline["k"]
    assert kline["e"] == "kline" and k["x"] is True and k["i"] == "1m" and kline["E"] == k["T"] + 1
    assert {w["stream"] for w in wrapped} == {"btcusdt@trade", "btcusdt@depth@100ms"}
    trade = next(w["data"] for w in wrapped if w["stream"] == "btcusdt@trade")
    depth = next(w["data"] for w in wrapped if w["stream"] == "btcusdt@depth@100ms")
    assert set(trade) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"} and trade["e"] == "trade"
    assert set(depth) == {"e", "E", "s", "U", "u", "b", "a"} and depth["e"] == "depthUpdate"


def test_duplicated_and_reordered_messages_reach_the_client(make_exchange: Make, shared_data: Path) -> None:
    with make_exchange(faults=Faults(ws={5: "duplicate", 10: "reorder"})) as ex:
        ids = _with_pro(ex, lambda client: _trade_ids(client, 12))
        expected = _recorded_trade_ids(shared_data, ex.start_ms, 11)
    assert ids[:5] == expected[:5] and ids[5] == ids[4]  # message 5 sent twice
    assert ids[6:10] == expected[5:9]
    assert ids[10:12] == [expected[10], expected[9]]  # message 10 held back behind message 11


def test_disconnect_is_seen_and_the_client_resubscribes(make_exchange: Make, shared_data: Path) -> None:
    with make_exchange(faults=Faults(ws={4: "disconnect"})) as ex:

        async def body(client: Any) -> tuple[list[int], BaseException | None, list[int]]:
            before: list[int] = []
            error: BaseException | None = None
            try:
                while True:
                    before += [int(t["id"]) for t in await client.watch_trades("BTC/USDT")]
            except ccxt.NetworkError as exc:
                error = exc
            return before, error, await _trade_ids(client, 3)

        before, error, after = _with_pro(ex, body)
        expected = _recorded_trade_ids(shared_data, ex.start_ms, 10)
    assert isinstance(error, ccxt.NetworkError)
    assert before == expected[:3]
    assert after[0] > before[-1]  # the resubscribed stream continues the replay


def test_delayed_message_arrives_late_but_in_order(make_exchange: Make, shared_data: Path) -> None:
    with make_exchange(faults=Faults(ws={3: "delay"}, delay_s=3.0)) as ex:

        async def body(client: Any) -> tuple[bool, list[int]]:
            ids = await _trade_ids(client, 2)
            pending = asyncio.ensure_future(client.watch_trades("BTC/USDT"))
            done, _ = await asyncio.wait({pending}, timeout=0.5)
            ids += [int(t["id"]) for t in await pending]
            return bool(done), ids

        arrived_early, ids = _with_pro(ex, body)
        expected = _recorded_trade_ids(shared_data, ex.start_ms, len(ids))
    assert not arrived_early
    assert ids == expected


def test_paced_replay_plays_bars_as_the_clock_reaches_their_close(make_exchange: Make) -> None:
    with make_exchange(speed=6000) as ex:  # 100 recorded minutes per wall second

        async def body(client: Any) -> list[tuple[int, int]]:
            seen: list[tuple[int, int]] = []
            while len(seen) < 2:
                seen += [(int(c[0]), ex.now_ms()) for c in await client.watch_ohlcv("BTC/USDT", "1m")]
            return seen

        seen = _with_pro(ex, body)
        start = ex.start_ms
    assert all(ts + 60_000 <= now for ts, now in seen)
    assert seen[0][0] + 60_000 > start  # the first bar closed after the replay started (none replayed from the past)


def test_watch_balance_follows_the_account_after_a_fill(make_exchange: Make) -> None:
    with make_exchange(balances={"USDT": 1000, "BTC": 0}) as ex:

        async def body(client: Any) -> dict:
            watching = asyncio.create_task(client.watch_balance())
            while not ex.call(lambda state: any(sub.user for sub in state.hub.subscribers)):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            await client.create_order("BTC/USDT", "market", "buy", 0.001)
            balance = await asyncio.wait_for(watching, 10)
            deadline = asyncio.get_running_loop().time() + 10
            while balance.get("BTC", {}).get("free") != 0.000999:
                assert asyncio.get_running_loop().time() < deadline, f"no balance update with the fill: {balance}"
                try:
                    balance = await asyncio.wait_for(client.watch_balance(), 0.5)
                except TimeoutError:  # the last update came between two watches: ccxt.pro merged it into its cache
                    balance = next((b for b in client.balance.values() if isinstance(b, dict) and "BTC" in b), balance)
            return balance

        balance = _with_pro(ex, body)
    assert balance["BTC"]["free"] == 0.000999 and balance["USDT"]["used"] == 0.0


def test_paused_clock_moves_only_when_the_harness_advances_it(make_exchange: Make) -> None:
    with make_exchange() as ex:  # speed 0
        ex.pause()
        clock = ex.url + "/testexchange/v1/clock"

        def control(query: str = "", method: str = "GET") -> dict:
            with urllib.request.urlopen(urllib.request.Request(clock + query, method=method), timeout=5) as resp:
                return json.loads(resp.read())

        async def main() -> tuple[dict, dict, dict]:
            async with aiohttp.ClientSession() as session, session.ws_connect(f"{ex.urls['ws']}/btcusdt@kline_1m") as ws:
                await asyncio.sleep(0.2)
                held = await asyncio.to_thread(control)
                moved = await asyncio.to_thread(control, "?advance=60000", "POST")
                kline = json.loads((await ws.receive(timeout=10)).data)
            return held, moved, kline

        held, moved, kline = asyncio.run(main())
    assert held["now"] == ex.start_ms and held["paused"] is True  # a subscriber alone does not move a paused clock
    assert moved["now"] == ex.start_ms + 60_000
    assert kline["k"]["T"] + 1 <= moved["now"] and kline["k"]["x"] is True
