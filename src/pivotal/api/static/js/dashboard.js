// The pivotal dashboard: synchronized timeframe panes (candles, volume, pivot markers, trades, the model's predicted
// next pivots) over the HTTP API, side panels (inference controls, predictions and actions, PnL, training, risk, the
// order-book heatmap) and a live section fed by the /ws push stream (resumes with last_seq after a drop; reloads on
// {type:"reload"}). The node runs in the server: this page only reads it and sends the user's commands.
// Everything data-derived is written with textContent (never innerHTML): notes and symbols render as text.
// A running node pushes each pivot as it confirms and each trend line its pivots form: drawn as they arrive, no polling.
// Query string: ?exchange=binance&symbol=BTC/USDT&tf=1s,1m,1h,1d&bars=500&audit=RELPATH&trendlines=2 (show the trend
// lines of level 2) ; #token=TOKEN (kept in
// sessionStorage, removed from the address bar; a fragment is never sent to the server).
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const TF_MS = { "1s": 1e3, "1m": 6e4, "3m": 18e4, "5m": 3e5, "15m": 9e5, "30m": 18e5, "1h": 36e5, "2h": 72e5,
    "4h": 144e5, "6h": 216e5, "12h": 432e5, "1d": 864e5, "1w": 6048e5 };
  const DEFAULT_TFS = ["1s", "1m", "1h", "1d"];
  const FALLBACK_TFS = ["4h", "15m", "5m", "1w"]; // stand in for a default timeframe the series does not store
  const LEVEL_COLORS = ["#f5c542", "#f59e42", "#e05cf5", "#4cc3f5", "#ffffff"];
  const TOKEN_KEY = "pivotal.apiToken"; // shared with the annotation tool
  const params = new URLSearchParams(location.search);
  const state = {
    exchange: params.get("exchange"), symbol: params.get("symbol"),
    timeframes: (params.get("tf") || DEFAULT_TFS.join(",")).split(",").map((s) => s.trim()).filter(Boolean),
    explicitTf: params.has("tf"), explicitSeries: params.has("symbol"),
    bars: Math.max(10, Math.min(10000, parseInt(params.get("bars") || "500", 10) || 500)),
    audit: params.get("audit"),
    panes: [], loaded: false, loading: false, error: null, pendingLive: [],
    ws: { state: "connecting", lastSeq: null, received: [], reconnects: 0, reloads: 0, held: false },
    live: [],
    run: null, runEnd: null, inference: null, fills: [], predictions: [], decisions: [], training: null,
    pnl: null, risk: null, cob: { state: "none", rows: 0, metric: "imbalance", message: "" }, token: null,
    commands: [], firstCandlesMs: null, models: [],
    trend: { on: params.has("trendlines"), level: Math.max(1, Math.min(5, parseInt(params.get("trendlines") || "2", 10) || 2)) },
  };
  window.pivotalState = state; // read by the browser tests and handy in the console

  const $ = (id) => document.getElementById(id);
  const fmt = (ms) => (ms == null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z");
  const num = (x, d = 2) => (x == null || !isFinite(x) ? "–" : Number(x).toFixed(d));
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text != null) e.textContent = String(text); if (cls) e.className = cls; return e; };
  function ago(ms) {
    if (ms == null) return "–";
    const s = Math.abs(ms) / 1000;
    return s < 120 ? s.toFixed(0) + " s" : s < 7200 ? (s / 60).toFixed(0) + " min" : s < 172800 ? (s / 3600).toFixed(1) + " h" : (s / 86400).toFixed(1) + " d";
  }

  async function getJSON(url) {
    const r = await fetch(url);
    const body = await r.json();
    if (!r.ok) { const e = new Error((body.error && body.error.message) || r.status + " " + url); e.status = r.status; throw e; }
    return body;
  }
  async function postJSON(url, body) {
    const headers = { "Content-Type": "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    state.commands.push(url);
    const r = await fetch(url, { method: "POST", headers, body: body == null ? undefined : JSON.stringify(body) });
    const out = await r.json();
    if (!r.ok) {
      const msg = r.status === 401 ? "the server wants the API token: paste the one `pivotal serve` printed below"
        : (out.error && out.error.message) || String(r.status);
      const e = new Error(msg); e.status = r.status; throw e;
    }
    return out;
  }
  const query = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v != null)).toString();

  // --- token -----------------------------------------------------------------------------------------------------
  function initToken() {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    state.token = sessionStorage.getItem(TOKEN_KEY);
    $("token-input").value = state.token || "";
  }
  $("token-input").addEventListener("change", () => {
    const v = $("token-input").value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    state.token = v || null;
  });

  // --- series choice -------------------------------------------------------------------------------------------
  async function chooseSeries() {
    const series = await getJSON("/api/series");
    const names = [...new Set(series.map((s) => s.exchange + " " + s.symbol))];
    const select = $("series-select");
    select.replaceChildren(...names.map((n) => el("option", n)));
    const run = state.run;
    if (!state.explicitSeries && run && run.exchange && run.symbols.length) { // follow the node's market
      state.exchange = run.exchange; state.symbol = run.symbols[0];
    }
    if (!state.exchange || !state.symbol) { // the pair with most of the wanted timeframes stored
      let best = null, bestScore = -1;
      for (const n of names) {
        const score = series.filter((s) => s.exchange + " " + s.symbol === n && state.timeframes.includes(s.timeframe)).length;
        if (score > bestScore) { best = n; bestScore = score; }
      }
      if (best) { const i = best.indexOf(" "); state.exchange = best.slice(0, i); state.symbol = best.slice(i + 1); }
    }
    if (!state.explicitTf) { // a default timeframe the series lacks gives its place to one it stores
      const stored = new Set(series.filter((s) => s.exchange === state.exchange && s.symbol === state.symbol).map((s) => s.timeframe));
      const wanted = DEFAULT_TFS.filter((tf) => stored.has(tf));
      for (const tf of FALLBACK_TFS) if (wanted.length < DEFAULT_TFS.length && stored.has(tf)) wanted.push(tf);
      for (const tf of DEFAULT_TFS) if (wanted.length < DEFAULT_TFS.length && !wanted.includes(tf)) wanted.push(tf);
      state.timeframes = wanted.sort((a, b) => (TF_MS[a] || 0) - (TF_MS[b] || 0));
    }
    select.value = state.exchange + " " + state.symbol;
    $("tf-input").value = state.timeframes.join(",");
    return series;
  }

  // --- panes ---------------------------------------------------------------------------------------------------
  let activePane = null;

  function makePane(tf, index) {
    const node = $("pane-template").content.firstElementChild.cloneNode(true);
    node.dataset.timeframe = tf;
    node.querySelector(".pane-tf").textContent = tf;
    $("panes").appendChild(node);
    const pane = { index, timeframe: tf, node, chart: null, candles: null, volume: null, markersApi: null,
      times: [], bars: 0, hoverTime: null, crosshairTime: null, syncedTo: null, pivots: [], markers: 0,
      tradeMarkers: 0, predLines: {}, predicted: 0, first_ts: null, last_ts: null, pivotFetches: 0, livePivots: 0,
      lines: [], lineKeys: new Set(), lineSeries: [], trendDrawn: 0, liveLines: 0 };
    node.addEventListener("pointerenter", () => { activePane = pane; });
    return pane;
  }

  function createChart(pane) {
    const box = pane.node.querySelector(".pane-chart");
    const chart = LWC.createChart(box, {
      autoSize: true,
      layout: { background: { type: "solid", color: "#171a23" }, textColor: "#d1d4dc" },
      grid: { vertLines: { color: "#222633" }, horzLines: { color: "#222633" } },
      crosshair: { mode: LWC.CrosshairMode.Normal },
      timeScale: { timeVisible: true, secondsVisible: pane.timeframe === "1s", borderColor: "#2a2e39" },
      rightPriceScale: { borderColor: "#2a2e39" },
    });
    pane.chart = chart;
    pane.candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: "#26a69a", downColor: "#ef5350", wickUpColor: "#26a69a", wickDownColor: "#ef5350", borderVisible: false });
    pane.volume = chart.addSeries(LWC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "vol",
      lastValueVisible: false, priceLineVisible: false });
    chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    pane.markersApi = LWC.createSeriesMarkers(pane.candles, []);
    chart.subscribeCrosshairMove((p) => onCrosshair(pane, p));
    chart.timeScale().subscribeVisibleLogicalRangeChange((r) => onRange(pane, r));
  }

  const bar = (c, i) => ({ time: c.ts[i] / 1000, open: c.open[i], high: c.high[i], low: c.low[i], close: c.close[i] });
  const vol = (t, o, c, v) => ({ time: t, value: v, color: c >= o ? "rgba(38,166,154,0.45)" : "rgba(239,83,80,0.45)" });

  async function loadPane(pane, info) {
    if (!info) {
      pane.node.classList.add("empty");
      pane.node.querySelector(".pane-chart").textContent =
        "no stored " + pane.timeframe + " candles of " + state.exchange + " " + state.symbol + " (pivotal data import)";
      return;
    }
    const step = TF_MS[pane.timeframe];
    let end = info.last_ts + step;
    if (state.runEnd != null) end = Math.max(info.first_ts + step, Math.min(end, Math.floor(state.runEnd / step) * step));
    const start = Math.max(info.first_ts, end - state.bars * step);
    const q = query({ exchange: state.exchange, symbol: state.symbol, timeframe: pane.timeframe, start, end });
    pane.pivotFetches += 1;
    const [c, pivots] = await Promise.all([
      getJSON("/api/candles?" + q + "&limit=" + state.bars + "&max_points=" + state.bars), getJSON("/api/pivots?" + q)]);
    createChart(pane);
    const data = [], vols = [];
    for (let i = 0; i < c.ts.length; i++) {
      const b = bar(c, i); data.push(b); vols.push(vol(b.time, b.open, b.close, c.volume[i]));
    }
    pane.candles.setData(data);
    pane.volume.setData(vols);
    pane.times = data.map((b) => b.time);
    pane.bars = data.length;
    pane.first_ts = c.ts[0]; pane.last_ts = c.ts[c.ts.length - 1];
    pane.pivots = pivots.filter((p) => p.ts != null && p.ts >= pane.first_ts && p.ts <= pane.last_ts);
    pane.group = c.group;
    drawMarkers(pane);
    paneInfo(pane);
    pane.node.dataset.bars = String(pane.bars);
    if (state.trend.on) await loadTrendlines(pane);
  }

  // the pivots of the pane's bars as they stand now (a replay's candles extend the pane; /api/pivots over the same
  // range knows only what those bars confirm, so nothing from the future is drawn)
  async function refreshPivots(pane) {
    if (!pane.chart || pane.first_ts == null) return;
    const q = query({ exchange: state.exchange, symbol: state.symbol, timeframe: pane.timeframe, start: pane.first_ts,
      end: pane.last_ts + TF_MS[pane.timeframe] });
    pane.pivotFetches += 1;
    let pivots;
    try { pivots = await getJSON("/api/pivots?" + q); } catch (e) { return; }
    if (!state.panes.includes(pane)) return; // the panes were rebuilt meanwhile (its chart is gone)
    pane.pivots = pivots.filter((p) => p.ts != null && p.ts >= pane.first_ts);
    drawMarkers(pane); paneInfo(pane);
  }

  // --- trend lines: through consecutive same-type pivots of one level (GET /api/trendlines; a running node pushes
  // each new one as `trendline`), drawn from the first anchor through the second to the bar that replaced it (while
  // current: the pane's last bar; a pushed one: the bar it became known at)
  const pivotKey = (p) => (p.label || "L" + p.level + p.kind) + "@" + p.ts;
  const lineKey = (x) => x.label + "@" + x.anchors[0].ts + ">" + x.anchors[1].ts;

  function addLine(pane, x) {
    const key = lineKey(x);
    if (pane.lineKeys.has(key)) return false;
    for (const old of pane.lines) if (old.label === x.label && old.until_ts == null && old.known_ts < x.known_ts) old.until_ts = x.known_ts;
    pane.lineKeys.add(key); pane.lines.push(x);
    return true;
  }

  async function loadTrendlines(pane) {
    if (!pane.chart || pane.first_ts == null) return;
    const q = query({ exchange: state.exchange, symbol: state.symbol, timeframe: pane.timeframe, start: pane.first_ts,
      end: pane.last_ts + TF_MS[pane.timeframe] });
    let lines;
    try { lines = await getJSON("/api/trendlines?" + q); } catch (e) { return; }
    if (!state.panes.includes(pane)) return; // rebuilt meanwhile (its chart is gone)
    for (const x of lines) addLine(pane, x);
    drawTrendlines(pane);
  }

  function drawTrendlines(pane) {
    if (!pane.chart) return;
    for (const series of pane.lineSeries) pane.chart.removeSeries(series);
    pane.lineSeries = [];
    pane.trendDrawn = 0;
    if (state.trend.on && pane.times.length) {
      const shown = pane.lines.filter((x) => x.level === state.trend.level && x.anchors[1].ts >= pane.first_ts).slice(-40);
      for (const x of shown) {
        const points = [];
        for (const [ts, value] of [[x.anchors[0].ts, x.anchors[0].price], [x.anchors[1].ts, x.anchors[1].price],
          x.end ? [x.end.ts, x.end.price] : null].filter(Boolean)) {
          if (ts < pane.first_ts) continue; // the first anchor before the pane: start at the second
          const time = barTime(pane, ts / 1000);
          if (!points.length || time > points[points.length - 1].time) points.push({ time, value });
        }
        if (points.length < 2) continue;
        const series = pane.chart.addSeries(LWC.LineSeries, { color: LEVEL_COLORS[(x.level - 1) % 5], lineWidth: 1,
          lineStyle: x.kind === "H" ? LWC.LineStyle.Solid : LWC.LineStyle.Dotted, lastValueVisible: false,
          priceLineVisible: false, crosshairMarkerVisible: false });
        series.setData(points);
        pane.lineSeries.push(series);
      }
      pane.trendDrawn = pane.lineSeries.length;
    }
    pane.node.dataset.trendlines = String(pane.trendDrawn);
  }

  function showTrend() {
    $("trend-toggle").checked = state.trend.on;
    $("trend-level").value = String(state.trend.level);
  }
  $("trend-toggle").addEventListener("change", () => {
    state.trend.on = $("trend-toggle").checked;
    for (const p of state.panes) { if (state.trend.on) loadTrendlines(p); else drawTrendlines(p); }
  });
  $("trend-level").addEventListener("change", () => {
    state.trend.level = parseInt($("trend-level").value, 10);
    for (const p of state.panes) drawTrendlines(p);
  });

  function paneInfo(pane) {
    pane.node.querySelector(".pane-info").textContent =
      pane.bars + " bars" + (pane.group > 1 ? " (×" + pane.group + " merged)" : "") + " · " + pane.pivots.length +
      " pivots · " + pane.tradeMarkers + " fills · to " + fmt(pane.last_ts);
  }

  const isHigh = (p) => p.kind === "H" || String(p.kind).toLowerCase() === "high"; // the API's PivotKind: "H" / "L"
  const ourSymbol = (p) => !p.symbol || p.symbol === state.symbol;

  function drawMarkers(pane) {
    if (!pane.markersApi || !pane.times.length) return;
    const markers = pane.pivots.map((p) => {
      const high = isHigh(p);
      return { time: barTime(pane, p.ts / 1000), position: high ? "aboveBar" : "belowBar",
        shape: high ? "arrowDown" : "arrowUp", color: LEVEL_COLORS[(p.level - 1) % 5], text: "L" + p.level,
        id: p.label + "@" + p.ts };
    });
    const lastTime = pane.times[pane.times.length - 1];
    let fills = 0;
    for (const f of state.fills) { // trades of the node on this market: entries as arrows, exits as circles
      if (!ourSymbol(f) || f.ts == null || f.ts / 1000 < pane.times[0] || f.ts / 1000 > lastTime + TF_MS[pane.timeframe] / 1000) continue;
      const entry = f.part === "entry", long = Number(f.direction) > 0;
      markers.push({ time: barTime(pane, f.ts / 1000), position: entry ? (long ? "belowBar" : "aboveBar") : "inBar",
        shape: entry ? (long ? "arrowUp" : "arrowDown") : "circle", color: entry ? (long ? "#26a69a" : "#ef5350") : "#c0c4cc",
        text: entry ? (long ? "long " : "short ") + num(f.price, 2) : "exit " + num(f.price, 2), id: "fill:" + f.part + "@" + f.ts });
      fills += 1;
    }
    markers.sort((a, b) => a.time - b.time);
    pane.markersApi.setMarkers(markers);
    pane.markers = markers.length - fills;
    pane.tradeMarkers = fills;
    pane.node.dataset.markers = String(pane.markers);
    pane.node.dataset.fills = String(fills);
  }

  // the newest prediction of this pane's timeframe: a line per level from the decision's close to the predicted pivot
  function drawPrediction(pane, p) {
    if (!pane.chart) return;
    const t0 = Math.round(p.timestamp / 1000), step = TF_MS[pane.timeframe] / 1000;
    for (const x of p.pivots) {
      let line = pane.predLines[x.level];
      if (!line) {
        line = pane.predLines[x.level] = pane.chart.addSeries(LWC.LineSeries, { color: LEVEL_COLORS[(x.level - 1) % 5],
          lineWidth: 1, lineStyle: LWC.LineStyle.Dashed, lastValueVisible: false, priceLineVisible: false,
          crosshairMarkerVisible: false, pointMarkersVisible: true });
      }
      const t1 = Math.max(t0 + step, Math.round(x.time / 1000));
      line.setData([{ time: t0, value: p.close }, { time: t1, value: x.price }]);
    }
    pane.predicted += 1;
    pane.node.dataset.predicted = String(pane.predicted);
  }

  // the time of the pane's bar containing t (seconds): bars are merged when max_points downsampled them
  function barIndex(pane, t) {
    const a = pane.times; let lo = 0, hi = a.length - 1;
    if (!a.length || t < a[0]) return -1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (a[mid] <= t) lo = mid; else hi = mid - 1; }
    return lo;
  }
  function barTime(pane, t) { const i = barIndex(pane, t); return i < 0 ? pane.times[0] : pane.times[i]; }

  function onCrosshair(pane, p) {
    const hover = pane.node.querySelector(".pane-hover");
    if (pane === activePane) pane.hoverTime = p.time || null;
    if (!p.time) { hover.textContent = ""; }
    else {
      const here = pane.pivots.filter((v) => barTime(pane, v.ts / 1000) === p.time);
      hover.textContent = fmt(p.time * 1000) + (here.length ? " · " + here.map((v) =>
        "L" + v.level + (isHigh(v) ? " high " : " low ") + v.price + " confirmed " + fmt(v.confirmed_ts)).join(" · ") : "");
    }
    if (pane !== activePane) return; // only the pane under the pointer drives the others
    for (const other of state.panes) {
      if (other === pane || !other.chart) continue;
      if (!p.time) { other.chart.clearCrosshairPosition(); other.crosshairTime = null; continue; }
      const i = barIndex(other, p.time);
      if (i >= 0) {
        const d = other.candles.dataByIndex(i);
        if (d) { other.chart.setCrosshairPosition(d.close, d.time, other.candles); other.crosshairTime = d.time; }
      }
    }
  }

  // visible-range sync: the panes keep their own zoom and align on the time at the right edge of the active pane
  function onRange(pane, range) {
    if (!range || pane !== activePane || !pane.times.length) return;
    const right = pane.times[Math.max(0, Math.min(pane.times.length - 1, Math.round(range.to)))];
    for (const other of state.panes) {
      if (other === pane || !other.chart) continue;
      const i = barIndex(other, right);
      if (i < 0) continue;
      const cur = other.chart.timeScale().getVisibleLogicalRange();
      const width = cur ? cur.to - cur.from : 100;
      other.chart.timeScale().setVisibleLogicalRange({ from: i - width + 1, to: i + 1 });
      other.syncedTo = other.times[i];
    }
  }

  async function loadRun() {
    for (let tries = 0; ; tries++) {
      try {
        const s = state.inference = await getJSON("/api/realtime-inference/status"); // 200 with or without a node
        state.run = s.runtime || null;
      } catch (e) { state.run = null; }
      const r = state.run; // a node that just started: give it a moment to play its first event
      if (!r || !r.running || r.last_event_time != null || r.start != null || tries >= 20) break;
      await new Promise((ok) => setTimeout(ok, 100));
    }
    const run = state.run;
    // a node's replay: the panes end where it is now (its window's start before its first event), and its candles
    // extend them as they close
    const now = run ? (run.last_event_time != null ? run.last_event_time : run.start) : null;
    state.runEnd = now != null && (!state.explicitSeries || run.symbols.includes(state.symbol)) ? now : null;
    showRun();
  }

  async function loadAll() {
    const t0 = performance.now();
    state.loaded = false; state.loading = true;
    for (const p of state.panes) if (p.chart) p.chart.remove();
    $("panes").replaceChildren();
    await loadRun();
    const series = await chooseSeries();
    $("series-name").textContent = state.exchange ? state.exchange + " " + state.symbol : "no stored series (pivotal data import)";
    state.panes = state.timeframes.map((tf, i) => makePane(tf, i));
    if (state.run) {
      try { state.fills = tradesAsFills(await getJSON("/api/runtime/trades")); } catch (e) { state.fills = []; }
    }
    await Promise.all(state.panes.map((p) => loadPane(p, series.find((s) =>
      s.exchange === state.exchange && s.symbol === state.symbol && s.timeframe === p.timeframe))));
    for (const p of state.panes) { drawMarkers(p); if (p.chart) paneInfo(p); }
    state.loading = false;
    state.loaded = true;
    state.firstCandlesMs = performance.now() - t0;
    requestAnimationFrame(() => { state.drawnAtMs = performance.now(); }); // the frame that paints them (benchmarks)
    document.body.dataset.loaded = "true";
    const pending = state.pendingLive; state.pendingLive = [];
    for (const m of pending) applyLive(m); // what arrived while the panes were being rebuilt
    refreshCob();
  }

  function tradesAsFills(trades) {
    const out = [];
    for (const t of trades) {
      out.push({ symbol: t.symbol, part: "entry", direction: t.direction, price: t.entry_fill, ts: t.entry_time });
      out.push({ symbol: t.symbol, part: "exit", direction: t.direction, price: t.exit_fill, ts: t.exit_time });
    }
    return out;
  }

  // --- panels ----------------------------------------------------------------------------------------------------
  function showRun() {
    const run = state.run, box = $("run-state");
    if (!run) { box.textContent = "no node (pivotal serve --run FILE, or start inference)"; box.className = "muted"; return; }
    const s = run.session;
    box.textContent = (run.running ? "running " : "finished ") + run.mode + " of " + run.strategy + " on " +
      run.symbols.join(", ") + " · " + run.events + " events · at " + fmt(run.last_event_time) +
      (s ? " · " + s.status + (s.speed ? " " + s.speed + "×" : " max pace") : "") + (run.error ? " · " + run.error : "");
    box.className = run.error ? "bad" : run.running ? "ok" : "";
  }

  function showPrediction(p) {
    $("prediction-head").textContent = p.model_name + " on " + p.symbol + " " + (p.timeframe || "") + " at " + fmt(p.timestamp) +
      ": " + p.action + " (confidence " + num(p.confidence, 3) + ", direction " + num(p.direction_vector, 3) + ")";
    $("prediction-head").className = "";
    const rows = p.pivots.map((x) => {
      const tr = el("tr");
      tr.append(el("td", "L" + x.level), el("td", x.kind === "H" ? "high" : "low"), el("td", num(x.price, 2)),
        el("td", fmt(x.time)), el("td", num(x.confidence, 2)));
      tr.style.color = LEVEL_COLORS[(x.level - 1) % 5];
      return tr;
    });
    $("prediction-levels").querySelector("tbody").replaceChildren(...rows);
  }

  function showDecision(d) {
    const li = el("li", fmt(d.ts) + " " + d.action + " conf " + num(d.confidence, 3) + " score " + num(d.score, 3),
      d.action === "BUY" ? "ok" : d.action === "SELL" ? "bad" : "muted");
    li.title = d.reason;
    const log = $("decision-log");
    log.prepend(li);
    while (log.children.length > 20) log.lastChild.remove();
  }

  let pnlTimer = null;
  function refreshPnl() { // at most every 300 ms, however many fills arrive
    if (pnlTimer) return;
    if (!state.run) { $("pnl-equity").textContent = "no node"; return; }
    pnlTimer = setTimeout(async () => {
      pnlTimer = null;
      try {
        const p = state.pnl = await getJSON("/api/runtime/pnl");
        $("pnl-equity").textContent = num(p.equity);
        $("pnl-realised").textContent = num(p.realised_pnl);
        $("pnl-unrealised").textContent = num(p.unrealised_pnl);
        $("pnl-trades").textContent = String(p.trades);
        $("pnl-equity").className = p.realised_pnl + p.unrealised_pnl >= 0 ? "ok" : "bad";
      } catch (e) { $("pnl-equity").textContent = e.status === 404 ? "no node" : String(e.message); }
    }, 300);
  }

  function showPositions(positions) {
    $("position-list").replaceChildren(...(positions.length ? positions.map((p) => el("li",
      p.symbol + " " + (p.direction > 0 ? "long " : "short ") + num(p.quantity, 4) + " @ " + num(p.entry_price) +
      " · unrealised " + num(p.unrealised_pnl), p.unrealised_pnl >= 0 ? "ok" : "bad")) : [el("li", "flat", "muted")]));
  }

  async function refreshRisk() {
    const box = $("risk-state");
    if (state.run && state.run.risk) try {
      const r = state.risk = await getJSON("/api/risk/state");
      box.textContent = r.state + (r.reason ? " · " + r.reason : "");
      box.className = r.state === "ACTIVE" ? "ok" : "bad";
      const trips = r.entries.filter((e) => e.event === "trip");
      $("trip-list").replaceChildren(...(trips.length ? trips.map((t) => el("li",
        fmt(t.time) + " " + t.rule + (t.symbol ? " " + t.symbol : "") + (t.detail ? " · " + t.detail : ""), "bad"))
        : [el("li", "no breaker tripped", "muted")]));
      return;
    } catch (e) { state.risk = null; }
    if (!state.audit) {
      box.textContent = "no risk engine in a running node (add a [risk] table, or ?audit=RELPATH of a run's audit log)";
      box.className = "muted"; $("trip-list").replaceChildren(); return;
    }
    try {
      const r = await getJSON("/api/risk?" + query({ audit: state.audit }));
      box.textContent = r.active_trips.length ? r.active_trips.length + " breaker(s) tripped" : "no breaker tripped";
      box.className = r.active_trips.length ? "bad" : "ok";
      $("trip-list").replaceChildren(...r.entries.filter((e) => e.event === "trip").map((t) => el("li", fmt(t.time) + " " + t.rule, "bad")));
    } catch (e) { box.textContent = String(e.message); box.className = "bad"; }
  }

  async function refreshTraining() {
    const body = $("training-body");
    let stats;
    try { stats = state.training = await getJSON("/api/live-training/stats"); } catch (e) { body.textContent = String(e.message); return; }
    const names = Object.keys(stats.models);
    if (!names.length) { body.textContent = "no model checkpoints (pivotal train)"; body.className = "muted"; return; }
    body.className = "";
    const blocks = names.map((name) => {
      const m = stats.models[name], div = el("div", null, "model");
      div.append(el("strong", name));
      if (m == null) { div.append(el("p", "never trained online (" + stats.source + ")", "muted")); return div; }
      const serving = m.serving_version || m.serving;
      const lines = ["serving " + (serving || "–") + " · " + stats.source];
      if ("enable_live_training" in m) lines.push("live training " + (m.enable_live_training ? "on" : "off") +
        (m.trainer_running ? " · trainer running" : "") + " · swaps " + m.swaps);
      const loss = m.last_training_loss != null ? m.last_training_loss : m.last_metrics ? m.last_metrics.loss_after : null;
      lines.push("last loss " + num(loss, 4));
      for (const [symbol, p] of Object.entries(m.pivots || {})) { // the sampler's statistics per timeframe
        const tfs = Object.keys(p).filter((k) => k.startsWith("trained_pivots_")).map((k) => k.slice(15));
        if (!tfs.length) lines.push(symbol + ": no pivot trained yet");
        for (const tf of tfs) lines.push(symbol + " " + tf + ": " + p["trained_pivots_" + tf] + " pivots trained" +
          (p["last_training_" + tf] != null ? " · last " + fmt(p["last_training_" + tf]) : "") +
          (p["last_loss_" + tf] != null ? " · loss " + num(p["last_loss_" + tf], 4) : ""));
      }
      for (const [symbol, ms] of Object.entries(m.staleness_ms || {})) lines.push("staleness " + symbol + " " + ago(ms));
      for (const line of lines) div.append(el("p", line));
      return div;
    });
    body.replaceChildren(...blocks);
  }

  // --- inference controls ------------------------------------------------------------------------------------------
  async function refreshInference() {
    let s;
    try { s = state.inference = await getJSON("/api/realtime-inference/status"); } catch (e) { return; }
    state.run = s.runtime || null;
    showRun();
    const model = s.active && s.runtime && s.runtime.model;
    const buy = $("buy-slider"), sell = $("sell-slider"), live = $("live-training-toggle"), btn = $("inference-toggle");
    buy.disabled = sell.disabled = !model || !model.thresholds;
    live.disabled = !!s.active && !model.live_training_switchable; // before a start: the choice goes with the start
    $("controls-reason").textContent = s.active ? "model run of " + model.models.join(", ") + ": thresholds " +
      (model.live_training_switchable ? "and live training act" : "act") + " from its next bar" +
      (model.live_training_switchable ? "" : "; live training: off for this run (it was started without it)") : s.reason;
    $("controls-reason").className = s.active ? "ok" : "muted";
    btn.textContent = s.active ? "stop inference" : "start inference";
    btn.dataset.action = s.active ? "stop" : "start";
    if (model && model.thresholds && document.activeElement !== buy && document.activeElement !== sell) {
      buy.value = model.thresholds.buy; sell.value = model.thresholds.sell; showSliders();
    }
    if (model) live.checked = !!model.live_training;
  }

  function showSliders() {
    $("buy-value").textContent = num(Number($("buy-slider").value), 2);
    $("sell-value").textContent = num(Number($("sell-slider").value), 2);
  }

  async function command(fn) {
    $("controls-error").textContent = "";
    try { return await fn(); } catch (e) { $("controls-error").textContent = String(e.message); return null; }
    finally { refreshInference(); }
  }

  async function loadModels() {
    try {
      const models = state.models = await getJSON("/api/models");
      const names = [...new Set(models.map((m) => m.name))];
      $("model-select").replaceChildren(...names.map((n) => el("option", n)));
      if (!names.length) $("model-select").append(el("option", "no checkpoints (pivotal train)"));
      $("model-select").disabled = !names.length;
    } catch (e) { $("model-select").replaceChildren(el("option", "models unavailable")); }
  }

  $("inference-toggle").addEventListener("click", () => command(async () => {
    if ($("inference-toggle").dataset.action === "stop") return postJSON("/api/realtime-inference/stop");
    if ($("model-select").disabled) throw new Error("no model checkpoint to start: train one (pivotal train)");
    const name = $("model-select").value;
    const info = (state.models || []).find((m) => m.name === name) || {};
    const tf = ((info.extra || {}).timeframes || [])[0];
    const pane = state.panes.find((p) => p.timeframe === tf && p.first_ts != null);
    // the model replays what its pane shows, from the left edge on (no pane of its timeframe: its whole series)
    return postJSON("/api/realtime-inference/start", { model_name: name, symbol: state.symbol, exchange: state.exchange,
      timeframe: tf || null, start: pane ? pane.first_ts : null, enable_live_training: $("live-training-toggle").checked,
      speed: Number($("speed-select").value) });
  }));
  $("live-training-toggle").addEventListener("change", () => {
    if (!state.inference || !state.inference.active) return; // before a start: the choice goes with the start
    command(() => postJSON("/api/realtime-inference/live-training", { enabled: $("live-training-toggle").checked }));
  });
  for (const id of ["buy-slider", "sell-slider"]) {
    $(id).addEventListener("input", showSliders);
    $(id).addEventListener("change", () => command(() => postJSON("/api/realtime-inference/thresholds",
      { buy: Number($("buy-slider").value), sell: Number($("sell-slider").value) })));
  }

  // --- order-book heatmap ---------------------------------------------------------------------------------------
  async function refreshCob() {
    const canvas = $("cob-canvas"), info = $("cob-info");
    const metric = $("cob-metric").value;
    if (!state.exchange || !state.symbol) return;
    let h;
    try {
      const market = { exchange: state.exchange, symbol: state.symbol };
      const has = await getJSON("/api/cob/available?" + query(market));
      if (!has.available) throw new Error("no order-book data stored for " + state.symbol);
      h = await getJSON("/api/cob/heatmap?" + query({ ...market, metric }));
    } catch (e) {
      state.cob = { state: "none", rows: 0, metric, message: String(e.message) };
      canvas.hidden = true; info.textContent = state.cob.message; info.className = "muted";
      return;
    }
    canvas.hidden = false;
    drawHeatmap(canvas, h);
    state.cob = { state: "drawn", rows: h.ts.length, metric, message: "" };
    info.textContent = metric + " · " + h.ts.length + " s to " + fmt(h.ts[h.ts.length - 1]) + " · buckets of " + h.bucket_size +
      " around the mid (" + num(h.low_price[h.low_price.length - 1] - h.offsets[0] * h.bucket_size, 2) + ")";
    info.className = "";
  }

  function drawHeatmap(canvas, h) {
    const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, n = h.ts.length;
    ctx.fillStyle = "#171a23"; ctx.fillRect(0, 0, W, H);
    if (!n) return;
    const cw = W / n;
    if (h.metric === "spread") {
      const v = h.values.filter((x) => x != null), lo = Math.min(...v), hi = Math.max(...v);
      ctx.strokeStyle = "#4cc3f5"; ctx.beginPath();
      h.values.forEach((x, i) => { if (x == null) return; const y = H - 4 - (H - 8) * (hi > lo ? (x - lo) / (hi - lo) : 0.5); i ? ctx.lineTo(i * cw, y) : ctx.moveTo(0, y); });
      ctx.stroke();
      return;
    }
    const rows = h.offsets.length, ch = H / rows;
    let vmax = 0;
    if (h.metric === "volume") for (const r of h.values) for (const x of r) if (x != null) vmax = Math.max(vmax, Math.log1p(x));
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < rows; j++) {
        const x = h.values[i][j];
        if (x == null) continue;
        if (h.metric === "imbalance") { // -1 (asks) red … +1 (bids) green
          const a = Math.min(1, Math.abs(x));
          ctx.fillStyle = x >= 0 ? "rgba(38,166,154," + a + ")" : "rgba(239,83,80," + a + ")";
        } else {
          const a = vmax > 0 ? Math.log1p(x) / vmax : 0;
          ctx.fillStyle = "rgba(76,195,245," + a + ")";
        }
        ctx.fillRect(i * cw, H - (j + 1) * ch, Math.ceil(cw), Math.ceil(ch));
      }
    }
    ctx.strokeStyle = "#7f8594"; ctx.beginPath(); ctx.moveTo(0, H / 2); ctx.lineTo(W, H / 2); ctx.stroke(); // the mid
  }
  $("cob-metric").addEventListener("change", refreshCob);

  // --- live: the push stream -------------------------------------------------------------------------------------
  let socket = null;

  function logLive(m) {
    const li = el("li", "#" + m.seq + " " + m.type + " " + JSON.stringify(m.payload));
    li.dataset.seq = String(m.seq);
    const log = $("live-log");
    log.prepend(li);
    while (log.children.length > 200) log.lastChild.remove();
  }

  function applyLive(m) {
    if (state.loading) { state.pendingLive.push(m); return; }
    const p = m.payload || {};
    const sameSeries = ourSymbol(p) && (!p.exchange || p.exchange === state.exchange);
    const pane = sameSeries && state.panes.find((x) => x.timeframe === p.timeframe && x.chart);
    if (m.type === "candle" && pane && p.ts != null && (pane.times.length === 0 || p.ts / 1000 >= pane.times[pane.times.length - 1])) {
      const t = p.ts / 1000;
      pane.candles.update({ time: t, open: p.open, high: p.high, low: p.low, close: p.close });
      pane.volume.update(vol(t, p.open, p.close, p.volume || 0));
      if (pane.times[pane.times.length - 1] !== t) { pane.times.push(t); pane.bars += 1; }
      pane.last_ts = p.ts;
      pane.appended = (pane.appended || 0) + 1;
      // a node started by this server pushes its pivots as they confirm; candles from elsewhere (POST /api/events)
      // may come without them: then the pivots of the grown range are read again now and then
      if (!state.run && !pane.livePivots && pane.appended % 50 === 0) refreshPivots(pane); else paneInfo(pane);
    } else if (m.type === "pivot" && pane && p.ts != null && p.level) {
      const v = { label: p.label || "L" + p.level + (p.kind || "H"), level: p.level, kind: p.kind || "H", price: p.price,
        ts: p.ts, confirmed_ts: p.confirmed_ts == null ? m.ts : p.confirmed_ts };
      pane.livePivots += 1;
      if (p.ts >= pane.first_ts && !pane.pivots.some((x) => pivotKey(x) === pivotKey(v))) {
        pane.pivots.push(v);
        drawMarkers(pane); paneInfo(pane);
      }
    } else if (m.type === "trendline" && pane && Array.isArray(p.anchors) && p.anchors.length === 2) {
      pane.liveLines += 1;
      if (addLine(pane, p) && state.trend.on && p.level === state.trend.level) drawTrendlines(pane);
    } else if (m.type === "fill" && p.ts != null) {
      state.fills.push(p);
      for (const x of state.panes) if (x.chart) { drawMarkers(x); paneInfo(x); }
      refreshPnl();
    } else if (m.type === "prediction" && Array.isArray(p.pivots)) {
      state.predictions.push(p);
      if (state.predictions.length > 500) state.predictions.shift();
      if (pane) drawPrediction(pane, p);
      if (sameSeries) showPrediction(p);
    } else if (m.type === "decision") {
      state.decisions.push(p);
      if (state.decisions.length > 500) state.decisions.shift();
      if (sameSeries) showDecision(p);
    } else if (m.type === "position") {
      showPositions(p.positions || []); refreshPnl();
    } else if (m.type === "trade" || m.type === "run_finished") {
      refreshPnl(); refreshRisk();
      if (m.type === "run_finished") { refreshInference(); refreshTraining(); }
    } else if (m.type === "breaker") {
      refreshRisk();
    } else if (m.type === "training" || m.type === "thresholds") {
      refreshInference(); refreshTraining();
    } else if (m.type === "run_started") {
      state.fills = []; state.explicitSeries = false;
      loadAll().then(() => { refreshInference(); refreshTraining(); refreshRisk(); refreshPnl(); });
    }
  }

  function setWsState(s) {
    state.ws.state = s;
    const box = $("ws-state");
    box.textContent = s;
    box.className = s === "open" ? "ok" : "bad";
  }

  async function connect() {
    if (state.ws.held) return;
    if (state.ws.lastSeq == null) { // start from the hub's number now, so even a drop before the first message loses nothing
      try { state.ws.lastSeq = (await getJSON("/api/health")).last_seq; } catch (e) { /* the socket's close retries */ }
    }
    const q = state.ws.lastSeq == null ? "" : "?last_seq=" + state.ws.lastSeq;
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + q);
    socket = ws;
    ws.onopen = () => { setWsState("open"); $("ws-seq").textContent = String(state.ws.lastSeq ?? "–"); refreshStatus(); };
    ws.onmessage = async (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "reload") { // what we missed is no longer buffered: reload over HTTP, resubscribe from now
        state.ws.reloads += 1; state.ws.lastSeq = null;
        ws.onclose = null; ws.close(); setWsState("reloading");
        await loadAll();
        connect();
        return;
      }
      if (state.ws.lastSeq != null && m.seq <= state.ws.lastSeq) return; // never twice
      state.ws.lastSeq = m.seq;
      state.ws.received.push(m.seq);
      state.live.push(m);
      $("ws-seq").textContent = String(m.seq);
      logLive(m);
      applyLive(m);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      setWsState(state.ws.held ? "dropped" : "reconnecting");
      if (!state.ws.held) { state.ws.reconnects += 1; setTimeout(connect, 1000); }
    };
  }
  // a drop on purpose (tests, debugging): close the socket and stay down until resumeSocket()
  state.dropSocket = () => { state.ws.held = true; if (socket) socket.close(); };
  state.resumeSocket = () => { state.ws.held = false; state.ws.reconnects += 1; connect(); };

  // --- status --------------------------------------------------------------------------------------------------
  async function refreshStatus() {
    try {
      const h = await getJSON("/api/health");
      $("ws-clients").textContent = String(h.ws_clients);
    } catch (e) { $("ws-clients").textContent = "unreachable"; }
    if (state.run && state.run.running) { await refreshInference(); refreshPnl(); }
  }

  $("chooser").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const [ex, ...sym] = $("series-select").value.split(" ");
    const q = new URLSearchParams(location.search);
    q.set("exchange", ex); q.set("symbol", sym.join(" ")); q.set("tf", $("tf-input").value);
    location.search = q.toString();
  });

  initToken();
  showSliders();
  showTrend();
  loadAll().catch((e) => { state.loading = false; state.error = String(e.message || e); $("series-name").textContent = "error: " + state.error; })
    .finally(() => {
      connect(); refreshStatus(); refreshInference(); refreshTraining(); refreshRisk(); loadModels();
      if (state.run) refreshPnl(); else $("pnl-equity").textContent = "no node";
      setInterval(refreshStatus, 5000);
      setInterval(() => { if (state.inference && state.inference.active) refreshTraining(); }, 5000);
    });
})();
