// One crypto: its price history (a chart and a table) and its statistics, each under
// an address of its own, kept up to date by the prices the stream sends.
import { detailHash } from "./addresses.js";
import { api, cryptoPath, isNotTracked } from "./api.js";
import * as chart from "./chart.js";
import * as currency from "./currency.js";
import { $, timeElement } from "./dom.js";
import { isNumber, percent, signed, timeZone } from "./format.js";
import { report } from "./messages.js";

const HISTORY_KEPT = 100; // as many prices as the server keeps per crypto

const ui = {
  detailTitle: $("detail-title"),
  detailPrice: $("detail-price"),
  tabHistory: $("tab-history"),
  tabStats: $("tab-stats"),
  notTracked: $("not-tracked"),
  notTrackedText: $("not-tracked-text"),
  historyPanel: $("history-panel"),
  historyCaption: $("history-caption"),
  historyRows: document.querySelector("#history-table tbody"),
  statsPanel: $("stats-panel"),
  stats: $("stats"),
};

const detail = { symbol: null, tab: null, crypto: null, history: [], missing: false };
// Prices the stream sent while the history was being fetched: the answer may have
// left the server before they were stored, so they are added to it again.
let streamed = null;
let lastLoad = 0; // when the crypto last came from the server (ms)
// Counts the views opened and closed: an answer that comes back after another view
// (even another tab of the same crypto) was opened is not shown.
let opened = 0;

export const loadedAt = () => lastLoad;
export const isOpen = () => detail.symbol !== null;

// Shows `tab` ("history" or "stats") of `symbol`, then what the server has now.
export async function open(symbol, tab) {
  opened += 1;
  const same = detail.symbol === symbol;
  detail.tab = tab;
  ui.tabHistory.href = detailHash(symbol, "history");
  ui.tabStats.href = detailHash(symbol, "stats");
  for (const [name, tabLink] of [["history", ui.tabHistory], ["stats", ui.tabStats]]) {
    if (name === tab) tabLink.setAttribute("aria-current", "page");
    else tabLink.removeAttribute("aria-current");
  }
  if (!same) {
    detail.symbol = symbol;
    detail.crypto = null;
    detail.history = [];
    detail.missing = false;
    ui.detailTitle.textContent = symbol;
    ui.detailPrice.textContent = "Loading…";
    ui.historyPanel.hidden = true;
    ui.statsPanel.hidden = true;
    ui.notTracked.hidden = true;
  }
  showPanel();
  await reload();
}

// Another currency was chosen: the open crypto again, in it (nothing of the old one
// stays, nor comes back from an answer still on its way).
export function reprice() {
  opened += 1;
  detail.crypto = null;
  detail.history = [];
  showPanel();
  return reload();
}

export function close() {
  opened += 1;
  detail.symbol = null;
  detail.tab = null;
  detail.crypto = null;
  detail.history = [];
  detail.missing = false;
  ui.stats.replaceChildren();
  ui.historyRows.replaceChildren();
  chart.clear();
}

// The open crypto again, as the server has it now.
export async function reload() {
  const { symbol, tab } = detail;
  const count = opened;
  let crypto;
  let history;
  const since = tab === "history" ? [] : null;
  streamed = since;
  try {
    await currency.ready();
    [crypto, history] = await Promise.all([
      api("GET", currency.priced(cryptoPath(symbol))),
      tab === "history" ? api("GET", currency.priced(cryptoPath(symbol, "/history"))) : null,
      tab === "stats" ? loadStats(symbol) : null,
    ]);
  } catch (error) {
    if (isNotTracked(error) && detail.symbol === symbol) {
      showNotTracked(symbol);
      return;
    }
    throw error;
  } finally {
    if (streamed === since) streamed = null;
  }
  if (detail.symbol !== symbol || count !== opened) return; // another view meanwhile
  lastLoad = Date.now();
  detail.missing = false;
  detail.crypto = crypto;
  renderDetailHeading();
  if (history) {
    detail.history = history.history.slice(-HISTORY_KEPT);
    for (const point of since) addPoint(point);
    renderHistory();
  }
  showPanel();
}

// Someone started tracking `symbol`: shown, if this view said it was not tracked.
export function added(symbol) {
  if (detail.symbol === symbol && detail.missing) reload().catch((error) => report(error));
}

export function removed(symbol) {
  if (detail.symbol === symbol) showNotTracked(symbol);
}

