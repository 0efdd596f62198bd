// Risk: the breaker state per strategy and globally (with the numbers that set it), each
// strategy's limits against its usage, the marks, and the operator's actions (reset a
// breaker, change a limit: operator token, kept for this tab only in sessionStorage; every
// action asks for a reason and a confirmation).  GET /risk, refreshed as risk.* and
// control.* changes arrive on the live stream, and every few seconds for usage.
//
// Every value shown goes through format.js: strategy ids and reasons are a producer's or an
// operator's text (hostile until shown otherwise).
import { api, ApiError } from "./api.js";
import { LiveStream } from "./stream.js";
import { amount, badge, esc, num, percent, text, time } from "./format.js";

const REFRESH_MS = 3000;
const RULES = [
  // rule, usage field, how to show it
  ["max_open_intents", "openIntents", (v) => num(v)],
  ["max_daily_notional", "tradedToday", (v) => amount(v, 2)],
  ["max_position", "largestPosition", (v) => amount(v, 2)],
  ["max_concentration", "concentration", (v) => percent(v, 2)],
];
const STATE_CLASS = { NORMAL: "completed", REDUCING: "expired", HALTED: "failed" };

function state(s) {
  return badge(s, STATE_CLASS[s] || "");
}

function share(used, limit) {
  const u = Number(used), l = Number(limit);
  if (!Number.isFinite(u) || !Number.isFinite(l) || l <= 0) return 0;
  return Math.max(0, Math.min(100, Math.round((100 * u) / l)));
}

function why(change) {
  if (!change) return `<span class="muted">no change recorded</span>`;
  return `${text(change.message, 160)} <span class="muted small">· ${text(change.actor, 40)} · ${time(change.at)}</span>`;
}

function scopeNumbers(marks, quote) {
  if (!marks) return `<span class="muted">not evaluated yet</span>`;
  return `equity ${amount(marks.equity, 2)} ${text(quote, 8)} · P&amp;L since epoch ${amount(marks.pnl, 2)}
    · drawdown ${percent(marks.drawdown, 2)} <span class="muted">(peak ${amount(marks.peak, 2)})</span>`;
}

function limitRows(s) {
  const usage = s.usage || {};
  return RULES.map(([rule, field, show]) => {
    const limit = s.limits[rule];
    const used = usage[field];
    const pct = limit === undefined ? 0 : share(used, limit);
    return `<tr data-rule="${esc(rule)}"><td class="mono">${esc(rule)}</td>
      <td class="num" data-field="used">${used === undefined || used === null ? "—" : show(used)}</td>
      <td class="num" data-field="limit">${limit === undefined ? `<span class="muted">off</span>` : show(limit)}</td>
      <td class="bar ${pct >= 90 ? "bad" : ""}"><div style="width:${pct}%"></div></td></tr>`;
  }).join("");
}

// The engaged kill switch covering a scope (GET /risk's "killed"): separate from its breaker
// state, which may well be NORMAL while it is killed.
function killedBadge(kill) {
  if (!kill) return "";
  return `<span class="badge failed" data-killed="${esc(kill.scope)}" title="${esc(`by ${kill.actor}: ${kill.reason}`)}">killed (${text(kill.scope, 48)})</span>`;
}

function strategyPanel(s, quote) {
  const usage = s.usage || {};
  const overrides = Object.entries(s.overrides || {});
  const positions = Object.entries(usage.positions || {});
  return `<section class="panel risk-strategy" data-strategy="${esc(s.strategyId)}" data-state="${esc(s.state)}">
    <div class="toolbar"><h2 style="margin:0">${text(s.strategyId, 48)}</h2> ${state(s.state)} ${killedBadge(s.killed)}
      <span class="spacer"></span>
      ${s.state !== "NORMAL" ? `<button class="secondary" data-reset="${esc(s.scope)}">Reset to NORMAL…</button>` : ""}
      <button class="secondary" data-limits="${esc(s.strategyId)}">Change limits…</button></div>
    <p class="small">${why(s.change)}</p>
    <p class="small">${scopeNumbers(s.marks, quote)}</p>
    <table class="fixed"><thead><tr><th>Rule</th><th class="num">Used</th><th class="num">Limit</th><th></th></tr></thead>
      <tbody>${limitRows(s)}</tbody></table>
    <p class="small muted">open notional ${amount(usage.openNotional, 2)} · realised ${amount(usage.realisedPnl, 2)}
      · unrealised ${amount(usage.unrealisedPnl, 2)} ${text(quote, 8)}
      ${overrides.length ? `· run-time overrides: ${overrides.map(([k, v]) => `${esc(k)}=${text(v, 20)}`).join(", ")}` : ""}</p>
    ${positions.length ? `<table class="fixed"><thead><tr><th>Asset</th><th class="num">Held</th><th class="num">With open intents</th><th class="num">Value</th></tr></thead><tbody>
      ${positions.map(([asset, p]) => `<tr><td>${text(asset, 12)}</td><td class="num">${amount(p.held)}</td>
        <td class="num">${amount(p.quantity)}</td><td class="num">${amount(p.value, 2)}</td></tr>`).join("")}</tbody></table>` : ""}
  </section>`;
}

