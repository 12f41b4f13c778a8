"""Train & replay on the annotation tool (/annotate, static/js/annotate-train.js) in headless Chromium over real binance
BTC/USDT candles: annotations made over the API train a fresh CNN from the panel with live progress; its replay over the
visible range at 10x draws one marker per predicted bar on the primary pane and shows the server's metrics and
confusion matrix; pause and step move one bar at a time. Screenshots are kept."""

from __future__ import annotations

from typing import Any

import httpx

from pivotal.data.candles import Candles
from tests.browser.conftest import ARTIFACTS, AUTH, Server
from tests.browser.test_annotate import _open

M = 60_000
SPANS = ((-200, -170, "LONG"), (-150, -120, "SHORT"), (-90, -40, "LONG"))  # 1m bars from the end, inside the 4h view


def _annotate(server: Server, minute: Candles) -> None:
    n = len(minute)
    for entry, exit_, direction in SPANS:
        body = {"symbol": "BTC/USDT", "timeframe": "1m", "entry_ts": int(minute.ts[n + entry]),
                "entry_price": float(minute.close[n + entry]), "exit_ts": int(minute.ts[n + exit_]),
                "exit_price": float(minute.close[n + exit_]), "direction": direction}  # fmt: skip
        r = httpx.post(f"{server.url}/api/annotations", json=body, headers=AUTH)
        assert r.status_code == 201, r.text


def _train(page: Any) -> dict[str, Any]:
    page.wait_for_function("document.getElementById('tr-model') && pivotalTrainState.ws.state === 'open'")
    page.select_option("#tr-model", "")
    page.fill("#tr-name", "browser-cnn")
    page.fill("#tr-epochs", "2")
    page.click("#tr-train")
    page.wait_for_function("pivotalTrainState.job && ['done', 'failed'].includes(pivotalTrainState.job.status)", timeout=180_000)
    page.wait_for_function("document.getElementById('tr-model').value === 'browser-cnn'")
    return dict(page.evaluate("pivotalTrainState.job"))


def test_train_then_replay_at_10x_draws_predictions_and_metrics(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    _annotate(server, stored["1m"])
    server.app.state.training.bar_interval_s = 0.2  # 10x: 20 ms a bar
    _open(page, server)
    job = _train(page)
    assert job["status"] == "done", job
    assert (job["samples"], job["step"], job["total_steps"]) == (6, 2, 2) and job["checkpoint"].startswith("browser-cnn/")
    progress = page.locator("#tr-progress").inner_text()
    assert progress.startswith("done · step 2/2 · epoch 2/2 · loss ") and "6 samples" in progress
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "annotate_replay-trained.png"))

    start, end = (
        int(x) for x in page.evaluate("[pivotalAnnotate.visibleRange().start_ms, pivotalAnnotate.visibleRange().end_ms]")
    )
    page.check("#tr-speed-10")
    page.click("#tr-replay")
    page.wait_for_function("pivotalTrainState.session && pivotalTrainState.session.status === 'playing'")
    midway = page.evaluate("pivotalTrainState.predictions.length")
    page.wait_for_function(
        "pivotalTrainState.result && pivotalTrainState.result.status === 'completed' && "
        "pivotalTrainState.drawn === pivotalTrainState.result.predictions.length",
        timeout=60_000,
    )
    sid = page.evaluate("pivotalTrainState.session.id")
    result = httpx.get(f"{server.url}/api/annotations/replay/{sid}").json()
    bars = (end - start) // M
    assert result["speed"] == 10 and result["timeframe"] == "1m" and result["played"] == result["total"] == bars == 240
    assert midway < bars  # predictions arrived progressively, not at once
    assert all(p["action"] is not None for p in result["predictions"])  # 1,260 bars before the view: inputs complete
    drawn = page.evaluate("[pivotalTrainState.drawn, pivotalAnnotateState.panes.map(p => p.predMarkers)]")
    assert drawn == [240, [240, 0, 0, 0]]  # one marker per predicted 1m bar, on the 1m pane only
    m = result["metrics"]
    assert (
        page.locator("#tr-accuracy").inner_text() == f"accuracy {m['accuracy']:.3f} over 240 bars · macro F1 {m['macro_f1']:.3f}"
    )
    cells = page.evaluate(
        "[...document.querySelectorAll('#tr-confusion tr')].slice(1)"
        ".map(r => [...r.querySelectorAll('td')].map(c => +c.textContent))"
    )
    assert cells == m["confusion_matrix"] and sum(map(sum, cells)) == 240
    support = page.evaluate("[...document.querySelectorAll('#tr-metrics tr')].slice(1).map(r => +r.lastChild.textContent)")
    assert support == [m["per_class"][k]["support"] for k in ("BUY", "SELL", "HOLD")] == [80, 30, 130]
    page.screenshot(path=str(ARTIFACTS / "annotate_replay-10x.png"))


def test_pause_and_step(page: Any, server: Server, stored: dict[str, Candles]) -> None:
    _annotate(server, stored["1m"])
    server.app.state.training.bar_interval_s = 3600.0  # nothing plays by itself: only steps move it
    _open(page, server)
    assert _train(page)["status"] == "done"
    page.click("#tr-replay")
    page.wait_for_function("pivotalTrainState.session && pivotalTrainState.session.status === 'playing'")
    page.wait_for_function("pivotalTrainState.predictions.length === 1")  # the first bar plays at once
    page.click("#tr-pause")
    page.wait_for_function("pivotalTrainState.session.status === 'paused'")
    for n in (2, 3):
        page.click("#tr-step")
        page.wait_for_function(f"pivotalTrainState.predictions.length === {n} && pivotalTrainState.drawn === {n}")
    page.wait_for_function("pivotalTrainState.result && pivotalTrainState.result.metrics.n === 3")
    assert page.locator("#tr-pause").inner_text() == "resume"
    page.click("#tr-rstop")
    page.wait_for_function("pivotalTrainState.session.status === 'stopped'")
    assert page.evaluate("pivotalTrainState.predictions.map(p => p.ts_ms)") == [int(t) for t in stored["1m"].ts[-240:-237]]
