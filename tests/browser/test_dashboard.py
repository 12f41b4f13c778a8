"""The dashboard in headless Chromium over real binance BTC/USDT candles: four synchronized panes draw the stored
candles and exactly the API's pivots as markers; events pushed through the hub appear on the page; a WebSocket drop
resumes with ``last_seq`` without losing or repeating a message, and a gap too long for the buffer makes it reload.
A model run started through the API is followed as it plays (predictions drawn, every fill a marker, PnL), the
threshold slider and the live-training switch call their routes, and the order-book panel draws the stored depth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from pivotal.config import load_settings
from pivotal.core.clock import SimulatedClock
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.importers.shared_parquet import read_shared
from tests.api.test_api_learning import train_tiny_cnn
from tests.browser.conftest import ARTIFACTS, AUTH, TOKEN, Server

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
    assert page.locator("#cob-info").inner_text() == "no order-book data stored for BTC/USDT"  # none imported here
    assert page.evaluate("pivotalState.cob.state") == "none" and page.locator("#cob-canvas").is_hidden()
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


def _pace(server: Server, real_s: float) -> None:
    """The server's replays (at 100x: a 1h bar is 36 s of waits) on a simulated clock each wait moves on, plus
    ``real_s`` real seconds per bar (the page watches a run in progress)."""
    clock = SimulatedClock(0)

    def sleep(wait_ms: int) -> None:
        clock.advance(wait_ms)
        time.sleep(real_s * wait_ms / 36_000)

    manager = server.app.state.runtime
    manager.clock_factory, manager.sleep = (lambda: clock), sleep


def test_a_model_run_started_through_the_api_draws_predictions_and_trades_and_the_controls_act(
    page: Any, server: Server, stored: dict[str, Candles], shared_data: Path
) -> None:
    base = train_tiny_cnn(shared_data, load_settings())
    _pace(server, 0.1)
    _open(page, server)
    assert page.locator("#buy-slider").is_disabled() and page.locator("#sell-slider").is_disabled()
    assert page.locator("#controls-reason").inner_text() == "no model run; start one with POST /api/realtime-inference/start"
    assert page.locator("#model-select option").all_inner_texts() == ["cnn"]
    page.fill("#token-input", TOKEN)
    page.dispatch_event("#token-input", "change")
    run = {"model_name": "cnn", "symbol": "BTC/USDT", "start": int(base.ts[450]), "end": int(base.ts[-1]) + 3_600_000,
           "enable_live_training": True, "speed": 100, "buy_threshold": 0.01, "sell_threshold": 0.01}  # fmt: skip
    assert httpx.post(f"{server.url}/api/realtime-inference/start", json=run, headers=AUTH).status_code == 202
    # the page follows the run: predictions drawn on the 1h pane, fills as markers, the controls switched on
    page.wait_for_function("pivotalState.panes.some(p => p.timeframe === '1h' && p.predicted >= 3)")
    page.wait_for_function("pivotalState.fills.length >= 1")
    page.wait_for_function("!document.getElementById('buy-slider').disabled")
    assert page.locator("#controls-reason").inner_text().startswith("model run of cnn")
    page.locator("#buy-slider").fill("0.05")
    page.wait_for_function("pivotalState.commands.includes('/api/realtime-inference/thresholds')")
    deadline = time.monotonic() + 20
    while httpx.get(f"{server.url}/api/realtime-inference/status").json()["runtime"]["model"]["thresholds"]["buy"] != 0.05:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # live training: on for this run, switched off from the page; the training panel shows the run's statistics
    assert page.locator("#live-training-toggle").is_checked() and page.locator("#live-training-toggle").is_enabled()
    page.wait_for_function("document.getElementById('training-body').textContent.includes('live training on')")
    page.locator("#live-training-toggle").uncheck()
    page.wait_for_function("pivotalState.commands.includes('/api/realtime-inference/live-training')")
    while httpx.get(f"{server.url}/api/realtime-inference/status").json()["runtime"]["model"]["live_training"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    page.wait_for_function("document.getElementById('training-body').textContent.includes('live training off')")
    serving = httpx.get(f"{server.url}/api/models/cnn").json()["id"]
    assert f"serving {serving} · running" in page.locator("#training-body").inner_text()  # the checkpoint it serves
    page.locator("#inference-toggle").click()  # "stop inference"
    page.wait_for_function("pivotalState.inference && pivotalState.inference.active === false")
    page.wait_for_function("pivotalState.live.some(m => m.type === 'run_finished')")
    trades = httpx.get(f"{server.url}/api/runtime/trades").json()
    assert len(trades) >= 1
    expected = sorted([("entry", t["entry_time"], t["entry_fill"]) for t in trades] +
                      [("exit", t["exit_time"], t["exit_fill"]) for t in trades])  # fmt: skip
    shown = page.evaluate("pivotalState.fills.map(f => [f.part, f.ts, f.price])")
    assert sorted(tuple(f) for f in shown) == expected  # every fill of the run, once, at its price
    hour = page.evaluate(
        """() => { const p = pivotalState.panes.find(p => p.timeframe === '1h');
                   const last = pivotalState.predictions.filter(x => x.timeframe === '1h').pop();
                   return {fills: p.tradeMarkers, line: p.predLines[1].data().at(-1).value, want: last.pivots[0].price,
                           levels: last.pivots.length, close: last.close}; }"""
    )
    assert hour["fills"] == len(expected) and hour["line"] == hour["want"] and hour["levels"] == 3
    assert page.locator("#prediction-levels tbody tr").count() == 3
    page.wait_for_function("document.getElementById('pnl-trades').textContent !== '–'")
    pnl = httpx.get(f"{server.url}/api/runtime/pnl").json()
    page.wait_for_function(f"document.getElementById('pnl-trades').textContent === '{pnl['trades']}'")
    assert page.locator("#pnl-equity").inner_text() == f"{pnl['equity']:.2f}"
    assert page.locator("#decision-log li").count() == min(20, page.evaluate("pivotalState.decisions.length"))
    # the start button: the chosen model replays what its pane shows, at the chosen pace, live training as ticked
    page.locator("#live-training-toggle").uncheck()
    page.select_option("#speed-select", "0")
    first_1h = page.evaluate("pivotalState.panes.find(p => p.timeframe === '1h').first_ts")
    page.locator("#inference-toggle").click()
    page.wait_for_function("pivotalState.inference.active === true && pivotalState.run.events > 0")
    status = httpx.get(f"{server.url}/api/runtime/status").json()
    assert (status["strategy"], status["start"], status["timeframes"]) == ("model", first_1h, ["1h"])
    assert status["model"]["live_training"] is status["model"]["live_training_switchable"] is False
    assert status["session"]["speed"] == 0
    page.wait_for_function("document.getElementById('controls-reason').textContent.endsWith('(it was started without it)')")
    assert page.locator("#live-training-toggle").is_disabled()  # nothing to switch on: said, not pretended
    page.locator("#inference-toggle").click()  # stop it again (at max pace the page may have been told to reload)
    page.wait_for_function("pivotalState.inference.active === false && pivotalState.run && !pivotalState.run.running")
    assert httpx.get(f"{server.url}/api/runtime/status").json()["summary"]["status"] == "stopped"


def test_the_order_book_panel_draws_the_stored_depth(page: Any, server: Server, shared_data: Path) -> None:
    store = open_store(load_settings())
    try:
        for kind in ("book_snapshot", "depth_updates", "trades"):
            read_shared(shared_data / "binance" / f"BTCUSDT-{kind}.parquet").write(store)
    finally:
        store.close()
    _open(page, server)
    page.wait_for_function("pivotalState.cob.state === 'drawn'")
    heat = httpx.get(f"{server.url}/api/cob/heatmap", params={"exchange": "binance", "symbol": "BTC/USDT"}).json()
    assert page.evaluate("pivotalState.cob.rows") == len(heat["ts"]) == 300
    assert page.locator("#cob-info").inner_text().startswith("imbalance · 300 s to ")
    coloured = page.evaluate(
        """() => { const c = document.getElementById('cob-canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
                   for (let i = 0; i < d.length; i += 4) if (d[i] !== 0x17 || d[i + 1] !== 0x1a) n++;
                   return n; }"""
    )
    assert coloured > 1000  # cells painted over the background
    page.select_option("#cob-metric", "spread")
    page.wait_for_function("pivotalState.cob.metric === 'spread' && pivotalState.cob.state === 'drawn'")


def test_a_replay_draws_its_pivots_as_they_confirm_and_trend_lines_when_toggled(
    page: Any, server: Server, stored: dict[str, Candles]
) -> None:
    hour = stored["1h"]
    start, end = int(hour.ts[-240]), int(hour.ts[-1]) + STEP["1h"]
    series = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h"}
    run = {"mode": "replay", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}, "exchange": "binance",
           "symbols": ["BTC/USDT"], "timeframes": ["1h"], "start": start, "end": end, "speed": 100}  # fmt: skip
    _pace(server, 0.01)
    _open(page, server)
    assert httpx.post(f"{server.url}/api/runtime/start", json=run, headers=AUTH).status_code == 202
    page.wait_for_function(
        "pivotalState.live.some(m => m.type === 'run_finished') && pivotalState.loaded && !pivotalState.loading"
    )
    # every pivot of the replayed bars came over the WebSocket as it confirmed: exactly the batch pivots of those bars
    batch = httpx.get(f"{server.url}/api/pivots", params={**series, "start": start, "end": end}).json()
    pushed = page.evaluate("pivotalState.live.filter(m => m.type === 'pivot').map(m => m.payload)")
    live_only = ("exchange", "symbol", "timeframe", "known_at")
    assert [{k: v for k, v in p.items() if k not in live_only} for p in pushed] == batch and len(batch) > 20
    pane = page.evaluate(
        """() => { const p = pivotalState.panes.find(p => p.timeframe === '1h');
                   return {keys: p.pivots.map(v => v.label + '@' + v.ts), markers: p.markers, fetches: p.pivotFetches,
                           live: p.livePivots, drawn: p.markersApi.markers().filter(m => !m.id.startsWith('fill:')).length,
                           first_ts: p.first_ts, last_ts: p.last_ts}; }"""
    )
    assert pane["live"] == len(batch) and pane["fetches"] == 1  # drawn from the pushes: the pivots were read once
    assert {f"{p['label']}@{p['ts']}" for p in batch} <= set(pane["keys"])
    assert pane["markers"] == pane["drawn"] == len(pane["keys"]) == len(set(pane["keys"]))
    assert pane["last_ts"] == int(hour.ts[-1])  # the pushed candles extended the pane to the run's end
    lines_pushed = page.evaluate("pivotalState.live.filter(m => m.type === 'trendline').map(m => m.payload)")
    assert len(lines_pushed) > 10
    assert page.evaluate("pivotalState.panes.find(p => p.timeframe === '1h').trendDrawn") == 0  # off by default

    # trend lines: toggled on, the level-2 lines of the pane are drawn through their anchors
    page.check("#trend-toggle")
    page.wait_for_function("pivotalState.panes.every(p => !p.chart || p.node.dataset.trendlines !== undefined)")
    api = httpx.get(f"{server.url}/api/trendlines",
                    params={**series, "start": pane["first_ts"], "end": pane["last_ts"] + STEP["1h"]}).json()  # fmt: skip

    def key(x: dict[str, Any]) -> str:
        return f"{x['label']}@{x['anchors'][0]['ts']}>{x['anchors'][1]['ts']}"

    union = {key(x): x for x in lines_pushed + api}
    level2 = [x for x in union.values() if x["level"] == 2 and x["anchors"][1]["ts"] >= pane["first_ts"]]
    drawn = page.evaluate(
        """() => { const p = pivotalState.panes.find(p => p.timeframe === '1h');
                   return p.lineSeries.map(s => s.data().map(d => [d.time, d.value])); }"""
    )
    assert len(drawn) == min(40, len(level2)) > 3
    newest = page.evaluate(
        """() => { const p = pivotalState.panes.find(p => p.timeframe === '1h');
                   return p.lines.filter(x => x.level === 2).at(-1); }"""
    )
    a, b = newest["anchors"]
    points = [[a["ts"] / 1000, a["price"]], [b["ts"] / 1000, b["price"]], [newest["end"]["ts"] / 1000, newest["end"]["price"]]]
    assert drawn[-1] == [p for p in points if p[0] >= pane["first_ts"] / 1000]
    assert key(newest) in union
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-trend-lines.png"))  # kept with the tests' screenshots
    page.select_option("#trend-level", "3")
    level3 = [x for x in union.values() if x["level"] == 3 and x["anchors"][1]["ts"] >= pane["first_ts"]]
    assert page.evaluate("pivotalState.panes.find(p => p.timeframe === '1h').trendDrawn") == min(40, len(level3))
    page.uncheck("#trend-toggle")
    assert page.evaluate("pivotalState.panes.map(p => p.lineSeries.length)") == [0, 0, 0, 0]
