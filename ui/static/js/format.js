// Small formatting helpers. Amounts arrive as decimal strings and are shown as such (trimmed),
// never through floating point.
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function badge(state, extraClass = "") {
  return `<span class="badge ${esc(state)} ${extraClass}" data-state="${esc(state)}">${esc(state || "—")}</span>`;
}

export function amount(text, places = 6) {
  if (text === undefined || text === null || text === "") return "—";
  const [whole, frac = ""] = String(text).split(".");
  const cut = frac.slice(0, places).replace(/0+$/, "");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return cut ? `${grouped}.${cut}` : grouped;
}

export function percent(fraction, places = 2) {
  if (fraction === undefined || fraction === null || fraction === "") return "—";
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
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

export function shortId(id) {
  return id ? `${id.slice(0, 7)}…${id.slice(-6)}` : "—";
}

export const TERMINAL = new Set(["completed", "rejected", "risk_rejected", "plan_rejected", "failed", "expired", "cancelled"]);
