// The web UI of the Crypto Price Server. It uses the JSON API only, with the bearer
// token kept in sessionStorage. Data reaches the page through textContent and DOM
// nodes, never as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "cps.token";
  const USER_KEY = "cps.username";
  const REFRESH_MS = 30_000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const LOGIN = "/auth/login";
  const REGISTER = "/auth/register";

  const $ = (id) => document.getElementById(id);
  const ui = {
    session: $("session"),
    whoami: $("whoami"),
    logout: $("logout"),
    message: $("message"),
    notice: $("notice"),
    authView: $("auth-view"),
    authForm: $("auth-form"),
    username: $("username"),
    password: $("password"),
    appView: $("app-view"),
    addForm: $("add-form"),
    ticker: $("ticker"),
    listStatus: $("list-status"),
    empty: $("empty"),
    table: $("cryptos"),
    rows: document.querySelector("#cryptos tbody"),
    detail: $("detail"),
    detailTitle: $("detail-title"),
    detailClose: $("detail-close"),
    stats: $("stats"),
    chart: $("chart"),
    chartCaption: $("chart-caption"),
  };

  // ---- talking to the API ------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, sentToken) {
      super(message);
      this.status = status;
      this.sentToken = sentToken;
    }
  }

  async function api(method, path, body) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (token && path !== LOGIN && path !== REGISTER) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError("Cannot reach the server: check your connection and try again.", 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message =
        data && typeof data.error === "string"
          ? data.error
          : `The server answered ${response.status} ${response.statusText}`.trim();
      throw new ApiError(message, response.status, Boolean(headers.Authorization));
    }
    if (data === null) throw new ApiError("The server's answer is not JSON.", response.status);
    return data;
  }

  const cryptoPath = (symbol, rest = "") => `/crypto/${encodeURIComponent(symbol)}${rest}`;

  // ---- messages ----------------------------------------------------------------

  // Both boxes are live regions that stay in the page (empty when there is nothing
  // to say), so that screen readers announce what is written into them.
  function showError(text) {
    ui.notice.textContent = "";
    ui.message.textContent = text;
  }

  function showNotice(text) {
    ui.message.textContent = "";
    ui.notice.textContent = text;
  }

  function clearMessages() {
    ui.message.textContent = "";
    ui.notice.textContent = "";
  }

  function report(error) {
    if (!(error instanceof ApiError)) {
      console.error(error);
      showError(`Something went wrong in this page: ${error.message || error}`);
    } else if (error.status === 401 && error.sentToken) {
      endSession(`Please log in again: ${error.message}`);
    } else {
      showError(error.message);
    }
  }

  // Runs a user's action: clears old messages, disables its button while it runs,
  // and shows any error.
  async function act(button, action) {
    clearMessages();
    if (button) button.disabled = true;
    try {
      await action();
    } catch (error) {
      report(error);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- formatting --------------------------------------------------------------

  const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

  function usd(value) {
    if (!isNumber(value)) return "—";
    const abs = Math.abs(value);
    const digits =
      abs >= 1 || abs === 0
        ? { minimumFractionDigits: 2, maximumFractionDigits: 2 }
        : { maximumSignificantDigits: 4 };
    return new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", ...digits })
      .format(value);
  }

  const signed = (text, value) => (isNumber(value) && value > 0 ? `+${text}` : text);

  function percent(value) {
    if (!isNumber(value)) return "—";
    return signed(`${value.toFixed(2)} %`, value);
  }

  function when(iso, style = { dateStyle: "medium", timeStyle: "medium" }) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString(undefined, style);
  }

  function timeElement(iso) {
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = when(iso, { dateStyle: "short", timeStyle: "medium" });
    time.title = when(iso, { dateStyle: "full", timeStyle: "long" });
    return time;
  }

  // ---- session -----------------------------------------------------------------

  let timer = null;
  let lastLoad = 0;

  function startSession() {
    ui.whoami.textContent = `Signed in as ${sessionStorage.getItem(USER_KEY) || "you"}`;
    ui.session.hidden = false;
    ui.authView.hidden = true;
    ui.appView.hidden = false;
    ui.listStatus.textContent = "Loading…";
    clearInterval(timer);
    timer = setInterval(tick, REFRESH_MS);
    loadList().catch(report);
  }

  function endSession(errorText) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    clearInterval(timer);
    timer = null;
    closeDetail();
    ui.rows.replaceChildren();
    rows.clear();
    ui.session.hidden = true;
    ui.appView.hidden = true;
    ui.authView.hidden = false;
    ui.password.value = "";
    clearMessages();
    if (errorText) showError(errorText);
    ui.username.focus();
  }

  ui.authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const register = event.submitter && event.submitter.value === "register";
    act(event.submitter, async () => {
      const username = ui.username.value.trim();
      const body = { username, password: ui.password.value };
      const { token } = await api("POST", register ? REGISTER : LOGIN, body);
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.setItem(USER_KEY, username);
      ui.password.value = "";
      startSession();
      if (register) showNotice(`Welcome, ${username}: your account is ready.`);
      ui.ticker.focus();
    });
  });

  ui.logout.addEventListener("click", () => {
    endSession();
    showNotice("You are logged out.");
  });

  // ---- the list ----------------------------------------------------------------

  // One row per symbol, kept across refreshes so that focus and layout stay put.
  const rows = new Map();
  const names = new Map();

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

  function createRow(symbol) {
    const tr = document.createElement("tr");
    const row = {
      tr,
      symbol: cell("Symbol", "symbol"),
      name: cell("Name", "name"),
      price: cell("Price (USD)", "num"),
      updated: cell("Last updated", "when"),
    };
    const actions = cell("Actions", "row-actions");
    actions.append(
      button("Details", `Show the price history of ${symbol}`, "secondary", () =>
        act(null, () => openDetail(symbol, true)),
      ),
      button("Refresh", `Refresh the price of ${symbol}`, "secondary", (b) =>
        act(b, () => refreshCrypto(symbol)),
      ),
      button("Delete", `Stop tracking ${symbol}`, "danger", (b) =>
        act(b, () => deleteCrypto(symbol)),
      ),
    );
    tr.append(row.symbol, row.name, row.price, row.updated, actions);
    return row;
  }

  function fillRow(row, crypto) {
    row.symbol.textContent = crypto.symbol;
    row.name.textContent = crypto.name;
    row.price.textContent = usd(crypto.current_price);
    row.updated.replaceChildren(timeElement(crypto.last_updated));
    names.set(crypto.symbol, crypto.name);
  }

  function renderList(cryptos) {
    const seen = new Set();
    let previous = null;
    for (const crypto of cryptos) {
      let row = rows.get(crypto.symbol);
      if (!row) {
        row = createRow(crypto.symbol);
        rows.set(crypto.symbol, row);
      }
      fillRow(row, crypto);
      const expected = previous ? previous.nextSibling : ui.rows.firstChild;
      if (expected !== row.tr) ui.rows.insertBefore(row.tr, expected);
      previous = row.tr;
      seen.add(crypto.symbol);
    }
    for (const [symbol, row] of rows) {
      if (!seen.has(symbol)) {
        row.tr.remove();
        rows.delete(symbol);
      }
    }
    ui.table.hidden = cryptos.length === 0;
    ui.empty.hidden = cryptos.length !== 0;
  }

  async function loadList() {
    const { cryptos } = await api("GET", "/crypto");
    renderList(cryptos);
    lastLoad = Date.now();
    const at = when(new Date().toISOString(), { timeStyle: "medium" });
    ui.listStatus.textContent = `Updated ${at}; refreshes every ${REFRESH_MS / 1000} s`;
  }

  async function tick() {
    if (document.hidden) return;
    try {
      await loadList();
      if (detailSymbol) await openDetail(detailSymbol, false);
    } catch (error) {
      report(error);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer && Date.now() - lastLoad >= REFRESH_MS) tick();
  });

  ui.addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    act(event.submitter, async () => {
      const { crypto } = await api("POST", "/crypto", { symbol: ui.ticker.value.trim() });
      ui.ticker.value = "";
      showNotice(`Now tracking ${crypto.symbol} (${crypto.name}) at ${usd(crypto.current_price)}.`);
      await loadList();
    });
  });

  async function refreshCrypto(symbol) {
    const { crypto } = await api("PUT", cryptoPath(symbol, "/refresh"));
    const row = rows.get(crypto.symbol);
    if (row) fillRow(row, crypto);
    showNotice(`${crypto.symbol} is now ${usd(crypto.current_price)}.`);
    if (detailSymbol === crypto.symbol) await openDetail(crypto.symbol, false);
  }

  async function deleteCrypto(symbol) {
    if (!window.confirm(`Stop tracking ${symbol}? Its price history is deleted too.`)) return;
    try {
      await api("DELETE", cryptoPath(symbol));
    } finally {
      if (detailSymbol === symbol) closeDetail();
      await loadList();
    }
    showNotice(`${symbol} is no longer tracked.`);
  }

  // ---- the detail view -----------------------------------------------------------

  let detailSymbol = null;
  let detailHistory = [];

  async function openDetail(symbol, focus) {
    detailSymbol = symbol;
    let stats;
    let history;
    try {
      [stats, history] = await Promise.all([
        api("GET", cryptoPath(symbol, "/stats")),
        api("GET", cryptoPath(symbol, "/history")),
      ]);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && detailSymbol === symbol) {
        closeDetail();
      }
      throw error;
    }
    if (detailSymbol !== symbol) return; // another crypto was opened meanwhile
    const name = names.get(symbol);
    ui.detailTitle.textContent = name ? `${symbol} · ${name}` : symbol;
    renderStats(stats);
    detailHistory = history.history;
    renderChart(symbol, detailHistory);
    ui.detail.hidden = false;
    if (focus) {
      ui.detailTitle.focus();
      ui.detail.scrollIntoView({ block: "start" });
    }
  }

  function closeDetail() {
    detailSymbol = null;
    detailHistory = [];
    ui.detail.hidden = true;
    ui.stats.replaceChildren();
    ui.chart.replaceChildren();
  }

  ui.detailClose.addEventListener("click", () => {
    const symbol = detailSymbol;
    closeDetail();
    const row = symbol && rows.get(symbol);
    if (row) row.tr.querySelector("button").focus();
  });

  function renderStats({ current_price: current, stats }) {
    const change = stats.price_change;
    const entries = [
      ["Current price", usd(current)],
      ["Lowest", usd(stats.min_price)],
      ["Highest", usd(stats.max_price)],
      ["Average", usd(stats.avg_price)],
      ["Change", isNumber(change) ? signed(usd(change), change) : "—"],
      ["Change %", percent(stats.price_change_percent)],
      ["Prices stored", String(stats.records_count)],
    ];
    const items = entries.map(([term, value]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = term;
      dd.textContent = value;
      if (term.startsWith("Change") && isNumber(change) && change !== 0) {
        dd.className = change > 0 ? "up" : "down";
      }
      div.append(dt, dd);
      return div;
    });
    ui.stats.replaceChildren(...items);
  }

  // ---- the chart: an inline SVG line over the stored history ----------------------

  function svg(name, attributes = {}, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderChart(symbol, history) {
    const points = history
      .map((p) => ({ price: p.price, time: new Date(p.timestamp).getTime(), iso: p.timestamp }))
      .filter((p) => isNumber(p.price) && Number.isFinite(p.time));
    if (points.length === 0) {
      ui.chart.replaceChildren();
      ui.chartCaption.textContent = "No prices stored yet.";
      return;
    }
    const width = Math.max(280, Math.round(ui.chart.clientWidth || 600));
    const height = 220;
    const pad = { top: 12, right: 12, bottom: 28, left: 8 };
    const prices = points.map((p) => p.price);
    let low = Math.min(...prices);
    let high = Math.max(...prices);
    if (low === high) {
      const spread = Math.abs(low) * 0.01 || 1;
      low -= spread;
      high += spread;
    }
    const first = points[0].time;
    const last = points[points.length - 1].time;
    const byTime = last > first;
    const labelWidth = Math.max(usd(high).length, usd(low).length) * 7 + 8;
    const left = pad.left + labelWidth;
    const plotWidth = width - left - pad.right;
    const plotHeight = height - pad.top - pad.bottom;
    const x = (p, i) =>
      left +
      (byTime
        ? ((p.time - first) / (last - first)) * plotWidth
        : points.length > 1
          ? (i / (points.length - 1)) * plotWidth
          : plotWidth / 2);
    const y = (price) => pad.top + (1 - (price - low) / (high - low)) * plotHeight;

    const summary =
      `${symbol} price history: ${points.length} price${points.length === 1 ? "" : "s"} ` +
      `from ${when(points[0].iso)} to ${when(points[points.length - 1].iso)}, ` +
      `between ${usd(Math.min(...prices))} and ${usd(Math.max(...prices))}.`;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-labelledby": "chart-caption",
      class: "chart-svg",
    });

    for (const fraction of [0, 0.5, 1]) {
      const price = low + fraction * (high - low);
      const lineY = y(price);
      chart.append(
        svg("line", { x1: left, x2: width - pad.right, y1: lineY, y2: lineY, class: "grid" }),
        svg("text", { x: left - 6, y: lineY + 4, "text-anchor": "end", class: "axis" }, usd(price)),
      );
    }
    // Times only when the history fits in one day, dates otherwise.
    const sameDay = new Date(first).toDateString() === new Date(last).toDateString();
    const short = sameDay ? { timeStyle: "short" } : { dateStyle: "short" };
    chart.append(
      svg("text", { x: left, y: height - 8, class: "axis" }, when(points[0].iso, short)),
    );
    if (points.length > 1) {
      chart.append(
        svg(
          "text",
          { x: width - pad.right, y: height - 8, "text-anchor": "end", class: "axis" },
          when(points[points.length - 1].iso, short),
        ),
      );
    }

    const coords = points.map((p, i) => [x(p, i), y(p.price)]);
    const line = coords.map(([cx, cy]) => `${cx.toFixed(1)},${cy.toFixed(1)}`).join(" ");
    if (coords.length > 1) {
      const baseline = (pad.top + plotHeight).toFixed(1);
      const area =
        `M${coords[0][0].toFixed(1)},${baseline} L${line.replaceAll(" ", " L")} ` +
        `L${coords[coords.length - 1][0].toFixed(1)},${baseline} Z`;
      chart.append(svg("path", { d: area, class: "area" }));
      chart.append(svg("polyline", { points: line, class: "line" }));
    }
    points.forEach((p, i) => {
      const [cx, cy] = coords[i];
      const dot = svg("circle", { cx, cy, r: points.length > 40 ? 2 : 3, class: "dot" });
      dot.append(svg("title", {}, `${usd(p.price)} at ${when(p.iso)}`));
      chart.append(dot);
    });
    ui.chart.replaceChildren(chart);
    ui.chartCaption.textContent = summary;
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (detailSymbol && detailHistory.length) renderChart(detailSymbol, detailHistory);
    }, 150);
  });

  // ---- start -------------------------------------------------------------------

  if (sessionStorage.getItem(TOKEN_KEY)) {
    startSession();
  } else {
    endSession();
  }
})();
