// The pivotal annotation tool (/annotate): mark LONG/SHORT trades on synchronized timeframe panes and keep them as
// annotations (POST/PATCH/DELETE /api/annotations) that become training labels.
//
// Query string: ?exchange=binance&symbol=BTC/USDT&tf=1m,1h,4h,1d&span=4h&at=2024-05-01T12:00Z
// (span: 1h|4h|1d|1w or milliseconds; at: the time at the centre of the view, ISO or epoch ms).
//
// Token: reads need none; writes send "Authorization: Bearer <token>" (api/security.py). The page never receives the
// token from the server: the user pastes the token `pivotal serve` printed (or PIVOTAL_API_TOKEN) into the header's
// field, or opens /annotate#token=<token> (a fragment is never sent to the server nor logged; the page removes it from
// the address bar at once). It is kept in sessionStorage: this tab only, gone when the tab closes.
//
// Safety: everything data-derived (notes, tags, symbols, errors) is written with textContent or .value, never innerHTML.
//
// Interface for other scripts of the page (static/js/annotate-train.js), defined synchronously when this file runs:
//   window.pivotalAnnotate = {
//     exchange, symbol, timeframes,        // the series shown (exchange/symbol are null until /api/series answered)
//     charts,                               // {tf: {chart, candleSeries}}, filled as each pane is created
//     visibleRange(),                       // {start_ms, end_ms} of the primary (first) pane's view
//     annotations(),                        // the current list, as GET /api/annotations returned it (a copy)
//     drawPredictions(list),                // list: [{ts_ms, timeframe, kind: 'long'|'short'|'high'|'low'|string,
//                                           //   price?, label?}]; replaces what was drawn; returns how many drawn
//     clearPredictions(),
//     onChange(cb),                         // cb(list) after the annotations were loaded or changed; returns an
//                                           //   unsubscribe function
//     authHeaders(),                        // {Authorization: "Bearer …"} (or {} without a token) for writes
//   }
// window.pivotalAnnotateState holds what the page drew (the browser tests read it; handy in the console).
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const TF_MS = { "1s": 1e3, "1m": 6e4, "3m": 18e4, "5m": 3e5, "15m": 9e5, "30m": 18e5, "1h": 36e5, "2h": 72e5,
    "4h": 144e5, "6h": 216e5, "12h": 432e5, "1d": 864e5, "1w": 6048e5 };
  const PRESETS = { "1h": 36e5, "4h": 144e5, "1d": 864e5, "1w": 6048e5 };
  const LEVEL_COLORS = ["#f5c542", "#f59e42", "#e05cf5", "#4cc3f5", "#ffffff"];
  const ANN_COLORS = ["#4c8bf5", "#00bcd4", "#ab47bc", "#8bc34a", "#ff9800", "#e91e63"];
  const MIN_BARS = 40; // a coarser pane shows at least this many bars around the same centre
  const MIN_ZOOM_BARS = 10;
  const MAX_VISIBLE_BARS = 20000; // per pane: wider views are capped
  const MARGIN_BARS = 300; // loaded beyond each edge of the view (at least), so panning does not wait
  const MAX_MARGIN_BARS = 5000;
  const PAGE = 10000; // /api/candles page size (its maximum)
  const SAVE_DELAY_MS = 600; // auto-save debounce
  const TOKEN_KEY = "pivotal.apiToken";
  const params = new URLSearchParams(location.search);

  const state = {
    exchange: params.get("exchange"), symbol: params.get("symbol"),
    timeframes: (params.get("tf") || "1m,1h,4h,1d").split(",").map((s) => s.trim()).filter((s) => TF_MS[s]),
    panes: [], loaded: false, error: null,
    view: { center: null, span: PRESETS["4h"] },
    annotations: [], selectedId: null, pending: null, predictions: [],
    token: null, wsState: "connecting", edit: null, saving: false, saves: 0, history: [], deleteArmedAt: 0,
  };
  if (!state.timeframes.length) state.timeframes = ["1m", "1h", "4h", "1d"];
  window.pivotalAnnotateState = state;
  const listeners = [];
  const charts = {};

  const $ = (id) => document.getElementById(id);
  const fmt = (ms) => (ms == null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 16) + "Z");
  const query = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v != null)).toString();
  const pct = (x) => (x == null || !isFinite(x) ? "–" : (x >= 0 ? "+" : "") + x.toFixed(2) + "%");

  function say(text, bad) { const m = $("message"); m.textContent = text || ""; m.className = bad ? "bad" : "ok"; }

  // --- HTTP ------------------------------------------------------------------------------------------------------
  async function getJSON(url) {
    const r = await fetch(url);
    const body = await r.json();
    if (!r.ok) throw new Error((body.error && body.error.message) || r.status + " " + url);
    return body;
  }

  function authHeaders() { return state.token ? { Authorization: "Bearer " + state.token } : {}; }

  async function send(method, url, body) {
    if (!state.token) throw new Error("paste the API token printed by `pivotal serve` into the header first");
    const r = await fetch(url, { method, headers: { ...authHeaders(), "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body) });
    const out = await r.json().catch(() => ({}));
    if (r.status === 401) { setTokenState(false); throw new Error("the server refused the token; paste the one `pivotal serve` printed"); }
    if (!r.ok) throw new Error((out.error && out.error.message) || r.status + " " + method + " " + url);
    return out;
  }

  // --- token ---------------------------------------------------------------------------------------------------
  function initToken() {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    state.token = sessionStorage.getItem(TOKEN_KEY);
    setTokenState(!!state.token);
  }
  function setTokenState(ok) {
    const el = $("token-state");
    el.textContent = !state.token ? "no token: read only" : ok ? "token set" : "token refused";
    el.className = state.token && ok ? "ok" : "bad";
  }
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("token-input").value.trim();
    $("token-input").value = "";
    if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    state.token = v || null;
    setTokenState(!!v);
  });

  // --- series choice ---------------------------------------------------------------------------------------------
  async function chooseSeries() {
    const series = await getJSON("/api/series");
    const names = [...new Set(series.map((s) => s.exchange + " " + s.symbol))];
    const select = $("series-select");
    select.replaceChildren(...names.map((n) => { const o = document.createElement("option"); o.textContent = n; return o; }));
    if (!state.exchange || !state.symbol) { // the pair with most of the wanted timeframes stored
      let best = null, bestScore = -1;
      for (const n of names) {
        const score = series.filter((s) => s.exchange + " " + s.symbol === n && state.timeframes.includes(s.timeframe)).length;
        if (score > bestScore) { best = n; bestScore = score; }
      }
      if (best) { const i = best.indexOf(" "); state.exchange = best.slice(0, i); state.symbol = best.slice(i + 1); }
    }
    select.value = state.exchange + " " + state.symbol;
    $("tf-input").value = state.timeframes.join(",");
    return series;
  }

  // --- panes -----------------------------------------------------------------------------------------------------
  let activePane = null;

  function makePane(tf, index) {
    const node = $("pane-template").content.firstElementChild.cloneNode(true);
    node.dataset.timeframe = tf;
    node.querySelector(".pane-tf").textContent = tf;
    $("panes").appendChild(node);
    const pane = { index, timeframe: tf, step: TF_MS[tf], node, info: null, chart: null, candles: null, volume: null,
      markersApi: null, data: [], vols: [], times: [], bars: 0, first_ts: null, last_ts: null,
      loadedStart: null, loadedEnd: null, loading: false, reloadWanted: false, loads: 0,
      pivots: [], pivotMarkers: 0, annMarkers: 0, predMarkers: 0, lines: [], priceLines: [],
      width: PRESETS["4h"], expected: null, dragging: false, wheelAt: -1e9, downAt: null,
      hoverTime: null, crosshairTime: null, hovered: null };
    node.addEventListener("pointerenter", () => { activePane = pane; });
    node.querySelector(".pane-max").addEventListener("click", () => {
      const on = !node.classList.contains("maximized");
      for (const p of state.panes) p.node.classList.remove("maximized");
      node.classList.toggle("maximized", on);
      $("panes").classList.toggle("has-max", on);
      requestAnimationFrame(() => applyPane(pane));
    });
    return pane;
  }

  function createChart(pane) {
    const el = pane.node.querySelector(".pane-chart");
    const chart = LWC.createChart(el, {
      autoSize: true,
      layout: { background: { type: "solid", color: "#171a23" }, textColor: "#d1d4dc" },
      grid: { vertLines: { color: "#222633" }, horzLines: { color: "#222633" } },
      crosshair: { mode: LWC.CrosshairMode.Normal },
      timeScale: { timeVisible: true, secondsVisible: pane.timeframe === "1s", borderColor: "#2a2e39", minBarSpacing: 0.02 },
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
    // user interaction (drag, wheel) is what may drive the other panes; our own setVisibleLogicalRange never does
    el.addEventListener("pointerdown", (ev) => { pane.dragging = true; pane.downAt = [ev.clientX, ev.clientY]; });
    window.addEventListener("pointerup", () => { pane.dragging = false; });
    el.addEventListener("wheel", () => { pane.wheelAt = performance.now(); }, { passive: true });
    // clicks from the DOM, not chart.subscribeClick: the chart takes a second click soon after a first as part of a
    // double click and does not report it, and an entry followed by a quick exit is the normal case here
    el.addEventListener("click", (ev) => onClick(pane, ev));
    charts[pane.timeframe] = { chart, candleSeries: pane.candles };
  }

  // --- time <-> logical index (bars may have gaps; beyond the loaded bars, extrapolate by the step) ---------------
  function barIndex(pane, t) { // the last bar opening at or before t (seconds); -1 before the first
    const a = pane.times; let lo = 0, hi = a.length - 1;
    if (!a.length || t < a[0]) return -1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (a[mid] <= t) lo = mid; else hi = mid - 1; }
    return lo;
  }
  function timeToLogical(pane, ms) {
    const a = pane.times, n = a.length, t = ms / 1000, step = pane.step / 1000;
    if (t <= a[0]) return (t - a[0]) / step;
    if (t >= a[n - 1]) return n - 1 + (t - a[n - 1]) / step;
    const i = barIndex(pane, t);
    return i + (t - a[i]) / (a[i + 1] - a[i]);
  }
  function logicalToTime(pane, x) {
    const a = pane.times, n = a.length, step = pane.step / 1000;
    if (x <= 0) return (a[0] + x * step) * 1000;
    if (x >= n - 1) return (a[n - 1] + (x - (n - 1)) * step) * 1000;
    const i = Math.floor(x);
    return (a[i] + (x - i) * (a[i + 1] - a[i])) * 1000;
  }
  const paneRange = (pane) => [state.view.center - pane.width / 2, state.view.center + pane.width / 2];

  // --- the view: one centre for all panes, a width per pane ------------------------------------------------------
  function applyPane(pane) {
    if (!pane.chart || !pane.times.length) return;
    const [a, b] = paneRange(pane);
    // bar i spans logical [i - 0.5, i + 0.5]: [a, b) shows exactly the bars opening in it
    const r = { from: timeToLogical(pane, a) - 0.5, to: timeToLogical(pane, b) - 0.5 };
    pane.expected = r;
    pane.chart.timeScale().setVisibleLogicalRange(r);
    showEdge(pane);
  }

  function applyView(except) {
    for (const p of state.panes) if (p !== except) applyPane(p);
    if (except) showEdge(except);
    scheduleLoads();
    saveSession();
  }

  const clampWidth = (pane, w) => Math.max(MIN_ZOOM_BARS * pane.step, Math.min(MAX_VISIBLE_BARS * pane.step, w));

  function setSpan(span, preset) {
    state.view.span = span;
    for (const p of state.panes) p.width = clampWidth(p, p.index === 0 ? span : Math.max(span, MIN_BARS * p.step));
    state.view.span = state.panes.length ? state.panes[0].width : span;
    for (const b of document.querySelectorAll("#presets button")) b.classList.toggle("on", b.textContent === preset);
    applyView(null);
  }

  function dataBounds() { // the primary pane's stored coverage (or the widest of any pane)
    const infos = state.panes.map((p) => p.info).filter(Boolean);
    if (!infos.length) return null;
    const first = state.panes[0].info || infos[0];
    return [first.first_ts, first.last_ts + TF_MS[first.timeframe]];
  }

  function setCenter(ms) {
    const b = dataBounds();
    state.view.center = b ? Math.max(b[0], Math.min(b[1], ms)) : ms;
    applyView(null);
  }

  function pan(direction, whole) {
    const primary = state.panes[0];
    const mode = $("pan-step").value;
    const delta = whole ? primary.width : mode === "bar" ? primary.step : primary.width * parseFloat(mode);
    setCenter(state.view.center + direction * delta);
  }

  function zoom(factor) {
    for (const p of state.panes) p.width = clampWidth(p, p.width * factor);
    state.view.span = state.panes[0].width;
    for (const b of document.querySelectorAll("#presets button")) b.classList.remove("on");
    applyView(null);
  }

  function onRange(pane, r) {
    if (!r || !pane.times.length || pane.settingData) return;
    const e = pane.expected;
    if (e && Math.abs(r.from - e.from) < 1e-6 && Math.abs(r.to - e.to) < 1e-6) return; // our own setting
    const user = pane === activePane && (pane.dragging || performance.now() - pane.wheelAt < 500);
    if (!user) return;
    const a = logicalToTime(pane, r.from + 0.5), b = logicalToTime(pane, r.to + 0.5);
    pane.width = b - a;
    pane.expected = r;
    state.view.center = (a + b) / 2;
    if (pane.index === 0) state.view.span = pane.width;
    applyView(pane);
  }

  function showEdge(pane) {
    const el = pane.node.querySelector(".pane-edge");
    if (!pane.info) return;
    const [a, b] = paneRange(pane);
    const parts = [];
    if (pane.loading) parts.push("loading…");
    if (a < pane.info.first_ts) parts.push("◂ stored data starts " + fmt(pane.info.first_ts));
    if (b > pane.info.last_ts + pane.step) parts.push("stored data ends " + fmt(pane.info.last_ts) + " ▸");
    el.textContent = parts.join(" · ");
  }

  // --- loading: a window of bars around the view, reloaded when the view nears its edge ---------------------------
  let loadTimer = null;
  function scheduleLoads() {
    clearTimeout(loadTimer);
    loadTimer = setTimeout(() => { loadTimer = null; for (const p of state.panes) if (needsLoad(p)) loadPane(p); }, 150);
  }
  // nothing loading nor about to load (the tests wait for it)
  state.idle = () => loadTimer === null && state.panes.every((p) => !p.loading && !p.reloadWanted);

  // loaded beyond each edge of the view: a view's width, at least MARGIN_BARS and at most MAX_MARGIN_BARS bars
  const marginOf = (pane) => Math.max(MARGIN_BARS * pane.step, Math.min(pane.width, MAX_MARGIN_BARS * pane.step));

  function wantedWindow(pane) {
    const [a, b] = paneRange(pane);
    const margin = marginOf(pane);
    return [Math.max(pane.info.first_ts, Math.floor((a - margin) / pane.step) * pane.step),
      Math.min(pane.info.last_ts + pane.step, Math.ceil((b + margin) / pane.step) * pane.step)];
  }

  function needsLoad(pane) {
    if (!pane.info) return false;
    if (pane.loadedStart == null) return true;
    const [a, b] = paneRange(pane);
    const half = marginOf(pane) / 2;
    const lo = Math.max(a - half, pane.info.first_ts), hi = Math.min(b + half, pane.info.last_ts + pane.step);
    if (hi <= lo) return false; // the view lies outside the stored data
    return lo < pane.loadedStart || hi > pane.loadedEnd;
  }

  async function fetchCandles(pane, start, end) {
    const out = { ts: [], open: [], high: [], low: [], close: [], volume: [] };
    let s = start;
    for (;;) {
      const c = await getJSON("/api/candles?" + query({ exchange: state.exchange, symbol: state.symbol,
        timeframe: pane.timeframe, start: s, end, limit: PAGE }));
      for (const k of Object.keys(out)) for (const v of c[k]) out[k].push(v);
      if (c.next_start == null) return out;
      s = c.next_start;
    }
  }

  async function loadPane(pane) {
    if (pane.loading) { pane.reloadWanted = true; return; }
    pane.loading = true; showEdge(pane);
    try {
      const [start, end] = wantedWindow(pane);
      const q = query({ exchange: state.exchange, symbol: state.symbol, timeframe: pane.timeframe, start, end });
      const [c, pivots] = await Promise.all([fetchCandles(pane, start, end), getJSON("/api/pivots?" + q)]);
      if (!pane.chart) createChart(pane);
      const data = [], vols = [];
      for (let i = 0; i < c.ts.length; i++) {
        const t = c.ts[i] / 1000;
        data.push({ time: t, open: c.open[i], high: c.high[i], low: c.low[i], close: c.close[i] });
        vols.push({ time: t, value: c.volume[i], color: c.close[i] >= c.open[i] ? "rgba(38,166,154,0.45)" : "rgba(239,83,80,0.45)" });
      }
      pane.data = data; pane.vols = vols; pane.times = data.map((b) => b.time); pane.bars = data.length;
      pane.first_ts = c.ts.length ? c.ts[0] : null; pane.last_ts = c.ts.length ? c.ts[c.ts.length - 1] : null;
      pane.loadedStart = start; pane.loadedEnd = end; pane.loads += 1;
      pane.pivots = pivots.filter((p) => p.ts != null && pane.first_ts != null && p.ts >= pane.first_ts && p.ts <= pane.last_ts);
      clearLines(pane);
      pane.settingData = true; // the range events of setData are not the user's
      try { pane.candles.setData(data); pane.volume.setData(vols); } finally { pane.settingData = false; }
      pane.loading = false;
      applyPane(pane);
      drawAnnotations(pane);
      pane.node.querySelector(".pane-info").textContent =
        pane.bars + " bars " + fmt(pane.first_ts) + " – " + fmt(pane.last_ts) + " · " + pane.pivots.length + " pivots";
      pane.node.dataset.bars = String(pane.bars);
    } catch (e) {
      pane.node.querySelector(".pane-info").textContent = "error: " + String(e.message || e);
    } finally {
      pane.loading = false;
      showEdge(pane);
      if (pane.reloadWanted) { pane.reloadWanted = false; if (needsLoad(pane)) loadPane(pane); }
    }
  }

  // --- markers and lines -----------------------------------------------------------------------------------------
  const isHigh = (p) => p.kind === "H" || String(p.kind).toLowerCase() === "high";
  function barTimeIn(pane, ms) { // the pane's bar containing ms (seconds), or null outside the loaded bars
    if (!pane.times.length || ms < pane.times[0] * 1000 || ms >= pane.times[pane.times.length - 1] * 1000 + pane.step) return null;
    return pane.times[barIndex(pane, ms / 1000)];
  }
  const annColor = (a, i) => (a.id === state.selectedId ? "#ffeb3b" : ANN_COLORS[i % ANN_COLORS.length]);
  const pnlOf = (a) => (a.details && typeof a.details.pnl_pct === "number" ? a.details.pnl_pct
    : a.exit_price == null ? null : pnlPct(a.direction || "LONG", a.entry_price, a.exit_price));

  function drawMarkers(pane) {
    if (!pane.markersApi) return;
    const markers = pane.pivots.map((p) => {
      const high = isHigh(p);
      return { time: barTimeIn(pane, p.ts) ?? pane.times[0], position: high ? "aboveBar" : "belowBar",
        shape: high ? "arrowDown" : "arrowUp", color: LEVEL_COLORS[(p.level - 1) % 5], text: "L" + p.level,
        id: "piv:" + p.label + "@" + p.ts };
    });
    pane.pivotMarkers = markers.length;
    let ann = 0;
    state.annotations.forEach((a, i) => {
      const color = annColor(a, i), long = a.direction !== "SHORT";
      const te = barTimeIn(pane, a.entry_ts);
      if (te != null) {
        markers.push({ time: te, position: long ? "belowBar" : "aboveBar", shape: long ? "arrowUp" : "arrowDown",
          color, text: (a.direction || "?") + " in", id: "ann:" + a.id + ":entry" }); ann += 1;
      }
      const tx = a.exit_ts == null ? null : barTimeIn(pane, a.exit_ts);
      if (tx != null) {
        markers.push({ time: tx, position: long ? "aboveBar" : "belowBar", shape: "circle", color,
          text: "out " + pct(pnlOf(a)), id: "ann:" + a.id + ":exit" }); ann += 1;
      }
    });
    pane.annMarkers = ann;
    if (state.pending && state.pending.timeframe === pane.timeframe) {
      const t = barTimeIn(pane, state.pending.ts);
      if (t != null) markers.push({ time: t, position: "belowBar", shape: "square", color: "#ffeb3b", text: "entry?", id: "pending" });
    }
    let pred = 0;
    state.predictions.forEach((p, i) => {
      if (p.timeframe != null && p.timeframe !== pane.timeframe) return;
      const t = barTimeIn(pane, p.ts_ms);
      if (t == null) return;
      const kind = String(p.kind || "").toLowerCase();
      const m = { time: t, id: "pred:" + i, text: p.label != null ? String(p.label) : kind,
        ...(kind === "long" ? { position: "belowBar", shape: "arrowUp", color: "#69f0ae" }
          : kind === "short" ? { position: "aboveBar", shape: "arrowDown", color: "#ff8a80" }
          : kind === "high" ? { position: "aboveBar", shape: "circle", color: "#ffd180" }
          : kind === "low" ? { position: "belowBar", shape: "circle", color: "#80d8ff" }
          : { position: "inBar", shape: "square", color: "#b0bec5" }) };
      if (typeof p.price === "number" && isFinite(p.price)) { m.position = "atPriceMiddle"; m.price = p.price; }
      markers.push(m); pred += 1;
    });
    pane.predMarkers = pred;
    markers.sort((x, y) => x.time - y.time);
    pane.markersApi.setMarkers(markers);
    pane.node.dataset.markers = String(pane.pivotMarkers);
  }

  function clearLines(pane) {
    for (const s of pane.lines) pane.chart.removeSeries(s);
    for (const l of pane.priceLines) pane.candles.removePriceLine(l);
    pane.lines = []; pane.priceLines = [];
  }

  function drawAnnotations(pane) {
    if (!pane.chart) return;
    clearLines(pane);
    state.annotations.forEach((a, i) => {
      if (a.exit_ts == null) return;
      const te = barTimeIn(pane, a.entry_ts), tx = barTimeIn(pane, a.exit_ts);
      if (te == null || tx == null || tx <= te) return; // both ends on distinct loaded bars
      const line = pane.chart.addSeries(LWC.LineSeries, { color: annColor(a, i), lineWidth: a.id === state.selectedId ? 3 : 2,
        lineStyle: LWC.LineStyle.Dashed, lastValueVisible: false, priceLineVisible: false, crosshairMarkerVisible: false });
      line.setData([{ time: te, value: a.entry_price }, { time: tx, value: a.exit_price }]);
      pane.lines.push(line);
    });
    const sel = selected();
    if (sel) {
      pane.priceLines.push(pane.candles.createPriceLine({ price: sel.entry_price, color: "#ffeb3b", lineWidth: 1,
        lineStyle: LWC.LineStyle.Dotted, axisLabelVisible: true, title: "entry" }));
      if (sel.exit_price != null) pane.priceLines.push(pane.candles.createPriceLine({ price: sel.exit_price,
        color: "#ffeb3b", lineWidth: 1, lineStyle: LWC.LineStyle.Dotted, axisLabelVisible: true, title: "exit " + pct(pnlOf(sel)) }));
    }
    drawMarkers(pane);
  }
  const redraw = () => { for (const p of state.panes) drawAnnotations(p); };

  // --- crosshair sync and the hover legend -----------------------------------------------------------------------
  function onCrosshair(pane, p) {
    const hover = pane.node.querySelector(".pane-hover");
    if (pane === activePane) pane.hoverTime = p.time || null;
    pane.hovered = p.hoveredObjectId == null ? null : String(p.hoveredObjectId); // a marker under the pointer
    if (!p.time) hover.textContent = "";
    else {
      const i = barIndex(pane, p.time), d = pane.data[i], v = pane.vols[i];
      const here = pane.pivots.filter((x) => barTimeIn(pane, x.ts) === p.time);
      hover.textContent = fmt(p.time * 1000) + (d ? " O " + d.open + " H " + d.high + " L " + d.low + " C " + d.close +
        " V " + (v ? Math.round(v.value * 1e4) / 1e4 : "–") : "") + (here.length ? " · " + here.map((x) => "L" + x.level + (isHigh(x) ? " high " : " low ") +
        x.price + " confirmed " + fmt(x.confirmed_ts)).join(" · ") : "");
      if (d && state.pending && state.pending.timeframe === pane.timeframe && d.time * 1000 > state.pending.ts) {
        const dir = directionFor(state.pending.price, d.close);
        $("pending").textContent = pendingText() + " · exit here: " + dir + " " + pct(pnlPct(dir, state.pending.price, d.close));
      }
    }
    if (pane !== activePane) return; // only the pane under the pointer drives the others
    for (const other of state.panes) {
      if (other === pane || !other.chart) continue;
      if (!p.time) { other.chart.clearCrosshairPosition(); other.crosshairTime = null; continue; }
      const i = barIndex(other, p.time);
      const d = i >= 0 ? other.data[i] : null;
      if (d) { other.chart.setCrosshairPosition(d.close, d.time, other.candles); other.crosshairTime = d.time; }
    }
  }

  // --- marking a trade -----------------------------------------------------------------------------------------
  function directionMode() { return document.querySelector("input[name=direction]:checked").value; }
  function directionFor(entry, exit) {
    const mode = directionMode();
    return mode !== "auto" ? mode : exit >= entry ? "LONG" : "SHORT";
  }
  function pnlPct(direction, entry, exit) {
    return direction === "SHORT" ? ((entry - exit) / entry) * 100 : ((exit - entry) / entry) * 100;
  }
  const DIRECTION_HELP = {
    auto: "auto: LONG when the exit closes above the entry, SHORT when below (the move you marked).",
    LONG: "LONG: P&L % = (exit − entry) / entry.",
    SHORT: "SHORT: P&L % = (entry − exit) / entry.",
  };
  function showDirectionHelp() {
    $("direction-help").textContent = DIRECTION_HELP[directionMode()] + " Prices are the closes of the clicked candles.";
  }
  const pendingText = () => "entry " + state.pending.timeframe + " " + fmt(state.pending.ts) + " @ " + state.pending.price +
    " — click the exit candle in the same pane (Esc cancels)";

  function cancelPending() {
    if (!state.pending) return;
    const tf = state.pending.timeframe;
    state.pending = null;
    $("pending").textContent = "entry cancelled; click a candle for the entry, then another for the exit";
    for (const p of state.panes) if (p.timeframe === tf) drawMarkers(p);
  }

  async function onClick(pane, ev) {
    if (pane.downAt && Math.hypot(ev.clientX - pane.downAt[0], ev.clientY - pane.downAt[1]) > 5) return; // a drag
    if (pane.hovered && pane.hovered.startsWith("ann:") && !state.pending) { select(pane.hovered.split(":")[1], false); return; }
    const rect = pane.node.querySelector(".pane-chart").getBoundingClientRect();
    const x = ev.clientX - rect.left;
    if (x < 0 || x > pane.chart.timeScale().width()) return; // on the price scale
    const logical = pane.chart.timeScale().coordinateToLogical(x);
    if (logical == null) return;
    const d = pane.data[Math.round(logical)];
    if (!d) return;
    const ts = d.time * 1000, price = d.close;
    if (!state.pending) {
      state.pending = { timeframe: pane.timeframe, ts, price };
      $("pending").textContent = pendingText();
      say("");
      drawMarkers(pane);
      return;
    }
    if (state.pending.timeframe !== pane.timeframe) { say("click the exit in the " + state.pending.timeframe + " pane, where the entry is (Esc cancels)", true); return; }
    if (ts <= state.pending.ts) { say("the exit must be a later candle than the entry (" + fmt(state.pending.ts) + "); Esc cancels", true); return; }
    const entry = state.pending, mode = directionMode();
    const direction = directionFor(entry.price, price);
    const body = { symbol: state.symbol, timeframe: entry.timeframe, entry_ts: entry.ts, entry_price: entry.price,
      exit_ts: ts, exit_price: price, direction, notes: "", tags: [],
      details: { exchange: state.exchange, pnl_pct: pnlPct(direction, entry.price, price), price_basis: "close",
        direction_from: mode === "auto" ? "prices" : "toggle" } };
    try {
      const created = await send("POST", "/api/annotations", body);
      state.pending = null;
      $("pending").textContent = "click a candle for the entry, then another for the exit";
      const known = state.annotations.find((a) => a.id === created.id); // /ws may have brought it first
      if (known) Object.assign(known, created); else state.annotations.push(created);
      state.annotations.sort((x, y) => x.entry_ts - y.entry_ts || (x.id < y.id ? -1 : 1));
      say("saved " + created.direction + " " + pct(pnlOf(created)) + " (" + created.id + ")");
      select(created.id, false);
      changed();
    } catch (e) { say("not saved: " + String(e.message || e), true); }
  }

  // --- the list, the editor, auto-save, history, delete ----------------------------------------------------------
  const selected = () => state.annotations.find((a) => a.id === state.selectedId) || null;
  const sameSeries = (a) => a.symbol === state.symbol && (!a.details || !a.details.exchange || a.details.exchange === state.exchange);

  async function loadAnnotations() {
    const list = await getJSON("/api/annotations?" + query({ source: "manual", symbol: state.symbol, limit: 10000 }));
    state.annotations = list.filter(sameSeries);
    const e = query({ source: "manual", symbol: state.symbol });
    $("export-json").href = "/api/annotations/export?format=json&" + e;
    $("export-csv").href = "/api/annotations/export?format=csv&" + e;
    changed();
  }

  function changed() {
    renderList();
    redraw();
    const copy = state.annotations.slice();
    for (const cb of listeners.slice()) { try { cb(copy); } catch (e) { console.warn("pivotalAnnotate.onChange listener failed", e); } }
  }

  function describe(a) {
    return (a.direction || "?") + " " + a.timeframe + " · " + fmt(a.entry_ts) + " @ " + a.entry_price + " → " +
      (a.exit_ts == null ? "open" : fmt(a.exit_ts) + " @ " + a.exit_price) + " · P&L " + pct(pnlOf(a)) + " · v" + a.version;
  }

  function renderList() {
    const items = state.annotations.map((a, i) => {
      const li = $("ann-item-template").content.firstElementChild.cloneNode(true);
      li.dataset.id = a.id;
      li.classList.toggle("selected", a.id === state.selectedId);
      li.style.borderLeftColor = ANN_COLORS[i % ANN_COLORS.length];
      const dir = li.querySelector(".ann-dir");
      dir.textContent = a.direction || "?"; dir.className = "ann-dir " + (a.direction === "SHORT" ? "bad" : "ok");
      li.querySelector(".ann-tf").textContent = a.timeframe;
      li.querySelector(".ann-pnl").textContent = pct(pnlOf(a));
      li.querySelector(".ann-when").textContent = fmt(a.entry_ts) + " → " + (a.exit_ts == null ? "open" : fmt(a.exit_ts));
      li.querySelector(".ann-tags").replaceChildren(...a.tags.map((t) => {
        const s = document.createElement("span"); s.className = "tag"; s.textContent = t; return s; }));
      li.querySelector(".ann-notes").textContent = a.notes;
      li.querySelector(".ann-select").addEventListener("click", () => select(a.id, true));
      return li;
    });
    $("ann-list").replaceChildren(...items);
    $("ann-count").textContent = "(" + state.annotations.length + ")";
  }

  async function select(id, reveal) {
    if (state.edit && state.edit.id !== id) await flushSave();
    state.selectedId = id;
    state.deleteArmedAt = 0;
    $("ed-delete").textContent = "delete";
    const a = selected();
    $("editor").hidden = !a;
    renderList();
    redraw();
    saveSession();
    if (!a) return;
    $("ed-id").textContent = a.id;
    $("ed-summary").textContent = describe(a);
    $("ed-notes").value = a.notes;
    $("ed-tags").value = a.tags.join(", ");
    $("ed-save").textContent = "saved · v" + a.version;
    if (reveal) revealAnnotation(a);
    await loadHistory(a.id);
  }

  function revealAnnotation(a) {
    const end = a.exit_ts == null ? a.entry_ts : a.exit_ts;
    const [lo, hi] = paneRange(state.panes[0]);
    if (a.entry_ts < lo || end > hi) setCenter((a.entry_ts + end) / 2);
  }

  async function loadHistory(id) {
    let revs = [];
    try { revs = await getJSON("/api/annotations/" + encodeURIComponent(id) + "/history"); } catch (e) { revs = []; }
    if (state.selectedId !== id) return;
    state.history = revs;
    $("ed-history").replaceChildren(...revs.slice().reverse().map((r) => {
      const li = document.createElement("li");
      li.textContent = "v" + r.version + " " + r.operation + " " + fmt(r.updated_ms) + " · tags [" + r.tags.join(", ") +
        "] · notes: " + (r.notes ? r.notes : "(none)");
      return li;
    }));
  }

  const parseTags = (s) => [...new Set(s.split(",").map((t) => t.trim()).filter(Boolean))];
  let saveTimer = null;

  function onEdit() {
    const a = selected();
    if (!a) return;
    state.edit = { id: a.id, notes: $("ed-notes").value, tags: parseTags($("ed-tags").value) };
    $("ed-save").textContent = "editing…";
    clearTimeout(saveTimer);
    saveTimer = setTimeout(flushSave, SAVE_DELAY_MS);
  }

  async function flushSave() {
    clearTimeout(saveTimer);
    if (state.saving) { saveTimer = setTimeout(flushSave, 100); return; }
    const edit = state.edit;
    if (!edit) return;
    state.edit = null;
    const a = state.annotations.find((x) => x.id === edit.id);
    if (!a) return;
    state.saving = true;
    if (state.selectedId === edit.id) $("ed-save").textContent = "saving…";
    try {
      const updated = await send("PATCH", "/api/annotations/" + encodeURIComponent(edit.id),
        { notes: edit.notes, tags: edit.tags, expected_version: a.version });
      Object.assign(a, updated);
      state.saves += 1;
      if (state.selectedId === edit.id) {
        $("ed-save").textContent = "saved · v" + updated.version;
        $("ed-summary").textContent = describe(a);
        await loadHistory(edit.id);
      }
      changed();
    } catch (e) {
      const msg = String(e.message || e);
      if (/is at version (\d+)/.test(msg)) { // changed elsewhere: take its version, keep the editor's text for the next save
        try { Object.assign(a, await getJSON("/api/annotations/" + encodeURIComponent(edit.id))); } catch (e2) { /* gone */ }
      }
      if (state.selectedId === edit.id) $("ed-save").textContent = "not saved: " + msg;
    } finally { state.saving = false; }
  }

  async function deleteSelected() {
    const a = selected();
    if (!a) return;
    const now = performance.now();
    if (!state.deleteArmedAt || now - state.deleteArmedAt > 4000) { // the first press arms, the second (within 4 s) deletes
      state.deleteArmedAt = now;
      $("ed-delete").textContent = "really delete? (again)";
      say("press Delete again (or click) to delete " + a.id, true);
      return;
    }
    state.deleteArmedAt = 0;
    try {
      if (state.edit && state.edit.id === a.id) { clearTimeout(saveTimer); state.edit = null; }
      await send("DELETE", "/api/annotations/" + encodeURIComponent(a.id));
      state.annotations = state.annotations.filter((x) => x.id !== a.id);
      state.selectedId = null;
      $("editor").hidden = true;
      say("deleted " + a.id + " (its history is kept)");
      changed();
    } catch (e) { say("not deleted: " + String(e.message || e), true); $("ed-delete").textContent = "delete"; }
  }

  $("ed-notes").addEventListener("input", onEdit);
  $("ed-tags").addEventListener("input", onEdit);
  $("ed-notes").addEventListener("blur", () => { if (state.edit) flushSave(); });
  $("ed-tags").addEventListener("blur", () => { if (state.edit) flushSave(); });
  $("ed-delete").addEventListener("click", deleteSelected);
  $("ed-goto").addEventListener("click", () => { const a = selected(); if (a) setCenter(((a.exit_ts ?? a.entry_ts) + a.entry_ts) / 2); });
  for (const r of document.querySelectorAll("input[name=direction]")) r.addEventListener("change", showDirectionHelp);

  // --- navigation controls ---------------------------------------------------------------------------------------
  const parseUtc = (v) => { const t = Date.parse(v.length === 16 ? v + ":00Z" : v + "Z"); return isNaN(t) ? null : t; };
  const toLocalInput = (ms) => new Date(ms).toISOString().slice(0, 16);

  for (const b of document.querySelectorAll("#presets button[data-span]")) {
    b.addEventListener("click", () => setSpan(parseInt(b.dataset.span, 10), b.textContent));
  }
  $("custom-toggle").addEventListener("click", () => {
    const f = $("custom-range"); f.hidden = !f.hidden;
    $("custom-toggle").setAttribute("aria-expanded", String(!f.hidden));
    const r = api.visibleRange();
    $("custom-from").value = toLocalInput(r.start_ms); $("custom-to").value = toLocalInput(r.end_ms);
  });
  $("custom-range").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const a = parseUtc($("custom-from").value), b = parseUtc($("custom-to").value);
    if (a == null || b == null || b <= a) { say("custom range: give a 'from' before the 'to' (UTC)", true); return; }
    state.view.center = (a + b) / 2;
    setSpan(b - a, "custom");
  });
  $("jump").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = parseUtc($("jump-input").value);
    if (t == null) { say("date jump: pick a date and time (UTC)", true); return; }
    const b = dataBounds();
    if (b && (t < b[0] || t > b[1])) say("no stored " + state.panes[0].timeframe + " data at " + fmt(t) + "; stored " + fmt(b[0]) + " – " + fmt(b[1]), true);
    else say("");
    setCenter(t);
  });
  $("chooser").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const [ex, ...sym] = $("series-select").value.split(" ");
    const q = new URLSearchParams(location.search);
    q.set("exchange", ex); q.set("symbol", sym.join(" ")); q.set("tf", $("tf-input").value);
    location.search = q.toString();
  });

  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (t && (["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName) || t.isContentEditable)) {
      if (ev.key === "Escape") t.blur();
      return;
    }
    if (!state.loaded || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    switch (ev.key) {
      case "ArrowLeft": pan(-1, ev.shiftKey); break;
      case "ArrowRight": pan(1, ev.shiftKey); break;
      case "+": case "=": zoom(1 / 1.5); break;
      case "-": case "_": zoom(1.5); break;
      case "Escape": cancelPending(); break;
      case "Delete": case "Backspace": deleteSelected(); break;
      default: return;
    }
    ev.preventDefault();
  });

  // --- live: annotations changed by another tab or client arrive on /ws ------------------------------------------
  // Our own writes come back too and are skipped (same id and version). After a drop the list is reloaded over HTTP
  // rather than replayed: it is small, and that also covers a server restart.
  function applyRemote(m) {
    const p = m.payload || {};
    if (m.type !== "annotation") return;
    if (p.op === "delete") {
      if (!state.annotations.some((a) => a.id === p.id)) return;
      state.annotations = state.annotations.filter((a) => a.id !== p.id);
      if (state.selectedId === p.id) { state.selectedId = null; $("editor").hidden = true; say("deleted elsewhere: " + p.id, true); }
      changed();
      return;
    }
    const a = p.annotation;
    if (!a || a.source !== "manual" || !sameSeries(a)) return;
    const mine = state.annotations.find((x) => x.id === a.id);
    if (mine && mine.version >= a.version) return;
    if (mine) Object.assign(mine, a); else state.annotations.push(a);
    state.annotations.sort((x, y) => x.entry_ts - y.entry_ts || (x.id < y.id ? -1 : 1));
    if (mine && state.selectedId === a.id && !(state.edit && state.edit.id === a.id)) {
      $("ed-notes").value = a.notes; $("ed-tags").value = a.tags.join(", ");
      $("ed-summary").textContent = describe(a); $("ed-save").textContent = "changed elsewhere · v" + a.version;
      loadHistory(a.id);
    }
    changed();
  }

  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    let dropped = false;
    ws.onopen = () => { state.wsState = "open"; };
    ws.onmessage = (ev) => { try { applyRemote(JSON.parse(ev.data)); } catch (e) { console.warn("bad /ws message", e); } };
    ws.onclose = () => {
      if (dropped) return;
      dropped = true;
      state.wsState = "reconnecting";
      setTimeout(() => { loadAnnotations().catch(() => {}); connect(); }, 2000);
    };
    state.socket = ws;
  }

  // --- session: the view per series is kept in localStorage and restored --------------------------------------
  const sessionKey = () => "pivotal.annotate.view:" + state.exchange + " " + state.symbol + " " + state.timeframes.join(",");
  function saveSession() {
    if (!state.loaded || state.view.center == null) return;
    try { localStorage.setItem(sessionKey(), JSON.stringify({ center: state.view.center, span: state.view.span, selected: state.selectedId })); }
    catch (e) { /* storage full or off: not needed to work */ }
  }
  function restoreSession() {
    try { return JSON.parse(localStorage.getItem(sessionKey()) || "null"); } catch (e) { return null; }
  }

  // --- start ---------------------------------------------------------------------------------------------------
  async function start() {
    initToken();
    showDirectionHelp();
    const series = await chooseSeries();
    $("series-name").textContent = state.exchange ? state.exchange + " " + state.symbol : "no stored series (pivotal data import)";
    state.panes = state.timeframes.map((tf, i) => makePane(tf, i));
    for (const p of state.panes) {
      p.info = series.find((s) => s.exchange === state.exchange && s.symbol === state.symbol && s.timeframe === p.timeframe) || null;
      if (!p.info) {
        p.node.classList.add("empty");
        p.node.querySelector(".pane-chart").textContent =
          "no stored " + p.timeframe + " candles of " + state.exchange + " " + state.symbol + " (pivotal data import)";
      }
    }
    const saved = restoreSession();
    const spanParam = params.get("span");
    const span = PRESETS[spanParam] || (spanParam && parseInt(spanParam, 10) > 0 ? parseInt(spanParam, 10) : null) ||
      (saved && saved.span) || PRESETS["4h"];
    const atParam = params.get("at");
    const at = atParam == null ? null : /^\d+$/.test(atParam) ? parseInt(atParam, 10) : Date.parse(atParam);
    const b = dataBounds();
    state.view.center = at != null && !isNaN(at) ? at : saved && saved.center != null ? saved.center : b ? b[1] - span / 2 : Date.now();
    const preset = Object.keys(PRESETS).find((k) => PRESETS[k] === span) || "custom";
    for (const p of state.panes) p.width = clampWidth(p, p.index === 0 ? span : Math.max(span, MIN_BARS * p.step));
    state.view.span = state.panes.length ? state.panes[0].width : span;
    for (const btn of document.querySelectorAll("#presets button")) btn.classList.toggle("on", btn.textContent === preset);
    await Promise.all(state.panes.filter((p) => p.info).map((p) => loadPane(p)));
    connect();
    await loadAnnotations();
    state.loaded = true;
    document.body.dataset.loaded = "true";
    if (saved && saved.selected && state.annotations.some((a) => a.id === saved.selected)) await select(saved.selected, false);
  }

  // --- the interface for other scripts (annotate-train.js) --------------------------------------------------------
  const api = {
    get exchange() { return state.exchange; },
    get symbol() { return state.symbol; },
    get timeframes() { return state.timeframes.slice(); },
    charts,
    visibleRange() {
      const p = state.panes[0];
      if (!p || state.view.center == null) return { start_ms: null, end_ms: null };
      const [a, b] = paneRange(p);
      return { start_ms: Math.round(a), end_ms: Math.round(b) };
    },
    annotations() { return state.annotations.slice(); },
    drawPredictions(list) {
      state.predictions = Array.isArray(list) ? list.slice() : [];
      for (const p of state.panes) drawMarkers(p);
      return state.panes.reduce((n, p) => n + p.predMarkers, 0);
    },
    clearPredictions() { state.predictions = []; for (const p of state.panes) drawMarkers(p); },
    onChange(cb) {
      listeners.push(cb);
      return () => { const i = listeners.indexOf(cb); if (i >= 0) listeners.splice(i, 1); };
    },
    authHeaders,
  };
  window.pivotalAnnotate = api;

  start().catch((e) => { state.error = String(e.message || e); $("series-name").textContent = "error: " + state.error; });
})();
