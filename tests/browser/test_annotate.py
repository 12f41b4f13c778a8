"""The annotation tool (/annotate) in headless Chromium over real binance BTC/USDT candles: four synchronized panes draw
the stored candles and exactly the API's pivots; clicking an entry candle then an exit candle stores a LONG/SHORT
annotation with the candles' exact times and closes; notes and tags auto-save as new versions listed in the history;
Delete removes it; notes with markup render as text; presets, custom range, date jump and the keyboard move the view."""

from __future__ import annotations

import bisect
import time
from typing import Any

import httpx
import numpy as np

from pivotal.data.candles import Candles
from tests.browser.conftest import AUTH, TOKEN, Server

TIMEFRAMES = ["1m", "1h", "4h", "1d"]
STEP = {"1m": 60_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}
H = 3_600_000
SERIES = {"exchange": "binance", "symbol": "BTC/USDT"}


def _open(page: Any, server: Server, token: bool = True, query: str = "") -> None:
    page.goto(f"{server.url}/annotate{query}" + (f"#token={TOKEN}" if token else ""))
    page.wait_for_function("window.pivotalAnnotateState && pivotalAnnotateState.loaded && pivotalAnnotateState.idle()")


def _panes(page: Any) -> list[dict[str, Any]]:
    return list(
        page.evaluate(
            """() => pivotalAnnotateState.panes.map(p => ({timeframe: p.timeframe, bars: p.bars, first_ts: p.first_ts,
                   last_ts: p.last_ts, loadedStart: p.loadedStart, loadedEnd: p.loadedEnd, pivotMarkers: p.pivotMarkers,
                   annMarkers: p.annMarkers, lines: p.lines.length, drawn: p.candles.data().length,
                   last: p.candles.data()[p.candles.data().length - 1],
                   logical: p.chart.timeScale().getVisibleLogicalRange()}))"""
        )
    )


def _range(page: Any) -> tuple[int, int]:
    r = page.evaluate("pivotalAnnotate.visibleRange()")
    return int(r["start_ms"]), int(r["end_ms"])


def _width(pane: dict[str, Any]) -> float:
    return float(pane["logical"]["to"] - pane["logical"]["from"])


def _settled_width(page: Any, index: int, expected: float) -> float:
    """Pane ``index``'s visible width in bars once the chart has applied the last range (it does so on its next
    animation frame, so a read right after the click can still see the previous one); at most 5 s."""
    deadline = time.monotonic() + 5.0
    while True:
        width = _width(_panes(page)[index])
        if abs(width - expected) < 1e-6 or time.monotonic() > deadline:
            return width
        page.wait_for_timeout(50)


def _settled_logical(page: Any, index: int, expected_from: float) -> dict[str, float]:
    """Pane ``index``'s logical range once its start is ``expected_from`` (at most 5 s, like ``_settled_width``)."""
    deadline = time.monotonic() + 5.0
    while True:
        logical = dict(_panes(page)[index]["logical"])
        if abs(logical["from"] - expected_from) < 1e-6 or time.monotonic() > deadline:
            return logical
        page.wait_for_timeout(50)


def _click_bar(page: Any, timeframe: str, ts: int) -> None:
    """Click the candle of ``timeframe`` opening at ``ts`` (epoch ms), where the chart draws it."""
    x, y = page.evaluate(
        """([tf, ts]) => { const p = pivotalAnnotateState.panes.find(q => q.timeframe === tf);
             const r = p.node.querySelector('.pane-chart').getBoundingClientRect();
             return [r.left + p.chart.timeScale().timeToCoordinate(ts / 1000), r.top + r.height / 2]; }""",
        [timeframe, ts],
    )
    page.mouse.click(x, y)


def _marker_at(page: Any, timeframe: str, ts: int, prefix: str) -> tuple[float, float, str]:
    """Move the pointer down the bar of ``ts`` until the chart reports a marker whose id starts with ``prefix`` under
    it: (x, y, marker id)."""
    x, top, height = page.evaluate(
        """([tf, ts]) => { const p = pivotalAnnotateState.panes.find(q => q.timeframe === tf);
             const r = p.node.querySelector('.pane-chart').getBoundingClientRect();
             return [r.left + p.chart.timeScale().timeToCoordinate(ts / 1000), r.top, r.height]; }""",
        [timeframe, ts],
    )
    for y in range(int(top) + 4, int(top + height) - 30, 3):
        page.mouse.move(x, y)
        hovered = page.evaluate(f"pivotalAnnotateState.panes.find(q => q.timeframe === '{timeframe}').hovered")
        if hovered and str(hovered).startswith(prefix):
            return x, y, str(hovered)
    raise AssertionError(f"no marker found on the {timeframe} bar of {ts}")