function marksTable(marks) {
  const rows = Object.entries(marks || {});
  if (!rows.length) return `<p class="muted">No marks: no validating worker has reported.</p>`;
  return `<table class="fixed"><thead><tr><th>Asset</th><th class="num">Mark</th><th class="num">Age</th><th>Source</th></tr></thead><tbody>
    ${rows.map(([asset, m]) => `<tr><td>${text(asset, 12)}</td><td class="num">${amount(m.price, 4)}</td>
      <td class="num">${num(m.ageMs)} ms</td><td class="mono muted">${text(m.source, 60)}</td></tr>`).join("")}</tbody></table>`;
}

function breakersTable(breakers) {
  const rows = Object.entries(breakers || {});
  if (!rows.length) return `<p class="muted">No venue breaker has changed.</p>`;
  return `<table class="fixed"><thead><tr><th>Venue</th><th>State</th><th>Why</th></tr></thead><tbody>
    ${rows.map(([venue, b]) => `<tr data-venue="${esc(venue)}"><td>${text(venue, 24)}</td>
      <td>${badge(String(b?.state ?? b?.type ?? "—"))}</td><td class="muted">${text(b?.reason ?? b?.message, 120)}</td></tr>`).join("")}</tbody></table>`;
}

function render(root, status) {
  const g = status.global;
  root.querySelector("#r-global").innerHTML = `
    <div class="toolbar"><h2 style="margin:0">All strategies</h2> ${state(g.state)} ${killedBadge(g.killed)}<span class="spacer"></span>
      ${g.state !== "NORMAL" ? `<button class="secondary" data-reset="global">Reset to NORMAL…</button>` : ""}</div>
    <p class="small">${why(g.change)}</p><p class="small">${scopeNumbers(g.marks, status.quoteAsset)}</p>
    <p class="small muted">thresholds: ${Object.entries(g.thresholds || {}).map(([k, v]) => `${esc(k)} ${amount(v, 4)}`).join(" · ") || "none"}</p>`;
  root.querySelector("#r-strategies").innerHTML = status.strategies.map((s) => strategyPanel(s, status.quoteAsset)).join("")
    || `<section class="panel"><p class="empty">No strategy has traded or been configured yet.</p></section>`;
  root.querySelector("#r-marks").innerHTML = marksTable(status.marks);
  root.querySelector("#r-breakers").innerHTML = breakersTable(status.breakers);
  root.querySelector("#r-usage-at").textContent = status.usageAt ? `usage as of ${time(new Date(status.usageAt).toISOString())}` : "no usage report";
}

