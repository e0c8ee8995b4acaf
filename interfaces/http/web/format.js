// Numbers and times as the page shows them, in the person's own locale and time zone.

export const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

// Whether `code` (a CoinGecko vs_currency, any case) is an ISO 4217 currency the
// browser can format as money; the others (btc, eth, sats ...) are crypto quotes.
const iso = new Set(Intl.supportedValuesOf("currency"));
export const isFiat = (code) => iso.has(code.toUpperCase());

// Formatters are costly to build and a page formats hundreds of prices: one each.
const formatters = new Map();

function formatter(options) {
  const key = JSON.stringify(options);
  let made = formatters.get(key);
  if (!made) {
    made = new Intl.NumberFormat(undefined, options);
    formatters.set(key, made);
  }
  return made;
}

// `value` in the currency `code`: fiat as money in the person's locale ("€1,234.56",
// "¥1,235"), a crypto quote as a plain number with its code ("0.0000153 BTC"). `digits`
// fixes the fraction digits; else a price under 1 keeps 4 significant digits (a coin
// worth fractions of a cent is not shown as 0.00), others the currency's own digits
// (2 for a crypto quote).
export function money(value, code, digits) {
  if (!isNumber(value)) return "—";
  const fiat = isFiat(code);
  const style = fiat ? { style: "currency", currency: code.toUpperCase() } : {};
  const abs = Math.abs(value);
  let fraction;
  if (digits !== undefined) {
    fraction = { minimumFractionDigits: digits, maximumFractionDigits: digits };
  } else if (abs >= 1 || abs === 0) {
    const own = fiat ? formatter(style).resolvedOptions().maximumFractionDigits : 2;
    fraction = { minimumFractionDigits: own, maximumFractionDigits: own };
  } else {
    fraction = { maximumSignificantDigits: 4 };
  }
  const text = formatter({ ...style, ...fraction }).format(value);
  return fiat ? text : `${text} ${code.toUpperCase()}`;
}

export const signed = (text, value) => (isNumber(value) && value > 0 ? `+${text}` : text);

export function percent(value) {
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

export function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : toSecond.format(date);
}

export function timeZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const minutes = -new Date().getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  const hh = String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0");
  const mm = String(Math.abs(minutes) % 60).padStart(2, "0");
  return `${zone} (UTC${sign}${hh}:${mm})`;
}
