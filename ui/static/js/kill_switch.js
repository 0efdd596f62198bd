// The kill switch component: `mount(element)` shows every kill switch (engaged first) and the
// venue circuit breakers, engages a switch after a typed confirmation, and resumes one.  The
// risk page mounts it in its <section id="kill-switch">.
//
// State comes from GET /risk/kill (read from sep.control itself), then live: every control
// change on the change stream (control.killed, control.resumed, venue.breaker_changed) reads
// it again.  Engaging and resuming need the operator token (kept for this tab only, in
// sessionStorage, as the dead-letter page does) and a reason; both are recorded with the
// change.  Everything shown passes through format.js (user text is hostile until shown).
import { api, ApiError } from "./api.js";
import { esc, text, time } from "./format.js";
import { LiveStream } from "./stream.js";

const TOKEN_KEY = "sep-operator-token";
const ACTOR_KEY = "sep-operator";

function iso(ms) {
  return ms ? new Date(ms).toISOString() : null;
}

function scopeOf(form) {
  const strategy = form.strategy.value.trim();
  return form.kind.value === "strategy" ? (strategy ? `strategy:${strategy}` : "") : "global";
}

function banner(switches) {
  const engaged = switches.filter((s) => s.engaged);
  if (!engaged.length) {
    return `<p class="kill-banner ok" data-state="trading">Trading is on: no kill switch is engaged.</p>`;
  }
  const global = engaged.find((s) => s.scope === "global");
  const what = global ? "ALL TRADING IS STOPPED" : `${engaged.length} strateg${engaged.length === 1 ? "y is" : "ies are"} stopped`;
  return `<p class="kill-banner engaged" data-state="killed">${esc(what)}: no new intent, plan or send.</p>`;
}

function switchRow(s) {
  const resume = s.engaged
    ? `<form class="kill-resume" data-scope="${esc(s.scope)}">
        <input name="reason" placeholder="why trading may resume" maxlength="2000" aria-label="reason to resume" required>
        <button type="submit">Resume ${text(s.scope, 40)}</button>
        <span class="kill-result small"></span></form>`
    : "";
  return `<tr class="kill-switch ${s.engaged ? "engaged" : "resumed"}" data-scope="${esc(s.scope)}">
    <td class="mono">${text(s.scope, 48)}</td>
    <td><span class="badge ${s.engaged ? "failed" : "completed"}" data-state="${s.engaged ? "engaged" : "resumed"}">${s.engaged ? "engaged" : "resumed"}</span></td>
    <td class="mono muted">${time(iso(s.sinceMs))}</td>
    <td>${text(s.actor, 40)}</td><td class="txt">${text(s.reason, 120)}</td><td>${resume}</td></tr>`;
}

function breakerRow(b) {
  const retry = b.retryAtMs ? ` · probes from ${time(iso(b.retryAtMs))}` : "";
  return `<tr class="breaker ${esc(b.state)}" data-venue="${esc(b.venue)}">
    <td class="mono">${text(b.venue, 40)}</td>
    <td><span class="badge ${b.state === "closed" ? "completed" : b.state === "open" ? "failed" : "executing"}" data-state="${esc(b.state)}">${esc(b.state)}</span></td>
    <td class="mono muted">${time(iso(b.sinceMs))}${retry}</td>
    <td class="txt">${text(b.reason, 80)}</td><td class="txt muted">${text(b.lastReason, 80)}</td></tr>`;
}

function engageForm() {
  return `<form class="kill-engage">
    <fieldset><legend>Engage a kill switch</legend>
      <label><input type="radio" name="kind" value="global" checked> everything</label>
      <label><input type="radio" name="kind" value="strategy"> one strategy:</label>
      <input name="strategy" placeholder="strategy id" maxlength="128" aria-label="strategy id">
      <input name="reason" placeholder="why (recorded)" maxlength="2000" aria-label="reason" required>
      <input name="actor" placeholder="your name" maxlength="200" aria-label="your name" value="${esc(localStorage.getItem(ACTOR_KEY) || "")}">
      <input name="token" type="password" placeholder="operator token" autocomplete="off" aria-label="operator token" value="${esc(sessionStorage.getItem(TOKEN_KEY) || "")}">
      <label class="confirm">Type <code class="kill-expected">global</code> to confirm:
        <input name="confirm" autocomplete="off" aria-label="confirmation"></label>
      <button type="submit" class="danger" disabled>Stop trading</button>
      <span class="kill-result small"></span>
    </fieldset></form>`;
}