def _annotations(server: Server) -> list[dict[str, Any]]:
    return list(httpx.get(f"{server.url}/api/annotations", params={"symbol": "BTC/USDT"}).json())


def test_panes_draw_the_stored_candles_and_the_apis_pivots(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    _open(page, server)
    assert page.evaluate("pivotalAnnotateState.error") is None
    assert page.evaluate("[pivotalAnnotate.exchange, pivotalAnnotate.symbol, pivotalAnnotate.timeframes]") == [
        "binance", "BTC/USDT", TIMEFRAMES]  # fmt: skip
    assert sorted(page.evaluate("Object.keys(pivotalAnnotate.charts)")) == sorted(TIMEFRAMES)
    end = int(stored["1m"].ts[-1]) + STEP["1m"]
    assert _range(page) == (end - 4 * H, end)  # default: the last 4 hours of the primary (1m) pane
    panes = _panes(page)
    assert [p["timeframe"] for p in panes] == TIMEFRAMES
    assert (panes[0]["loadedStart"], panes[0]["loadedEnd"]) == (end - 9 * H, end)  # view + 300 bars of margin
    for pane in panes:
        tf = pane["timeframe"]
        c = stored[tf]
        ts = np.asarray(c.ts)
        inside = np.flatnonzero((ts >= pane["loadedStart"]) & (ts < pane["loadedEnd"]))
        assert pane["bars"] == pane["drawn"] == len(inside) > 0, tf
        assert (pane["first_ts"], pane["last_ts"]) == (int(ts[inside[0]]), int(ts[inside[-1]])), tf
        last = int(inside[-1])
        assert pane["last"] == {"time": int(ts[last]) / 1000, "open": float(c.open[last]), "high": float(c.high[last]),
                                "low": float(c.low[last]), "close": float(c.close[last])}, tf  # fmt: skip
        q = {**SERIES, "timeframe": tf, "start": pane["loadedStart"], "end": pane["loadedEnd"]}
        pivots = httpx.get(f"{server.url}/api/pivots", params=q).json()
        assert len(pivots) > 0 and pane["pivotMarkers"] == len(pivots), tf
        # coarser panes show at least 40 bars around the same centre, the primary pane exactly the 4 hours
        assert abs(_width(pane) - max(4 * H, 40 * STEP[tf]) / STEP[tf]) < 1e-6, tf
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('.pane')].map(p => [...p.querySelectorAll('canvas')].map(c => c.width * c.height))"
    )
    assert len(sizes) == 4 and all(s and max(s) > 10_000 for s in sizes)
    # the crosshair of the pane under the pointer moves the others to their bar holding that time
    box = page.locator(".pane-chart").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    page.wait_for_function("pivotalAnnotateState.panes[1].crosshairTime !== null")
    hovered, synced = page.evaluate(
        "() => [pivotalAnnotateState.panes[0].hoverTime,"
        " pivotalAnnotateState.panes.slice(1).map(p => [p.crosshairTime, p.times])]"
    )
    for crosshair, times in synced:
        assert crosshair == max(t for t in times if t <= hovered)


