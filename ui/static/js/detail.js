// Intent detail: the lifecycle as it happens — stage bar, live event timeline, plan, progress.
import { api, ApiError } from "./api.js";
import { LiveStream } from "./stream.js";
import { amount, badge, clip, esc, percent, text, time, TERMINAL, visible, whole } from "./format.js";

const STAGES = [
  ["submitted", "intent.submitted"], ["accepted", "intent.accepted"],
  ["prioritised", "intent.prioritised"], ["planned", "plan.created"],
  ["executing", "exec.started"], ["completed", "exec.completed"],
];
const FAILS = { "intent.rejected": 0, "risk.rejected": 1, "plan.rejected": 3, "exec.failed": 4, "intent.expired": 4 };

// One line about an event, from its payload (API) or the fields it wrote (change frame).
function summary(topic, p) {
  switch (topic) {
    case "intent.submitted": {
      const i = p.intent;
      if (i) return `${i.type} ${amount(i.assets[0].amount)} ${i.assets[0].asset.symbol} for ${i.assets[1].asset.symbol}, max slippage ${percent(i.constraints.maxSlippage)}`;
      return `${p.type || ""} ${amount(p.amount)} ${p.asset || ""} for ${p.counterAsset || ""}`;
    }
    case "risk.approved": return p.notional ? `notional ${amount(p.notional, 2)} · ${(p.checks || []).join(", ")}` : "risk checks passed";
    case "intent.prioritised": return `priority ${p.priority} · lane ${p.lane}`;
    case "plan.created": {
      const plan = p.plan;
      if (plan) return `${plan.steps.length} step(s) · est. out ${amount(plan.estimatedOut)} · impact ${percent(plan.priceImpact, 3)}`;
      return `plan ${p.planId || ""} · est. out ${amount(p.estimatedOut)}`;
    }
    case "exec.started": return p.steps ? `${p.steps} step(s)` : "execution started";
    case "exec.step_submitted": return `${p.venue ? p.venue + " · " : ""}ref ${p.orderRef}`;
    case "exec.step_filled": {
      if (p.amountIn) return `${p.venue ? p.venue + " · " : ""}${amount(p.amountIn)} ${p.assetIn} → ${amount(p.amountOut)} ${p.assetOut}${p.fee ? ` · fee ${amount(p.fee)} ${p.feeAsset || ""}` : ""}`;
      const fill = Object.entries(p).find(([k]) => k.startsWith("fill:"));
      if (fill) { const f = JSON.parse(fill[1]); return `${amount(f.amountIn)} ${f.assetIn} → ${amount(f.amountOut)} ${f.assetOut}`; }
      return "filled";
    }
    case "exec.completed": return `${amount(p.amountIn)} ${p.assetIn} → ${amount(p.amountOut)} ${p.assetOut} · slippage ${percent(p.realisedSlippage, 3)}`;
    default: return p.reason || (p.rule ? `${p.rule}: ${p.message}` : "");
  }
}

// The plan's child orders on order books (steps of kind "order", re-planned ones included):
// what each asked of its venue and what it got, with the venue's fee.
function childOrders(plan) {
  const orders = plan.steps.filter((s) => s.kind === "order");
  if (!orders.length) return "";
  const fees = Object.entries(plan.fees || {});
  return `<h3 style="margin-top:14px">Child orders</h3>
    <table id="child-orders"><thead><tr><th>Venue</th><th class="num">Limit</th><th class="num">Asked</th>
      <th class="num">Filled</th><th class="num">Fee</th><th>Status</th></tr></thead>
    <tbody>${orders.map((s) => `<tr data-step="${esc(s.stepId)}" data-status="${esc(s.status)}">
      <td>${text(s.venue, 16)}${/-r\d+$/.test(s.stepId) ? ` <span class="muted small">re-planned</span>` : ""}</td>
      <td class="num">${amount(s.limitPrice, 4)}</td>
      <td class="num">${amount(s.asked)} ${text(s.askedAsset, 12)}</td>
      <td class="num">${s.filled !== undefined ? `${amount(s.filled)} ${text(s.askedAsset, 12)}` : "—"}</td>
      <td class="num">${s.fee !== undefined ? `${amount(s.fee)} ${text(s.feeAsset, 12)}` : "—"}</td>
      <td>${badge(s.status, s.status === "submitted" ? "submitted-step" : "")}${s.reason ? ` <span class="muted small">${text(s.reason, 120)}</span>` : ""}</td></tr>`).join("")}</tbody></table>
    ${fees.length ? `<div class="muted small" id="fees">Venue fees: ${fees.map(([a, v]) => `${amount(v)} ${text(a, 12)}`).join(" · ")}</div>` : ""}`;
}

