// Charts: one market's price with this platform's fills marked on it; a strategy's P&L and
// equity; intents per state over time.  TradingView's Lightweight Charts (vendored, no build).
//
// History comes from GET /charts/* (computed from the event store, so a replay moves no
// point).  The live tail: a change on WS /stream says something moved, and the chart asks
// again for the points from LOOKBACK_S before its last one (an event stored late by another
// project worker still lands where a reload would put it).  Every point comes from the same
// server code, so a refresh draws the same picture.  ?market= and ?strategy= keep the choice.
import {
  createChart, createSeriesMarkers, LineSeries, LineType,
} from "/static/vendor/lightweight-charts-5.3.0/lightweight-charts.standalone.production.mjs";
import { api } from "./api.js";
import { LiveStream } from "./stream.js";
import { esc, num, visible } from "./format.js";

const LOOKBACK_S = 60;
const MIN_REFRESH_MS = 1000;
const COLORS = {
  accent: "#4c9aff", ok: "#3fb950", bad: "#f85149", warn: "#d29922", violet: "#a371f7",
  info: "#58a6ff", muted: "#7d8896", line: "#1c232d", panel: "#11161d",
};
const STATE_COLORS = {
  submitted: "#58a6ff", accepted: "#79c0ff", prioritised: "#a5d6ff", planned: "#a371f7",
  executing: "#d2a8ff", completed: "#3fb950", rejected: "#f85149", risk_rejected: "#ff7b72",
  plan_rejected: "#ffa198", failed: "#da3633", expired: "#d29922", cancelled: "#bb8009",
};

function chartIn(element) {
  return createChart(element, {
    autoSize: true,
    layout: { background: { color: COLORS.panel }, textColor: COLORS.muted, fontSize: 11,
      attributionLogo: true },
    grid: { vertLines: { color: COLORS.line }, horzLines: { color: COLORS.line } },
    rightPriceScale: { borderColor: COLORS.line },
    timeScale: { borderColor: COLORS.line, timeVisible: true, secondsVisible: true },
    crosshair: { mode: 0 },
  });
}

function precisionFor(values) {
  const top = Math.max(0, ...values.map(Math.abs));
  const precision = top >= 100 ? 2 : top >= 1 ? 4 : 8;
  return { type: "price", precision, minMove: 10 ** -precision };
}

// Points by time: what a response says for [since, ...) replaces what was there.
function merge(current, incoming, since) {
  const kept = since === null ? [] : current.filter((p) => p.time < since);
  return kept.concat(incoming);
}

// At most one request in flight per chart, and at most one a second; changes arriving
// meanwhile make one more.
function throttled(load) {
  let running = false; let again = false; let last = 0;
  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    const wait = last + MIN_REFRESH_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    try { await load(); } catch (e) { console.warn("chart refresh failed", e); }
    last = Date.now(); running = false;
    if (again) { again = false; run(); }
  };
  return run;
}

const sinceOf = (points) => (points.length ? Math.max(0, points.at(-1).time - LOOKBACK_S) : null);

function options(select, items, chosen, label) {
  select.innerHTML = items.map((v) => `<option value="${esc(v)}" ${v === chosen ? "selected" : ""}>${esc(visible(label(v)))}</option>`).join("")
    || `<option value="">—</option>`;
}

function goWith(name, value) {
  const params = new URLSearchParams(location.search);
  params.set(name, value);
  location.search = params.toString();
}

// ------------------------------------------------------------------------------- price

