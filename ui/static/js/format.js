// Small formatting helpers. Amounts arrive as decimal strings and are shown as such (trimmed),
// never through floating point.
//
// Anything a producer wrote (strategy ids, client ids, reasons, venue names, raw bytes) is
// hostile until shown otherwise: it goes through `text()` or `cell()`, which make invisible
// and direction-changing characters visible, cut it to a bounded number of characters (code
// points, so an emoji is never split), escape it, and isolate its direction (`<bdi>`) so that
// RTL text cannot reorder the cells around it.
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// C0/C1 controls (NUL included) as their Unicode "control picture"; format characters
// (zero-width space and joiners, bidi embeddings, overrides and isolates, BOM) as U+FFFD.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/gu;
const INVISIBLE = /[\p{Cf}\u2028\u2029]/gu;

export function visible(value) {
  return String(value ?? "")
    .replace(CONTROL, (c) => (c === "\u007f" ? "\u2421" : c.charCodeAt(0) < 32
      ? String.fromCharCode(0x2400 + c.charCodeAt(0)) : "\ufffd"))
    .replace(INVISIBLE, "\ufffd");
}

// At most `max` code points; longer text ends in "…".  Only the first `max * 4` UTF-16 units
// are ever looked at, so a 60 KB value costs no more than a short one.
export function clip(value, max = 40) {
  const head = Array.from(String(value ?? "").slice(0, max * 4 + 2));
  return head.length > max ? head.slice(0, max - 1).join("") + "…" : head.join("");
}

const TITLE_MAX = 1000;   // a hover shows this much; the detail page shows the whole value

// User text as safe HTML: visible, clipped, escaped, direction-isolated; the (longer) value on
// hover.  `data-len` holds the full length in code points, for the tests and the curious.
export function text(value, max = 40, cls = "") {
  if (value === undefined || value === null || value === "") return "—";
  const raw = String(value);
  const shown = visible(clip(raw, max));
  const title = visible(clip(raw, TITLE_MAX));
  return `<bdi class="clip ${cls}" title="${esc(title)}">${esc(shown)}</bdi>`;
}

// Ids are shortened one way everywhere: a "<kind>-<ULID>" id keeps its kind and the ULID's
// last 8 characters (the random part: what tells two ids of one millisecond apart); anything
// else is clipped like other user text.  The full id is on hover.
const ULID_ID = /^([a-z]+)-([0-9A-HJKMNP-TV-Z]{26})$/;

export function shortId(id) {
  if (!id) return "—";
  const m = ULID_ID.exec(id);
  if (m) return `<bdi class="clip id" title="${esc(id)}">${esc(m[1])}-…${esc(m[2].slice(-8))}</bdi>`;
  return text(id, 16, "id");
}

// The whole value, for a detail page: every character visible, escaped, in a scrolling box.
export function whole(value) {
  const raw = String(value ?? "");
  if (raw.length <= 120) return text(raw, 120);
  return `<details class="whole"><summary>${text(raw, 60)} <span class="muted">(${Array.from(raw).length.toLocaleString()} characters)</span></summary>
    <pre class="whole">${esc(visible(raw))}</pre></details>`;
}

export function badge(state, extraClass = "") {
  return `<span class="badge ${esc(state)} ${extraClass}" data-state="${esc(state)}">${esc(state || "—")}</span>`;
}

const DECIMAL = /^-?\d+(\.\d+)?$/;

export function amount(value, places = 6) {
  if (value === undefined || value === null || value === "") return "—";
  if (!DECIMAL.test(String(value))) return text(value, 24);
  const [whole, frac = ""] = String(value).split(".");
  const cut = frac.slice(0, places).replace(/0+$/, "");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return cut ? `${grouped}.${cut}` : grouped;
}

export function percent(fraction, places = 2) {
  if (fraction === undefined || fraction === null || fraction === "") return "—";
  if (!DECIMAL.test(String(fraction))) return text(fraction, 24);
  const [whole, frac = ""] = String(fraction).replace("-", "").split(".");
  const digits = (whole + (frac + "00").slice(0, 2)).replace(/^0+(?=\d)/, "");
  const rest = frac.slice(2, 2 + places).replace(/0+$/, "");
  const shown = `${digits || "0"}${rest ? "." + rest : ""}`;
  // A tiny negative that rounds to nothing is shown as 0%, not "−0%".
  const sign = String(fraction).startsWith("-") && /[1-9]/.test(shown) ? "−" : "";
  return `${sign}${shown}%`;
}

export function time(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

// A count or rate for the operator's pages: grouped, a fixed number of places, "—" for none.
export function num(value, places = 0) {
  if (value === undefined || value === null || Number.isNaN(Number(value))) return "—";
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
}

export function ms(seconds) {
  if (seconds === undefined || seconds === null) return "—";
  const v = Number(seconds) * 1000;
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`;
}

export const TERMINAL = new Set(["completed", "rejected", "risk_rejected", "plan_rejected", "failed", "expired", "cancelled"]);
