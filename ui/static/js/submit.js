// Submit form: builds an IntentSubmission (the same model the pipeline validates) and shows
// the server's field errors next to the fields they name.
import { api, ApiError } from "./api.js";
import { esc } from "./format.js";

const DECIMAL = /^\d+(\.\d+)?$/;
const FIELD_OF = {   // server error path prefix -> form field
  "strategyId": "strategy", "type": "type", "assets.0.amount": "amount", "assets.0.asset": "asset",
  "assets.0": "amount", "assets.1": "counter", "constraints.maxSlippage": "slippage",
  "constraints.timeWindowMs": "window", "constraints.executionStyle": "style",
};

// "0.5" (percent) -> "0.005" (fraction), on the digits: no floating point near money.
export function percentToFraction(text) {
  const [whole, frac = ""] = text.split(".");
  const padded = whole.padStart(3, "0");
  const out = `${padded.slice(0, -2)}.${padded.slice(-2)}${frac}`.replace(/^0+(?=\d)/, "");
  return out.replace(/\.?0+$/, "") || "0";
}

function field(name, label, control, hint = "", wide = false) {
  return `<div class="field ${wide ? "wide" : ""}"><label for="${name}">${label}</label>${control}
    ${hint ? `<span class="hint">${hint}</span>` : ""}<span class="error" data-error-for="${name}"></span></div>`;
}

export async function renderSubmit(root, setConnection) {
  setConnection("live");
  const { assets, styles } = await api("/assets");
  const options = (selected) => assets.map((a) =>
    `<option value="${esc(a.symbol)}" ${a.symbol === selected ? "selected" : ""}>${esc(a.symbol)} · chain ${a.chainId}</option>`).join("");
  root.innerHTML = `
    <h1>Submit intent</h1>
    <section class="panel">
      <form class="intent" id="intent-form" novalidate>
        ${field("type", "Side", `<select id="type" name="type">
            <option value="DISPOSE">Sell exactly (DISPOSE)</option>
            <option value="ACQUIRE">Buy exactly (ACQUIRE)</option></select>`)}
        ${field("strategy", "Strategy", `<input id="strategy" name="strategy" value="ui" maxlength="128">`)}
        ${field("amount", "Amount", `<input id="amount" name="amount" inputmode="decimal" placeholder="1.5">`, "of the first asset, in its units")}
        <div class="field"><label>Token pair</label><div class="pair">
          <select id="asset" name="asset">${options("WETH")}</select><span class="muted">for</span>
          <select id="counter" name="counter">${options("USDC")}</select></div>
          <span class="error" data-error-for="asset"></span><span class="error" data-error-for="counter"></span></div>
        ${field("slippage", "Max slippage (%)", `<input id="slippage" name="slippage" value="0.5" inputmode="decimal">`, "0.5 = half a percent")}
        ${field("window", "Time window", `<div class="pair"><input id="window" name="window" value="5" inputmode="numeric">
            <span></span><select id="window-unit"><option value="1000">seconds</option>
            <option value="60000" selected>minutes</option><option value="3600000">hours</option></select></div>`)}
        ${field("style", "Execution style", `<select id="style" name="style">${styles.map((s) =>
            `<option ${s === "ADAPTIVE" ? "selected" : ""}>${s}</option>`).join("")}</select>`)}
        <div class="field wide"><div id="form-alert"></div></div>
        <div class="field wide"><div><button type="submit" id="submit">Submit intent</button></div></div>
      </form>
    </section>`;
  const form = root.querySelector("#intent-form");
  const value = (id) => form.querySelector(`#${id}`).value.trim();

  function showErrors(errors) {
    form.querySelectorAll(".error").forEach((e) => { e.textContent = ""; });
    form.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
    const unplaced = [];
    for (const { path, message } of errors) {
      const key = Object.keys(FIELD_OF).find((p) => path === p || path.startsWith(p + "."));
      const name = key ? FIELD_OF[key] : null;
      const slot = name && form.querySelector(`[data-error-for="${name}"]`);
      if (slot) {
        slot.textContent = message;
        form.querySelector(`#${name}`)?.classList.add("invalid");
      } else unplaced.push(`${path || "request"}: ${message}`);
    }
    form.querySelector("#form-alert").innerHTML = unplaced.length
      ? `<div class="alert">${unplaced.map(esc).join("<br>")}</div>` : "";
  }

  function check() {
    const errors = [];
    if (!DECIMAL.test(value("amount")) || /^0*(\.0*)?$/.test(value("amount")))
      errors.push({ path: "assets.0.amount", message: "enter an amount greater than 0, like 1.5" });
    if (value("asset") === value("counter"))
      errors.push({ path: "assets.1", message: "choose two different assets" });
    if (!DECIMAL.test(value("slippage")))
      errors.push({ path: "constraints.maxSlippage", message: "a percentage, like 0.5" });
    if (!/^\d+$/.test(value("window")) || Number(value("window")) <= 0)
      errors.push({ path: "constraints.timeWindowMs", message: "a whole number greater than 0" });
    if (!value("strategy")) errors.push({ path: "strategyId", message: "required" });
    return errors;
  }

  form.onsubmit = async (event) => {
    event.preventDefault();
    const errors = check();
    showErrors(errors);
    if (errors.length) return;
    const symbol = (s) => assets.find((a) => a.symbol === s);
    const body = {
      strategyId: value("strategy"), type: value("type"),
      assets: [{ asset: symbol(value("asset")), amount: value("amount") }, { asset: symbol(value("counter")) }],
      constraints: { maxSlippage: percentToFraction(value("slippage")),
        timeWindowMs: Number(value("window")) * Number(value("window-unit")),
        executionStyle: value("style") },
    };
    const button = form.querySelector("#submit");
    button.disabled = true;
    try {
      const accepted = await api("/intents", { method: "POST", body: JSON.stringify(body) });
      location.assign(`/ui/intents/${encodeURIComponent(accepted.intentId)}`);
    } catch (error) {
      button.disabled = false;
      if (error instanceof ApiError && error.body?.errors) showErrors(error.body.errors);
      else showErrors([{ path: "", message: error.message }]);
    }
  };
  return { form };
}
