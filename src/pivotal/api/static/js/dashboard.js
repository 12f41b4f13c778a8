// The pivotal dashboard: synchronized timeframe panes (candles, volume, pivot markers) over the HTTP API, and a live
// section fed by the /ws push stream (resumes with last_seq after a drop; reloads on {type:"reload"}).
// Everything data-derived is written with textContent (never innerHTML): notes and symbols render as text.
// Query string: ?exchange=binance&symbol=BTC/USDT&tf=1m,1h,4h,1d&bars=500&audit=RELPATH
(function () {
  "use strict";
  const LWC = window.LightweightCharts;
  const TF_MS = { "1s": 1e3, "1m": 6e4, "3m": 18e4, "5m": 3e5, "15m": 9e5, "30m": 18e5, "1h": 36e5, "2h": 72e5,
    "4h": 144e5, "6h": 216e5, "12h": 432e5, "1d": 864e5, "1w": 6048e5 };
  const LEVEL_COLORS = ["#f5c542", "#f59e42", "#e05cf5", "#4cc3f5", "#ffffff"];
  const params = new URLSearchParams(location.search);
  const state = {
    exchange: params.get("exchange"), symbol: params.get("symbol"),
    timeframes: (params.get("tf") || "1m,1h,4h,1d").split(",").map((s) => s.trim()).filter(Boolean),
    bars: Math.max(10, Math.min(10000, parseInt(params.get("bars") || "500", 10) || 500)),
    audit: params.get("audit"),
    panes: [], loaded: false, error: null,
    ws: { state: "connecting", lastSeq: null, received: [], reconnects: 0, reloads: 0, held: false },
    live: [],
  };
  window.pivotalState = state; // read by the browser tests and handy in the console

  const $ = (id) => document.getElementById(id);
  const fmt = (ms) => (ms == null ? "–" : new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z");

  async function getJSON(url) {
    const r = await fetch(url);
    const body = await r.json();
    if (!r.ok) throw new Error((body.error && body.error.message) || r.status + " " + url);
    return body;
  }
  const query = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v != null)).toString();

  // --- series choice -------------------------------------------------------------------------------------------
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

  // --- panes ---------------------------------------------------------------------------------------------------
  let activePane = null;

  function makePane(tf, index) {
    const node = $("pane-template").content.firstElementChild.cloneNode(true);
    node.dataset.timeframe = tf;
    node.querySelector(".pane-tf").textContent = tf;
    $("panes").appendChild(node);
    const pane = { index, timeframe: tf, node, chart: null, candles: null, volume: null, markersApi: null,
      times: [], bars: 0, hoverTime: null, crosshairTime: null, syncedTo: null, pivots: [], markers: 0, first_ts: null, last_ts: null };
    node.addEventListener("pointerenter", () => { activePane = pane; });
    return pane;
  }

  function createChart(pane) {
    const el = pane.node.querySelector(".pane-chart");
    const chart = LWC.createChart(el, {
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
    const end = info.last_ts + step;
    const start = Math.max(info.first_ts, end - state.bars * step);
    const q = query({ exchange: state.exchange, symbol: state.symbol, timeframe: pane.timeframe, start, end });
    const [c, pivots] = await Promise.all([
      getJSON("/api/candles?" + q + "&max_points=" + state.bars), getJSON("/api/pivots?" + q)]);
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
    drawMarkers(pane);
    pane.node.querySelector(".pane-info").textContent =
      pane.bars + " bars" + (c.group > 1 ? " (×" + c.group + " merged)" : "") + " · " + pane.pivots.length + " pivots · to " + fmt(pane.last_ts);
    pane.node.dataset.bars = String(pane.bars);
  }

  const isHigh = (p) => p.kind === "H" || String(p.kind).toLowerCase() === "high"; // the API's PivotKind: "H" / "L"

  function drawMarkers(pane) {
    const markers = pane.pivots.map((p) => {
      const high = isHigh(p);
      return { time: barTime(pane, p.ts / 1000), position: high ? "aboveBar" : "belowBar",
        shape: high ? "arrowDown" : "arrowUp", color: LEVEL_COLORS[(p.level - 1) % 5], text: "L" + p.level,
        id: p.label + "@" + p.ts };
    }).sort((a, b) => a.time - b.time);
    pane.markersApi.setMarkers(markers);
    pane.markers = markers.length;
    pane.node.dataset.markers = String(markers.length);
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

  async function loadAll() {
    state.loaded = false;
    for (const p of state.panes) if (p.chart) p.chart.remove();
    $("panes").replaceChildren();
    const series = await chooseSeries();
    $("series-name").textContent = state.exchange ? state.exchange + " " + state.symbol : "no stored series (pivotal data import)";
    state.panes = state.timeframes.map((tf, i) => makePane(tf, i));
    await Promise.all(state.panes.map((p) => loadPane(p, series.find((s) =>
      s.exchange === state.exchange && s.symbol === state.symbol && s.timeframe === p.timeframe))));
    state.loaded = true;
    document.body.dataset.loaded = "true";
  }

  // --- live: the push stream -------------------------------------------------------------------------------------
  let socket = null;

  function logLive(m) {
    const li = document.createElement("li");
    li.dataset.seq = String(m.seq);
    li.textContent = "#" + m.seq + " " + m.type + " " + JSON.stringify(m.payload);
    const log = $("live-log");
    log.prepend(li);
    while (log.children.length > 200) log.lastChild.remove();
  }

  function applyLive(m) {
    const p = m.payload || {};
    const sameSeries = (!p.symbol || p.symbol === state.symbol) && (!p.exchange || p.exchange === state.exchange);
    const pane = sameSeries && state.panes.find((x) => x.timeframe === p.timeframe && x.chart);
    if (m.type === "candle" && pane && p.ts != null && (pane.times.length === 0 || p.ts / 1000 >= pane.times[pane.times.length - 1])) {
      const t = p.ts / 1000;
      pane.candles.update({ time: t, open: p.open, high: p.high, low: p.low, close: p.close });
      pane.volume.update(vol(t, p.open, p.close, p.volume || 0));
      if (pane.times[pane.times.length - 1] !== t) { pane.times.push(t); pane.bars += 1; }
      pane.last_ts = p.ts;
    } else if (m.type === "pivot" && pane && p.ts != null && p.level) {
      pane.pivots.push({ label: p.label || "", level: p.level, kind: p.kind || "H", price: p.price,
        ts: p.ts, confirmed_ts: p.confirmed_ts == null ? m.ts : p.confirmed_ts });
      drawMarkers(pane);
    }
  }

  function setWsState(s) {
    state.ws.state = s;
    const el = $("ws-state");
    el.textContent = s;
    el.className = s === "open" ? "ok" : "bad";
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
    const risk = $("risk-state");
    if (!state.audit) { risk.textContent = "no run chosen (add ?audit=RELPATH of a run's risk audit log)"; return; }
    try {
      const r = await getJSON("/api/risk?" + query({ audit: state.audit }));
      risk.textContent = r.active_trips.length ? r.active_trips.length + " breaker(s) tripped" : "no breaker tripped";
      risk.className = r.active_trips.length ? "bad" : "ok";
    } catch (e) { risk.textContent = String(e.message); risk.className = "bad"; }
  }

  $("chooser").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const [ex, ...sym] = $("series-select").value.split(" ");
    const q = new URLSearchParams(location.search);
    q.set("exchange", ex); q.set("symbol", sym.join(" ")); q.set("tf", $("tf-input").value);
    location.search = q.toString();
  });

  loadAll().catch((e) => { state.error = String(e.message || e); $("series-name").textContent = "error: " + state.error; })
    .finally(() => { connect(); refreshStatus(); setInterval(refreshStatus, 10000); });
})();