def test_entry_and_exit_clicks_make_an_annotation_that_autosaves_keeps_history_and_deletes(
    page: Any, server: Server, stored: dict[str, Candles]
) -> None:
    _open(page, server)
    assert page.locator("#token-state").inner_text() == "token set"
    assert "#token" not in page.url  # the token left the address bar at once
    c = stored["1h"]
    entry, exit_ = len(c) - 15, len(c) - 5  # both inside the 1h pane's view (40 bars around the 1m view's centre)
    entry_ts, exit_ts = int(c.ts[entry]), int(c.ts[exit_])
    entry_price, exit_price = float(c.close[entry]), float(c.close[exit_])
    _click_bar(page, "1h", entry_ts)
    page.wait_for_function("pivotalAnnotateState.pending !== null")
    assert page.evaluate("pivotalAnnotateState.pending") == {"timeframe": "1h", "ts": entry_ts, "price": entry_price}
    _click_bar(page, "1h", exit_ts)
    page.wait_for_function("pivotalAnnotateState.annotations.length === 1")
    direction = "LONG" if exit_price >= entry_price else "SHORT"  # the "auto" toggle: the direction of the move
    move = exit_price - entry_price if direction == "LONG" else entry_price - exit_price
    pnl = move / entry_price * 100
    [ann] = _annotations(server)
    assert {k: ann[k] for k in ("source", "symbol", "timeframe", "entry_ts", "entry_price", "exit_ts", "exit_price",
                                "direction", "notes", "tags", "version")} == {
        "source": "manual", "symbol": "BTC/USDT", "timeframe": "1h", "entry_ts": entry_ts, "entry_price": entry_price,
        "exit_ts": exit_ts, "exit_price": exit_price, "direction": direction, "notes": "", "tags": [], "version": 1}  # fmt: skip
    assert ann["details"] == {"exchange": "binance", "pnl_pct": pnl, "price_basis": "close", "direction_from": "prices"}
    assert page.evaluate("pivotalAnnotate.annotations()")[0]["id"] == ann["id"]
    item = page.locator("#ann-list li")
    assert item.count() == 1 and f"{pnl:+.2f}%" in item.inner_text() and direction in item.inner_text()
    panes = {p["timeframe"]: p for p in _panes(page)}
    assert panes["1h"]["annMarkers"] == 2 and panes["1h"]["lines"] == 1  # entry and exit markers, a line between
    # the 1m pane's loaded bars (the last 9 hours) hold the exit but not the entry: one marker, no line
    assert (panes["1m"]["annMarkers"], panes["1m"]["lines"]) == (1, 0)
    # the new annotation is selected: notes and tags auto-save (debounced) as new versions, listed in the history
    assert page.locator("#editor").is_visible()
    page.locator("#ed-notes").fill("swept the lows, then reclaimed")
    page.wait_for_function("pivotalAnnotateState.saves === 1")
    page.locator("#ed-tags").fill("sweep, reclaim ,sweep")
    page.wait_for_function("pivotalAnnotateState.saves === 2")
    got = httpx.get(f"{server.url}/api/annotations/{ann['id']}").json()
    assert (got["notes"], got["tags"], got["version"]) == ("swept the lows, then reclaimed", ["sweep", "reclaim"], 3)
    page.wait_for_function("document.querySelectorAll('#ed-history li').length === 3")
    history = page.locator("#ed-history li").all_inner_texts()
    assert [h.split(" ")[:2] for h in history] == [["v3", "update"], ["v2", "update"], ["v1", "create"]]
    assert history[0].endswith("tags [sweep, reclaim] · notes: swept the lows, then reclaimed")
    assert history[2].endswith("tags [] · notes: (none)")
    assert page.locator("#ed-save").inner_text() == "saved · v3"
    # Delete (pressed twice: the first arms) removes it; its history keeps the delete
    page.locator("#ann-list li button").first.click()
    page.keyboard.press("Delete")
    assert _annotations(server) != []
    page.keyboard.press("Delete")
    page.wait_for_function("pivotalAnnotateState.annotations.length === 0")
    assert _annotations(server) == []
    assert [r["operation"] for r in httpx.get(f"{server.url}/api/annotations/{ann['id']}/history").json()] == [
        "create", "update", "update", "delete"]  # fmt: skip
    assert page.locator("#ann-list li").count() == 0 and page.locator("#editor").is_hidden()
    assert [p["annMarkers"] for p in _panes(page)] == [0, 0, 0, 0]


