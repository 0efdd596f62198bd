// Dead-letter inspector: the newest records on sep.deadletter, why each was refused, where it
// came from, and a safe preview of its bytes (every control and invisible character marked,
// nothing interpreted).  Filter by the kind of reason; ?kind= and ?q= keep the filter on reload.
// A record that failed for a passing reason can be re-driven onto its original topic (once;
// operator token required, kept for this tab only in sessionStorage).
import { api, ApiError } from "./api.js";
import { esc, num, shortId, text, time, visible } from "./format.js";

function hexdump(hex) {
  const lines = [];
  for (let i = 0; i < hex.length; i += 32) {
    const bytes = hex.slice(i, i + 32).match(/../g) || [];
    const ascii = bytes.map((b) => { const c = parseInt(b, 16); return c >= 32 && c < 127 ? String.fromCharCode(c) : "."; }).join("");
    lines.push(`${(i / 2).toString(16).padStart(6, "0")}  ${bytes.join(" ").padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}

function source(d) {
  const [topic, partition, offset] = (d.source || "").split("/");
  return offset === undefined ? text(d.source, 40)
    : `${text(topic, 28)} <span class="muted">/</span> ${text(partition, 4)} <span class="muted">@</span> ${text(offset, 12)}`;
}

function row(d, i) {
  return `<tr class="dl" data-i="${i}" data-offset="${d.partition}:${d.offset}">
    <td class="mono muted">${time(new Date(d.timestamp).toISOString())}</td>
    <td class="txt reason">${text(d.reason, 90)}</td>
    <td class="mono">${source(d)}</td>
    <td class="num">${d.partition}</td><td class="num">${num(d.offset)}</td>
    <td class="num">${num(d.originalBytes)}${d.truncated ? ` <span class="muted" title="only the first ${num(d.storedBytes)} bytes are kept">✂</span>` : ""}</td>
    <td class="id">${d.correlationId ? `<a href="/ui/intents/${encodeURIComponent(d.correlationId)}">${shortId(d.correlationId)}</a>` : "—"}</td></tr>`;
}

function redrive(d) {
  if (d.redriven) {
    const p = d.redriven.payload; const to = p.redrivenTo;
    return `<p class="redriven" data-event="${esc(d.redriven.eventId)}">↻ Re-driven ${time(d.redriven.timestamp)} by ${text(p.operator, 40)}
      to ${text(to.topic, 40)} / ${to.partition} @ ${num(to.offset)}${p.note ? ` — ${text(p.note, 120)}` : ""}</p>`;
  }
  if (!d.redrivable) return `<p class="muted small">Not re-drivable: ${text(d.notRedrivable, 160)}</p>`;
  return `<form class="redrive" data-at="${d.partition}/${d.offset}">
    <input name="token" type="password" placeholder="operator token" autocomplete="off" aria-label="operator token" value="${esc(sessionStorage.getItem("sep-operator-token") || "")}">
    <input name="operator" placeholder="your name" maxlength="64" aria-label="operator" value="${esc(localStorage.getItem("sep-operator") || "")}">
    <input name="note" placeholder="why it will pass now" maxlength="500" aria-label="note">
    <button type="submit">Re-drive to ${text(d.source.split("/")[0], 40)}</button>
    <span class="redrive-result small"></span></form>`;
}

function detail(d) {
  const errors = d.errors.map((e) => `<li><span class="mono">${text(e.path || "<root>", 80)}</span> ${text(e.message, 200)}</li>`).join("");
  return `<tr class="dl-detail"><td colspan="7"><div class="grid-2">
    <div><dl class="kv"><dt>Reason</dt><dd>${text(d.reason, 400)}</dd>
      <dt>Key</dt><dd>${text(d.key, 80)}</dd><dt>SHA-256</dt><dd>${text(d.sha256, 64)}</dd>
      <dt>Bytes</dt><dd>${num(d.originalBytes)} original · ${num(d.storedBytes)} kept · ${num(d.previewBytes)} shown</dd></dl>
      ${errors ? `<ul class="errors">${errors}</ul>` : ""}${d.errorsOmitted ? `<p class="muted">+${d.errorsOmitted} more errors</p>` : ""}
      ${redrive(d)}</div>
    <div><pre class="bytes preview">${esc(visible(d.preview))}</pre>
      <details><summary class="muted">hex (first ${Math.min(512, d.previewBytes)} bytes)</summary><pre class="bytes hex">${esc(hexdump(d.previewHex))}</pre></details></div>
  </div></td></tr>`;
}

export async function renderDeadLetters(root, setConnection) {
  setConnection("live");
  const params = new URLSearchParams(location.search);
  const filter = { kind: params.get("kind") || "", q: params.get("q") || "" };
  root.innerHTML = `
    <h1>Dead letters <span class="muted small" id="dl-count"></span></h1>
    <section class="panel">
      <div class="toolbar"><div class="chips" id="kinds"></div><span class="spacer"></span>
        <input id="dl-q" placeholder="reason or bytes contain…" maxlength="200" value="${esc(filter.q)}" aria-label="reason or bytes contain">
        <button class="secondary" id="dl-refresh" type="button">Refresh</button></div>
      <div class="scroll"><table class="fixed deadletters"><colgroup><col style="width:110px"><col><col style="width:260px">
        <col style="width:64px"><col style="width:80px"><col style="width:90px"><col style="width:150px"></colgroup>
        <thead><tr><th>Time</th><th>Reason</th><th>From (topic / partition @ offset)</th><th class="num">Part.</th>
        <th class="num">Offset</th><th class="num">Bytes</th><th>Intent</th></tr></thead><tbody id="dl-rows"></tbody></table></div>
    </section>`;
  const tbody = root.querySelector("#dl-rows");
  let items = [];

  const go = (kind, q) => {
    const next = new URLSearchParams();
    if (kind) next.set("kind", kind);
    if (q) next.set("q", q);
    location.search = next.toString();
  };
  root.querySelector("#dl-q").onkeydown = (e) => { if (e.key === "Enter") go(filter.kind, e.target.value.trim()); };
  root.querySelector("#dl-refresh").onclick = () => load();

  // Details the operator opened stay open across a refresh (by the dead letter's place in
  // sep.deadletter), and the table says when it is being reloaded (tests wait on it).
  const opened = new Set();
  const openDetail = (tr) => {
    tr.insertAdjacentHTML("afterend", detail(items[Number(tr.dataset.i)]));
    const form = tr.nextElementSibling.querySelector("form.redrive");
    if (form) form.onsubmit = (event) => submitRedrive(event, form);
  };

  async function load() {
    const q = new URLSearchParams({ limit: 200 });
    if (filter.kind) q.set("kind", filter.kind);
    if (filter.q) q.set("q", filter.q);
    tbody.dataset.loading = "1";
    let body;
    try {
      body = await api(`/deadletters?${q}`);
    } finally {
      delete tbody.dataset.loading;
    }
    items = body.items;
    root.querySelector("#dl-count").textContent = `${num(body.items.length)} shown · ${num(body.read)} newest read · ${num(body.held)} held`;
    const chip = (kind, label, n) => `<button type="button" class="chip ${kind === filter.kind ? "active" : ""}" data-kind="${esc(kind)}" title="${esc(visible(label))}">${esc(visible(label))} <span class="muted">${n}</span></button>`;
    root.querySelector("#kinds").innerHTML = chip("", "all", body.read)
      + Object.entries(body.kinds).map(([k, n]) => chip(k, k.length > 40 ? Array.from(k).slice(0, 39).join("") + "…" : k, n)).join("");
    root.querySelectorAll("#kinds .chip").forEach((b) => { b.onclick = () => go(b.dataset.kind, filter.q); });
    tbody.innerHTML = items.map(row).join("") || `<tr><td colspan="7" class="empty">Nothing dead-lettered${filter.kind || filter.q ? " matches" : ""}.</td></tr>`;
    tbody.querySelectorAll("tr.dl").forEach((tr) => {
      if (opened.has(tr.dataset.offset)) openDetail(tr);
      tr.onclick = (e) => {
        if (e.target.closest("a")) return;
        const open = tr.nextElementSibling?.classList.contains("dl-detail");
        if (open) {
          tr.nextElementSibling.remove();
          opened.delete(tr.dataset.offset);
        } else {
          openDetail(tr);
          opened.add(tr.dataset.offset);
        }
      };
    });
  }
  async function submitRedrive(event, form) {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const result = form.querySelector(".redrive-result");
    sessionStorage.setItem("sep-operator-token", data.token);
    localStorage.setItem("sep-operator", data.operator);
    const button = form.querySelector("button");
    result.className = "redrive-result small muted";
    result.textContent = "re-driving…";
    button.disabled = true;  // once: a second click would only be refused
    try {
      const done = await api(`/deadletters/${form.dataset.at}/redrive`, {
        method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${data.token}` },
        body: JSON.stringify({ operator: data.operator, note: data.note }),
      });
      const to = done.payload.redrivenTo;
      result.className = "redrive-result small ok";
      result.textContent = `re-driven to ${to.topic} / ${to.partition} @ ${to.offset}`;
    } catch (e) {
      const errors = e instanceof ApiError && e.body?.errors ? ` (${e.body.errors.map((x) => `${x.path}: ${x.message}`).join("; ")})` : "";
      result.className = "redrive-result small bad";
      result.textContent = `${e.message}${errors}`;
      button.disabled = e instanceof ApiError && e.body?.error === "already_redriven";
    }
  }

  await load();
  return { items: () => items, reload: load };
}
