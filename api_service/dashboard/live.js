// The queue's event stream, shared by the views that watch it, and the small "Live" indicator.

import { query } from "./api.js";
import { h } from "./dom.js";
import { follow } from "./sse.js";

const STATES = {
  connecting: ["Connecting…", "pending"],
  live: ["Live", "live"],
  reconnecting: ["Reconnecting…", "pending"],
  ended: ["Finished", "idle"],
  failed: ["Not live", "down"],
};

/** A status pill that says whether a view's figures are live. */
export function liveIndicator() {
  const el = h("span", { class: "live live-pending", role: "status" }, "Connecting…");
  return {
    el,
    set(state, error) {
      const [text, kind] = STATES[state] ?? STATES.connecting;
      el.textContent = error ? `${text}: ${error.message}` : text;
      el.className = `live live-${kind}`;
    },
  };
}

/**
 * Follow GET /queue/events (only a tag's jobs' events with `tag`); `onEvent(event)` gets each
 * queue event's JSON. `onLive({ missed })` runs each time the stream connects: the API answers
 * again, so a view whose last load failed tries it again. `missed` says the stream came back
 * without a cursor to resume from (it dropped before even the position the API sends first), so
 * the events of the time it was down are lost and what the view shows may be stale. Returns stop().
 */
export function watchQueue(onEvent, indicator, { tag = "", onLive = () => {} } = {}) {
  let connected = false;
  const stream = follow(`/queue/events${query({ tag })}`, {
    onEvent: (_type, data) => onEvent(data),
    onState: (state, error) => {
      indicator?.set(state, error);
      if (state !== "live") return;
      onLive({ missed: connected && !stream.lastEventId });
      connected = true;
    },
  });
  return () => stream.stop();
}

/**
 * Run `task` soon after a burst of events, at most once per `gapMs`: a burst of a hundred
 * progress events becomes a few refreshes, not a hundred.
 */
export function throttled(task, gapMs = 500) {
  let timer = null;
  let stopped = false;
  return {
    poke() {
      if (timer || stopped) return;
      timer = setTimeout(async () => {
        try {
          await task();
        } finally {
          timer = null;
        }
      }, gapMs);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
