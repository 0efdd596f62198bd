// Metrics: the figures of GET /metrics (Prometheus text), parsed here and shown for a person;
// the raw text stays one link away for scrapers.  All-time figures (the pipeline view has the
// last minute).  Refreshes every 5 s.
import { esc, ms, num, text } from "./format.js";

export function parsePrometheus(body) {
  const samples = [];
  for (const line of body.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

// Quantile from cumulative Prometheus buckets, interpolated inside the bucket.
function quantile(buckets, q) {
  const total = buckets.at(-1)?.count || 0;
  if (!total) return null;
  const rank = q * total;
  let prevCount = 0; let prevBound = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevBound;
      return prevBound + (le - prevBound) * ((rank - prevCount) / Math.max(count - prevCount, 1));
    }
    prevCount = count; prevBound = le;
  }
  return prevBound;
}

function histograms(samples, name, label) {
  const out = new Map();
  for (const s of samples) {
    const key = s.labels[label];
    if (key === undefined) continue;
    const h = out.get(key) || { buckets: [], sum: 0, count: 0 };
    if (s.name === `${name}_bucket`) h.buckets.push({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value });
    else if (s.name === `${name}_sum`) h.sum = s.value;
    else if (s.name === `${name}_count`) h.count = s.value;
    else continue;
    out.set(key, h);
  }
  return [...out.entries()].map(([key, h]) => {
    h.buckets.sort((a, b) => a.le - b.le);
    return { key, count: h.count, mean: h.count ? h.sum / h.count : null, p50: quantile(h.buckets, 0.5), p99: quantile(h.buckets, 0.99) };
  });
}

const of = (samples, name) => samples.filter((s) => s.name === name);

function table(id, heads, rows, empty) {
  return `<table class="fixed" id="${id}"><thead><tr>${heads.map((h, i) => `<th class="${i ? "num" : ""}">${h}</th>`).join("")}</tr></thead>
    <tbody>${rows.join("") || `<tr><td colspan="${heads.length}" class="empty">${empty}</td></tr>`}</tbody></table>`;
}

function render(root, samples) {
  const states = of(samples, "sep_intents");
  const total = states.reduce((n, s) => n + s.value, 0);
  const stageEvents = of(samples, "sep_stage_events_total");
  const events = stageEvents.reduce((n, s) => n + s.value, 0);
  const lag = of(samples, "sep_consumer_lag");
  const lagUp = of(samples, "sep_consumer_lag_up")[0]?.value === 1;
  const completed = states.find((s) => s.labels.state === "completed")?.value || 0;
  const figure = (id, label, value) => `<div class="counter" id="${id}"><div class="label">${label}</div><div class="value">${value}</div></div>`;
  root.querySelector("#figures").innerHTML =
    figure("m-intents", "Intents", num(total)) + figure("m-completed", "Completed", num(completed))
    + figure("m-events", "Events applied", num(events))
    + figure("m-lag", "Consumer lag", lagUp ? num(lag.reduce((n, s) => n + s.value, 0)) : "—")
    + figure("m-clients", "Stream clients", num(of(samples, "sep_stream_clients")[0]?.value));
  const histRow = (h) => `<tr data-key="${esc(h.key)}"><td>${text(h.key, 32)}</td><td class="num">${num(h.count)}</td>
    <td class="num">${ms(h.mean)}</td><td class="num">${ms(h.p50)}</td><td class="num">${ms(h.p99)}</td></tr>`;
  root.querySelector("#m-tables").innerHTML = `
    <section class="panel"><h2>Intents by state</h2>${table("m-states", ["State", "Intents", "Share"],
      states.sort((a, b) => b.value - a.value).map((s) => `<tr data-key="${esc(s.labels.state)}"><td>${text(s.labels.state, 24)}</td><td class="num">${num(s.value)}</td>
      <td class="num">${total ? num(100 * s.value / total, 1) : "—"} %</td></tr>`), "No intents yet.")}</section>
    <section class="panel"><h2>Events by stage</h2>${table("m-stages", ["Stage", "Events"],
      stageEvents.map((s) => `<tr data-key="${esc(s.labels.stage)}"><td>${text(s.labels.stage, 24)}</td><td class="num">${num(s.value)}</td></tr>`), "No events yet.")}</section>
    <section class="panel"><h2>Projection latency by stage (stamp → read model)</h2>${table("m-latency", ["Stage", "Events", "Mean", "p50", "p99"],
      histograms(samples, "sep_projection_lag_seconds", "stage").map(histRow), "Nothing projected yet.")}</section>
    <section class="panel"><h2>Intent duration by outcome (created → terminal event)</h2>${table("m-duration", ["Outcome", "Intents", "Mean", "p50", "p99"],
      histograms(samples, "sep_intent_duration_seconds", "state").map(histRow), "No intent has finished yet.")}</section>
    <section class="panel"><h2>Consumer lag</h2>${lagUp ? table("m-lagtable", ["Group · topic", "Partitions", "Behind"],
      Object.entries(lag.reduce((acc, s) => { const k = `${s.labels.group} · ${s.labels.topic}`; (acc[k] ||= []).push(s.value); return acc; }, {}))
        .map(([k, v]) => `<tr><td>${text(k, 60)}</td><td class="num">${v.length}</td><td class="num">${num(v.reduce((a, b) => a + b, 0))}</td></tr>`), "No consumer group has committed.")
      : `<p class="muted">Kafka did not answer: lag unknown.</p>`}</section>`;
}

export async function renderMetrics(root, setConnection) {
  root.innerHTML = `<h1>Metrics <span class="muted small">all time · <a href="/metrics" target="_blank" rel="noopener">raw Prometheus text</a> · <a href="/ui/pipeline">last minute: pipeline</a></span></h1>
    <section class="counters" id="figures"></section><div class="grid-2" id="m-tables"></div>`;
  const view = { samples: [] };
  async function load() {
    const response = await fetch("/metrics");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    view.samples = parsePrometheus(await response.text());
    render(root, view.samples);
    setConnection("live");
  }
  await load();
  const timer = setInterval(() => load().catch((e) => { setConnection("down"); console.warn("metrics refresh failed:", e); }), 5000);
  return { view, stop: () => clearInterval(timer), reload: load };
}
