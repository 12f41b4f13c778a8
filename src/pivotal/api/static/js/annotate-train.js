// Train & replay panel of the annotation tool (/annotate): train a model on the annotations with live progress, then
// replay it over the visible range at 1x/2x/5x/10x (pause, step, stop) with its predictions drawn on the chart and its
// accuracy / precision / recall / F1 and confusion matrix against the annotations.
//
// Thin over the API (api/training_routes.py): POST /api/training/jobs, GET /api/training/jobs/{id}, POST .../stop;
// POST /api/annotations/replay, GET /api/annotations/replay/{id}, POST .../pause|resume|step|speed|stop. Live updates
// come from /ws ("training_progress", "prediction", "replay"), resumed with last_seq after a drop; every number shown
// is the server's (the page computes no metric). Uses window.pivotalAnnotate (annotate.js) for the series, the
// visible range, drawing and the token. Everything data-derived is written with textContent, never innerHTML.
// window.pivotalTrainState holds what the panel shows (the browser tests read it).
(function () {
  "use strict";
  const SPEEDS = [1, 2, 5, 10];
  const KIND = { BUY: "long", SELL: "short", HOLD: "hold" };
  const state = {
    models: [], job: null, session: null, result: null, predictions: [], drawn: 0, speed: 1, error: null,
    ws: { state: "connecting", lastSeq: null, reconnects: 0 },
  };
  window.pivotalTrainState = state;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function render(root) {
    root.classList.add("panel");
    root.append(
      el("h2", { text: "train & replay" }),
      el("div", { class: "tr-row" },
        el("label", { for: "tr-model", text: "model " }),
        el("select", { id: "tr-model", "aria-label": "model" }),
        el("button", { type: "button", id: "tr-refresh", title: "reload the model list", text: "↻" })),
      el("div", { class: "tr-row", id: "tr-fresh-row" },
        el("label", { for: "tr-name", text: "name " }),
        el("input", { id: "tr-name", size: "14", value: "annotations-cnn", "aria-label": "new model name" })),
      el("div", { class: "tr-row" },
        el("label", { for: "tr-epochs", text: "epochs " }),
        el("input", { id: "tr-epochs", type: "number", min: "1", max: "1000", value: "5" }),
        el("button", { type: "button", id: "tr-train", text: "train" }),
        el("button", { type: "button", id: "tr-stop", disabled: "", text: "stop" })),
      el("progress", { id: "tr-bar", max: "1", value: "0" }),
      el("p", { id: "tr-progress", class: "muted", role: "status" }),
      el("h3", { text: "replay the visible range" }),
      el("div", { class: "tr-row", id: "tr-speeds", role: "radiogroup", "aria-label": "replay speed" },
        ...SPEEDS.map((s) => el("label", {}, el("input", Object.assign({ type: "radio", name: "tr-speed", value: String(s),
          id: "tr-speed-" + s }, s === 1 ? { checked: "" } : {})), document.createTextNode(" " + s + "× ")))),
      el("div", { class: "tr-row" },
        el("button", { type: "button", id: "tr-replay", text: "replay" }),
        el("button", { type: "button", id: "tr-pause", disabled: "", text: "pause" }),
        el("button", { type: "button", id: "tr-step", disabled: "", text: "step" }),
        el("button", { type: "button", id: "tr-rstop", disabled: "", text: "stop" })),
      el("p", { id: "tr-replay-status", class: "muted", role: "status" }),
      el("p", { id: "tr-accuracy" }),
      el("table", { id: "tr-metrics", class: "tr-table" }),
      el("table", { id: "tr-confusion", class: "tr-table", title: "rows: annotated target, columns: predicted" }),
      el("p", { id: "tr-message", class: "bad", role: "alert" }),
    );
  }

  // --- HTTP ------------------------------------------------------------------------------------------------------
  async function getJSON(url) {
    const r = await fetch(url);
    const body = await r.json();
    if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
    return body;
  }

  async function post(url, body) {
    const auth = window.pivotalAnnotate.authHeaders();
    if (!auth.Authorization) throw new Error("paste the API token printed by `pivotal serve` into the header first");
    const r = await fetch(url, { method: "POST", headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify(body || {}) });
    const data = await r.json();
    if (!r.ok) throw new Error((data.error && data.error.message) || r.statusText);
    return data;
  }

  function say(message) { state.error = message || null; $("tr-message").textContent = message || ""; }
  const guard = (fn) => async (...args) => { try { say(""); await fn(...args); } catch (e) { say(String(e.message || e)); } };

  // --- models and training ----------------------------------------------------------------------------------------
  async function loadModels(select) {
    const models = await getJSON("/api/models");
    state.models = [...new Set(models.map((m) => m.name))];
    const pick = $("tr-model");
    pick.replaceChildren(el("option", { value: "", text: "new CNN (fresh)" }),
      ...state.models.map((n) => el("option", { value: n, text: n })));
    pick.value = select && state.models.includes(select) ? select : state.models[0] || "";
    showFresh();
  }

  function showFresh() { $("tr-fresh-row").hidden = $("tr-model").value !== ""; }

  async function train() {
    const A = window.pivotalAnnotate;
    const model = $("tr-model").value;
    const epochs = Math.max(1, parseInt($("tr-epochs").value, 10) || 1);
    const body = model
      ? { model, epochs }
      : { model: $("tr-name").value.trim(), fresh: true, kind: "cnn", epochs, timeframes: [A.timeframes[0]] };
    body.annotations = { symbol: A.symbol };
    if (A.exchange) body.exchange = A.exchange;
    showJob(await post("/api/training/jobs", body));
  }

  function showJob(job) {
    if (state.job && job.id !== state.job.id && job.created_ms < state.job.created_ms) return;
    state.job = job;
    const running = job.status === "queued" || job.status === "running";
    $("tr-train").disabled = running;
    $("tr-stop").disabled = !running;
    $("tr-bar").max = Math.max(1, job.total_steps);
    $("tr-bar").value = job.step;
    const loss = job.loss == null ? "–" : job.loss.toFixed(4);
    const val = job.val_loss == null ? "" : " · val " + job.val_loss.toFixed(4);
    let text = job.status + " · step " + job.step + "/" + job.total_steps + " · epoch " + job.epoch + "/" + job.epochs +
      " · loss " + loss + val + " · " + job.samples + " samples";
    if (job.checkpoint) text += " · saved " + job.checkpoint;
    if (job.error) text += " · " + job.error;
    $("tr-progress").textContent = text;
    if (job.status === "done") loadModels(job.model).catch((e) => say(String(e.message || e)));
  }

  // --- replay ------------------------------------------------------------------------------------------------------
  async function replay() {
    const A = window.pivotalAnnotate;
    const model = $("tr-model").value;
    if (!model) throw new Error("train a model first (or pick one)");
    const range = A.visibleRange();
    state.predictions = []; state.result = null; state.drawn = A.drawPredictions([]);
    renderMetrics(null);
    const body = { model, symbol: A.symbol, timeframe: A.timeframes[0], start: Math.floor(range.start_ms),
      end: Math.ceil(range.end_ms), speed: state.speed };
    if (A.exchange) body.exchange = A.exchange;
    showSession(await post("/api/annotations/replay", body));
  }

  function showSession(s) {
    if (!state.session || s.id === state.session.id || s.created_ms >= state.session.created_ms) state.session = s;
    else return;
    const live = ["computing", "playing", "paused"].includes(s.status);
    $("tr-pause").disabled = !live || s.status === "computing";
    $("tr-pause").textContent = s.status === "paused" ? "resume" : "pause";
    $("tr-step").disabled = !live;
    $("tr-rstop").disabled = !live;
    $("tr-replay-status").textContent = s.status + " · " + s.played + "/" + s.total + " bars · " + s.speed + "×" +
      (s.checkpoint ? " · " + s.checkpoint : "") + (s.error ? " · " + s.error : "");
    if (!live) refreshResult();
  }

  async function control(action, body) {
    if (!state.session) return;
    showSession(await post("/api/annotations/replay/" + encodeURIComponent(state.session.id) + "/" + action, body));
  }

  function onPrediction(p) {
    if (!state.session || p.session !== state.session.id || p.action == null) return;
    state.predictions.push(p);
    draw();
    state.session.played = Math.max(state.session.played, state.predictions.length);
    scheduleResult();
  }

  let drawQueued = false;
  function draw() { // at most once a frame, whatever the speed
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      state.drawn = window.pivotalAnnotate.drawPredictions(state.predictions.map((p) => ({
        ts_ms: p.ts_ms, timeframe: p.timeframe, kind: KIND[p.action] || p.action,
        label: p.action === p.truth ? "" : "✗" })));  // the arrow says the action; ✗: not the annotated target
    });
  }

  let resultTimer = null;
  function scheduleResult() { if (!resultTimer) resultTimer = setTimeout(refreshResult, 300); }

  async function refreshResult() {
    clearTimeout(resultTimer); resultTimer = null;
    if (!state.session) return;
    try {
      const r = await getJSON("/api/annotations/replay/" + encodeURIComponent(state.session.id));
      if (!state.session || r.id !== state.session.id) return;
      state.result = r;
      if (r.predictions.length > state.predictions.length) { // what the socket missed (a drop, a reload)
        state.predictions = r.predictions.filter((p) => p.action != null).map((p) => ({ ...p, session: r.id }));
        draw();
      }
      renderMetrics(r.metrics);
      const { predictions, metrics, ...view } = r;
      if (view.status !== state.session.status || view.played !== state.session.played) showSession(view);
    } catch (e) { say(String(e.message || e)); }
  }

  const num = (x) => (x == null ? "–" : x.toFixed(3));

  function renderMetrics(m) {
    const table = $("tr-metrics"), conf = $("tr-confusion");
    if (!m) { table.replaceChildren(); conf.replaceChildren(); $("tr-accuracy").textContent = ""; return; }
    $("tr-accuracy").textContent = "accuracy " + num(m.accuracy) + " over " + m.n + " bars · macro F1 " + num(m.macro_f1);
    table.replaceChildren(
      el("tr", {}, ...["", "precision", "recall", "F1", "support"].map((h) => el("th", { text: h }))),
      ...m.labels.map((name) => {
        const c = m.per_class[name];
        return el("tr", {}, el("th", { text: name }), el("td", { text: num(c.precision) }), el("td", { text: num(c.recall) }),
          el("td", { text: num(c.f1) }), el("td", { text: String(c.support) }));
      }));
    conf.replaceChildren(
      el("tr", {}, el("th", { text: "target \\ predicted" }), ...m.labels.map((h) => el("th", { text: h }))),
      ...m.confusion_matrix.map((row, i) => el("tr", {}, el("th", { text: m.labels[i] }),
        ...row.map((v) => el("td", { text: String(v) })))));
  }

  // --- WebSocket -----------------------------------------------------------------------------------------------------
  async function connect() {
    if (state.ws.lastSeq == null) {
      try { state.ws.lastSeq = (await getJSON("/api/health")).last_seq; } catch (e) { /* the close below retries */ }
    }
    const q = state.ws.lastSeq == null ? "" : "?last_seq=" + state.ws.lastSeq;
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + q);
    ws.onopen = () => { state.ws.state = "open"; };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "reload") { // missed messages are gone: read the state over HTTP, resubscribe from now
        state.ws.lastSeq = null; ws.onclose = null; ws.close();
        if (state.job) getJSON("/api/training/jobs/" + encodeURIComponent(state.job.id)).then(showJob, () => {});
        refreshResult();
        connect();
        return;
      }
      if (state.ws.lastSeq != null && m.seq <= state.ws.lastSeq) return;
      state.ws.lastSeq = m.seq;
      if (m.type === "training_progress" && state.job && m.payload.id === state.job.id) showJob(m.payload);
      else if (m.type === "prediction") onPrediction(m.payload);
      else if (m.type === "replay" && state.session && m.payload.id === state.session.id) showSession(m.payload);
    };
    ws.onclose = () => { state.ws.state = "reconnecting"; state.ws.reconnects += 1; setTimeout(connect, 1000); };
  }

  // --- wiring --------------------------------------------------------------------------------------------------------
  function start() {
    const root = $("train-panel");
    if (!root || !window.pivotalAnnotate) return;
    render(root);
    $("tr-model").addEventListener("change", showFresh);
    $("tr-refresh").addEventListener("click", guard(() => loadModels($("tr-model").value)));
    $("tr-train").addEventListener("click", guard(train));
    $("tr-stop").addEventListener("click", guard(async () => {
      if (state.job) showJob(await post("/api/training/jobs/" + encodeURIComponent(state.job.id) + "/stop"));
    }));
    $("tr-replay").addEventListener("click", guard(replay));
    $("tr-pause").addEventListener("click", guard(() => control(state.session && state.session.status === "paused" ? "resume" : "pause")));
    $("tr-step").addEventListener("click", guard(() => control("step")));
    $("tr-rstop").addEventListener("click", guard(() => control("stop")));
    for (const s of SPEEDS) {
      $("tr-speed-" + s).addEventListener("change", guard(async () => {
        state.speed = s;
        if (state.session && ["playing", "paused"].includes(state.session.status)) await control("speed", { speed: s });
      }));
    }
    loadModels().catch((e) => say(String(e.message || e)));
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
