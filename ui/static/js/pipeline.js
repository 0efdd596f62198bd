// The pipeline view: per stage, over the last minute, how fast, how late, how far behind,
// what failed; and whether the stack is up.  A snapshot from GET /pipeline, then one per
// sample over WS /stream/pipeline (each replaces the last).
import { api } from "./api.js";
import { SnapshotStream } from "./live.js";
import { badge, esc, ms, num, text, time } from "./format.js";

const DEPENDENCIES = [["kafka", "Kafka"], ["postgres", "PostgreSQL"], ["redis", "Redis"], ["chain", "Chain"]];

function healthCards(s) {
  const card = (id, label, dep) => {
    const ok = dep?.status === "ok";
    return `<div class="counter ${ok ? "ok" : "bad"}" id="h-${id}" data-status="${esc(dep?.status || "unknown")}">
      <div class="label">${label}</div><div class="value">${ok ? "up" : "down"}</div>
      <div class="muted small">${dep ? (ok ? `${num(dep.latencyMs, 1)} ms` : text(dep.error, 40)) : "—"}</div></div>`;
  };
  const workers = s.workers || [];
  return DEPENDENCIES.map(([id, label]) => card(id, label, s.health?.[id])).join("")
    + `<div class="counter ${workers.length ? "info" : "bad"}" id="h-workers"><div class="label">Workers</div>
        <div class="value">${workers.length}</div><div class="muted small">event store: ${esc(s.eventStore || "—")}</div></div>`
    + `<div class="counter" id="h-lag"><div class="label">Consumer lag</div>
        <div class="value">${s.lagTotal === null || s.lagTotal === undefined ? "—" : num(s.lagTotal)}</div>
        <div class="muted small">records behind, all partitions</div></div>`;
}

function stageRows(s) {
  const slowest = Math.max(0.001, ...s.stages.map((st) => st.latency.p99 || 0));
  return s.stages.map((st) => `<tr data-stage="${esc(st.name)}">
    <td>${esc(st.name)}</td>
    <td class="num" data-field="eventsPerS">${num(st.eventsPerS, 1)}</td>
    <td class="num" data-field="events">${num(st.events)}</td>
    <td class="num" data-field="p50">${ms(st.latency.p50)}</td>
    <td class="num" data-field="p99">${ms(st.latency.p99)}</td>
    <td class="bar"><div style="width:${Math.round(100 * (st.latency.p99 || 0) / slowest)}%"></div></td>
    <td class="num muted">${num(st.latency.count)}</td></tr>`).join("")
    || `<tr><td colspan="7" class="empty">No stage has emitted events yet.</td></tr>`;
}

function groupRows(s) {
  return s.groups.map((g) => `<tr data-group="${esc(g.name)}">
    <td>${text(g.name, 40)}</td><td class="num">${g.workers}</td>
    <td class="num" data-field="recordsPerS">${num(g.recordsPerS, 1)}</td>
    <td class="num" data-field="batchSize">${num(g.batchSize, 1)}</td>
    <td class="num">${num(g.queued)}</td>
    <td class="num ${g.failuresInWindow ? "bad" : ""}" data-field="failures">${num(g.failuresInWindow)} <span class="muted">/ ${num(g.failures)}</span></td>
    <td class="num ${g.deadLettersInWindow ? "bad" : ""}" data-field="deadLetters">${num(g.deadLettersInWindow)} <span class="muted">/ ${num(g.deadLetters)}</span></td>
    <td>${badge(g.failing ? "failing" : "ok", g.failing ? "failed" : "completed")}</td></tr>`).join("")
    || `<tr><td colspan="8" class="empty">No worker is reporting.</td></tr>`;
}

// Priority lanes (topology.yaml lanes:): how much waits in each, how fast it moves, how
// long its records waited from ingest's write to the chain's pass.
function laneRows(s) {
  return (s.lanes || []).map((l) => `<tr data-lane="${esc(l.name)}">
    <td>${esc(l.name)} <span class="muted small">${l.priorities[0]}–${l.priorities[1]} · weight ${l.weight}${l.minShare ? ` · min ${Math.round(100 * l.minShare)} %` : ""}</span></td>
    <td class="num" data-field="recordsPerS">${num(l.recordsPerS, 1)}</td>
    <td class="num" data-field="queued">${num(l.queued)}</td>
    <td class="num ${l.behind ? "warn" : ""}" data-field="behind">${num(l.behind)}</td>
    <td class="num" data-field="meanWait">${l.meanWaitMs === null || l.meanWaitMs === undefined ? "—" : `${num(l.meanWaitMs, 1)} ms`}</td>
    <td class="num" data-field="maxWait">${num(l.waitMsMax, 0)} ms</td>
    <td>${badge(l.paused ? "paused" : "fetching", l.paused ? "pending" : "completed")}</td></tr>`).join("")
    || `<tr><td colspan="7" class="empty">No lanes: topology.yaml declares none (one topic, arrival order).</td></tr>`;
}

