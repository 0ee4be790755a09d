// #/jobs — the tenant's jobs, newest first, filtered by state and tag; new jobs appear as they
// are submitted and rows follow their jobs' state and progress, from the queue's event stream. A
// job that leaves the state the list is filtered by leaves the list, as a reload would show it.

import { api, enc, query } from "./api.js";
import { STATES, badge, h, notice, progressBar, retryNotice, setProgress, table, when } from "./dom.js";
import { filterForm, loadMore } from "./filters.js";
import { liveIndicator, watchQueue } from "./live.js";

const PAGE_SIZE = 50;
const COLUMNS = ["Job", "State", "Priority", "Progress", "Attempt", "Tags", "Created"];
// Kinds that mean a job entered the queue: a job the list has not seen yet is fetched then.
const ARRIVALS = new Set(["waiting", "delayed", "active"]);

export function show(root, ctx) {
  ctx.setTitle("Jobs");
  const status = ctx.params.get("status") ?? "";
  const tag = ctx.params.get("tag") ?? "";
  const live = liveIndicator();
  const rows = new Map(); // job id → { tr, job }
  const list = table("Jobs, newest first", COLUMNS, [], { stack: true, numeric: [4] });
  list.hidden = true;
  const tbody = list.tbody;
  const more = h("div", { class: "more" });
  const problem = h("div", {});
  const announce = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const empty = h("p", { class: "muted empty" }, status || tag ? "No jobs match these filters." : "No jobs yet.");
  empty.hidden = true;

  root.append(
    h("div", { class: "view-head" }, h("h1", {}, "Jobs"), live.el),
    filterForm("jobs", "Filter jobs", [
      { name: "status", label: "State", value: status, options: [["", "All states"], ...STATES.map((s) => [s, s])] },
      { name: "tag", label: "Tag", value: tag },
    ]),
    problem,
    list,
    empty,
    more,
    announce,
  );

  const matches = (job) => (!status || job.status === status) && (!tag || (job.tags ?? []).includes(tag));

  function add(job, { atTop = false, fresh = false } = {}) {
    if (rows.has(job.id)) return;
    const row = jobRow(job);
    list.labelRow(row.tr);
    if (fresh) row.tr.classList.add("is-new");
    rows.set(job.id, row);
    if (atTop) tbody.prepend(row.tr);
    else tbody.append(row.tr);
    showRows();
  }

  function remove(id) {
    rows.get(id)?.tr.remove();
    rows.delete(id);
    showRows();
  }

  /** The table when it has rows; else "No jobs…", unless the list could not be read (its notice says why). */
  function showRows() {
    empty.hidden = rows.size > 0 || failed !== null;
    list.hidden = rows.size === 0;
  }

  // A page that could not be read is asked again from the notice's Retry button, and by itself
  // when the event stream connects: after an API restart or an outage, the stream being back is
  // the sign the list can be read again. `fresh` reads the list anew, in place of the rows shown.
  let failed = null; // { pageToken, fresh } of the load that failed
  let partial = false; // the last page read was only part of the list (a hybrid API whose Redis is away)
  let loading = false;
  let freshWanted = false; // a fresh read asked for while another load was under way: made after it
  async function load(pageToken = "", { fresh = false } = {}) {
    if (loading) {
      freshWanted ||= fresh;
      return;
    }
    loading = true;
    more.replaceChildren();
    try {
      const page = await api(`/tests${query({ status, tag, pageSize: PAGE_SIZE, pageToken })}`);
      failed = null;
      partial = Boolean(page.partial);
      problem.replaceChildren(...(partial ? [partialNotice(page.partial)] : []));
      if (fresh) {
        rows.clear();
        tbody.replaceChildren();
      }
      for (const job of page.jobs ?? []) add(job);
      showRows();
      loadMore(more, page.nextPageToken, load);
    } catch (error) {
      failed = { pageToken, fresh };
      problem.replaceChildren(retryNotice(`Jobs could not be listed: ${error.message}`, retry));
    } finally {
      loading = false;
      if (freshWanted) {
        freshWanted = false;
        load("", { fresh: true });
      }
    }
  }
  const retry = () => failed && load(failed.pageToken, { fresh: failed.fresh });
  const partialNotice = (why) =>
    notice("info", h("span", {}, `Only part of the jobs is listed: ${why}.`), " ",
      h("button", { type: "button", class: "notice-action", onclick: () => load("", { fresh: true }) }, "Reload"));

  // A job's row is redrawn from its status when its state changes; only progress is taken from
  // the event itself. One fetch per job at a time: events that arrive meanwhile ask for another.
  const fetching = new Map(); // job id → another fetch wanted
  async function fetchJob(id) {
    if (fetching.has(id)) {
      fetching.set(id, true);
      return;
    }
    fetching.set(id, false);
    try {
      const job = await api(`/tests/${enc(id)}/status`);
      const known = rows.get(id);
      if (known && !matches(job)) {
        remove(id); // it left the state the list shows: finished while the list shows running ones
        announce.textContent = `${job.name || job.id} is ${job.status} now and left the list`;
      } else if (known) {
        const row = jobRow(job);
        list.labelRow(row.tr);
        known.tr.replaceWith(row.tr);
        rows.set(id, row);
      } else if (matches(job)) {
        add(job, { atTop: true, fresh: true });
        announce.textContent = `New job: ${job.name || job.id}`;
      }
    } catch {
      // removed already (retention), or no longer ours: nothing to show
    } finally {
      const again = fetching.get(id);
      fetching.delete(id);
      if (again) fetchJob(id);
    }
  }

  // A job the list has not shown yet belongs in it when it enters the queue, or, under a state
  // filter, when it reaches that state (a job failing while the list shows failed jobs).
  const arrives = (event) =>
    (status ? event.status === status : ARRIVALS.has(event.kind)) && (!tag || (event.tags ?? []).includes(tag));

  const stopEvents = watchQueue((event) => {
    if (!event.jobId) return;
    const known = rows.get(event.jobId);
    if (known && event.kind === "progress") {
      known.setProgress(event.percentage);
    } else if (known || arrives(event)) {
      fetchJob(event.jobId);
    }
  }, live, {
    tag,
    // Back without a cursor, the stream could not replay what happened meanwhile: read it all again;
    // so does a list that was partial, since the stream being back means Redis answers again.
    onLive: ({ missed }) => (failed ? retry() : (missed || partial) && load("", { fresh: true })),
  });
  load();
  return stopEvents;
}


