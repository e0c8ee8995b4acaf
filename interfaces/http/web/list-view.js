// The list of tracked cryptos (shared by everyone signed in): adding one by its
// ticker, refreshing or deleting one, and the prices the stream sends.
import { detailHash } from "./addresses.js";
import { api, cryptoPath, isNotTracked } from "./api.js";
import * as currency from "./currency.js";
import { $, timeElement } from "./dom.js";
import { when } from "./format.js";
import { act, report, say } from "./messages.js";

const ui = {
  addForm: $("add-form"),
  addMessage: $("add-message"),
  ticker: $("ticker"),
  picker: $("coin-picker"),
  pickerLegend: $("coin-picker-legend"),
  choices: $("coin-choices"),
  listStatus: $("list-status"),
  empty: $("empty"),
  table: $("cryptos"),
  rows: document.querySelector("#cryptos tbody"),
};

const cryptos = new Map(); // symbol -> crypto, as the API sends it
let listLoaded = false;
let lastLoad = 0; // when the whole list last came from the server (ms)
// Changes the stream sent while the list was being fetched: the answer may have left
// the server before they were stored, so they are applied to it again.
let streamed = null;
// One row per symbol, kept across refreshes so that focus and layout stay put.
const rows = new Map();

export const loadedAt = () => lastLoad;

// The oldest `last_updated` of the prices listed (ISO 8601), or null with none.
export function oldestUpdate() {
  let oldest = null;
  for (const { last_updated: at } of cryptos.values()) {
    if (typeof at === "string" && (oldest === null || Date.parse(at) < Date.parse(oldest))) {
      oldest = at;
    }
  }
  return oldest;
}

// The list as known, then as the server has it now.
export function show() {
  renderList();
  load().catch((error) => report(error));
}

export async function load() {
  const mine = [];
  streamed = mine;
  let answer;
  try {
    await currency.ready();
    answer = await api("GET", currency.priced("/crypto"));
  } catch (error) {
    if (streamed === mine) streamed = null;
    throw error;
  }
  // A snapshot (or a later load, in another currency too) came meanwhile: it, and
  // what followed it, is newer.
  if (streamed !== mine) return;
  streamed = null;
  replace(answer.cryptos);
  for (const change of mine) change();
  if (mine.length) renderList();
}

// A change the stream sent: applied now, and again to a list answer still on its way.
function streamedChange(change) {
  change();
  if (streamed) streamed.push(change);
  renderList();
}

export function replace(list) {
  streamed = null; // newer than any list answer still on its way (see load)
  cryptos.clear();
  for (const crypto of list) cryptos.set(crypto.symbol, crypto);
  listLoaded = true;
  lastLoad = Date.now();
  renderList();
  ui.listStatus.textContent = `Updated ${when(new Date().toISOString())}`;
}

// Logged out: nothing known any more.
export function reset() {
  streamed = null; // a list answer still on its way is not shown
  cryptos.clear();
  listLoaded = false;
  renderList();
}

export function put(crypto) {
  streamedChange(() => cryptos.set(crypto.symbol, { ...crypto }));
}

export function remove(symbol) {
  streamedChange(() => cryptos.delete(symbol));
}

export function priceChanged({ symbol, current_price: price, last_updated: at }) {
  streamedChange(() => {
    const crypto = cryptos.get(symbol);
    if (!crypto) return;
    crypto.current_price = price;
    crypto.last_updated = at;
  });
}

