// #/queue — the queue's figures per lane (refreshed as events arrive), its health and reasons,
// recent activity, and pause/resume for operators.

import { api } from "./api.js";
import { badge, clock, duration, figure, h, notice, table, when } from "./dom.js";
import { liveIndicator, throttled, watchQueue } from "./live.js";

const LANES = ["high", "medium", "low"];
const FEED_LENGTH = 30;
const POLL_MS = 15000;

export function show(root, ctx) {
  ctx.setTitle("Queue");
  const live = liveIndicator();
  const control = h("div", { class: "head-actions" });
  const healthBox = h("section", { class: "card health", "aria-labelledby": "health-title" });
  const totals = h("div", { class: "tiles", "aria-live": "polite", "aria-atomic": "false" });
  const lanes = h("div", {});
  const feed = h("ol", { class: "feed", "aria-label": "Recent queue events" });
  const problem = h("div", {});
  const title = h("h1", {}, "Queue");
  root.append(
    h("div", { class: "view-head" }, title, live.el, control),
    problem,
    healthBox,
    h("section", { "aria-labelledby": "totals-title" }, h("h2", { id: "totals-title", class: "visually-hidden" }, "Totals"), totals),
    h("section", { "aria-labelledby": "lanes-title" }, h("h2", { id: "lanes-title" }, "Lanes"), lanes),
    h("section", { "aria-labelledby": "feed-title" },
      h("h2", { id: "feed-title" }, "Recent activity"),
      feed,
    ),
  );
  feed.append(h("li", { class: "feed-empty muted" }, "Events appear here as they happen."));

  let stats = null;
  let busy = false;

  async function refresh() {
    try {
      const [s, health] = await Promise.all([api("/queue/stats"), api("/queue/health", { dataOn: [503] })]);
      stats = s;
      problem.replaceChildren();
      title.textContent = s.queue && s.queue !== "default" ? `Queue ${s.queue}` : "Queue";
      renderHealth(healthBox, health, s);
      renderTotals(totals, s);
      renderLanes(lanes, s);
      renderControl();
    } catch (error) {
      problem.replaceChildren(notice("error", `The queue's figures could not be read: ${error.message}`));
    }
  }

  function renderControl() {
    if (!ctx.can("operator") || !stats) {
      control.replaceChildren();
      return;
    }
    const paused = Boolean(stats.paused);
    const button = h("button", {
      type: "button",
      class: paused ? "button-primary" : "button-warn",
      disabled: busy,
      onclick: () => toggle(paused),
    }, paused ? "Resume queue" : "Pause queue");
    control.replaceChildren(button);
  }

  async function toggle(paused) {
    busy = true;
    renderControl();
    try {
      await api(paused ? "/queue/resume" : "/queue/pause", { method: "POST" });
    } catch (error) {
      problem.replaceChildren(notice("error", `Could not ${paused ? "resume" : "pause"} the queue: ${error.message}`));
    } finally {
      busy = false;
      await refresh();
    }
  }

  const soon = throttled(refresh, 400);
  const stopEvents = watchQueue((event) => {
    if (event.kind === "progress") return; // moves no figure; the job's own page shows it
    addToFeed(feed, event);
    soon.poke();
  }, live);
  const poll = setInterval(refresh, POLL_MS); // health turns stale without any event
  refresh();

  return () => {
    stopEvents();
    soon.stop();
    clearInterval(poll);
  };
}

function renderHealth(box, health, stats) {
  const reasons = health.reasons ?? [];
  box.className = `card health health-${health.status}`;
  box.replaceChildren(
    h("div", { class: "health-line" },
      h("h2", { id: "health-title" }, "Health"),
      h("span", { class: `badge badge-health-${health.status}` }, health.status),
      stats.paused ? h("span", { class: "badge badge-paused" }, "paused") : null,
      h("span", { class: "muted small" }, stats.tenant ? `figures of tenant ${stats.tenant}` : "figures of the whole queue"),
    ),
    reasons.length
      ? h("ul", { class: "reasons" }, reasons.map((r) => h("li", {}, r)))
      : h("p", { class: "muted small" }, "Nothing to report."),
  );
}

const TILES = [
  ["Waiting", (s) => figure(s.waiting)],
  ["Running", (s) => figure(s.active)],
  ["Delayed", (s) => figure(s.delayed)],
  ["Completed", (s) => figure(s.completed)],
  ["Failed", (s) => figure(s.failed)],
  ["Cancelled", (s) => figure(s.cancelled)],
  ["Dead letters", (s) => figure(s.deadLettered)],
  ["Jobs / min", (s) => figure(s.processingRate, 1), "last 5 min"],
  ["Avg time", (s) => duration(s.avgProcessingTime)],
];

/** The tiles are made once and only their changed figures rewritten: the region is aria-live,
 * so a screen reader hears what changed, not every figure on every refresh. */
function renderTotals(box, s) {
  if (!box.children.length) {
    box.append(...TILES.map(([label, , hint]) => h("div", { class: "tile" },
      h("span", { class: "tile-value" }),
      h("span", { class: "tile-label" }, label),
      hint ? h("span", { class: "tile-hint" }, hint) : null,
    )));
  }
  TILES.forEach(([, value], i) => {
    const el = box.children[i].firstElementChild;
    const text = value(s);
    if (el.textContent !== text) el.textContent = text;
  });
}

// Every column but the lane's name holds a number.
const LANE_COLUMNS = ["Lane", "Waiting", "Running", "Delayed", "Completed", "Failed", "Cancelled", "Dead", "Processed",
  "Jobs/min", "Avg time"];

function renderLanes(box, s) {
  const byLane = new Map((s.lanes ?? []).map((l) => [l.priority, l]));
  const row = (name, l, cls) => h("tr", { class: cls },
    h("th", { scope: "row" }, name),
    [l.waiting, l.active, l.delayed, l.completed, l.failed, l.cancelled, l.deadLettered, l.totalProcessed].map((v) => h("td", { class: "num" }, figure(v))),
    h("td", { class: "num" }, figure(l.processingRate, 1)),
    h("td", { class: "num" }, duration(l.avgProcessingTime)),
  );
  const rows = LANES.filter((p) => byLane.has(p)).map((p) => row(p, byLane.get(p), ""));
  rows.push(row("total", s, "total"));
  box.replaceChildren(
    table("Figures per lane", LANE_COLUMNS, rows, { numeric: LANE_COLUMNS.slice(1).map((_, i) => i + 1), stack: true }),
    h("p", { class: "muted small" }, "Last job finished: ", when(s.lastProcessedAt)),
  );
}

function addToFeed(feed, event) {
  feed.querySelector(".feed-empty")?.remove();
  const job = event.jobId
    ? h("a", { href: `#/jobs/${encodeURIComponent(event.jobId)}`, class: "mono" }, event.jobId.slice(0, 8))
    : null;
  const text = event.message ?? "";
  feed.prepend(h("li", {},
    h("span", { class: "feed-time mono" }, clock(event.at)),
    h("span", { class: `feed-kind kind-${event.kind}` }, event.kind.replace("_", " ")),
    job,
    event.status && event.kind !== event.status ? badge(event.status) : null,
    text ? h("span", { class: "feed-text" }, text) : null,
  ));
  while (feed.children.length > FEED_LENGTH) feed.lastElementChild.remove();
}
