// Whether the prices shown are stale, and why: the stream's `upstream` event says how
// the server's calls to CoinGecko fare; while they do not, a notice says so, with the
// time of the oldest price shown ("CoinGecko is rate-limiting; prices as of 12:03").
import { $ } from "./dom.js";

const WHY = {
  rate_limited: "CoinGecko is rate-limiting",
  failing: "CoinGecko is not answering",
  budget_spent: "This month's CoinGecko call budget is spent",
};

const ui = { notice: $("upstream-notice") };
let status = "ok";

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

// The time of day, with the day too when it is not today.
function asOf(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const today = day.format(new Date()) === day.format(date);
  return today ? clock.format(date) : `${day.format(date)}, ${clock.format(date)}`;
}

// The stream's event; `oldest` is the oldest last_updated the page shows (or null).
export function changed(data, oldest) {
  status = typeof data.status === "string" ? data.status : "ok";
  render(oldest);
}

// The prices shown changed: the notice names the oldest of them.
export function render(oldest) {
  const why = WHY[status];
  const text = why ? (oldest ? `${why}; prices as of ${asOf(oldest)}` : why) : "";
  if (ui.notice.textContent !== text) ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

// Logged out: nothing known any more.
export function reset() {
  status = "ok";
  render(null);
}
