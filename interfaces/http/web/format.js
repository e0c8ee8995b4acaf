// Numbers and times as the page shows them, in the person's own locale and time zone.

export const isNumber = (value) => typeof value === "number" && Number.isFinite(value);

export function usd(value, digits) {
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