function explain(error) {
  if (error instanceof ApiError) {
    const paths = (error.body?.errors || []).map((e) => `${e.path}: ${e.message}`).join("; ");
    return `${error.status}: ${error.body?.message || error.message}${paths ? ` (${paths})` : ""}`;
  }
  return String(error);
}

export function mount(element) {
  element.innerHTML = `<h2>Kill switch</h2><div class="kill-state"><p class="muted">loading…</p></div>
    ${engageForm()}<h3>Venue circuit breakers</h3><div class="breaker-state"></div>`;
  const state = element.querySelector(".kill-state");
  const breakers = element.querySelector(".breaker-state");
  const form = element.querySelector(".kill-engage");
  const button = form.querySelector("button");
  const expected = form.querySelector(".kill-expected");

  // The typed confirmation: the scope itself, exactly ("global" or "strategy:<id>").
  const check = () => {
    const scope = scopeOf(form);
    expected.textContent = scope || "strategy:<id>";
    button.disabled = !scope || form.confirm.value.trim() !== scope || !form.reason.value.trim();
    button.textContent = scope === "global" ? "Stop all trading" : `Stop ${scope || "a strategy"}`;
  };
  form.addEventListener("input", check);
  check();

  function render(body) {
    const switches = body.killSwitches || [];
    state.innerHTML = banner(switches) + (switches.length
      ? `<table class="kill-switches"><thead><tr><th>Scope</th><th>State</th><th>Since</th><th>By</th><th>Why</th><th></th></tr></thead>
         <tbody>${switches.map(switchRow).join("")}</tbody></table>`
      : "");
    const list = body.breakers || [];
    breakers.innerHTML = list.length
      ? `<table class="breakers"><thead><tr><th>Venue</th><th>State</th><th>Since</th><th>Why</th><th>Last failure</th></tr></thead>
         <tbody>${list.map(breakerRow).join("")}</tbody></table>`
      : `<p class="muted">Every venue's breaker is closed (none has changed).</p>`;
    for (const resume of state.querySelectorAll(".kill-resume")) {
      resume.onsubmit = (event) => change(event, resume, "/risk/resume", {
        scope: resume.dataset.scope, reason: resume.reason.value });
    }
  }

  async function refresh() {
    try {
      render(await api("/risk/kill"));
    } catch (error) {
      state.innerHTML = `<p class="error">Could not read the kill switches: ${text(explain(error), 200)}</p>`;
    }
  }

  async function change(event, where, path, { scope, reason }) {
    event.preventDefault();
    const result = where.querySelector(".kill-result");
    const token = form.token.value.trim();
    const actor = form.actor.value.trim();
    if (!token) { result.innerHTML = text("the operator token is needed (in the form above)", 80); return; }
    sessionStorage.setItem(TOKEN_KEY, token);
    if (actor) localStorage.setItem(ACTOR_KEY, actor);
    const body = { reason };
    if (scope !== "global") body.strategyId = scope.slice("strategy:".length);
    if (actor) body.actor = actor;
    result.textContent = "…";
    try {
      const done = await api(path, { method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` } });
      render(done);
      const said = done.changed ? `${done.event.topic} (seq ${done.event.seq})` : "already engaged: nothing changed";
      element.querySelector(".kill-engage .kill-result").innerHTML = text(said, 80);
      if (where === form) { form.confirm.value = ""; check(); }
    } catch (error) {
      result.innerHTML = `<span class="error">${text(explain(error), 200)}</span>`;
    }
  }

  form.onsubmit = (event) => change(event, form, "/risk/kill", {
    scope: scopeOf(form), reason: form.reason.value });

  refresh();
  // Any control change (a kill, a resume, a breaker) from anywhere: read the state again.
  const stream = new LiveStream({
    topics: ["control.*", "venue.breaker_changed"],
    onChange: () => refresh(),
    onReset: () => refresh(),
  });
  return { refresh, unmount() { stream.close(); } };
}