function cell(label, className) {
  const td = document.createElement("td");
  td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

function button(text, label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  if (className) b.className = className;
  b.addEventListener("click", () => onClick(b));
  return b;
}

function link(text, label, href) {
  const a = document.createElement("a");
  a.textContent = text;
  a.href = href;
  a.className = "button-link";
  a.setAttribute("aria-label", label);
  return a;
}

function createRow(symbol) {
  const tr = document.createElement("tr");
  tr.dataset.symbol = symbol;
  const row = {
    tr,
    symbol: cell("Symbol", "symbol"),
    name: cell("Name", "name"),
    price: cell("Price", "num price"),
    updated: cell("Last updated", "when"),
  };
  const actions = cell("Actions", "row-actions");
  actions.append(
    link("History", `Price history of ${symbol}`, detailHash(symbol, "history")),
    link("Stats", `Statistics of ${symbol}`, detailHash(symbol, "stats")),
    button("Refresh", `Refresh the price of ${symbol}`, "secondary", (b) =>
      act(b, null, () => refreshCrypto(symbol)),
    ),
    button("Delete", `Stop tracking ${symbol} for everyone`, "danger", (b) =>
      act(b, null, () => deleteCrypto(symbol)),
    ),
  );
  tr.append(row.symbol, row.name, row.price, row.updated, actions);
  return row;
}

function fillRow(row, crypto) {
  row.symbol.textContent = crypto.symbol;
  row.name.textContent = crypto.name;
  row.price.dataset.label = `Price (${currency.upper()})`;
  currency.showPrice(row.price, crypto.current_price);
  if (row.updated.firstChild?.dateTime !== crypto.last_updated) {
    row.updated.replaceChildren(timeElement(crypto.last_updated));
  }
}

function renderList() {
  const sorted = [...cryptos.values()].sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
  let previous = null;
  for (const crypto of sorted) {
    let row = rows.get(crypto.symbol);
    if (!row) {
      row = createRow(crypto.symbol);
      rows.set(crypto.symbol, row);
    }
    fillRow(row, crypto);
    const expected = previous ? previous.nextSibling : ui.rows.firstChild;
    if (expected !== row.tr) ui.rows.insertBefore(row.tr, expected);
    previous = row.tr;
  }
  for (const [symbol, row] of rows) {
    if (!cryptos.has(symbol)) {
      row.tr.remove();
      rows.delete(symbol);
    }
  }
  ui.table.hidden = cryptos.size === 0;
  ui.empty.hidden = cryptos.size !== 0 || !listLoaded;
}

// The coins of the ticker in the add form, when it has several: the person picks one,
// then adds again. `pickedFor` is the ticker they belong to.
let pickedFor = null;

function hideChoices() {
  pickedFor = null;
  ui.picker.hidden = true;
  ui.choices.replaceChildren();
}

function choice(coin, checked) {
  const label = document.createElement("label");
  const radio = document.createElement("input");
  radio.type = "radio";
  radio.name = "coin";
  radio.value = coin.coin_id;
  radio.checked = checked;
  const name = document.createElement("span");
  name.textContent = coin.name;
  const facts = document.createElement("span");
  facts.className = "small";
  const rank = coin.market_cap_rank === null ? "unranked" : `rank #${coin.market_cap_rank}`;
  facts.textContent = `${coin.coin_id} · ${rank} · ${currency.price(coin.current_price)}`;
  label.append(radio, name, facts);
  return label;
}

function showChoices(symbol, coins) {
  pickedFor = symbol;
  ui.pickerLegend.textContent = `${coins.length} coins have the ticker ${symbol}: choose one, then Add.`;
  ui.choices.replaceChildren(...coins.map((coin, i) => choice(coin, i === 0)));
  ui.picker.hidden = false;
  ui.choices.querySelector("input").focus();
}

// The body that adds the ticker typed: with the coin picked; or null when there is
// nothing to add yet (the ticker has several coins, shown to choose from, or none).
async function addBody() {
  const symbol = ui.ticker.value.trim().toUpperCase();
  if (pickedFor === symbol) {
    const picked = ui.choices.querySelector("input:checked");
    if (picked) return { symbol, coin_id: picked.value };
  }
  hideChoices();
  if (!symbol) return { symbol }; // the server says what is wrong with it
  const path = `/coins?symbol=${encodeURIComponent(symbol)}`;
  const { coins } = await api("GET", currency.priced(path));
  if (coins.length === 1) return { symbol };
  if (coins.length === 0) {
    say(ui.addMessage, `CoinGecko lists no coin with the ticker ${symbol}.`, "error");
  } else {
    showChoices(symbol, coins);
  }
  return null;
}

ui.ticker.addEventListener("input", () => {
  if (ui.ticker.value.trim().toUpperCase() !== pickedFor) hideChoices();
});

ui.addForm.addEventListener("submit", (event) => {
  event.preventDefault();
  act(event.submitter, ui.addMessage, async () => {
    await currency.ready(); // the prices asked for are in a currency the server quotes
    const body = await addBody();
    if (!body) return;
    const { crypto } = await api("POST", currency.priced("/crypto"), body);
    ui.ticker.value = "";
    hideChoices();
    put(crypto);
    say(
      ui.addMessage,
      `Now tracking ${crypto.symbol} (${crypto.name}) at ${currency.price(crypto.current_price)}, for everyone.`,
    );
  });
});

async function refreshCrypto(symbol) {
  await currency.ready();
  const { crypto } = await api("PUT", currency.priced(cryptoPath(symbol, "/refresh")));
  put(crypto);
  say(null, `${crypto.symbol} is now ${currency.price(crypto.current_price)}.`);
}

async function deleteCrypto(symbol) {
  const question =
    `Stop tracking ${symbol} for everyone? The list is shared by everyone signed in: ` +
    `${symbol} and its price history are deleted for all of them.`;
  if (!window.confirm(question)) return;
  try {
    await api("DELETE", cryptoPath(symbol));
  } catch (error) {
    if (!isNotTracked(error)) throw error;
  }
  remove(symbol);
  say(null, `${symbol} is no longer tracked, for anyone.`);
}
