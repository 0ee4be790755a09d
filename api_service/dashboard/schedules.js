// #/schedules — the tenant's schedules: when each fires next, and, opened, its latest runs with how
// each ended and why a failed one failed (kept after retention removed the job). Schedules are made
// and changed with the CLI, the SDK or gRPC; this page reads them.

import { api, enc, query } from "./api.js";
import { badge, h, notice, retryNotice, table, when } from "./dom.js";
import { loadMore } from "./filters.js";

const PAGE_SIZE = 50;

export function show(root, ctx) {
  ctx.setTitle("Schedules");
  const list = h("div", { class: "schedules" });
  const more = h("div", { class: "more" });
  const problem = h("div", {});
  const empty = h("p", { class: "muted empty" }, "No schedules yet. Make one with `sentinel schedules create`.");
  empty.hidden = true;
  let count = 0;

  root.append(
    h("div", { class: "view-head" }, h("h1", {}, "Schedules")),
    h("p", { class: "lede muted" }, "Checks that run by cron or at an interval. Open one for its latest runs."),
    problem,
    list,
    empty,
    more,
  );

  async function load(pageToken = "") {
    more.replaceChildren();
    try {
      const page = await api(`/schedules${query({ pageSize: PAGE_SIZE, pageToken })}`);
      problem.replaceChildren();
      for (const schedule of page.schedules ?? []) {
        list.append(card(schedule));
        count += 1;
      }
      empty.hidden = count > 0;
      loadMore(more, page.nextPageToken, load);
    } catch (error) {
      problem.replaceChildren(retryNotice(`Schedules could not be listed: ${error.message}`, () => load(pageToken)));
    }
  }

  load();
  return () => {};
}

/** How a schedule fires, and when next (a <time>), as nodes. */
function timing(schedule) {
  const every = schedule.cron ? `cron ${schedule.cron} (${schedule.timezone})` : `every ${schedule.intervalMs / 1000} s`;
  return schedule.paused ? [`${every} · paused`] : [`${every} · next `, when(schedule.nextFires?.[0])];
}

/** A schedule as a disclosure: its name and timing; opened, its latest runs, read then. */
function card(schedule) {
  const runs = h("div", { class: "runs" });
  const details = h("details", { class: "card schedule", "data-schedule-id": schedule.id },
    h("summary", {},
      h("span", { class: "schedule-name" }, schedule.name || schedule.id),
      " ",
      h("span", { class: "muted small" }, ...timing(schedule)),
    ),
    runs,
  );
  details.addEventListener("toggle", async () => {
    if (!details.open) return;
    runs.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      const shown = await api(`/schedules/${enc(schedule.id)}`);
      runs.replaceChildren(runTable(shown));
    } catch (error) {
      runs.replaceChildren(notice("error", `The runs could not be read: ${error.message}`));
    }
  });
  return details;
}

function runTable(schedule) {
  if (!schedule.recentRuns?.length) return h("p", { class: "muted" }, "No runs yet.");
  const rows = schedule.recentRuns.map((run) => h("tr", {},
    h("td", { class: "nowrap" }, when(run.fireTime)),
    h("td", {}, run.testId && !run.testRemoved
      ? h("a", { href: `#/jobs/${enc(run.testId)}` }, run.triggered ? "triggered" : "fired")
      : (run.skipped ? "skipped" : run.triggered ? "triggered" : run.testId ? "fired (job removed)" : "held")),
    h("td", {}, run.status ? badge(run.status) : "—"),
    h("td", { class: "error-line" }, run.error || run.reason || ""),
  ));
  return table(`Latest runs of ${schedule.name || schedule.id}`, ["Fire time", "Run", "State", "Why"], rows, { stack: true });
}
