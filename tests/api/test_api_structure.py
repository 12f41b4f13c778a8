"""Pivots and trend lines as a running node confirms them (WebSocket ``pivot`` / ``trendline``) equal the batch routes
(``GET /api/pivots``, ``GET /api/trendlines``) over the same bars: a replay of Binance BTC/USDT 1h (February to
mid-March 2020) run through the API. The trend lines are checked against the pivots they are drawn through."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pivotal.api.app import create_app
from pivotal.api.hub import Hub
from pivotal.api.security import RateLimiter, Token
from pivotal.config import Settings
from pivotal.data.candles import Candles
from pivotal.services.api_queries import LiveStructure
from tests.api.conftest import AUTH, TOKEN

START, END = "2020-02-01", "2020-03-20"
RUN: dict[str, Any] = {
    "mode": "replay", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}, "exchange": "binance",
    "symbols": ["BTC/USDT"], "timeframes": ["1h"], "start": START, "end": END, "speed": 0,
}  # fmt: skip
HOUR = 3_600_000
LIVE_ONLY = ("exchange", "symbol", "timeframe", "known_at")  # the WebSocket says which series and when the node knew it
DRAWING = ("until_index", "until_ts", "end")  # a pushed line is drawn to where it became known; the batch one further


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def rt(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, Token(TOKEN), RateLimiter(10_000, 60.0), Hub(buffer=20_000))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
        app.state.runtime.shutdown()


def replay_messages(rt: TestClient) -> list[dict[str, Any]]:
    with rt.websocket_connect("/ws") as ws:
        assert rt.post("/api/runtime/start", json=RUN, headers=AUTH).status_code == 202
        messages = []
        while not messages or messages[-1]["type"] != "run_finished":
            messages.append(ws.receive_json())
    deadline = time.monotonic() + 30
    while rt.get("/api/runtime/status").json()["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return messages


def test_pivots_and_trend_lines_pushed_as_they_confirm_equal_the_batch_routes(rt: TestClient, btc_2020: Candles) -> None:
    messages = replay_messages(rt)
    candles = [m["payload"] for m in messages if m["type"] == "candle"]
    first, last = candles[0]["ts"], candles[-1]["ts"]
    assert (first, last + HOUR) == (ms(START), ms(END))
    q = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "start": first, "end": last + HOUR}

    pushed = [m for m in messages if m["type"] == "pivot"]
    batch = rt.get("/api/pivots", params=q).json()
    assert len(batch) == 452
    assert [{k: v for k, v in m["payload"].items() if k not in LIVE_ONLY} for m in pushed] == batch  # same, same order
    for m in pushed:
        p = m["payload"]
        assert (p["exchange"], p["symbol"], p["timeframe"]) == ("binance", "BTC/USDT", "1h")
        assert p["known_at"] == p["confirmed_ts"]  # a replayed bar is known at its close
        # pushed right after the candle that confirmed it, never before
        candle_seq = max(c["seq"] for c in messages if c["type"] == "candle" and c["payload"]["ts"] + HOUR == p["confirmed_ts"])
        assert candle_seq < m["seq"]
        assert not any(c["type"] == "candle" and c["payload"]["ts"] + HOUR > p["confirmed_ts"] and c["seq"] < m["seq"]
                       for c in messages)  # fmt: skip

    lines = rt.get("/api/trendlines", params=q).json()
    live = [m["payload"] for m in messages if m["type"] == "trendline"]
    assert len(lines) == len(live) == 443
    strip = lambda x: {k: v for k, v in x.items() if k not in LIVE_ONLY + DRAWING}  # noqa: E731
    key = lambda x: (x["known_index"], x["level"], x["kind"])  # noqa: E731
    assert sorted(map(strip, live), key=key) == [strip(x) for x in lines]  # the batch order: known, level, H before L
    assert all(x["known_ts"] == x["known_at"] and x["until_ts"] is None for x in live)


def test_trend_lines_are_drawn_through_their_pivots(rt: TestClient, btc_2020: Candles) -> None:
    start, end = ms(START), ms(END)
    q = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "start": start, "end": end}
    bars = btc_2020.slice(int((btc_2020.ts < start).sum()), int((btc_2020.ts < end).sum()))
    pivots = rt.get("/api/pivots", params=q).json()
    lines = rt.get("/api/trendlines", params={**q, "level": 2}).json()
    assert {x["level"] for x in lines} == {2} and len(lines) == 88
    for kind in ("H", "L"):
        same = [p for p in pivots if p["level"] == 2 and p["kind"] == kind]
        mine = [x for x in lines if x["kind"] == kind]
        assert len(mine) == len(same) - 1  # one line per consecutive pair
        column = bars.high if kind == "H" else bars.low
        for j, line in enumerate(mine):
            a, b = line["anchors"]
            assert [(a["ts"], a["price"], a["confirmed_ts"]), (b["ts"], b["price"], b["confirmed_ts"])] == [
                (same[j]["ts"], same[j]["price"], same[j]["confirmed_ts"]),
                (same[j + 1]["ts"], same[j + 1]["price"], same[j + 1]["confirmed_ts"]),
            ]
            assert (a["price"], b["price"]) == (float(column[a["index"]]), float(column[b["index"]]))
            assert (int(bars.ts[a["index"]]), int(bars.ts[b["index"]])) == (a["ts"], b["ts"])
            assert line["slope"] == (b["price"] - a["price"]) / (b["index"] - a["index"])
            assert line["known_ts"] == b["confirmed_ts"] == int(bars.ts[line["known_index"]]) + HOUR
            nxt = same[j + 2]["confirmed_ts"] if j + 2 < len(same) else None
            assert line["until_ts"] == nxt  # replaced when the next same-type pivot confirms
            stop = line["until_index"] if nxt is not None else len(bars) - 1
            assert line["end"] == {"ts": int(bars.ts[stop]), "price": b["price"] + line["slope"] * (stop - b["index"])}
    first = lines[0]  # the lows of 1 Feb 12:00 and 2 Feb 04:00 UTC, 16 bars apart, known at 2 Feb 17:00
    assert (first["label"], first["direction"], [(a["ts"], a["price"]) for a in first["anchors"]]) == (
        "L2L", "down", [(ms("2020-02-01T12:00"), 9281.0), (ms("2020-02-02T04:00"), 9120.0)])  # fmt: skip
    assert (first["slope"], first["known_ts"], first["until_ts"]) == (-10.0625, ms("2020-02-02T17:00"), ms("2020-02-03T14:00"))


def test_errors_of_the_trend_line_route(rt: TestClient, btc_2020: Candles) -> None:
    q = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h"}
    assert rt.get("/api/trendlines", params={**q, "level": 6}).status_code == 422
    r = rt.get("/api/trendlines", params={**q, "symbol": "ETH/USDT"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "no 1h candles of binance ETH/USDT stored in that range; see GET /api/series"
    bad = rt.get("/api/trendlines", params={**q, "start": ms(END), "end": ms(START)})
    assert bad.status_code == 400 and "start" in bad.json()["error"]["message"]


def test_live_structure_on_a_hand_written_series() -> None:
    """Ten hand-written bars: level-1 highs at bars 2 (15) and 7 (18), each confirmed two bars later (k=2); the
    second forms the first L1H line, 3 up over 5 bars, known at the close of bar 9."""
    s = LiveStructure("1h")
    highs = [10.0, 11.0, 15.0, 12.0, 11.0, 13.0, 14.0, 18.0, 12.0, 11.0]
    out = [s.on_bar(i * HOUR, h - 1, h, h - 2, h - 1) for i, h in enumerate(highs)]
    found = [(i, p["label"], p["price"], p["ts"], p["confirmed_ts"]) for i, (ps, _) in enumerate(out) for p in ps]
    lines = [line for _, ls in out for line in ls]
    assert [f for f in found if f[1] == "L1H"] == [(4, "L1H", 15.0, 2 * HOUR, 5 * HOUR), (9, "L1H", 18.0, 7 * HOUR, 10 * HOUR)]
    l1h = [x for x in lines if x["label"] == "L1H"]
    assert len(l1h) == 1
    assert (l1h[0]["slope"], l1h[0]["known_ts"]) == (3.0 / 5, 10 * HOUR)
    assert l1h[0]["end"] == {"ts": 9 * HOUR, "price": 18.0 + 0.6 * 2}  # drawn to the bar that confirmed it
    with pytest.raises(ValueError):
        s.on_bar(10 * HOUR, 5.0, 4.0, 3.0, 5.0)  # open above the high


@pytest.fixture
def btc_2020(shared_data: Any, settings: Settings) -> Candles:
    """Binance BTC/USDT 1h of January to March 2020, stored as ``binance BTC/USDT 1h``."""
    import pyarrow.parquet as pq

    from pivotal.data.backends import open_store

    c = Candles.from_arrow(pq.read_table(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet"), "binance", "BTC/USDT", "1h")
    c = c.slice(int((c.ts < ms("2020-01-01")).sum()), int((c.ts < ms("2020-04-01")).sum()))
    store = open_store(settings)
    try:
        store.write_candles(c, source="BTCUSDT-1h-2018-2026.parquet")
    finally:
        store.close()
    return c
