// Strategies: each one the topology declares, the control plane switched, or the intents name;
// whether it runs (and who switched it, when, why), its config, its kill switch, its intents
// and P&L (from the positions read model).  Enable, disable and configure need the operator
// token (kept for this tab only in sessionStorage); each is one event on sep.control that the
// strategy runner obeys within a second.  A row opens to the strategy's latest intents.
import { api, ApiError } from "./api.js";
import { amount, badge, esc, num, shortId, text, time } from "./format.js";

const REFRESH_MS = 3000;

function state(s) {
  if (s.killed) return badge("killed", "bad") + ` <span class="muted small">${text(s.killed, 40)}</span>`;
  if (s.enabled === null) return `<span class="muted">external</span>`;
  return badge(s.enabled ? "enabled" : "disabled");
}

function config(c) {
  const entries = Object.entries(c || {});
  if (!entries.length) return `<span class="muted">—</span>`;
  return entries.map(([k, v]) => `<span class="kv-chip"><span class="muted">${text(k, 30)}</span> ${text(typeof v === "string" ? v : JSON.stringify(v), 40)}</span>`).join(" ");
}

function pnl(value, quote) {
  const negative = String(value).startsWith("-");
  return `<span class="${negative ? "bad" : value === "0" ? "muted" : "ok"}">${amount(value, 2)}</span> <span class="muted small">${text(quote, 8)}</span>`;
}

function row(s, i) {
  const who = s.changedBy ? `${text(s.changedBy, 30)} <span class="muted">${time(s.changedAt)}</span><br><span class="muted small">${text(s.reason, 80)}</span>` : `<span class="muted">${text(s.source, 12)}</span>`;
  const actions = s.enabled === null ? "" : `<button type="button" class="${s.enabled ? "secondary" : ""}" data-act="${s.enabled ? "disable" : "enable"}" data-id="${esc(s.strategyId)}">${s.enabled ? "Disable" : "Enable"}</button>`;
  return `<tr class="strategy" data-i="${i}" data-id="${esc(s.strategyId)}">
    <td class="mono">${text(s.strategyId, 40)}</td><td>${text(s.plugin ?? "—", 20)}</td>
    <td>${state(s)}</td><td class="txt small">${config(s.config)}</td><td class="small">${who}</td>
    <td class="num">${num(s.intents)}</td><td class="num">${pnl(s.realisedPnl, s.quoteAsset)}</td>
    <td class="num">${pnl(s.unrealisedPnl, s.quoteAsset)}</td><td>${actions}</td></tr>`;
}

function intentsTable(items) {
  if (!items.length) return `<p class="muted">No intents yet.</p>`;
  return `<table class="fixed small"><thead><tr><th>Intent</th><th>Client id</th><th>State</th><th>What</th>
    <th class="num">Amount</th><th class="num">Fills</th><th>Created</th></tr></thead><tbody>${items.map((d) => `<tr>
    <td class="id"><a href="/ui/intents/${encodeURIComponent(d.id)}">${shortId(d.id)}</a></td>
    <td class="mono">${text(d.clientIntentId ?? "—", 32)}</td><td>${badge(d.state)}</td>
    <td>${text(d.type ?? "", 8)} ${text(d.asset ?? "", 8)} <span class="muted">for</span> ${text(d.counterAsset ?? "", 8)}</td><td class="num">${amount(d.amount)}</td>
    <td class="num">${num((d.fills || []).length)}</td><td class="mono muted">${time(d.timestamps?.["intent.submitted"])}</td></tr>`).join("")}</tbody></table>`;
}

function detail(s, items) {
  const editable = s.enabled !== null;
  return `<tr class="strategy-detail"><td colspan="9"><div class="grid-2">
    <div><h3>Latest intents</h3>${intentsTable(items)}</div>
    <div>${editable ? `<h3>Configure</h3><form class="configure" data-id="${esc(s.strategyId)}">
      <textarea name="config" rows="8" spellcheck="false" aria-label="config fields to change">${esc(JSON.stringify(s.config, null, 1))}</textarea>
      <input name="reason" placeholder="why" maxlength="2000" aria-label="reason" required>
      <button type="submit">Apply</button> <span class="act-result small"></span></form>` : `<p class="muted">A producer of its own: not run by the strategy runner.</p>`}
      ${s.assets?.length ? `<h3>Position</h3><table class="small"><thead><tr><th>Asset</th><th class="num">Quantity</th><th class="num">Value</th></tr></thead><tbody>${s.assets.map((a) => `<tr><td>${text(a.asset, 10)}</td><td class="num">${amount(a.quantity)}</td><td class="num">${amount(a.marketValue, 2)}</td></tr>`).join("")}</tbody></table>` : ""}
    </div></div></td></tr>`;
}