async function act(root, path, method, body) {
  const token = root.querySelector("#r-token").value.trim();
  const result = root.querySelector("#r-result");
  if (!token) { result.hidden = false; result.className = "alert"; result.textContent = "Give the operator token first."; return false; }
  sessionStorage.setItem("sep-operator-token", token);
  try {
    const event = await api(path, { method, body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` } });
    result.hidden = false; result.className = "alert ok";
    result.textContent = `${event.topic} published on ${event.correlationId} (seq ${event.seq}).`;
    return true;
  } catch (e) {
    result.hidden = false; result.className = "alert";
    const detail = e instanceof ApiError ? (e.body?.errors || []).map((x) => `${x.path}: ${x.message}`).join("; ") : "";
    result.textContent = `Refused: ${e.message}${detail ? ` — ${detail}` : ""}`;
    return false;
  }
}

export async function renderRisk(root, setConnection) {
  root.innerHTML = `
    <h1>Risk <span class="muted small" id="r-usage-at"></span></h1>
    <div class="alert" id="r-result" hidden></div>
    <section class="panel" id="r-global"></section>
    <section id="kill-switch" class="panel"><h2>Kill switch</h2><p class="muted small" id="kill-switch-note">Loading…</p></section>
    <div id="r-strategies"></div>
    <section class="panel"><h2>Marks</h2><div id="r-marks"></div></section>
    <section class="panel" id="r-breakers-panel"><h2>Venue circuit breakers</h2><div id="r-breakers"></div></section>
    <section class="panel"><h2>Operator</h2>
      <input id="r-token" type="password" placeholder="operator token" autocomplete="off" aria-label="operator token"
        value="${esc(sessionStorage.getItem("sep-operator-token") || "")}">
      <span class="muted small">needed to reset a breaker or change limits; kept for this tab only</span></section>`;
  const view = { status: null };
  const refresh = async () => { view.status = await api("/risk"); render(root, view.status); };

  root.addEventListener("click", async (e) => {
    const reset = e.target.closest("[data-reset]");
    const limits = e.target.closest("[data-limits]");
    if (reset) {
      const scope = reset.dataset.reset;
      const reason = prompt(`Reset ${scope} to NORMAL (a new epoch starts at today's equity). Why?`);
      if (!reason || !confirm(`Reset ${scope} to NORMAL? Trading resumes for it.`)) return;
      if (await act(root, "/risk/reset", "POST", { scope, reason, actor: "ui" })) await refresh();
    } else if (limits) {
      const strategy = limits.dataset.limits;
      const rules = prompt(`Limits for ${strategy}: rule=value, separated by spaces (value "none" switches a rule off)`);
      if (!rules) return;
      const changes = Object.fromEntries(rules.trim().split(/\s+/).map((r) => r.split("=", 2)));
      const reason = prompt("Why?");
      if (!reason || !confirm(`Set ${rules} for ${strategy}?`)) return;
      if (await act(root, `/risk/limits/${encodeURIComponent(strategy)}`, "PUT", { limits: changes, reason, actor: "ui" })) await refresh();
    }
  });

  await refresh();
  // The kill switch's controls come with the kill-switch module when it is installed.
  const killSection = root.querySelector("#kill-switch");
  import("./kill_switch.js")
    // The component shows the venue breakers too (with since, probes, last failure): one
    // table of them on the page, not two.
    .then((m) => { killSection.innerHTML = ""; m.mount(killSection); root.querySelector("#r-breakers-panel").hidden = true; })
    .catch(() => { root.querySelector("#kill-switch-note").textContent = "The kill switch controls are not installed in this build; `sep kill` works from the CLI."; });

  let pending = null;
  const soon = () => { pending ??= setTimeout(() => { pending = null; refresh().catch(() => {}); }, 250); };
  const stream = new LiveStream({ topics: ["risk.*", "control.*", "venue.*"], onChange: soon, onStatus: setConnection, onReset: soon });
  const timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  return { stream, view, timer };
}

// A dashboard alert for a control-plane change from the live stream (null: not alert-worthy).
// A breaker's transition (its state moved), a kill switch engaged or released.
export function riskAlert(change) {
  const d = change.data || {};
  if (change.topic === "risk.state_changed" && d.state !== d.previous) {
    const cls = d.state === "NORMAL" ? "alert ok" : "alert";
    return `<div class="${cls}" data-alert="${esc(change.topic)}" data-scope="${esc(d.scope)}" data-state="${esc(d.state)}">
      <strong>${text(d.scope, 48)}</strong> ${esc(d.previous)} → ${state(d.state)} ${text(d.message, 200)}
      <span class="muted small">· ${time(new Date(Number(change.ms)).toISOString())} · <a href="/ui/risk">risk page</a></span></div>`;
  }
  if (change.topic === "control.killed" || change.topic === "control.resumed") {
    const cls = change.topic === "control.killed" ? "alert" : "alert ok";
    return `<div class="${cls}" data-alert="${esc(change.topic)}" data-scope="${esc(d.scope)}">
      <strong>${change.topic === "control.killed" ? "Kill switch engaged" : "Trading resumed"}</strong>: ${text(d.scope, 48)}
      by ${text(d.actor, 40)} — ${text(d.reason, 160)}</div>`;
  }
  return null;
}
