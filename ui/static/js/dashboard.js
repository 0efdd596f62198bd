// Dashboard: live counters and the most recent intents with their status.
import { api } from "./api.js";
import { LiveStream } from "./stream.js";
import { amount, badge, esc, percent, shortId, text, time } from "./format.js";
import { riskAlert } from "./risk.js";

const PAGE = 50;
const STATES = ["submitted", "accepted", "prioritised", "planned", "executing", "completed",
  "rejected", "risk_rejected", "plan_rejected", "failed", "expired", "cancelled"];

function row(intent) {
  const pair = intent.asset ? `${text(intent.asset, 12)} / ${text(intent.counterAsset, 12)}` : "—";
  const side = intent.type === "ACQUIRE" ? "buy" : intent.type === "DISPOSE" ? "sell" : "—";
  const created = intent.timestamps?.["intent.submitted"] || intent["at:intent.submitted"];
  // Every cell is bounded (see format.js): one hostile value cannot push the others away.
  return `<tr data-id="${esc(intent.id)}">
    <td class="mono muted">${time(created)}</td>
    <td class="id"><a href="/ui/intents/${encodeURIComponent(intent.id)}">${shortId(intent.id)}</a></td>
    <td class="txt">${text(intent.strategyId, 24)}</td>
    <td>${side}</td>
    <td class="txt">${pair}</td>
    <td class="num">${amount(intent.amount)}</td>
    <td>${badge(intent.state)}</td>
    <td class="num">${text(intent.priority, 4)}</td>
    <td class="num">${intent.amountOut ? `${amount(intent.amountOut)} <span class="muted">${text(intent.assetOut, 12)}</span>` : "—"}</td>
    <td class="num">${percent(intent.realisedSlippage, 3)}</td>
    <td class="muted txt reason">${text(intent.reason, 60)}</td>
  </tr>`;
}

function counters(stats) {
  const failed = ["rejected", "risk_rejected", "plan_rejected", "failed", "expired", "cancelled"]
    .reduce((n, s) => n + (stats.states[s] || 0), 0);
  const events = Object.values(stats.events).reduce((a, b) => a + b, 0);
  const cell = (id, label, value, cls = "") =>
    `<div class="counter ${cls}" id="${id}"><div class="label">${label}</div><div class="value">${value}</div></div>`;
  return cell("c-executed", "Executed", stats.executed, "ok")
    + cell("c-success", "Success rate", stats.successRate === null ? "—" : percent(stats.successRate, 1), "info")
    + cell("c-active", "Active", stats.active)
    + cell("c-total", "Intents", stats.intents)
    + cell("c-failed", "Rejected · failed", failed, failed ? "bad" : "")
    + cell("c-events", "Events", events);
}

