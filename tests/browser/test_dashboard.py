"""The dashboard in headless Chromium over real binance BTC/USDT candles: four synchronized panes draw the stored
candles and exactly the API's pivots as markers; events pushed through the hub appear on the page; a WebSocket drop
resumes with ``last_seq`` without losing or repeating a message, and a gap too long for the buffer makes it reload."""

from __future__ import annotations

from typing import Any

import httpx

from pivotal.data.candles import Candles
from tests.browser.conftest import AUTH, Server

TIMEFRAMES = ["1m", "1h", "4h", "1d"]
STEP = {"1m": 60_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}
SHOWN = 500  # the page's default bars per pane


def _open(page: Any, server: Server, query: str = "") -> None:
    page.goto(f"{server.url}/{query}")
    page.wait_for_function("window.pivotalState && window.pivotalState.loaded && window.pivotalState.ws.state === 'open'")


def _state(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => ({panes: pivotalState.panes.map(p => ({timeframe: p.timeframe, bars: p.bars, markers: p.markers,
                   first_ts: p.first_ts, last_ts: p.last_ts,
                   last: p.candles ? p.candles.data()[p.candles.data().length - 1] : null})),
                   exchange: pivotalState.exchange, symbol: pivotalState.symbol, ws: pivotalState.ws,
                   error: pivotalState.error})"""
        )
    )


def test_dashboard_draws_candles_and_the_apis_pivots_in_four_panes(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    _open(page, server)
    state = _state(page)
    assert state["error"] is None
    assert (state["exchange"], state["symbol"]) == ("binance", "BTC/USDT")
    assert [p["timeframe"] for p in state["panes"]] == TIMEFRAMES
    pivots_of: dict[str, list[dict[str, Any]]] = {}
    for pane in state["panes"]:
        tf = pane["timeframe"]
        c = stored[tf]
        expected = min(SHOWN, len(c))
        assert pane["bars"] == expected, tf
        assert pane["last_ts"] == int(c.ts[-1]) and pane["first_ts"] == int(c.ts[len(c) - expected]), tf
        assert pane["last"]["close"] == float(c.close[-1]), tf
        end = int(c.ts[-1]) + STEP[tf]
        start = max(int(c.ts[0]), end - SHOWN * STEP[tf])
        q = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": tf, "start": start, "end": end}
        pivots = pivots_of[tf] = httpx.get(f"{server.url}/api/pivots", params=q).json()
        assert len(pivots) > 0, tf
        assert pane["markers"] == len(pivots), tf  # every pivot of every level drawn once at its bar
    # each pane drew into its canvases
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('.pane')].map(p => [...p.querySelectorAll('canvas')].map(c => c.width * c.height))"
    )
    assert len(sizes) == 4 and all(s and max(s) > 10_000 for s in sizes)
    assert page.locator("#not-built").inner_text().count("annotation tool") == 1
    # highs above the bar, lows below, as the API says
    for tf in TIMEFRAMES:
        above = page.evaluate(
            f"pivotalState.panes.find(p => p.timeframe === '{tf}')"
            ".markersApi.markers().filter(m => m.position === 'aboveBar').length"
        )
        assert above == sum(p["kind"] == "H" for p in pivots_of[tf]) > 0, tf


def test_crosshair_and_visible_range_follow_the_pane_under_the_pointer(page: Any, server: Server) -> None:
    _open(page, server)
    box = page.locator(".pane-chart").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.wait_for_function("pivotalState.panes[1].crosshairTime !== null")
    hovered, synced = page.evaluate(
        """() => [pivotalState.panes[0].hoverTime, pivotalState.panes.slice(1).map(p => [p.crosshairTime, p.times])]"""
    )
    assert hovered is not None
    for crosshair, times in synced:  # each other pane marks its last bar opening at or before the hovered minute
        assert crosshair == max(t for t in times if t <= hovered)
    # drag the 1m pane to the left edge of its data: the others scroll so their right edge holds the same time
    page.mouse.move(box["x"] + 100, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] * 0.5, steps=10)
    page.mouse.up()
    page.wait_for_function("pivotalState.panes[1].syncedTo !== null")
    edges = page.evaluate(
        """() => pivotalState.panes.map(p => { const r = p.chart.timeScale().getVisibleLogicalRange();
               return [p.times[Math.max(0, Math.min(p.times.length - 1, Math.round(r.to) - 1))], p.syncedTo, p.times]; })"""
    )
    right_1m = edges[0][0]
    assert right_1m < edges[0][2][-1]  # the drag moved the 1m pane back in time
    for edge, synced_to, times in edges[1:]:  # each other pane's right edge: its last bar opening by that minute
        assert edge == synced_to == max(t for t in times if t <= right_1m)


def test_timeframes_come_from_the_query_string_and_a_missing_series_says_so(page: Any, server: Server) -> None:
    _open(page, server, "?exchange=binance&symbol=BTC/USDT&tf=1h,15m&bars=50")
    state = _state(page)
    assert [(p["timeframe"], p["bars"]) for p in state["panes"]] == [("1h", 50), ("15m", 0)]
    assert page.locator(".pane").nth(1).inner_text().startswith("15m")
    assert "no stored 15m candles of binance BTC/USDT" in page.locator(".pane").nth(1).inner_text()


def test_pushed_candle_pivot_and_fill_show_up(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    _open(page, server)
    nxt = stored["1m_next"]  # the real bar after the stored slice: the one that closes next
    candle = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "ts": int(nxt.ts[0]),
              "open": float(nxt.open[0]), "high": float(nxt.high[0]), "low": float(nxt.low[0]),
              "close": float(nxt.close[0]), "volume": float(nxt.volume[0])}  # fmt: skip
    before = _state(page)["panes"][0]
    for body in (
        {"type": "candle", "payload": candle},
        {"type": "pivot", "payload": {"symbol": "BTC/USDT", "timeframe": "1m", "level": 1, "kind": "H",
                                      "price": candle["high"], "ts": candle["ts"], "confirmed_ts": candle["ts"] + 60_000}},
        {"type": "fill", "payload": {"symbol": "BTC/USDT", "side": "buy", "note": "<b id='x'>bold?</b>"}},
    ):  # fmt: skip
        assert httpx.post(f"{server.url}/api/events", json=body, headers=AUTH).status_code == 202
    page.wait_for_function("pivotalState.live.length === 3")
    after = _state(page)["panes"][0]
    assert after["bars"] == before["bars"] + 1
    assert after["last"] == {"time": candle["ts"] / 1000, "open": candle["open"], "high": candle["high"],
                             "low": candle["low"], "close": candle["close"]}  # fmt: skip
    assert after["markers"] == before["markers"] + 1
    log = page.locator("#live-log li")
    assert log.count() == 3
    assert log.nth(0).inner_text().startswith(f"#{_state(page)['ws']['lastSeq']} fill ")
    assert "<b id='x'>bold?</b>" in log.nth(0).inner_text()  # shown as text, never parsed as HTML
    assert page.locator("#x").count() == 0


def test_a_dropped_socket_resumes_with_last_seq_and_loses_nothing(page: Any, server: Server) -> None:
    _open(page, server)
    first = httpx.post(f"{server.url}/api/events", json={"type": "training", "payload": {"n": 0}}, headers=AUTH).json()["seq"]
    page.wait_for_function(f"pivotalState.ws.lastSeq === {first}")
    page.evaluate("pivotalState.dropSocket()")
    page.wait_for_function("pivotalState.ws.state === 'dropped'")
    missed = [
        httpx.post(f"{server.url}/api/events", json={"type": "training", "payload": {"n": n}}, headers=AUTH).json()["seq"]
        for n in range(1, 6)
    ]
    page.evaluate("pivotalState.resumeSocket()")
    page.wait_for_function(f"pivotalState.ws.lastSeq === {missed[-1]}")
    after = httpx.post(f"{server.url}/api/events", json={"type": "training", "payload": {"n": 6}}, headers=AUTH).json()["seq"]
    page.wait_for_function(f"pivotalState.ws.lastSeq === {after}")
    ws = _state(page)["ws"]
    assert ws["received"] == list(range(first, after + 1))  # each once, in order, none lost across the drop
    assert ws["reloads"] == 0
    assert [m["payload"]["n"] for m in page.evaluate("pivotalState.live")] == list(range(7))


def test_a_gap_longer_than_the_buffer_reloads_the_page_state(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    _open(page, server)
    page.evaluate("pivotalState.dropSocket()")
    page.wait_for_function("pivotalState.ws.state === 'dropped'")
    for n in range(server.hub.buffer_size + 5):  # more than the hub keeps
        server.hub.publish("training", {"n": n})
    page.evaluate("pivotalState.resumeSocket()")
    page.wait_for_function("pivotalState.ws.reloads === 1 && pivotalState.loaded && pivotalState.ws.state === 'open'")
    last = server.hub.publish("training", {"n": "after"})["seq"]
    page.wait_for_function(f"pivotalState.ws.lastSeq === {last}")
    assert _state(page)["ws"]["received"] == [last]  # nothing replayed twice, nothing pretended
    assert [p["bars"] for p in _state(page)["panes"]] == [min(SHOWN, len(stored[tf])) for tf in TIMEFRAMES]
