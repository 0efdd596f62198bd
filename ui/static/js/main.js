// The one entry point: route on the path, render a page, keep one live stream per page.
import { renderDashboard } from "./dashboard.js";
import { renderSubmit } from "./submit.js";
import { renderDetail } from "./detail.js";
import { renderPipeline } from "./pipeline.js";
import { renderDeadLetters } from "./deadletters.js";
import { renderMetrics } from "./metrics.js";
import { renderCharts } from "./charts.js";
import { renderStrategies } from "./strategies.js";
import { renderRisk } from "./risk.js";
import { renderBooks } from "./books.js";

const app = document.getElementById("app");
const conn = document.getElementById("conn");

export function setConnection(state) {
  conn.dataset.state = state;
  document.getElementById("conn-text").textContent =
    { live: "live", connecting: "connecting", down: "reconnecting" }[state] || state;
}

function route() {
  const path = location.pathname;
  const detail = path.match(/^\/ui\/intents\/(.+)$/);
  const pages = {
    submit: renderSubmit, pipeline: renderPipeline, deadletters: renderDeadLetters,
    metrics: renderMetrics, charts: renderCharts, strategies: renderStrategies,
    risk: renderRisk, books: renderBooks,
  };
  const name = detail ? "detail" : (path.match(/^\/ui\/([a-z]+)/)?.[1] || "dashboard");
  document.querySelectorAll("nav a[data-nav]").forEach((a) => a.classList.toggle(
    "active", a.dataset.nav === name));
  if (detail) return renderDetail(app, decodeURIComponent(detail[1]), setConnection);
  return (pages[name] || renderDashboard)(app, setConnection);
}

// The stack's mode in the header: PAPER (paper twins at live prices, nothing sent) or LIVE.
async function showMode() {
  const badge = document.getElementById("mode");
  try {
    const body = await (await fetch("/health")).json();  // 503 when degraded: still the body
    if (!body.mode) return;
    badge.textContent = body.mode.toUpperCase();
    badge.dataset.mode = body.mode;
    badge.hidden = false;
  } catch (_) { /* the page works without it; the next load tries again */ }
}

showMode();
window.sep = { page: route() };