def test_a_pending_entry_cancels_and_the_toggle_sets_the_direction(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    _open(page, server)
    c = stored["4h"]
    entry, exit_ = len(c) - 12, len(c) - 4
    _click_bar(page, "4h", int(c.ts[entry]))
    page.wait_for_function("pivotalAnnotateState.pending !== null")
    page.keyboard.press("Escape")
    assert page.evaluate("pivotalAnnotateState.pending") is None
    page.locator("#direction input[value=SHORT]").check()
    assert "SHORT: P&L % = (entry − exit) / entry" in page.locator("#direction-help").inner_text()
    page.locator("body").click(position={"x": 5, "y": 5})  # focus off the radio, so the keys go to the charts
    _click_bar(page, "4h", int(c.ts[entry]))
    _click_bar(page, "1h", int(stored["1h"].ts[-1]))  # an exit in another pane is refused, the entry kept
    assert "click the exit in the 4h pane" in page.locator("#message").inner_text()
    _click_bar(page, "4h", int(c.ts[exit_]))
    page.wait_for_function("pivotalAnnotateState.annotations.length === 1")
    [ann] = _annotations(server)
    entry_price, exit_price = float(c.close[entry]), float(c.close[exit_])
    got = (ann["timeframe"], ann["entry_ts"], ann["exit_ts"], ann["direction"])
    assert got == ("4h", int(c.ts[entry]), int(c.ts[exit_]), "SHORT")
    assert ann["details"]["pnl_pct"] == (entry_price - exit_price) / entry_price * 100
    assert ann["details"]["direction_from"] == "toggle"


def test_notes_and_tags_render_as_text_and_writes_need_the_token(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    c = stored["1h"]
    notes = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    body = {"symbol": "BTC/USDT", "timeframe": "1h", "entry_ts": int(c.ts[-20]), "entry_price": float(c.close[-20]),
            "exit_ts": int(c.ts[-10]), "exit_price": float(c.close[-10]), "direction": "LONG", "notes": notes,
            "tags": ["<b>bold</b>"], "details": {"exchange": "binance"}}  # fmt: skip
    created = httpx.post(f"{server.url}/api/annotations", json=body, headers=AUTH).json()
    _open(page, server, token=False)
    assert page.locator("#token-state").inner_text() == "no token: read only"
    item = page.locator("#ann-list li")
    assert item.count() == 1
    assert notes in item.inner_text() and "<b>bold</b>" in item.inner_text()
    x, y, marker = _marker_at(page, "1h", int(c.ts[-20]), "ann:")  # clicking its entry marker selects it
    assert marker == f"ann:{created['id']}:entry"
    page.mouse.click(x, y)
    page.wait_for_function(f"pivotalAnnotateState.selectedId === '{created['id']}'")
    assert page.evaluate("pivotalAnnotateState.pending") is None  # a click on a marker selects; it starts no entry
    page.wait_for_function("document.querySelectorAll('#ed-history li').length === 1")
    assert page.locator("#ed-notes").input_value() == notes
    assert notes in page.locator("#ed-history li").first.inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.locator("aside script, aside img, aside b").count() == 0
    # another client's edit arrives on /ws and shows, as text, in the list and the open editor
    page.wait_for_function("pivotalAnnotateState.wsState === 'open'")
    patch = {"notes": "<i>edited elsewhere</i>", "expected_version": 1}
    assert httpx.patch(f"{server.url}/api/annotations/{created['id']}", json=patch, headers=AUTH).status_code == 200
    page.wait_for_function("pivotalAnnotateState.annotations[0].version === 2")
    assert page.locator("#ed-notes").input_value() == "<i>edited elsewhere</i>"
    assert "<i>edited elsewhere</i>" in item.inner_text() and page.locator("aside i").count() == 0
    page.wait_for_function("document.querySelectorAll('#ed-history li').length === 2")
    # without a token the page says so and stores nothing
    _click_bar(page, "1h", int(c.ts[-8]))
    _click_bar(page, "1h", int(c.ts[-3]))
    page.wait_for_function("document.getElementById('message').textContent.startsWith('not saved')")
    assert "paste the API token" in page.locator("#message").inner_text()
    assert [a["id"] for a in _annotations(server)] == [created["id"]]


def test_presets_custom_range_date_jump_and_keys_move_the_view(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    _open(page, server)
    end = int(stored["1m"].ts[-1]) + STEP["1m"]
    center = end - 2 * H
    assert _range(page) == (center - 2 * H, center + 2 * H)
    page.locator("#presets button", has_text="1h").first.click()
    assert _range(page) == (center - H // 2, center + H // 2)
    widths = [_width(p) for p in _panes(page)]
    assert abs(widths[0] - 60) < 1e-6 and abs(widths[1] - 40) < 1e-6  # 60 one-minute bars; the 1h pane keeps 40
    page.locator("#presets button", has_text="1w").click()
    page.wait_for_function("pivotalAnnotateState.idle()")
    assert _range(page) == (center - 84 * H, center + 84 * H)
    assert abs(_settled_width(page, 1, 168) - 168) < 1e-6
    first_1m = int(stored["1m"].ts[0])
    assert page.locator(".pane-edge").first.inner_text().startswith("◂ stored data starts")
    assert _panes(page)[0]["first_ts"] == first_1m  # the wider view loaded every stored minute
    page.locator("#presets button", has_text="4h").click()
    # dragging the primary pane pans every pane: each centres on the same time (bisected in its own bars)
    box = page.locator(".pane-chart").first.bounding_box()
    page.mouse.move(box["x"] + 150, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 350, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_function(f"pivotalAnnotate.visibleRange().start_ms < {center - 2 * H}")
    page.wait_for_function("pivotalAnnotateState.idle()")
    dragged = page.evaluate("pivotalAnnotateState.view.center") / 1000
    for pane in _panes(page)[1:]:
        times = page.evaluate(f"pivotalAnnotateState.panes.find(p => p.timeframe === '{pane['timeframe']}').times")
        i = bisect.bisect_right(times, dragged) - 1
        following = times[i + 1] if i + 1 < len(times) else times[i] + STEP[pane["timeframe"]] / 1000  # past the last bar
        at = i + (dragged - times[i]) / (following - times[i])
        assert abs((pane["logical"]["from"] + pane["logical"]["to"]) / 2 + 0.5 - at) < 1e-6, pane["timeframe"]
    page.locator("#presets button", has_text="4h").click()
    page.locator("#jump-input").fill("2024-11-04T17:59")
    page.locator("#jump button").click()
    assert _range(page) == (center - 2 * H, center + 2 * H)
    # keys: ← pans 10 % of the primary view, shift+← a whole view, + zooms in by 1.5
    page.keyboard.press("ArrowLeft")
    assert _range(page) == (center - 2 * H - 24 * 60_000, center + 2 * H - 24 * 60_000)
    before = _panes(page)[0]["logical"]
    page.keyboard.press("Shift+ArrowLeft")
    shifted = center - 24 * 60_000 - 4 * H
    assert _range(page) == (shifted - 2 * H, shifted + 2 * H)
    assert abs(_settled_width(page, 0, 240) - 240) < 1e-6
    after = _settled_logical(page, 0, before["from"] - 240)  # the chart applies the range on its next frame
    assert abs((before["from"] - after["from"]) - 240) < 1e-6
    page.keyboard.press("+")
    assert abs(_settled_width(page, 0, 160) - 160) < 1e-6 and _range(page) == (shifted - 80 * 60_000, shifted + 80 * 60_000)
    # custom range and date jump (UTC)
    page.locator("#custom-toggle").click()
    page.locator("#custom-from").fill("2024-11-04T10:00")
    page.locator("#custom-to").fill("2024-11-04T12:30")
    page.locator("#custom-range button[type=submit]").click()
    start = 1_730_714_400_000  # 2024-11-04T10:00Z
    assert _range(page) == (start, start + 150 * 60_000)
    assert abs(_settled_width(page, 0, 150) - 150) < 1e-6
    page.locator("#jump-input").fill("2024-11-04T11:00")
    page.locator("#jump button").click()
    jumped = 1_730_718_000_000
    assert _range(page) == (jumped - 75 * 60_000, jumped + 75 * 60_000)
    page.wait_for_function("pivotalAnnotateState.idle()")
    assert page.locator("#message").inner_text() == ""  # inside the stored data: no boundary message
    page.reload()  # the view is restored from the last visit (localStorage), the token from this tab's session
    page.wait_for_function("pivotalAnnotateState.loaded && pivotalAnnotateState.idle()")
    assert _range(page) == (jumped - 75 * 60_000, jumped + 75 * 60_000)
    assert page.locator("#token-state").inner_text() == "token set"
