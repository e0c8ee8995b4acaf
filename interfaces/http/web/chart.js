// The history chart: an SVG drawn at the card's own width, read with the arrow keys
// or by pointing (the readout below it says the selected price).
import { $ } from "./dom.js";
import { price, upper } from "./currency.js";
import { isNumber, timeZone, when } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const box = $("chart");
const readout = $("chart-readout");
const caption = $("chart-caption");

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

// What is drawn (the prices, the symbol they are of) and how: the points at their
// coordinates, the selected one (kept across redraws), and the width drawn at
// (0: draw again at the next resize).
const chart = {
  series: [],
  symbol: "",
  points: [],
  selected: -1,
  drawnWidth: 0,
  coords: [],
  marker: null,
};

// Draws `history` ({price, timestamp}, oldest first) of `symbol` at the box's width
// if the box is shown, and again whenever that width changes.
export function plot(history, symbol) {
  chart.series = [...history]; // a copy: the caller's list is the caller's to change
  chart.symbol = symbol;
  chart.drawnWidth = 0;
  draw();
}

export function clear() {
  chart.series = [];
  chart.drawnWidth = 0;
  box.replaceChildren();
  readout.textContent = "";
}

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
  return { ticks, low: from, high: to, label: (v) => price(v, digits) };
}

function timeFormat(step) {
  if (step < MINUTE) return { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  if (step < DAY) return { hour: "2-digit", minute: "2-digit" };
  if (step < 365 * DAY) return { month: "short", day: "numeric" };
  return { year: "numeric" };
}

// Ticks at round local times (seconds for a minute's span, hours for a day's ...),
// as many as fit side by side in `width` px. A step is judged by the ticks it really
// draws, not by span / step: a day's span at 12 h steps draws one tick or two
// depending on the time of day, where 6 h steps draw three.
function alignedTicks(first, last, step) {
  const offset = new Date(first).getTimezoneOffset() * MINUTE; // local time = UTC - offset
  const ticks = [];
  for (let t = Math.ceil((first - offset) / step) * step + offset; t <= last; t += step) {
    ticks.push(t);
  }
  return ticks;
}

function timeTicks(first, last, width) {
  let step = TIME_STEPS[TIME_STEPS.length - 1];
  let format = new Intl.DateTimeFormat(undefined, timeFormat(step));
  let ticks = alignedTicks(first, last, step);
  for (const candidate of TIME_STEPS) {
    const f = new Intl.DateTimeFormat(undefined, timeFormat(candidate));
    const labelWidth = f.format(new Date(last)).length * CHAR_PX + 16;
    const fit = Math.max(1, Math.floor(width / labelWidth));
    if ((last - first) / candidate > fit + 1) continue; // draws more than fit, surely
    const drawn = alignedTicks(first, last, candidate);
    if (drawn.length <= fit) {
      step = candidate;
      format = f;
      ticks = drawn;
      break;
    }
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

function draw() {
  const width = Math.floor(box.clientWidth);
  if (width <= 0) return; // hidden: drawn when shown (the observer below)
  chart.drawnWidth = width;
  const points = chart.series
    .map((p) => ({ price: p.price, time: new Date(p.timestamp).getTime(), iso: p.timestamp }))
    .filter((p) => isNumber(p.price) && Number.isFinite(p.time));
  const previous = chart.points[chart.selected];
  chart.points = points;
  chart.selected = previous ? points.findIndex((p) => p.time === previous.time) : -1;
  box.setAttribute("aria-label", `Price chart of ${chart.symbol}`);
  if (points.length === 0) {
    box.replaceChildren();
    caption.textContent = "No prices stored yet.";
    readout.textContent = "";
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
  const y = (value) => top + (1 - (value - yAxis.low) / (yAxis.high - yAxis.low)) * plotHeight;

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
      `Price (${upper()})`,
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
  caption.textContent =
    `${points.length} price${points.length === 1 ? "" : "s"} from ${when(points[0].iso)} ` +
    `to ${when(points[points.length - 1].iso)}, between ${price(Math.min(...prices))} and ` +
    `${price(Math.max(...prices))}. Times in ${timeZone()}.`;
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
    readout.textContent =
      `${price(point.price)} at ${when(point.iso)} (${i + 1} of ${chart.points.length})`;
  }
}

box.addEventListener("keydown", (event) => {
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
  const rect = box.getBoundingClientRect();
  const px = event.clientX - rect.left;
  let best = 0;
  for (let i = 1; i < chart.coords.length; i++) {
    if (Math.abs(chart.coords[i][0] - px) < Math.abs(chart.coords[best][0] - px)) best = i;
  }
  if (best !== chart.selected) select(best);
}

box.addEventListener("pointermove", pointAt);
box.addEventListener("pointerdown", pointAt);

// Redrawn at the card's new width; in the next frame, so that a redraw that changes
// the page's height does not feed the observer in a loop.
let frame = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(frame);
  frame = requestAnimationFrame(() => {
    if (Math.floor(box.clientWidth) !== chart.drawnWidth) draw();
  });
}).observe(box);
