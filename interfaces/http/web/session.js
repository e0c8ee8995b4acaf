// The session and the router: which view the address shows, logging in and out, and,
// while logged in, the live stream feeding the views (or, while it is down, asking
// the server again every 30 s), in the currency chosen.
import { LIST, LOGIN_VIEW, parseRoute } from "./addresses.js";
import {
  LOGIN,
  REGISTER,
  api,
  forgetCredentials,
  keepCredentials,
  token,
  username,
} from "./api.js";
import * as currency from "./currency.js";
import * as detail from "./detail-view.js";
import { $ } from "./dom.js";
import * as list from "./list-view.js";
import { act, clearMessages, report, say, whenExpired } from "./messages.js";
import * as stream from "./stream.js";
import * as upstream from "./upstream.js";

const NEXT_KEY = "cps.next"; // the view to open after logging in
const REFRESH_MS = 30_000;
const EXPIRED = "Your session has expired, please log in again.";
const LIVE_TEXT = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };

const ui = {
  session: $("session"),
  live: $("live"),
  whoami: $("whoami"),
  logout: $("logout"),
  authView: $("auth-view"),
  authForm: $("auth-form"),
  authMessage: $("auth-message"),
  username: $("username"),
  password: $("password"),
  listView: $("list-view"),
  listTitle: $("list-title"),
  detailView: $("detail-view"),
  detailTitle: $("detail-title"),
};

let sessionOn = false;
let pollTimer = null;

export function start() {
  window.addEventListener("hashchange", render);
  render();
}

// ---- the router ------------------------------------------------------------------

function render() {
  const route = parseRoute(location.hash);
  if (route.canonical && route.canonical !== location.hash) {
    location.replace(route.canonical); // the hashchange renders it
    return;
  }
  if (!token()) {
    stopSession();
    if (route.name !== "login") {
      sessionStorage.setItem(NEXT_KEY, location.hash);
      location.replace(LOGIN_VIEW);
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
    detail.close();
    showView("list");
    list.show();
  } else {
    showView("detail");
    detail.open(route.symbol, route.name).catch((error) => report(error));
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

// ---- the session -------------------------------------------------------------------

function startSession() {
  if (sessionOn) return;
  sessionOn = true;
  ui.whoami.textContent = `Signed in as ${username() || "you"}`;
  stream.follow({ status: setLive, event: handleEvent, expired });
}

function stopSession() {
  if (!sessionOn) return;
  sessionOn = false;
  stream.stop();
  stopPolling();
  list.reset();
  currency.reset();
  upstream.reset();
  detail.close();
}

// Back to the log-in form; with `keepPlace`, logging in again returns to this view.
function endSession(message, keepPlace = false) {
  if (keepPlace && token() && parseRoute(location.hash).name !== "login") {
    sessionStorage.setItem(NEXT_KEY, location.hash);
  }
  forgetCredentials();
  stopSession();
  clearMessages();
  ui.password.value = "";
  if (location.hash === LOGIN_VIEW) render();
  else location.hash = LOGIN_VIEW;
  if (message) say(ui.authMessage, message, keepPlace ? "error" : "ok");
}

const expired = () => endSession(EXPIRED, true);
whenExpired(expired);

ui.authForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const register = event.submitter && event.submitter.value === "register";
  act(event.submitter, ui.authMessage, async () => {
    const name = ui.username.value.trim();
    const body = { username: name, password: ui.password.value };
    const { token: issued } = await api("POST", register ? REGISTER : LOGIN, body);
    keepCredentials(issued, name);
    ui.password.value = "";
    location.hash = takeNext();
    if (register) say(null, `Welcome, ${name}: your account is ready.`);
  });
});

ui.logout.addEventListener("click", () => {
  sessionStorage.removeItem(NEXT_KEY);
  endSession("You are logged out.");
});

// Another currency: nothing shown in the old one stays, and the stream opens anew in
// the new one (its snapshot comes; the views ask at once too, in case it is down).
currency.whenChanged(() => {
  stream.reopen();
  list.reset();
  list.load().catch((error) => report(error));
  if (detail.isOpen()) detail.reprice().catch((error) => report(error));
});

// ---- the stream, and asking again while it is down -----------------------------------

function setLive(state) {
  ui.live.dataset.state = state;
  ui.live.textContent = LIVE_TEXT[state];
  if (state === "live") stopPolling();
  else startPolling();
}

function handleEvent(name, data) {
  if (name === "snapshot" && Array.isArray(data.cryptos)) {
    list.replace(data.cryptos);
    // Events may have been missed while the stream was down.
    if (detail.isOpen()) detail.reload().catch((error) => report(error));
  } else if (name === "price" && typeof data.symbol === "string") {
    list.priceChanged(data);
    detail.priceChanged(data);
  } else if (name === "added" && typeof data.symbol === "string") {
    list.put(data);
    detail.added(data.symbol);
  } else if (name === "removed" && typeof data.symbol === "string") {
    list.remove(data.symbol);
    detail.removed(data.symbol);
  } else if (name === "upstream") {
    upstream.changed(data, list.oldestUpdate());
    return;
  }
  upstream.render(list.oldestUpdate());
}

// While the stream is down, the page asks again every 30 s (when it is visible).
function startPolling() {
  if (pollTimer === null) pollTimer = setInterval(poll, REFRESH_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

function poll() {
  if (document.hidden || !sessionOn) return;
  const work = detail.isOpen() ? detail.reload() : list.load();
  work.catch((error) => report(error));
}

document.addEventListener("visibilitychange", () => {
  const lastLoad = Math.max(list.loadedAt(), detail.loadedAt());
  if (!document.hidden && pollTimer !== null && Date.now() - lastLoad >= REFRESH_MS) poll();
});