function priceChart(root, chosen) {
  const element = root.querySelector("#chart-price");
  const chart = chartIn(element);
  const series = chart.addSeries(LineSeries, { color: COLORS.accent, lineWidth: 2 });
  const markers = createSeriesMarkers(series, []);
  const view = { points: [], fills: [], market: chosen };

  function draw() {
    series.applyOptions({ priceFormat: precisionFor(view.points.map((p) => Number(p.value))) });
    series.setData(view.points.map((p) => ({ time: p.time, value: Number(p.value) })));
    markers.setMarkers(view.fills.map((f) => ({
      time: f.time, position: "atPriceMiddle", price: Number(f.price),
      shape: f.side === "buy" ? "arrowUp" : "arrowDown", color: f.side === "buy" ? COLORS.ok : COLORS.bad,
    })));
    element.dataset.points = view.points.length;
    element.dataset.fills = view.fills.length;
    const buys = view.fills.filter((f) => f.side === "buy").length;
    root.querySelector("#price-note").textContent = view.market
      ? `${num(view.points.length)} seconds with a quote or fill · ${num(buys)} buys ▲ · ${num(view.fills.length - buys)} sells ▼ by this platform`
      : "No quotes or fills yet.";
  }

  async function load(initial = false) {
    const since = initial ? null : sinceOf(view.points);
    const q = new URLSearchParams();
    if (view.market) q.set("market", view.market);
    if (since !== null) q.set("since", since);
    const body = await api(`/charts/prices?${q}`);
    view.market = body.market;
    view.points = merge(view.points, body.points, since);
    const fillsSince = since === null ? null : since;
    view.fills = merge(view.fills, body.fills, fillsSince);
    if (initial) {
      options(root.querySelector("#market"), body.markets.map((m) => m.market), body.market,
        (m) => m);
      root.querySelector("#price-quote").textContent = body.quoteAsset;
    }
    draw();
    if (initial) chart.timeScale().fitContent();
  }
  root.querySelector("#market").onchange = (e) => goWith("market", e.target.value);
  return { view, load, refresh: throttled(() => load()), chart };
}

// ------------------------------------------------------------------------------- P&L

function pnlChart(root, chosen) {
  const element = root.querySelector("#chart-pnl");
  const chart = chartIn(element);
  const pnl = chart.addSeries(LineSeries, { color: COLORS.accent, lineWidth: 2, title: "P&L" });
  const realised = chart.addSeries(LineSeries, { color: COLORS.muted, lineWidth: 1, lineStyle: 2, title: "realised" });
  const equity = chart.addSeries(LineSeries, { color: COLORS.violet, lineWidth: 2, title: "equity" });
  const view = { points: [], strategy: chosen };

  function draw() {
    const fmt = precisionFor(view.points.flatMap((p) => [Number(p.pnl), Number(p.equity)]));
    for (const [series, field] of [[pnl, "pnl"], [realised, "realisedPnl"], [equity, "equity"]]) {
      series.applyOptions({ priceFormat: fmt });
      series.setData(view.points.map((p) => ({ time: p.time, value: Number(p[field]) })));
    }
    element.dataset.points = view.points.length;
    const last = view.points.at(-1);
    root.querySelector("#pnl-note").textContent = last
      ? `now: P&L ${last.pnl} (realised ${last.realisedPnl}, unrealised ${last.unrealisedPnl}) · equity ${last.equity}`
      : "No fills for this strategy yet.";
  }

  async function load(initial = false) {
    const since = initial ? null : sinceOf(view.points);
    const q = new URLSearchParams();
    if (view.strategy) q.set("strategy", view.strategy);
    if (since !== null) q.set("since", since);
    const body = await api(`/charts/pnl?${q}`);
    view.strategy = body.strategy;
    view.points = merge(view.points, body.points, since);
    if (initial) {
      options(root.querySelector("#strategy"), body.strategies, body.strategy,
        (s) => (s.length > 48 ? `${Array.from(s).slice(0, 47).join("")}…` : s));
      root.querySelectorAll(".quote-asset").forEach((e) => { e.textContent = body.quoteAsset; });
    }
    draw();
    if (initial) chart.timeScale().fitContent();
  }
  root.querySelector("#strategy").onchange = (e) => goWith("strategy", e.target.value);
  return { view, load, refresh: throttled(() => load()), chart };
}

// ------------------------------------------------------------------------------- states