function lagRows(s) {
  if (s.lag === null || s.lag === undefined) return `<tr><td colspan="5" class="empty">Kafka did not answer: lag unknown.</td></tr>`;
  const most = Math.max(1, ...s.lag.map((l) => l.behind));
  return s.lag.map((l) => `<tr data-tp="${esc(l.topic)}/${l.partition}">
    <td class="mono">${text(l.topic, 32)}</td><td class="num">${l.partition}</td>
    <td class="num ${l.behind ? "warn" : ""}" data-field="behind">${num(l.behind)}</td>
    <td class="bar"><div style="width:${Math.round(100 * l.behind / most)}%"></div></td>
    <td class="muted">${l.readBy.map(esc).join(", ")} <span class="muted">· ${text(l.group, 24)}</span></td></tr>`).join("")
    || `<tr><td colspan="5" class="empty">No consumer group has committed yet.</td></tr>`;
}

export async function renderPipeline(root, setConnection) {
  root.innerHTML = `
    <h1>Pipeline <span class="muted small" id="p-window"></span></h1>
    <section class="counters" id="health"></section>
    <div class="alert" id="problems" hidden></div>
    <section class="panel"><h2>Stages · last minute</h2>
      <table class="fixed" id="stages"><thead><tr><th>Stage</th><th class="num">Events/s</th><th class="num">Events</th>
        <th class="num">Latency p50</th><th class="num">p99</th><th>p99</th><th class="num">Samples</th></tr></thead><tbody></tbody></table>
      <p class="muted small">Latency: from an event's stamp by its stage to its projection into the read models.</p></section>
    <section class="panel"><h2>Workers' stage groups · last minute / since start</h2>
      <table class="fixed" id="groups"><thead><tr><th>Group</th><th class="num">Workers</th><th class="num">Records/s</th>
        <th class="num">Batch size</th><th class="num">Queued</th><th class="num">Failed batches</th><th class="num">Dead letters</th><th>State</th></tr></thead><tbody></tbody></table></section>
    <section class="panel"><h2>Priority lanes · last minute</h2>
      <table class="fixed" id="lanes"><thead><tr><th>Lane</th><th class="num">Records/s</th><th class="num">Queued</th>
        <th class="num">Behind in Kafka</th><th class="num">Mean wait</th><th class="num">Max wait</th><th>Fetch</th></tr></thead><tbody></tbody></table>
      <p class="muted small">Wait: from ingest's write to the lane to the chain's pass that took the record.</p></section>
    <section class="panel"><h2>Consumer lag per partition</h2>
      <table class="fixed" id="lag"><thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Behind</th><th></th><th>Read by</th></tr></thead><tbody></tbody></table></section>`;
  const view = { snapshot: null };

  function render(s) {
    view.snapshot = s;
    if (s.error) {
      root.querySelector("#problems").hidden = false;
      root.querySelector("#problems").textContent = `sampling failed: ${s.error}`;
      return;
    }
    root.querySelector("#p-window").textContent = `window ${s.windowS} s · ${time(new Date(s.at * 1000).toISOString())}`;
    root.querySelector("#health").innerHTML = healthCards(s);
    root.querySelector("#stages tbody").innerHTML = stageRows(s);
    root.querySelector("#groups tbody").innerHTML = groupRows(s);
    root.querySelector("#lanes tbody").innerHTML = laneRows(s);
    root.querySelector("#lag tbody").innerHTML = lagRows(s);
    const problems = root.querySelector("#problems");
    problems.hidden = !s.problems.length;
    problems.innerHTML = s.problems.map((p) => text(p, 200)).join("<br>");
  }

  render(await api("/pipeline"));
  const stream = new SnapshotStream("/stream/pipeline", { onSnapshot: render, onStatus: setConnection });
  return { stream, view };
}
