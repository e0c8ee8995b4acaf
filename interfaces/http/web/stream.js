// The live stream: GET /crypto as text/event-stream. EventSource cannot send an
// Authorization header, so the stream is read with fetch and parsed here (event:,
// data:, a blank line ends an event, ":" lines are heartbeats). It reconnects with
// back-off until told to stop. It streams the prices in the chosen currency.
import { token } from "./api.js";
import * as currency from "./currency.js";

// Three missed heartbeats (one every 15 s): the stream is dead even if no error came.
const STREAM_SILENCE_MS = 45_000;
const RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

// `handlers` is who listens while the stream is followed (null: not followed).
const stream = { handlers: null, controller: null, attempt: 0, retry: null, silence: null };

// Follows the stream until stop(): handlers.status(state) hears "connecting", "live"
// and "reconnecting", handlers.event(name, data) each event's JSON object, and
// handlers.expired() a 401 (the token is no longer valid).
export function follow(handlers) {
  if (stream.handlers) return;
  stream.handlers = handlers;
  handlers.status("connecting");
  connect();
}

export function stop() {
  const { controller } = stream;
  stream.handlers = null;
  stream.controller = null;
  stream.attempt = 0;
  clearTimeout(stream.retry);
  clearTimeout(stream.silence);
  if (controller) controller.abort();
}

// The stream again, from its snapshot (another currency was chosen), if it is followed.
export function reopen() {
  const { handlers } = stream;
  if (!handlers) return;
  stop();
  follow(handlers);
}

async function connect() {
  const bearer = token();
  const { handlers } = stream;
  if (!bearer || !handlers) return;
  const controller = new AbortController();
  stream.controller = controller;
  const mine = () => stream.controller === controller;
  let response;
  try {
    await currency.ready();
    if (!mine()) return;
    response = await fetch(currency.priced("/crypto"), {
      headers: { Accept: "text/event-stream", Authorization: `Bearer ${bearer}` },
      cache: "no-store",
      credentials: "omit",
      signal: controller.signal,
    });
  } catch {
    if (mine()) retry(handlers);
    return;
  }
  if (!mine()) {
    controller.abort();
    return;
  }
  const type = response.headers.get("Content-Type") || "";
  if (response.status === 401) {
    handlers.expired();
    return;
  }
  if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
    // 503: too many streams. The page asks every 30 s meanwhile, and tries again.
    controller.abort();
    retry(handlers);
    return;
  }
  stream.attempt = 0;
  handlers.status("live");
  try {
    // An event read after the stream was left (another currency) is not delivered.
    await readEvents(response.body, (name, text) => mine() && deliver(handlers, name, text), () =>
      heardFrom(controller),
    );
  } catch {
    // a dropped connection, or our own abort: told apart below
  }
  clearTimeout(stream.silence);
  if (mine()) retry(handlers);
}

function heardFrom(controller) {
  clearTimeout(stream.silence);
  stream.silence = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
}

function retry(handlers) {
  handlers.status("reconnecting");
  clearTimeout(stream.retry);
  const delay = RETRY_MS[Math.min(stream.attempt, RETRY_MS.length - 1)];
  stream.attempt += 1;
  stream.retry = setTimeout(connect, delay);
}

function deliver(handlers, name, text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    return; // not ours to show
  }
  if (data && typeof data === "object") handlers.event(name, data);
}

// Calls onEvent(name, data text) for each event in `body`, and onActivity() whenever
// anything (a heartbeat too) arrives; returns when the stream ends.
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
