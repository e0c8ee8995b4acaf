// The quote currency the page shows prices in: one of the server's configured ones
// (GET /currencies), chosen in the header's picker and remembered per browser
// (localStorage). Every read that carries prices asks for it (`?currency=`), and every
// price shown is formatted as it.
import { api } from "./api.js";
import { $ } from "./dom.js";
import { money } from "./format.js";

const CHOSEN_KEY = "cps.currency";

const ui = {
  picker: $("currency-picker"),
  select: $("currency"),
  headings: document.querySelectorAll("[data-price-heading]"),
};

// `known`: the answer of GET /currencies for this session, once asked (a promise).
const state = { known: null, code: "usd", onChange: () => {} };

export const code = () => state.code;
export const upper = () => state.code.toUpperCase();

// The server's currencies, asked once a session: every read of prices waits for them,
// since the remembered choice may no longer be configured. A failure is asked again.
export function ready() {
  if (!state.known) {
    state.known = api("GET", "/currencies").then(adopt, (error) => {
      state.known = null;
      throw error;
    });
  }
  return state.known;
}

// `path` asking for the chosen currency (`path` may have a query already).
export const priced = (path) =>
  `${path}${path.includes("?") ? "&" : "?"}currency=${encodeURIComponent(state.code)}`;

// A price in the chosen currency.
export const price = (value, digits) => money(value, state.code, digits);

// Shows `value` in `node`; null (the latest price stored has none in this currency,
// which was configured after it) as a dash that says why.
export function showPrice(node, value) {
  node.textContent = price(value);
  node.dataset.value = String(value);
  if (value === null) {
    node.title = `No price in ${upper()} yet: the latest price was stored before ${upper()} was configured.`;
  } else {
    node.removeAttribute("title");
  }
}

// Who hears that the person chose another currency (after it is in effect).
export function whenChanged(handler) {
  state.onChange = handler;
}

// Logged out: asked again on the next log-in (the server may have restarted with others).
export function reset() {
  state.known = null;
}

function adopt({ currencies, default: fallback }) {
  const remembered = localStorage.getItem(CHOSEN_KEY);
  const options = currencies.map((c) => {
    const option = document.createElement("option");
    option.value = c;
    option.textContent = c.toUpperCase();
    return option;
  });
  ui.select.replaceChildren(...options);
  // One currency configured: nothing to choose.
  ui.picker.hidden = currencies.length < 2;
  use(currencies.includes(remembered) ? remembered : fallback);
}

function use(chosen) {
  state.code = chosen;
  ui.select.value = chosen;
  for (const heading of ui.headings) heading.textContent = `Price (${upper()})`;
}

ui.select.addEventListener("change", () => {
  localStorage.setItem(CHOSEN_KEY, ui.select.value);
  use(ui.select.value);
  state.onChange();
});
