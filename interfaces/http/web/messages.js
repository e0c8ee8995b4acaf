// What the page tells the person. A message goes next to the control that caused it
// (`place`: a live region in the page), or else into the toast, which stays fixed in
// the viewport. Both are live regions that stay in the page, so screen readers announce
// what is written there.
import { ApiError } from "./api.js";
import { $ } from "./dom.js";

const toast = $("toast");
const toastText = $("toast-text");
let toastTimer = null;
const written = new Set(); // the places say() has written to, cleared by clearMessages()
let onExpired = () => {};

// Who ends the session when the API says the token it was sent is no longer valid.
export function whenExpired(handler) {
  onExpired = handler;
}

export function say(place, text, kind = "ok") {
  if (place) {
    written.add(place);
    place.textContent = text;
    place.className = `notice ${kind}`;
    place.scrollIntoView({ block: "nearest" });
    return;
  }
  clearTimeout(toastTimer);
  toastText.textContent = text;
  toast.dataset.kind = kind;
  toast.classList.add("shown");
  if (kind === "ok") toastTimer = setTimeout(hideToast, 8_000);
}

function hideToast() {
  clearTimeout(toastTimer);
  toast.classList.remove("shown");
  toastText.textContent = "";
}

export function clearMessages() {
  for (const place of written) {
    place.textContent = "";
    place.className = "notice";
  }
  hideToast();
}

$("toast-close").addEventListener("click", hideToast);

export function report(error, place = null) {
  if (!(error instanceof ApiError)) {
    console.error(error);
    say(place, `Something went wrong in this page: ${error.message || error}`, "error");
  } else if (error.status === 401 && error.sentToken) {
    onExpired();
  } else {
    say(place, error.message, "error");
  }
}

// Runs a person's action: clears old messages, disables its button while it runs,
// and shows any error at `place` (or in the toast).
export async function act(button, place, action) {
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
