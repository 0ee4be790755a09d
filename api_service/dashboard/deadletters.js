// #/dead-letters — jobs that ran out of attempts or hit an error never worth retrying. Admins
// requeue one (a fresh run of the same job) or purge them; the page is admin-only, as its API is.

import { api, enc, query } from "./api.js";
import { h, notice, table, when } from "./dom.js";
import { filterForm, loadMore } from "./filters.js";
import { tagList } from "./jobs.js";

const PAGE_SIZE = 50;
const CATEGORIES = ["network", "timeout", "browser", "system", "validation", "assertion", "policy", "unknown"];
const AGES = [
  ["", "all dead letters"],
  [String(3600e3), "older than 1 hour"],
  [String(86400e3), "older than 1 day"],
  [String(7 * 86400e3), "older than 7 days"],
];

export function show(root, ctx) {
  ctx.setTitle("Dead letters");
  const head = h("div", { class: "view-head" }, h("h1", {}, "Dead letters"));
  if (!ctx.can("admin")) {
    root.append(head, notice("info", "Dead letters are handled by admins; your key's role is ", ctx.session.role, "."));
    return () => {};
  }
  const category = ctx.params.get("category") ?? "";
  const tag = ctx.params.get("tag") ?? "";
  const list = table("Dead letters, newest first",
    ["Job", "Reason", "Attempts", "Dead since", "Tags", h("span", { class: "visually-hidden" }, "Actions")], [],
    { stack: true, numeric: [2] });
  const tbody = list.tbody;
  list.hidden = true;
  const more = h("div", { class: "more" });
  const status = h("div", { "aria-live": "polite" });
  const empty = h("p", { class: "muted empty" }, category || tag ? "No dead letters match these filters." : "No dead letters. Nothing has given up.");
  empty.hidden = true;
  let count = 0;

  root.append(
    head,
    h("p", { class: "lede muted" }, "Jobs that ran out of attempts or failed in a way retrying cannot fix. Requeue one to run it again."),
    filterForm("dead-letters", "Filter dead letters", [
      { name: "category", label: "Error category", value: category, options: [["", "All categories"], ...CATEGORIES.map((c) => [c, c])] },
      { name: "tag", label: "Tag", value: tag },
    ]),
    status,
    list,
    empty,
    more,
    purgeForm(),
  );

  function row(letter) {
    const requeue = h("button", { type: "button", class: "button-primary", "aria-label": `Requeue ${letter.name || letter.jobId}` }, "Requeue");
    const tr = h("tr", { "data-job-id": letter.jobId },
      h("td", { class: "job-cell" },
        h("a", { href: `#/jobs/${enc(letter.jobId)}` }, letter.name || "(unnamed)"),
        h("span", { class: "mono muted small job-id" }, letter.jobId),
      ),
      h("td", { class: "reason-cell" },
        h("span", {}, letter.reason || "—"),
        letter.error?.message ? h("span", { class: "small muted error-line" }, `${letter.error.category ?? ""}: ${letter.error.message}`) : null,
      ),
      h("td", { class: "num" }, String(letter.attempts ?? 0)),
      h("td", { class: "nowrap" }, when(letter.deadLetteredAt)),
      h("td", {}, tagList(letter.tags)),
      h("td", {}, requeue),
    );
    requeue.addEventListener("click", async () => {
      requeue.disabled = true;
      requeue.textContent = "Requeueing…";
      try {
        const job = await api(`/queue/dead-letters/${enc(letter.jobId)}/requeue`, { method: "POST" });
        tr.remove();
        count -= 1;
        empty.hidden = count > 0;
        list.hidden = count === 0;
        status.replaceChildren(notice("ok", "Requeued ", h("a", { href: `#/jobs/${enc(job.id)}` }, job.name || job.id),
          `: it is ${job.status} again.`));
      } catch (error) {
        requeue.disabled = false;
        requeue.textContent = "Requeue";
        status.replaceChildren(notice("error", `Could not requeue ${letter.name || letter.jobId}: ${error.message}`));
      }
    });
    return tr;
  }

  async function load(pageToken = "") {
    more.replaceChildren();
    try {
      const page = await api(`/queue/dead-letters${query({ category, tag, pageSize: PAGE_SIZE, pageToken })}`);
      for (const letter of page.deadLetters ?? []) {
        tbody.append(list.labelRow(row(letter)));
        count += 1;
      }
      empty.hidden = count > 0;
      list.hidden = count === 0;
      loadMore(more, page.nextPageToken, load);
    } catch (error) {
      status.replaceChildren(notice("error", `Dead letters could not be listed: ${error.message}`));
    }
  }

  function purgeForm() {
    const select = h("select", { id: "purge-age", name: "olderThanMs" }, AGES.map(([v, t]) => h("option", { value: v }, t)));
    const confirm = h("div", { class: "confirm" });
    const start = h("button", { type: "button", class: "button-danger" }, "Purge…");
    start.addEventListener("click", () => {
      start.hidden = true;
      confirm.replaceChildren(
        h("span", {}, `Delete ${select.selectedOptions[0].textContent} for good?`),
        h("button", { type: "button", class: "button-danger", onclick: purge }, "Yes, purge"),
        h("button", { type: "button", onclick: reset }, "Keep them"),
      );
      confirm.querySelector("button").focus();
    });
    function reset() {
      confirm.replaceChildren();
      start.hidden = false;
    }
    async function purge() {
      const body = select.value ? { olderThanMs: Number(select.value) } : {};
      try {
        const { purged } = await api("/queue/dead-letters/purge", { method: "POST", body });
        status.replaceChildren(notice("ok", `Purged ${purged} dead letter${purged === 1 ? "" : "s"}.`));
        tbody.replaceChildren();
        count = 0;
        await load();
      } catch (error) {
        status.replaceChildren(notice("error", `Could not purge: ${error.message}`));
      }
      reset();
    }
    return h("section", { class: "card purge", "aria-labelledby": "purge-title" },
      h("h2", { id: "purge-title" }, "Purge"),
      h("div", { class: "purge-row" },
        h("label", { for: "purge-age" }, "Delete"), select, start, confirm),
    );
  }

  load();
  return () => {};
}