export async function renderStrategies(root, setConnection) {
  setConnection("live");
  root.innerHTML = `
    <h1>Strategies <span class="muted small" id="st-count"></span></h1>
    <section class="panel">
      <div class="toolbar"><span class="muted small">Operator</span>
        <input id="st-token" type="password" placeholder="operator token" autocomplete="off" aria-label="operator token" value="${esc(sessionStorage.getItem("sep-operator-token") || "")}">
        <input id="st-actor" placeholder="your name" maxlength="64" aria-label="operator" value="${esc(localStorage.getItem("sep-operator") || "")}">
        <span class="spacer"></span><span id="st-result" class="small"></span></div>
      <div class="scroll"><table class="fixed strategies"><colgroup><col style="width:150px"><col style="width:90px">
        <col style="width:110px"><col><col style="width:190px"><col style="width:70px"><col style="width:120px">
        <col style="width:120px"><col style="width:90px"></colgroup>
        <thead><tr><th>Strategy</th><th>Plugin</th><th>State</th><th>Config</th><th>Changed by</th>
        <th class="num">Intents</th><th class="num">Realised</th><th class="num">Unrealised</th><th></th></tr></thead>
        <tbody id="st-rows"></tbody></table></div>
    </section>`;
  const tbody = root.querySelector("#st-rows");
  const result = root.querySelector("#st-result");
  let items = [];
  const open = new Set();

  const operator = () => {
    const token = root.querySelector("#st-token").value;
    const actor = root.querySelector("#st-actor").value.trim();
    sessionStorage.setItem("sep-operator-token", token);
    localStorage.setItem("sep-operator", actor);
    return { token, actor: actor || "ui" };
  };

  async function act(id, action, body) {
    const { token, actor } = operator();
    result.className = "small muted";
    result.textContent = `${action} ${id}…`;
    try {
      const event = await api(`/strategies/${encodeURIComponent(id)}/${action}`, {
        method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ actor, ...body }),
      });
      result.className = "small ok";
      result.textContent = `${event.topic} ${id} (seq ${event.seq})`;
      setTimeout(load, 500);  // project files the change in the read model within moments
    } catch (e) {
      const errors = e instanceof ApiError && e.body?.errors ? ` (${e.body.errors.map((x) => `${x.path}: ${x.message}`).join("; ")})` : "";
      result.className = "small bad";
      result.textContent = `${e.message}${errors}`;
    }
  }

  async function load() {
    const body = await api("/strategies");
    items = body.strategies;
    const running = items.filter((s) => s.enabled && !s.killed).length;
    root.querySelector("#st-count").textContent = `${num(items.length)} · ${num(running)} running`;
    tbody.innerHTML = items.map(row).join("") || `<tr><td colspan="9" class="empty">No strategies: enable one under plugins.strategies in topology.yaml or with sep strategy enable.</td></tr>`;
    for (const tr of tbody.querySelectorAll("tr.strategy")) {
      const s = items[Number(tr.dataset.i)];
      tr.querySelector("button[data-act]")?.addEventListener("click", (e) => {
        e.stopPropagation();
        const reason = prompt(`Why ${e.target.dataset.act} ${s.strategyId}?`);
        if (reason) act(s.strategyId, e.target.dataset.act, { reason });
      });
      tr.onclick = (e) => {
        if (e.target.closest("a, button")) return;
        if (open.has(s.strategyId)) open.delete(s.strategyId); else open.add(s.strategyId);
        load();
      };
      if (open.has(s.strategyId)) {
        const page = await api(`/intents?strategy=${encodeURIComponent(s.strategyId)}&limit=15`).catch(() => ({ items: [] }));
        tr.insertAdjacentHTML("afterend", detail(s, page.items));
        const form = tr.nextElementSibling.querySelector("form.configure");
        if (form) form.onsubmit = (event) => {
          event.preventDefault();
          const data = Object.fromEntries(new FormData(form));
          let config;
          try { config = JSON.parse(data.config); } catch (err) {
            result.className = "small bad"; result.textContent = `config is not JSON: ${err.message}`; return;
          }
          act(s.strategyId, "configure", { config, reason: data.reason });
        };
      }
    }
  }

  await load();
  const timer = setInterval(() => { if (!document.hidden && !root.querySelector("form.configure:focus-within")) load().catch(() => setConnection("down")); }, REFRESH_MS);
  return { items: () => items, reload: load, stop: () => clearInterval(timer) };
}
