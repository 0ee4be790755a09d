// Server-sent events read with fetch() and a stream reader. EventSource cannot send an
// Authorization header, so this does its job: parse `id:`/`event:`/`data:` lines, skip comment
// keep-alives, and after a dropped connection reconnect with Last-Event-ID so nothing is missed.

import { BASE, authHeaders, errorOf, reportUnauthorized } from "./api.js";

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;

/**
 * Follow an SSE endpoint until `stop()` or until `isLast(type, data)` says an event ended it.
 *
 * Callbacks: onEvent(type, data, id) per event (data parsed as JSON); onState("connecting" |
 * "live" | "reconnecting" | "ended" | "failed", error?) for a connection indicator. A 4xx answer
 * is not retried: it ends in "failed" with the ApiError.
 */
export function follow(path, { onEvent, onState = () => {}, isLast = () => false, lastEventId = "" }) {
  const controller = new AbortController();
  const { signal } = controller;
  let last = lastEventId;

  async function once() {
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (last) headers["Last-Event-ID"] = last;
    const response = await fetch(BASE + path, { headers, signal, cache: "no-store" });
    if (!response.ok) throw await errorOf(response);
    onState("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { id: null, type: "", data: [] };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return false;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, end).replace(/\r$/, "");
          buffer = buffer.slice(end + 1);
          if (line === "") {
            if (dispatch(event)) return true;
            event = { id: null, type: "", data: [] };
          } else if (!line.startsWith(":")) {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "id") event.id = text;
            else if (field === "event") event.type = text;
            else if (field === "data") event.data.push(text);
          }
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  /** Hand one event over; true when it was the last. */
  function dispatch(event) {
    if (event.id !== null) last = event.id;
    if (!event.data.length) return false;
    let data;
    try {
      data = JSON.parse(event.data.join("\n"));
    } catch {
      return false; // not ours to understand; the cursor still moved past it
    }
    const type = event.type || "message";
    onEvent(type, data, event.id);
    return isLast(type, data);
  }

  (async () => {
    let delay = FIRST_DELAY_MS;
    onState("connecting");
    while (!signal.aborted) {
      try {
        if (await once()) {
          onState("ended");
          return;
        }
        delay = FIRST_DELAY_MS; // it was up: a closed stream is retried soon
      } catch (error) {
        if (signal.aborted) return;
        if (error.status >= 400 && error.status < 500) {
          if (error.status === 401) reportUnauthorized(error);
          onState("failed", error);
          return;
        }
      }
      if (signal.aborted) return;
      onState("reconnecting");
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  })();

  return { stop: () => controller.abort(), get lastEventId() { return last; } };
}
