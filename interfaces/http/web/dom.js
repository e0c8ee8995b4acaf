// Small helpers for building the page's nodes: data goes in as text, never as HTML.
import { when } from "./format.js";

export const $ = (id) => document.getElementById(id);

export function timeElement(iso) {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.textContent = when(iso);
  return time;
}
