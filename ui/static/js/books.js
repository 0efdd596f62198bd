// Order books: one market's depth across the book venues, as the planners see it on
// sep.market.books, and this platform's fills per venue with their fees.
//
// The depth chart is the consolidated all-in book the planner sweeps (GET /books): each
// price is what a taker pays (asks) or receives (bids) per unit after that venue's taker
// fee; the height is the size available from the best price up to there.  Lightweight
// Charts' options chart puts prices on the horizontal axis.  The page asks again every
// second (the book moves faster than a person reads); ?market= keeps the choice.
import {
  AreaSeries, createOptionsChart,
} from "/static/vendor/lightweight-charts-5.3.0/lightweight-charts.standalone.production.mjs";
import { api, ApiError } from "./api.js";
import { amount, esc, num, text, visible } from "./format.js";

const REFRESH_MS = 1000;
const COLORS = { ok: "#3fb950", bad: "#f85149", muted: "#7d8896", line: "#1c232d", panel: "#11161d" };

function depthChart(element) {
  const chart = createOptionsChart(element, {
    autoSize: true,
    layout: { background: { color: COLORS.panel }, textColor: COLORS.muted, fontSize: 11, attributionLogo: true },
    grid: { vertLines: { color: COLORS.line }, horzLines: { color: COLORS.line } },
    rightPriceScale: { borderColor: COLORS.line },
    timeScale: { borderColor: COLORS.line },
    crosshair: { mode: 0 },
  });
  const area = (color) => chart.addSeries(AreaSeries, {
    lineColor: color, topColor: `${color}66`, bottomColor: `${color}11`, lineWidth: 2,
    lineType: 1, priceFormat: { type: "volume" },
  });
  return { chart, bids: area(COLORS.ok), asks: area(COLORS.bad) };
}

// Points on a numeric axis must rise strictly: bids come best (highest) first.
function points(levels) {
  const out = levels.map((l) => ({ time: Number(l.price), value: Number(l.total) }))
    .filter((p) => Number.isFinite(p.time) && Number.isFinite(p.value));
  out.sort((a, b) => a.time - b.time);
  return out.filter((p, i) => i === 0 || p.time > out[i - 1].time);
}

function fee(f) {
  return Number.isInteger(f) ? `${(f / 10000).toFixed(2)}%` : "—";
}

function venueRows(book) {
  return book.venues.map((v) => `<tr data-venue="${esc(v.venue)}">
    <td>${text(v.venue, 16)}</td><td class="mono muted">${text(v.marketId, 20)}</td>
    <td class="num">${amount(v.bestBid, 4)}</td><td class="num">${amount(v.bestAsk, 4)}</td>
    <td class="num">${fee(v.takerFee)}</td><td class="num">${amount(v.tickSize)}</td><td class="num">${amount(v.lotSize)}</td>
    <td class="num">${num(v.bids.length)} / ${num(v.asks.length)}</td>
    <td class="num">${v.inSync ? num(v.seq) : `<span style="color:var(--bad)">resyncing</span>`}</td></tr>`).join("");
}

function sums(map) {
  const entries = Object.entries(map || {});
  return entries.length ? entries.map(([a, v]) => `${amount(v)} ${text(a, 12)}`).join("<br>") : "—";
}

function fillRows(venues) {
  return venues.map((v) => `<tr data-venue="${esc(v.venue)}">
    <td>${text(v.venue, 16)}</td><td class="num">${num(v.fills)}</td>
    <td class="num">${sums(v.spent)}</td><td class="num">${sums(v.received)}</td>
    <td class="num fees">${sums(v.fees)}</td>
    <td class="num">${num(v.itemisedFills)} / ${num(v.unitemisedFills)}</td></tr>`).join("")
    || `<tr><td colspan="6" class="muted">No fills yet.</td></tr>`;
}