function topicClass(topic) {
  if (/rejected|failed|expired/.test(topic)) return "fail";
  if (topic === "exec.completed") return "done";
  return topic.startsWith("exec.") ? "exec" : "";
}

export async function renderDetail(root, intentId, setConnection) {
  root.innerHTML = `
    <h1><span class="muted">Intent</span> <span class="mono" id="intent-id">${text(intentId, 48)}</span>
      <span id="state-badge">${badge("…")}</span></h1>
    <div class="stages" id="stages">${STAGES.map(([s]) => `<span data-stage="${s}">${s}</span>`).join("")}</div>
    <div class="grid-2">
      <section class="panel"><h2>Intent</h2><dl class="kv" id="facts"></dl></section>
      <section class="panel"><h2>Plan &amp; execution</h2><div id="plan"><p class="muted">No plan yet.</p></div></section>
    </div>
    <section class="panel"><h2>Timeline</h2><ol class="timeline" id="timeline"></ol></section>`;
  const events = new Map();   // seq -> {topic, at (ms), payload}
  let intent = { id: intentId };
  let plan = null;

  function renderFacts() {
    const f = [
      ["State", badge(intent.state)], ["Strategy", whole(intent.strategyId || "—")],
      ...(intent.clientIntentId ? [["Client id", whole(intent.clientIntentId)]] : []),
      ["Side", text(intent.type, 12)],
      ["Amount", intent.asset ? `${amount(intent.amount)} ${text(intent.asset, 16)} for ${text(intent.counterAsset, 16)}` : "—"],
      ["Max slippage", percent(intent.maxSlippage)],
      ["Window", intent.timeWindowMs ? `${intent.timeWindowMs / 1000} s` : "—"],
      ["Style", text(intent.executionStyle, 16)],
      ["Priority", intent.priority ? `${text(intent.priority, 4)} · ${text(intent.lane, 16)}` : "—"],
      ["Plan", text(intent.planId, 64)], ["Order ref", text(intent.orderRef, 80)],
      ["Spent", intent.amountIn ? `${amount(intent.amountIn)} ${text(intent.assetIn, 16)}` : "—"],
      ["Received", intent.amountOut ? `${amount(intent.amountOut)} ${text(intent.assetOut, 16)}` : "—"],
      ["Realised slippage", percent(intent.realisedSlippage, 3)],
    ];
    if (intent.reason) f.push(["Reason", `<span style="color:var(--bad)">${whole(intent.reason)}</span>`]);
    root.querySelector("#facts").innerHTML = f.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
    root.querySelector("#state-badge").innerHTML = badge(intent.state);
    root.querySelector("#state-badge").dataset.state = intent.state || "";
    const seen = new Set([...events.values()].map((e) => e.topic));
    const failedAt = Object.entries(FAILS).find(([t]) => seen.has(t));
    root.querySelectorAll("#stages span").forEach((el, i) => {
      el.classList.toggle("done", seen.has(STAGES[i][1]));
      el.classList.toggle("fail", Boolean(failedAt) && failedAt[1] === i);
    });
  }

  function renderPlan() {
    if (!plan) return;
    const done = plan.status === "completed";
    root.querySelector("#plan").innerHTML = `
      <dl class="kv"><dt>Plan</dt><dd>${text(plan.id, 64)}</dd><dt>Status</dt><dd>${badge(plan.status)}</dd>
        <dt>Est. out</dt><dd>${amount(plan.estimatedOut)}</dd><dt>Price impact</dt><dd>${percent(plan.priceImpact, 3)}</dd>
        <dt>Risk score</dt><dd>${text(plan.riskScore, 12)}</dd></dl>
      <div class="muted" style="margin-top:10px">${plan.filledSteps} of ${plan.stepCount} step(s) filled</div>
      <div class="progress ${done ? "done" : ""}"><div style="width:${Number(plan.progress) * 100}%"></div></div>
      <table><thead><tr><th>Step</th><th>Venue</th><th>Route</th><th class="num">In</th><th class="num">Out</th><th>Status</th><th>Ref</th></tr></thead>
      <tbody>${plan.steps.map((s, i) => `<tr><td>${i + 1}</td><td>${text(s.venue, 16)}</td>
        <td>${text(s.assetIn, 12)} → ${text(s.assetOut, 12)}${s.hops > 1 ? ` <span class="muted">(${s.hops} hops)</span>` : ""}</td>
        <td class="num">${amount(s.filledIn || s.amountIn)}</td><td class="num">${amount(s.filledOut || s.amountOut)}</td>
        <td>${badge(s.status, s.status === "submitted" ? "submitted-step" : "")}</td>
        <td class="mono muted">${text(s.orderRef, 14)}</td></tr>`).join("")}</tbody></table>
      ${childOrders(plan)}`;
  }

  function renderTimeline() {
    const list = [...events.entries()].sort((a, b) => a[0] - b[0]);
    const first = list.length ? list[0][1].at : 0;
    root.querySelector("#timeline").innerHTML = list.map(([seq, e]) => `
      <li data-seq="${seq}" data-topic="${esc(e.topic)}"><span class="seq">${seq}</span>
        <span class="mono muted">${time(new Date(e.at).toISOString())}</span>
        <span><span class="topic ${topicClass(e.topic)}">${text(e.topic, 32)}</span>
          <span class="summary">${esc(visible(clip(summary(e.topic, e.payload), 300)))}</span></span>
        <span class="delta">+${e.at - first} ms</span></li>`).join("") ||
      `<li class="empty" style="display:block">Waiting for the first event…</li>`;
  }

  async function loadPlan() {
    if (!intent.planId) return;
    try { plan = await api(`/plans/${encodeURIComponent(intent.planId)}`); renderPlan(); }
    catch (e) { if (!(e instanceof ApiError && e.status === 404)) throw e; }
  }
  let planTimer = null;
  // A fetch cut short (page reload, server restart) must not be an uncaught rejection; the
  // next change refreshes the plan again.
  const refreshPlan = () => {
    planTimer ??= setTimeout(() => {
      planTimer = null;
      loadPlan().catch((e) => console.warn("plan refresh failed:", e));
    }, 150);
  };

  let streamId = null;
  try {
    const body = await api(`/intents/${encodeURIComponent(intentId)}`);
    streamId = body.streamId;
    intent = { ...intent, ...(body.intent || {}) };
    plan = body.plan;
    for (const e of body.events) events.set(e.seq, { topic: e.topic, at: Date.parse(e.timestamp), payload: e.payload });
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
    // Not projected yet (just submitted): the stream will bring it.
    streamId = (await api("/stats")).streamId;
  }
  renderFacts(); renderPlan(); renderTimeline();

  const stream = new LiveStream({
    correlationId: intentId, after: streamId, onStatus: setConnection,
    onReset: () => location.reload(),
    onChange(change) {
      if (!events.has(change.seq)) events.set(change.seq, { topic: change.topic, at: change.ms, payload: change.data });
      intent = { ...intent, ...change.data, state: change.state };
      renderFacts(); renderTimeline();
      if (change.topic.startsWith("plan.") || change.topic.startsWith("exec.")) refreshPlan();
      document.title = `${change.state} · ${visible(clip(intentId, 40))} · SEP`;
    },
  });
  document.title = `${intent.state || "…"} · ${visible(clip(intentId, 40))} · SEP`;
  return { stream, events, terminal: () => TERMINAL.has(intent.state) };
}