export function priceChanged({ symbol, current_price: price, last_updated: at }) {
  if (detail.symbol !== symbol || detail.missing) return;
  if (detail.crypto) {
    detail.crypto.current_price = price;
    detail.crypto.last_updated = at;
    renderDetailHeading();
  }
  if (streamed) streamed.push({ price, timestamp: at });
  if (addPoint({ price, timestamp: at })) renderHistory();
  if (detail.tab === "stats") loadStats(symbol).catch((error) => report(error));
}

function showPanel() {
  ui.notTracked.hidden = !detail.missing;
  ui.historyPanel.hidden = detail.missing || detail.tab !== "history" || !detail.crypto;
  ui.statsPanel.hidden = detail.missing || detail.tab !== "stats" || !detail.crypto;
  if (!ui.historyPanel.hidden) plotHistory();
}

const plotHistory = () =>
  chart.plot(detail.history, detail.crypto ? detail.crypto.symbol : detail.symbol);

async function loadStats(symbol) {
  const asked = currency.code();
  const stats = await api("GET", currency.priced(cryptoPath(symbol, "/stats")));
  if (detail.symbol === symbol && asked === currency.code()) renderStats(stats);
  return stats;
}

function showNotTracked(symbol) {
  detail.missing = true;
  detail.crypto = null;
  detail.history = [];
  ui.detailTitle.textContent = symbol;
  ui.detailPrice.textContent = "";
  ui.notTrackedText.textContent = `${symbol} is not tracked: nobody has added it, or it was deleted.`;
  showPanel();
}

function renderDetailHeading() {
  const { crypto } = detail;
  ui.detailTitle.textContent = `${crypto.symbol} · ${crypto.name}`;
  const now = document.createElement("span");
  currency.showPrice(now, crypto.current_price);
  ui.detailPrice.replaceChildren("Now ", now, ", updated ", timeElement(crypto.last_updated));
  document.title = `${crypto.symbol} · Crypto Price Server`;
}

// A price from the stream: appended unless a reload that answered after its commit
// has it already (the same time and price: times are to the second, so two prices
// in one second are two points); the newest HISTORY_KEPT are kept.
function addPoint(point) {
  const time = new Date(point.timestamp).getTime();
  if (!Number.isFinite(time) || !isNumber(point.price)) return false;
  const known = (p) => p.price === point.price && new Date(p.timestamp).getTime() === time;
  if (detail.history.some(known)) return false;
  detail.history.push(point);
  detail.history.sort((a, b) => new Date(a.timestamp) - new Date(b.timestamp));
  detail.history = detail.history.slice(-HISTORY_KEPT);
  return true;
}

function renderHistory() {
  const zone = timeZone();
  ui.historyCaption.textContent = `Every stored price, newest first. Times in ${zone}.`;
  const trs = detail.history
    .slice()
    .reverse()
    .map((point) => {
      const tr = document.createElement("tr");
      const at = document.createElement("td");
      at.append(timeElement(point.timestamp));
      const price = document.createElement("td");
      price.className = "num";
      currency.showPrice(price, point.price);
      tr.append(at, price);
      return tr;
    });
  ui.historyRows.replaceChildren(...trs);
  plotHistory();
}

function renderStats({ current_price: current, stats }) {
  const change = stats.price_change;
  const entries = [
    ["current_price", "Current price", current, currency.price(current)],
    ["min_price", "Lowest", stats.min_price, currency.price(stats.min_price)],
    ["max_price", "Highest", stats.max_price, currency.price(stats.max_price)],
    ["avg_price", "Average", stats.avg_price, currency.price(stats.avg_price)],
    ["price_change", "Change", change, signed(currency.price(change), change)],
    [
      "price_change_percent",
      "Change %",
      stats.price_change_percent,
      percent(stats.price_change_percent),
    ],
    ["records_count", "Prices stored", stats.records_count, String(stats.records_count)],
  ];
  const items = entries.map(([key, term, value, text]) => {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = text;
    dd.dataset.key = key;
    dd.dataset.value = String(value);
    if (key === "current_price") currency.showPrice(dd, value); // null: says why
    if (key.startsWith("price_change") && isNumber(change) && change !== 0) {
      dd.className = change > 0 ? "up" : "down";
    }
    div.append(dt, dd);
    return div;
  });
  ui.stats.replaceChildren(...items);
}