export async function renderBooks(root, setConnection) {
  const params = new URLSearchParams(location.search);
  root.innerHTML = `
    <h1>Order books <span class="muted small">depth across venues, fees in · from sep.market.books</span></h1>
    <section class="panel"><div class="toolbar"><h2>Depth</h2>
        <select id="book-market" aria-label="market"></select>
        <span class="spacer"></span><span class="legend small"><i style="background:${COLORS.ok}"></i>bids (a seller receives)
        <i style="background:${COLORS.bad}"></i>asks (a buyer pays), per unit after the taker fee</span></div>
      <div class="chart" id="chart-depth"></div><p class="muted small" id="depth-note"></p>
      <table><thead><tr><th>Venue</th><th>Market</th><th class="num">Best bid</th><th class="num">Best ask</th>
        <th class="num">Taker fee</th><th class="num">Tick</th><th class="num">Lot</th><th class="num">Levels (bid / ask)</th><th class="num">Version</th></tr></thead>
        <tbody id="book-venues"></tbody></table></section>
    <section class="panel"><h2>Fills per venue</h2>
      <table><thead><tr><th>Venue</th><th class="num">Fills</th><th class="num">Spent</th><th class="num">Received</th>
        <th class="num">Fees</th><th class="num">Fee itemised / in price</th></tr></thead><tbody id="venue-fills"></tbody></table>
      <p class="muted small">Spent and received include the fees; a pool's fee is inside its price (not itemised).</p></section>`;
  const element = root.querySelector("#chart-depth");
  const depth = depthChart(element);
  const view = { market: params.get("market"), book: null, fitted: false };

  async function load() {
    const q = new URLSearchParams();
    if (view.market) q.set("market", view.market);
    let body;
    try {
      body = await api(`/books?${q}`);
      setConnection("live");
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      setConnection("down");
      root.querySelector("#depth-note").textContent = `The book feed is away (${visible(e.message || e.status)}); trying again.`;
      return;
    }
    const select = root.querySelector("#book-market");
    if (!select.options.length || select.dataset.count !== String(body.markets.length)) {
      select.innerHTML = body.markets.map((m) => `<option value="${esc(m.market)}" ${m.market === body.market ? "selected" : ""}>${esc(visible(m.market))}</option>`).join("")
        || `<option value="">—</option>`;
      select.dataset.count = String(body.markets.length);
    }
    view.market = body.market; view.book = body.book;
    const book = body.book;
    const bids = book ? points(book.depth.bids) : [];
    const asks = book ? points(book.depth.asks) : [];
    depth.bids.setData(bids); depth.asks.setData(asks);
    element.dataset.bids = bids.length; element.dataset.asks = asks.length;
    if (!view.fitted && (bids.length || asks.length)) { depth.chart.timeScale().fitContent(); view.fitted = true; }
    root.querySelector("#book-venues").innerHTML = book ? venueRows(book) : "";
    const bestBid = book?.depth.bids[0]; const bestAsk = book?.depth.asks[0];
    root.querySelector("#depth-note").textContent = book
      ? `all-in best bid ${bestBid ? bestBid.price : "—"} · best ask ${bestAsk ? bestAsk.price : "—"} ${book.quote} · ${num(body.updates)} book messages applied · ${num(body.gaps)} gaps`
      : "No book venue has published a book yet.";
  }

  async function loadFills() {
    const body = await api("/venues/fills");
    root.querySelector("#venue-fills").innerHTML = fillRows(body.venues);
  }

  root.querySelector("#book-market").onchange = (e) => {
    const p = new URLSearchParams(location.search); p.set("market", e.target.value); location.search = p.toString();
  };
  await Promise.all([load(), loadFills()]);
  let fillsEvery = 0;
  const timer = setInterval(() => {
    load().catch((e) => console.warn("book refresh failed", e));
    if (++fillsEvery % 5 === 0) loadFills().catch((e) => console.warn("fills refresh failed", e));
  }, REFRESH_MS);
  return { view, stop: () => clearInterval(timer) };
}