/** A job's row, and a way to move its progress bar without redrawing it. */
function jobRow(job) {
  const label = `Progress of ${job.name || job.id}`;
  const waiting = ["running", "pending", "scheduled"].includes(job.status);
  const bar = waiting ? progressBar(job.progress?.percentage ?? 0, label) : null;
  const progress = bar ?? h("span", { class: "muted" }, job.status === "completed" ? "100%" : "—");
  const tr = h("tr", { "data-job-id": job.id },
    h("td", { class: "job-cell" },
      h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name || "(unnamed)"),
      h("span", { class: "mono muted small job-id" }, job.id),
    ),
    h("td", {}, badge(job.status)),
    h("td", {}, h("span", { class: `priority priority-${job.priority}` }, job.priority)),
    h("td", { class: "progress-cell" }, progress),
    h("td", { class: "num" }, `${job.attempt ?? 0}/${job.maxAttempts ?? 0}`),
    h("td", {}, tagList(job.tags)),
    h("td", { class: "nowrap" }, when(job.createdAt)),
  );
  return { tr, job, setProgress: (pct) => bar && pct !== undefined && setProgress(bar, pct) };
}

export function tagList(tags) {
  if (!tags?.length) return h("span", { class: "muted" }, "—");
  return h("ul", { class: "tags", "aria-label": "Tags" }, tags.map((t) => h("li", { class: "tag" }, t)));
}