function statesChart(root) {
  const element = root.querySelector("#chart-states");
  const chart = chartIn(element);
  const series = new Map();
  const view = { points: [], bucketS: null };

  function draw() {
    const states = [...new Set(view.points.flatMap((p) => Object.keys(p.counts)))].sort();
    for (const state of states) {
      if (!series.has(state)) {
        series.set(state, chart.addSeries(LineSeries, {
          color: STATE_COLORS[state] || COLORS.muted, lineWidth: 2, lineType: LineType.WithSteps,
          title: state, priceFormat: { type: "price", precision: 0, minMove: 1 },
        }));
      }
    }
    for (const [state, s] of series) {
      s.setData(view.points.map((p) => ({ time: p.time, value: p.counts[state] || 0 })));
    }
    element.dataset.points = view.points.length;
    root.querySelector("#states-note").textContent = view.points.length
      ? `${num(view.points.length)} buckets of ${num(view.bucketS)} s (each the counts at its end)`
      : "No intents yet.";
  }

  async function load(initial = false) {
    const since = initial ? null : sinceOf(view.points);
    const q = new URLSearchParams();
    if (view.bucketS) q.set("bucket", view.bucketS);
    if (since !== null) q.set("since", since);
    const body = await api(`/charts/states?${q}`);
    view.bucketS = body.bucketS;
    view.points = merge(view.points, body.points, since);
    draw();
    if (initial) chart.timeScale().fitContent();
  }
  return { view, load, refresh: throttled(() => load()), chart };
}

// ------------------------------------------------------------------------------- page

export async function renderCharts(root, setConnection) {
  const params = new URLSearchParams(location.search);
  root.innerHTML = `
    <h1>Charts <span class="muted small">times in UTC · from the event store</span></h1>
    <section class="panel"><div class="toolbar"><h2>Price</h2>
        <select id="market" aria-label="market"></select><span class="muted small">in <span id="price-quote"></span> per unit</span>
        <span class="spacer"></span><span class="legend small"><i style="background:${COLORS.accent}"></i>quotes and fills
        <b style="color:${COLORS.ok}">▲</b> we bought <b style="color:${COLORS.bad}">▼</b> we sold</span></div>
      <div class="chart" id="chart-price"></div><p class="muted small" id="price-note"></p></section>
    <section class="panel"><div class="toolbar"><h2>P&amp;L and equity</h2>
        <select id="strategy" aria-label="strategy"></select><span class="muted small">in <span class="quote-asset"></span></span>
        <span class="spacer"></span><span class="legend small"><i style="background:${COLORS.accent}"></i>P&amp;L
        <i style="background:${COLORS.muted}"></i>realised <i style="background:${COLORS.violet}"></i>equity</span></div>
      <div class="chart" id="chart-pnl"></div><p class="muted small" id="pnl-note"></p></section>
    <section class="panel"><div class="toolbar"><h2>Intents per state</h2><span class="spacer"></span>
        <span class="legend small">${Object.entries(STATE_COLORS).map(([s, c]) => `<i style="background:${c}"></i>${s}`).join(" ")}</span></div>
      <div class="chart short" id="chart-states"></div><p class="muted small" id="states-note"></p></section>`;
  const price = priceChart(root, params.get("market"));
  const pnl = pnlChart(root, params.get("strategy"));
  const states = statesChart(root);
  await Promise.all([price.load(true), pnl.load(true), states.load(true)]);

  const stream = new LiveStream({
    topics: ["intent.*", "risk.rejected", "plan.*", "exec.*"],
    onChange: (frame) => {
      states.refresh();
      if (frame.topic === "plan.created" || frame.topic === "exec.step_filled") price.refresh();
      if (frame.topic === "exec.step_filled") pnl.refresh();
    },
    // Back after a gap: whatever was missed is in the next answer (it starts before the gap).
    onStatus: (state) => {
      setConnection(state);
      if (state === "live") { price.refresh(); pnl.refresh(); states.refresh(); }
    },
  });
  return { stream, price: price.view, pnl: pnl.view, states: states.view };
}