export async function renderDashboard(root, setConnection) {
  const params = new URLSearchParams(location.search);
  const filter = { state: params.get("state") || "", strategy: params.get("strategy") || "" };
  let offset = Number(params.get("offset") || 0);
  root.innerHTML = `
    <h1>Dashboard</h1>
    <section class="counters" id="counters"></section>
    <section id="risk-alerts"></section>
    <section class="panel">
      <div class="toolbar">
        <h2 style="margin:0">Intents</h2><span class="spacer"></span>
        <select id="f-state" aria-label="state"><option value="">all states</option>
          ${STATES.map((s) => `<option ${s === filter.state ? "selected" : ""}>${s}</option>`).join("")}</select>
        <input id="f-strategy" placeholder="strategy id" maxlength="128" value="${esc(filter.strategy)}" aria-label="strategy">
        <a href="/ui/submit"><button type="button">New intent</button></a>
      </div>
      <div class="scroll"><table class="intents fixed"><colgroup><col style="width:104px"><col style="width:142px">
        <col style="width:12%"><col style="width:44px"><col style="width:112px"><col style="width:100px">
        <col style="width:104px"><col style="width:52px"><col style="width:150px"><col style="width:88px"><col></colgroup><thead><tr><th>Submitted</th><th>Intent</th><th>Strategy</th><th>Side</th><th>Pair</th>
        <th class="num">Amount</th><th>Status</th><th class="num">Prio</th><th class="num">Received</th>
        <th class="num">Slippage</th><th>Reason</th></tr></thead>
        <tbody id="intents"></tbody></table></div>
      <div class="pager"><span id="page-info"></span>
        <button class="secondary" id="prev">‹ Newer</button><button class="secondary" id="next">Older ›</button></div>
    </section>`;
  const tbody = root.querySelector("#intents");
  const rows = new Map();   // id -> intent document as shown
  let total = 0;
  const pageInfo = () => {
    const shown = tbody.querySelectorAll("tr[data-id]").length;
    root.querySelector("#page-info").textContent = total ? `${offset + 1}–${offset + shown} of ${total}` : "";
  };

  const applyFilter = () => {
    const q = new URLSearchParams();
    const state = root.querySelector("#f-state").value;
    const strategy = root.querySelector("#f-strategy").value.trim();
    if (state) q.set("state", state);
    if (strategy) q.set("strategy", strategy);
    location.search = q.toString();
  };
  root.querySelector("#f-state").onchange = applyFilter;
  root.querySelector("#f-strategy").onkeydown = (e) => { if (e.key === "Enter") applyFilter(); };

  async function loadStats() {
    const stats = await api("/stats");
    root.querySelector("#counters").innerHTML = counters(stats);
  }
  let statsTimer = null;
  // Background refreshes must never become uncaught rejections: a fetch cut short by a page
  // reload or a server restart is simply retried by the next change.
  const quietly = (promise) => promise.catch((e) => console.warn("refresh failed:", e));
  const refreshStats = () => {
    statsTimer ??= setTimeout(() => { statsTimer = null; quietly(loadStats()); }, 300);
  };

  async function load() {
    const q = new URLSearchParams({ limit: PAGE, offset });
    if (filter.state) q.set("state", filter.state);
    if (filter.strategy) q.set("strategy", filter.strategy);
    const page = await api(`/intents?${q}`);
    rows.clear();
    page.items.forEach((i) => rows.set(i.id, i));
    tbody.innerHTML = page.items.map(row).join("") ||
      `<tr><td colspan="11" class="empty">No intents yet — <a href="/ui/submit">submit one</a>.</td></tr>`;
    total = page.total;
    pageInfo();
    root.querySelector("#prev").disabled = offset === 0;
    root.querySelector("#next").disabled = offset + PAGE >= page.total;
    return page.streamId;
  }
  root.querySelector("#prev").onclick = () => { offset = Math.max(0, offset - PAGE); quietly(load()); };
  root.querySelector("#next").onclick = () => { offset += PAGE; quietly(load()); };

  const alerts = root.querySelector("#risk-alerts");
  function onChange(change) {
    if (!change.intentId) {
      // A control-plane change (no intent): a breaker's transition or a kill switch is an
      // alert, newest first, the last 5 kept.
      const html = riskAlert(change);
      if (html) {
        alerts.insertAdjacentHTML("afterbegin", html);
        while (alerts.children.length > 5) alerts.lastElementChild.remove();
      }
      return;
    }
    refreshStats();
    const known = rows.get(change.intentId);
    const intent = { ...(known || { id: change.intentId }), ...change.data, state: change.state };
    const matches = (!filter.state || filter.state === intent.state)
      && (!filter.strategy || filter.strategy === intent.strategyId);
    if (known) {
      rows.set(intent.id, intent);
      const tr = tbody.querySelector(`tr[data-id="${CSS.escape(intent.id)}"]`);
      if (tr) { tr.outerHTML = row(intent); }
    } else if (offset === 0 && matches && change.seq === 1) {
      rows.set(intent.id, intent);
      tbody.querySelector(".empty")?.closest("tr")?.remove();
      tbody.insertAdjacentHTML("afterbegin", row(intent));
      tbody.firstElementChild.classList.add("flash");
      while (tbody.children.length > PAGE) {
        rows.delete(tbody.lastElementChild.dataset.id);
        tbody.lastElementChild.remove();
      }
      total += 1;
      pageInfo();
    }
  }

  // The stream position is read before the list: everything after it is replayed on top.
  const [streamId] = await Promise.all([load(), loadStats()]);
  const stream = new LiveStream({ after: streamId, onChange, onStatus: setConnection,
    onReset: () => { quietly(load()); quietly(loadStats()); } });
  return { stream, rows };
}
