// The web UI of the Crypto Price Server. It uses the JSON API only, with the bearer
// token kept in sessionStorage. Data reaches the page through textContent and DOM
// nodes, never as HTML.
//
// Four views, each with an address of its own (hash routes): #/login, #/cryptos,
// #/cryptos/<symbol>/history and #/cryptos/<symbol>/stats. While logged in, the page
// follows the API's live stream (GET /crypto as text/event-stream) and asks again
// every 30 s while that stream is down.
"use strict";

(() => {
  const TOKEN_KEY = "cps.token";
  const USER_KEY = "cps.username";
  const NEXT_KEY = "cps.next"; // the view to open after logging in
  const REFRESH_MS = 30_000;
  const HISTORY_KEPT = 100; // as many prices as the server keeps per crypto
  // Three missed heartbeats (one every 15 s): the stream is dead even if no error came.
  const STREAM_SILENCE_MS = 45_000;
  const RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const LOGIN = "/auth/login";
  const REGISTER = "/auth/register";
  const EXPIRED = "Your session has expired, please log in again.";

  const $ = (id) => document.getElementById(id);
  const ui = {
    session: $("session"),
    live: $("live"),
    whoami: $("whoami"),
    logout: $("logout"),
    toast: $("toast"),
    toastText: $("toast-text"),
    toastClose: $("toast-close"),
    authView: $("auth-view"),
    authForm: $("auth-form"),
    authMessage: $("auth-message"),
    username: $("username"),
    password: $("password"),
    listView: $("list-view"),
    addForm: $("add-form"),
    addMessage: $("add-message"),
    ticker: $("ticker"),
    listTitle: $("list-title"),
    listStatus: $("list-status"),
    empty: $("empty"),
    table: $("cryptos"),
    rows: document.querySelector("#cryptos tbody"),
    detailView: $("detail-view"),
    detailTitle: $("detail-title"),
    detailPrice: $("detail-price"),
    tabHistory: $("tab-history"),
    tabStats: $("tab-stats"),
    notTracked: $("not-tracked"),
    notTrackedText: $("not-tracked-text"),
    historyPanel: $("history-panel"),
    chart: $("chart"),
    chartReadout: $("chart-readout"),
    chartCaption: $("chart-caption"),
    historyCaption: $("history-caption"),
    historyRows: document.querySelector("#history-table tbody"),
    statsPanel: $("stats-panel"),
    stats: $("stats"),
  };

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // ---- talking to the API ------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, sentToken) {
      super(message);
      this.status = status;
      this.sentToken = sentToken;
    }
  }

  async function api(method, path, body) {
    const bearer = token();
    const headers = { Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (bearer && path !== LOGIN && path !== REGISTER) headers.Authorization = `Bearer ${bearer}`;
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
  // 404: nobody tracks it; 400: it cannot be a ticker at all (from an edited address).
  const isNotTracked = (error) =>
    error instanceof ApiError && (error.status === 404 || error.status === 400);

  // ---- messages ----------------------------------------------------------------

  // A message goes next to the control that caused it (`place`: a live region in the
  // page), or else into the toast, which stays fixed in the viewport. Both are live
  // regions that stay in the page, so screen readers announce what is written there.
  let toastTimer = null;

  function say(place, text, kind = "ok") {
    if (place) {
      place.textContent = text;
      place.className = `notice ${kind}`;
      place.scrollIntoView({ block: "nearest" });
      return;
    }
    clearTimeout(toastTimer);
    ui.toastText.textContent = text;
    ui.toast.dataset.kind = kind;
    ui.toast.classList.add("shown");
    if (kind === "ok") toastTimer = setTimeout(hideToast, 8_000);
  }

  function hideToast() {
    clearTimeout(toastTimer);
    ui.toast.classList.remove("shown");
    ui.toastText.textContent = "";
  }

  function clearMessages() {
    for (const place of [ui.authMessage, ui.addMessage]) {
      place.textContent = "";
      place.className = "notice";
    }
    hideToast();
  }

  ui.toastClose.addEventListener("click", hideToast);

  function report(error, place = null) {
    if (!(error instanceof ApiError)) {
      console.error(error);
      say(place, `Something went wrong in this page: ${error.message || error}`, "error");
    } else if (error.status === 401 && error.sentToken) {
      endSession(EXPIRED, true);
    } else {
      say(place, error.message, "error");
    }
  }

  // Runs a person's action: clears old messages, disables its button while it runs,
  // and shows any error at `place` (or in the toast).
  async function act(button, place, action) {
    clearMessages();
    if (button) button.disabled = true;
    try {
      await action();
    } catch (error) {
      report(error, place);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- formatting --------------------------------------------------------------

  const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

  function usd(value, digits) {
    if (!isNumber(value)) return "—";
    const abs = Math.abs(value);
    const fraction =
      digits !== undefined
        ? { minimumFractionDigits: digits, maximumFractionDigits: digits }
        : abs >= 1 || abs === 0
          ? { minimumFractionDigits: 2, maximumFractionDigits: 2 }
          : { maximumSignificantDigits: 4 };
    return new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", ...fraction })
      .format(value);
  }

  const signed = (text, value) => (isNumber(value) && value > 0 ? `+${text}` : text);

  function percent(value) {
    if (!isNumber(value)) return "—";
    return signed(`${value.toFixed(2)} %`, value);
  }

  // To the second, in the person's own time zone (named in the captions).
  const toSecond = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });

  function when(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : toSecond.format(date);
  }

  function timeElement(iso) {
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = when(iso);
    return time;
  }

  function timeZone() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    const minutes = -new Date().getTimezoneOffset();
    const sign = minutes < 0 ? "-" : "+";
    const hh = String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0");
    const mm = String(Math.abs(minutes) % 60).padStart(2, "0");
    return `${zone} (UTC${sign}${hh}:${mm})`;
  }

  // ---- views and their addresses -------------------------------------------------

  const LIST = "#/cryptos";
  const detailHash = (symbol, tab) => `#/cryptos/${encodeURIComponent(symbol)}/${tab}`;

  function parseRoute(hash) {
    const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
    let decoded;
    try {
      decoded = parts.map(decodeURIComponent);
    } catch {
      return { name: "list", canonical: LIST };
    }
    const [first, symbol, tab] = decoded;
    if (first === "login" && parts.length === 1) return { name: "login" };
    if (first === "cryptos" && symbol && (tab === "history" || tab === "stats") && !parts[3]) {
      const upper = symbol.toUpperCase(); // tickers are case-insensitive: one address each
      return { name: tab, symbol: upper, canonical: detailHash(upper, tab) };
    }
    if (first === "cryptos" && symbol && !tab) {
      const upper = symbol.toUpperCase();
      return { name: "history", symbol: upper, canonical: detailHash(upper, "history") };
    }
    return { name: "list", canonical: first === "cryptos" && parts.length === 1 ? null : LIST };
  }

  let renderCount = 0;

  function render() {
    renderCount += 1;
    const route = parseRoute(location.hash);
    if (route.canonical && route.canonical !== location.hash) {
      location.replace(route.canonical); // the hashchange renders it
      return;
    }
    if (!token()) {
      stopSession();
      if (route.name !== "login") {
        sessionStorage.setItem(NEXT_KEY, location.hash);
        location.replace("#/login");
        return;
      }
      showView("login");
      ui.username.focus();
      return;
    }
    if (route.name === "login") {
      location.replace(takeNext());
      return;
    }
    startSession();
    if (route.name === "list") {
      closeDetail();
      showView("list");
      renderList();
      loadList().catch((error) => report(error));
    } else {
      showView("detail");
      openDetail(route.symbol, route.name).catch((error) => report(error));
    }
  }

  function showView(name) {
    const previous = document.body.dataset.view;
    document.body.dataset.view = name;
    if (name !== "detail") document.title = "Crypto Price Server";
    ui.authView.hidden = name !== "login";
    ui.listView.hidden = name !== "list";
    ui.detailView.hidden = name !== "detail";
    ui.session.hidden = name === "login";
    // A new view takes the focus to its heading, as a new page would.
    if (previous && previous !== name && name !== "login") {
      (name === "list" ? ui.listTitle : ui.detailTitle).focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  }

  function takeNext() {
    const next = sessionStorage.getItem(NEXT_KEY);
    sessionStorage.removeItem(NEXT_KEY);
    return next && parseRoute(next).name !== "login" ? next : LIST;
  }

  window.addEventListener("hashchange", render);

  // ---- session -----------------------------------------------------------------

  let sessionOn = false;

  function startSession() {
    if (sessionOn) return;
    sessionOn = true;
    ui.whoami.textContent = `Signed in as ${sessionStorage.getItem(USER_KEY) || "you"}`;
    setLive("connecting");
    connectStream();
  }

  function stopSession() {
    if (!sessionOn) return;
    sessionOn = false;
    stopStream();
    stopPolling();
    cryptos.clear();
    listLoaded = false;
    renderList();
    closeDetail();
  }

  // Back to the log-in form; with `keepPlace`, logging in again returns to this view.
  function endSession(message, keepPlace = false) {
    if (keepPlace && token() && parseRoute(location.hash).name !== "login") {
      sessionStorage.setItem(NEXT_KEY, location.hash);
    }
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    stopSession();
    clearMessages();
    ui.password.value = "";
    if (location.hash === "#/login") render();
    else location.hash = "#/login";
    if (message) say(ui.authMessage, message, keepPlace ? "error" : "ok");
  }

  ui.authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const register = event.submitter && event.submitter.value === "register";
    act(event.submitter, ui.authMessage, async () => {
      const username = ui.username.value.trim();
      const body = { username, password: ui.password.value };
      const { token: issued } = await api("POST", register ? REGISTER : LOGIN, body);
      sessionStorage.setItem(TOKEN_KEY, issued);
      sessionStorage.setItem(USER_KEY, username);
      ui.password.value = "";
      location.hash = takeNext();
      if (register) say(null, `Welcome, ${username}: your account is ready.`);
    });
  });

  ui.logout.addEventListener("click", () => {
    sessionStorage.removeItem(NEXT_KEY);
    endSession("You are logged out.");
  });

  // ---- the live stream -------------------------------------------------------------

  // EventSource cannot send an Authorization header: the stream is read with fetch
  // and parsed here (event:, data:, a blank line ends an event, ":" lines are heartbeats).
  const stream = { controller: null, attempt: 0, retry: null, silence: null };
  let pollTimer = null;

  const LIVE_TEXT = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };

  function setLive(state) {
    ui.live.dataset.state = state;
    ui.live.textContent = LIVE_TEXT[state];
    if (state === "live") stopPolling();
    else startPolling();
  }

  async function connectStream() {
    const bearer = token();
    if (!bearer || !sessionOn) return;
    const controller = new AbortController();
    stream.controller = controller;
    const mine = () => stream.controller === controller;
    let response;
    try {
      response = await fetch("/crypto", {
        headers: { Accept: "text/event-stream", Authorization: `Bearer ${bearer}` },
        cache: "no-store",
        credentials: "omit",
        signal: controller.signal,
      });
    } catch {
      if (mine()) retryStream();
      return;
    }
    if (!mine()) {
      controller.abort();
      return;
    }
    const type = response.headers.get("Content-Type") || "";
    if (response.status === 401) {
      endSession(EXPIRED, true);
      return;
    }
    if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
      // 503: too many streams. The page asks every 30 s meanwhile, and tries again.
      controller.abort();
      retryStream();
      return;
    }
    stream.attempt = 0;
    setLive("live");
    try {
      await readEvents(response.body, handleEvent, () => heardFrom(controller));
    } catch {
      // a dropped connection, or our own abort: told apart below
    }
    clearTimeout(stream.silence);
    if (mine()) retryStream();
  }

  function heardFrom(controller) {
    clearTimeout(stream.silence);
    stream.silence = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
  }

  function retryStream() {
    setLive("reconnecting");
    clearTimeout(stream.retry);
    const delay = RETRY_MS[Math.min(stream.attempt, RETRY_MS.length - 1)];
    stream.attempt += 1;
    stream.retry = setTimeout(connectStream, delay);
  }

  function stopStream() {
    const { controller } = stream;
    stream.controller = null;
    stream.attempt = 0;
    clearTimeout(stream.retry);
    clearTimeout(stream.silence);
    if (controller) controller.abort();
  }

  async function readEvents(body, onEvent, onActivity) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let name = "";
    let data = [];
    onActivity();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onActivity();
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const raw of lines) {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (line === "") {
          if (data.length) onEvent(name || "message", data.join("\n"));
          name = "";
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") name = text;
          else if (field === "data") data.push(text);
        }
      }
    }
  }

  function handleEvent(name, text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      return; // not ours to show
    }
    if (!data || typeof data !== "object") return;
    if (name === "snapshot" && Array.isArray(data.cryptos)) {
      replaceList(data.cryptos);
      // Events may have been missed while the stream was down.
      if (detail.symbol) reloadDetail().catch((error) => report(error));
    } else if (name === "price" && typeof data.symbol === "string") {
      priceChanged(data);
    } else if (name === "added" && typeof data.symbol === "string") {
      cryptos.set(data.symbol, data);
      renderList();
      if (detail.symbol === data.symbol && detail.missing) {
        reloadDetail().catch((error) => report(error));
      }
    } else if (name === "removed" && typeof data.symbol === "string") {
      cryptos.delete(data.symbol);
      renderList();
      if (detail.symbol === data.symbol) showNotTracked(data.symbol);
    }
  }

  function priceChanged({ symbol, current_price: price, last_updated: at }) {
    const crypto = cryptos.get(symbol);
    if (crypto) {
      crypto.current_price = price;
      crypto.last_updated = at;
      renderList();
    }
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

  // While the stream is down, the page asks again every 30 s (when it is visible).
  function startPolling() {
    if (pollTimer === null) pollTimer = setInterval(poll, REFRESH_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  let lastLoad = 0;

  function poll() {
    if (document.hidden || !sessionOn) return;
    const work = detail.symbol ? reloadDetail() : loadList();
    work.catch((error) => report(error));
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && pollTimer !== null && Date.now() - lastLoad >= REFRESH_MS) poll();
  });

  // ---- the list ----------------------------------------------------------------

  const cryptos = new Map(); // symbol -> crypto, as the API sends it
  let listLoaded = false;
  // One row per symbol, kept across refreshes so that focus and layout stay put.
  const rows = new Map();

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
      price: cell("Price (USD)", "num price"),
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
    row.price.textContent = usd(crypto.current_price);
    row.price.dataset.value = String(crypto.current_price);
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

  function replaceList(list) {
    cryptos.clear();
    for (const crypto of list) cryptos.set(crypto.symbol, crypto);
    listLoaded = true;
    lastLoad = Date.now();
    renderList();
    ui.listStatus.textContent = `Updated ${when(new Date().toISOString())}`;
  }

  async function loadList() {
    const { cryptos: list } = await api("GET", "/crypto");
    replaceList(list);
  }

  ui.addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    act(event.submitter, ui.addMessage, async () => {
      const { crypto } = await api("POST", "/crypto", { symbol: ui.ticker.value.trim() });
      ui.ticker.value = "";
      cryptos.set(crypto.symbol, crypto);
      renderList();
      say(
        ui.addMessage,
        `Now tracking ${crypto.symbol} (${crypto.name}) at ${usd(crypto.current_price)}, for everyone.`,
      );
    });
  });

  async function refreshCrypto(symbol) {
    const { crypto } = await api("PUT", cryptoPath(symbol, "/refresh"));
    cryptos.set(crypto.symbol, crypto);
    renderList();
    say(null, `${crypto.symbol} is now ${usd(crypto.current_price)}.`);
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
    cryptos.delete(symbol);
    renderList();
    say(null, `${symbol} is no longer tracked, for anyone.`);
  }

  // ---- one crypto: its history and its statistics -----------------------------------

  const detail = { symbol: null, tab: null, crypto: null, history: [], missing: false };
  // Prices the stream sent while the history was being fetched: the answer may have
  // left the server before they were stored, so they are added to it again.
  let streamed = null;

  async function openDetail(symbol, tab) {
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
    await reloadDetail();
  }

  function showPanel() {
    ui.notTracked.hidden = !detail.missing;
    ui.historyPanel.hidden = detail.missing || detail.tab !== "history" || !detail.crypto;
    ui.statsPanel.hidden = detail.missing || detail.tab !== "stats" || !detail.crypto;
    if (!ui.historyPanel.hidden) drawChart();
  }

  async function reloadDetail() {
    const { symbol, tab } = detail;
    const count = renderCount;
    let crypto;
    let history;
    const since = tab === "history" ? [] : null;
    streamed = since;
    try {
      [crypto, history] = await Promise.all([
        api("GET", cryptoPath(symbol)),
        tab === "history" ? api("GET", cryptoPath(symbol, "/history")) : null,
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
    if (detail.symbol !== symbol || count !== renderCount) return; // another view meanwhile
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

  async function loadStats(symbol) {
    const stats = await api("GET", cryptoPath(symbol, "/stats"));
    if (detail.symbol === symbol) renderStats(stats);
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

  function closeDetail() {
    detail.symbol = null;
    detail.tab = null;
    detail.crypto = null;
    detail.history = [];
    detail.missing = false;
    ui.stats.replaceChildren();
    ui.chart.replaceChildren();
    ui.historyRows.replaceChildren();
    ui.chartReadout.textContent = "";
    chart.drawnWidth = 0;
  }

  function renderDetailHeading() {
    const { crypto } = detail;
    ui.detailTitle.textContent = `${crypto.symbol} · ${crypto.name}`;
    ui.detailPrice.replaceChildren(
      `Now ${usd(crypto.current_price)}, updated `,
      timeElement(crypto.last_updated),
    );
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
        price.textContent = usd(point.price);
        price.dataset.value = String(point.price);
        tr.append(at, price);
        return tr;
      });
    ui.historyRows.replaceChildren(...trs);
    chart.drawnWidth = 0;
    if (!ui.historyPanel.hidden) drawChart();
  }

  function renderStats({ current_price: current, stats }) {
    const change = stats.price_change;
    const entries = [
      ["current_price", "Current price", current, usd(current)],
      ["min_price", "Lowest", stats.min_price, usd(stats.min_price)],
      ["max_price", "Highest", stats.max_price, usd(stats.max_price)],
      ["avg_price", "Average", stats.avg_price, usd(stats.avg_price)],
      ["price_change", "Change", change, isNumber(change) ? signed(usd(change), change) : "—"],
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
      if (key.startsWith("price_change") && isNumber(change) && change !== 0) {
        dd.className = change > 0 ? "up" : "down";
      }
      div.append(dt, dd);
      return div;
    });
    ui.stats.replaceChildren(...items);
  }

  // ---- the chart: an SVG drawn at the card's own width ---------------------------------

  const SECOND = 1000;
  const MINUTE = 60 * SECOND;
  const HOUR = 60 * MINUTE;
  const DAY = 24 * HOUR;
  const TIME_STEPS = [
    SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
    MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
    DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY,
  ];
  const FONT_PX = 12; // the axis labels' size at every width (app.css .axis agrees)
  const CHAR_PX = 7.2; // about one character's width at FONT_PX, to keep labels apart

  const chart = { points: [], selected: -1, drawnWidth: 0, coords: [], marker: null };

  function svg(name, attributes = {}, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const n = raw / magnitude;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * magnitude;
  }

  function priceTicks(low, high, count) {
    const step = niceStep(high - low, count);
    const from = Math.floor(low / step) * step;
    const to = Math.ceil(high / step) * step;
    const ticks = [];
    for (let i = 0; from + i * step <= to + step / 1e6; i++) ticks.push(from + i * step);
    let digits = 0;
    while (digits < 8 && Math.abs(Math.round(step * 10 ** digits) - step * 10 ** digits) > 1e-6) {
      digits += 1;
    }
    return { ticks, low: from, high: to, label: (v) => usd(v, digits) };
  }

  function timeFormat(step) {
    if (step < MINUTE) return { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (step < DAY) return { hour: "2-digit", minute: "2-digit" };
    if (step < 365 * DAY) return { month: "short", day: "numeric" };
    return { year: "numeric" };
  }

  // Ticks at round local times (seconds for a minute's span, hours for a day's ...),
  // as many as fit side by side in `width` px.
  function timeTicks(first, last, width) {
    const span = last - first;
    let step = TIME_STEPS[TIME_STEPS.length - 1];
    let format = new Intl.DateTimeFormat(undefined, timeFormat(step));
    for (const candidate of TIME_STEPS) {
      const f = new Intl.DateTimeFormat(undefined, timeFormat(candidate));
      const labelWidth = f.format(new Date(last)).length * CHAR_PX + 16;
      if (span / candidate <= Math.max(1, Math.floor(width / labelWidth))) {
        step = candidate;
        format = f;
        break;
      }
    }
    const offset = new Date(first).getTimezoneOffset() * MINUTE; // local time = UTC - offset
    const ticks = [];
    for (let t = Math.ceil((first - offset) / step) * step + offset; t <= last; t += step) {
      ticks.push(t);
    }
    // Hours over more than a day: the midnight ticks name the day instead.
    const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
    const label = (t) => {
      const date = new Date(t);
      const midnight = date.getHours() === 0 && date.getMinutes() === 0;
      return step >= HOUR && step < DAY && midnight ? day.format(date) : format.format(date);
    };
    return { ticks, label };
  }

  function drawChart() {
    const box = ui.chart;
    const width = Math.floor(box.clientWidth);
    if (width <= 0 || ui.historyPanel.hidden) return;
    chart.drawnWidth = width;
    const points = detail.history
      .map((p) => ({ price: p.price, time: new Date(p.timestamp).getTime(), iso: p.timestamp }))
      .filter((p) => isNumber(p.price) && Number.isFinite(p.time));
    const previous = chart.points[chart.selected];
    chart.points = points;
    chart.selected = previous ? points.findIndex((p) => p.time === previous.time) : -1;
    const symbol = detail.crypto ? detail.crypto.symbol : detail.symbol;
    box.setAttribute("aria-label", `Price chart of ${symbol}`);
    if (points.length === 0) {
      box.replaceChildren();
      ui.chartCaption.textContent = "No prices stored yet.";
      ui.chartReadout.textContent = "";
      return;
    }
    const height = Math.round(Math.min(360, Math.max(260, width * 0.5)));
    const prices = points.map((p) => p.price);
    let low = Math.min(...prices);
    let high = Math.max(...prices);
    if (low === high) {
      const spread = Math.abs(low) * 0.01 || 1;
      low -= spread;
      high += spread;
    }
    let first = points[0].time;
    let last = points[points.length - 1].time;
    if (last - first < SECOND) {
      first -= 30 * SECOND;
      last += 30 * SECOND;
    }
    const top = 12;
    const right = 18;
    const bottom = 50; // tick labels, then the axis title
    const plotHeight = height - top - bottom;
    const yAxis = priceTicks(low, high, Math.max(2, Math.floor(plotHeight / 44)));
    const labelWidth = Math.max(...yAxis.ticks.map((v) => yAxis.label(v).length)) * CHAR_PX;
    const left = 24 + labelWidth + 8; // the rotated axis title, the labels, a gap
    const plotWidth = Math.max(40, width - left - right);
    const xAxis = timeTicks(first, last, plotWidth);
    const x = (time) => left + ((time - first) / (last - first)) * plotWidth;
    const y = (price) => top + (1 - (price - yAxis.low) / (yAxis.high - yAxis.low)) * plotHeight;

    const root = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      class: "chart-svg",
      "aria-hidden": "true",
    });
    for (const value of yAxis.ticks) {
      const lineY = y(value);
      root.append(
        svg("line", { x1: left, x2: left + plotWidth, y1: lineY, y2: lineY, class: "grid" }),
        svg("text", { x: left - 8, y: lineY + 4, "text-anchor": "end", class: "axis" }, yAxis.label(value)),
      );
    }
    const base = top + plotHeight;
    for (const time of xAxis.ticks) {
      const tickX = x(time);
      const text = xAxis.label(time);
      const half = (text.length * CHAR_PX) / 2;
      const anchor =
        tickX - half < left - 8 ? "start" : tickX + half > width - 2 ? "end" : "middle";
      const labelX = anchor === "start" ? Math.max(2, tickX - 4) : anchor === "end" ? width - 2 : tickX;
      root.append(
        svg("line", { x1: tickX, x2: tickX, y1: base, y2: base + 5, class: "tick" }),
        svg("text", { x: labelX, y: base + 19, "text-anchor": anchor, class: "axis time" }, text),
      );
    }
    root.append(
      svg("line", { x1: left, x2: left + plotWidth, y1: base, y2: base, class: "baseline" }),
      svg(
        "text",
        { x: left + plotWidth / 2, y: height - 8, "text-anchor": "middle", class: "axis title" },
        `Time (${Intl.DateTimeFormat().resolvedOptions().timeZone || "local"})`,
      ),
      svg(
        "text",
        {
          x: 0,
          y: 0,
          "text-anchor": "middle",
          class: "axis title",
          transform: `translate(14 ${top + plotHeight / 2}) rotate(-90)`,
        },
        "Price (USD)",
      ),
    );

    chart.coords = points.map((p) => [x(p.time), y(p.price)]);
    const line = chart.coords.map(([cx, cy]) => `${cx.toFixed(1)},${cy.toFixed(1)}`).join(" ");
    if (chart.coords.length > 1) {
      const area =
        `M${chart.coords[0][0].toFixed(1)},${base} L${line.replaceAll(" ", " L")} ` +
        `L${chart.coords[chart.coords.length - 1][0].toFixed(1)},${base} Z`;
      root.append(svg("path", { d: area, class: "area" }), svg("polyline", { points: line, class: "line" }));
    }
    if (points.length <= 60) {
      for (const [cx, cy] of chart.coords) root.append(svg("circle", { cx, cy, r: 3, class: "dot" }));
    }
    const marker = svg("g", { class: "marker", visibility: "hidden" });
    const markerLine = svg("line", { y1: top, y2: base, class: "marker-line" });
    const markerDot = svg("circle", { r: 5, class: "marker-dot" });
    marker.append(markerLine, markerDot);
    root.append(marker);
    chart.marker = { group: marker, line: markerLine, dot: markerDot };

    box.replaceChildren(root);
    ui.chartCaption.textContent =
      `${points.length} price${points.length === 1 ? "" : "s"} from ${when(points[0].iso)} ` +
      `to ${when(points[points.length - 1].iso)}, between ${usd(Math.min(...prices))} and ` +
      `${usd(Math.max(...prices))}. Times in ${timeZone()}.`;
    if (chart.selected >= 0) select(chart.selected, false);
  }

  function select(index, announce = true) {
    if (chart.points.length === 0) return;
    const i = Math.max(0, Math.min(chart.points.length - 1, index));
    chart.selected = i;
    const [cx, cy] = chart.coords[i];
    const { group, line, dot } = chart.marker;
    line.setAttribute("x1", cx);
    line.setAttribute("x2", cx);
    dot.setAttribute("cx", cx);
    dot.setAttribute("cy", cy);
    group.setAttribute("visibility", "visible");
    if (announce) {
      const point = chart.points[i];
      ui.chartReadout.textContent =
        `${usd(point.price)} at ${when(point.iso)} (${i + 1} of ${chart.points.length})`;
    }
  }

  ui.chart.addEventListener("keydown", (event) => {
    const n = chart.points.length;
    if (n === 0) return;
    const current = chart.selected < 0 ? n : chart.selected;
    const moves = {
      ArrowLeft: current - 1,
      ArrowDown: current - 1,
      ArrowRight: chart.selected < 0 ? n - 1 : current + 1,
      ArrowUp: chart.selected < 0 ? n - 1 : current + 1,
      Home: 0,
      End: n - 1,
      PageUp: current - 10,
      PageDown: current + 10,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(moves[event.key]);
  });

  function pointAt(event) {
    if (chart.points.length === 0) return;
    const rect = ui.chart.getBoundingClientRect();
    const px = event.clientX - rect.left;
    let best = 0;
    for (let i = 1; i < chart.coords.length; i++) {
      if (Math.abs(chart.coords[i][0] - px) < Math.abs(chart.coords[best][0] - px)) best = i;
    }
    if (best !== chart.selected) select(best);
  }

  ui.chart.addEventListener("pointermove", pointAt);
  ui.chart.addEventListener("pointerdown", pointAt);

  // Redrawn at the card's new width; in the next frame, so that a redraw that changes
  // the page's height does not feed the observer in a loop.
  let frame = 0;
  new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      if (Math.floor(ui.chart.clientWidth) !== chart.drawnWidth) drawChart();
    });
  }).observe(ui.chart);

  // ---- start -------------------------------------------------------------------

  render();
})();
