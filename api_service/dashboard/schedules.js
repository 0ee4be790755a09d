// #/schedules — the tenant's schedules: when each fires next, and, opened, its latest runs with how
// each ended and why a failed one failed (kept after retention removed the job). A submitter also
// makes a schedule here (a name, its timing and a test definition, as `sentinel submit` files hold
// it), and pauses, resumes, runs or deletes one from its card. Notifications and the other options
// are set with the CLI, the SDK or the HTTP API; a change here keeps them.

import { api, enc, query } from "./api.js";
import { badge, h, notice, retryNotice, table, when } from "./dom.js";
import { loadMore } from "./filters.js";

const PAGE_SIZE = 50;

export function show(root, ctx) {
  ctx.setTitle("Schedules");
  const list = h("div", { class: "schedules" });
  const more = h("div", { class: "more" });
  const problem = h("div", {});
  const done = h("div", { "aria-live": "polite" });
  const empty = h("p", { class: "muted empty" }, "No schedules yet.");
  empty.hidden = true;
  let count = 0;

  const form = ctx.can("submitter") ? newScheduleForm(made) : null;
  const start = form
    ? h("button", { type: "button", class: "button-primary", "aria-expanded": "false", onclick: () => toggleForm() }, "New schedule")
    : null;
  if (form) form.hidden = true;

  function toggleForm(open = form.hidden) {
    form.hidden = !open;
    start.setAttribute("aria-expanded", String(open));
    if (open) form.querySelector("input").focus();
  }

  function made(schedule) {
    toggleForm(false);
    done.replaceChildren(notice("ok", `Schedule “${schedule.name}” created.`));
    list.prepend(card(schedule, ctx, removed));
    count += 1;
    empty.hidden = true;
  }

  function removed(schedule) {
    done.replaceChildren(notice("ok", `Schedule “${schedule.name}” deleted. The jobs it ran stay.`));
    count -= 1;
    empty.hidden = count > 0;
  }

  root.append(
    h("div", { class: "view-head" }, h("h1", {}, "Schedules"), start ? h("div", { class: "head-actions" }, start) : null),
    h("p", { class: "lede muted" }, "Checks that run by cron or at an interval. Open one for its latest runs."),
    form,
    done,
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
        list.append(card(schedule, ctx, removed));
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

/** A schedule as a disclosure: its name and timing; opened, its latest runs, read then, and (for a
 * submitter) what may be done to it. `removed(schedule)` is called once it is deleted. */
function card(schedule, ctx, removed) {
  const runs = h("div", { class: "runs" });
  const said = h("div", {});
  const actions = h("div", { class: "confirm schedule-actions" });
  const summaryTiming = h("span", { class: "muted small" }, ...timing(schedule));
  const details = h("details", { class: "card schedule", "data-schedule-id": schedule.id },
    h("summary", {}, h("span", { class: "schedule-name" }, schedule.name || schedule.id), " ", summaryTiming),
    ctx.can("submitter") ? actions : null,
    said,
    runs,
  );

  function draw(shown) {
    schedule = shown;
    summaryTiming.replaceChildren(...timing(shown));
    runs.replaceChildren(runTable(shown));
    drawActions();
  }

  async function read() {
    runs.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      draw(await api(`/schedules/${enc(schedule.id)}`));
    } catch (error) {
      runs.replaceChildren(notice("error", `The runs could not be read: ${error.message}`));
    }
  }

  /** Call the API about this schedule; `then(answer)` on success, the error shown otherwise. */
  const act = (what, path, options, then) => async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      then(await api(`/schedules/${enc(schedule.id)}${path}`, options));
    } catch (error) {
      said.replaceChildren(notice("error", `Could not ${what}: ${error.message}`));
      button.disabled = false;
    }
  };

  function drawActions() {
    const pause = schedule.paused
      ? h("button", { type: "button", class: "button-primary", onclick: act("resume it", "/resume", { method: "POST" }, resumed) }, "Resume")
      : h("button", { type: "button", class: "button-warn", onclick: act("pause it", "/pause", { method: "POST" }, paused) }, "Pause");
    actions.replaceChildren(
      pause,
      h("button", { type: "button", onclick: act("run it", "/trigger", { method: "POST" }, ran) }, "Run now"),
      h("button", { type: "button", onclick: askDelete }, "Delete…"),
    );
  }

  function paused(shown) {
    said.replaceChildren(notice("ok", "Paused: no fire runs until it is resumed."));
    draw(shown);
  }

  function resumed(shown) {
    said.replaceChildren(notice("ok", "Resumed: it fires again from now on."));
    draw(shown);
  }

  function ran(job) {
    said.replaceChildren(notice("ok", "Queued a run now: ", h("a", { href: `#/jobs/${enc(job.id)}` }, "open its job"), "."));
    read();
  }

  function askDelete() {
    actions.replaceChildren(
      h("span", {}, `Delete “${schedule.name}”? The jobs it ran stay.`),
      h("button", { type: "button", class: "button-danger", onclick: act("delete it", "", { method: "DELETE" }, gone) }, "Yes, delete"),
      h("button", { type: "button", onclick: drawActions }, "Keep it"),
    );
    actions.querySelector("button").focus();
  }

  function gone() {
    details.remove();
    removed(schedule);
  }

  drawActions();
  details.addEventListener("toggle", () => {
    if (details.open) read();
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

/** Which input a violation's field belongs to (the API names fields as the body spells them). */
function inputOf(field) {
  if (field === "name") return "schedule-name";
  if (field === "intervalMs" || field === "cron") return "schedule-when";
  if (field === "timezone") return "schedule-tz";
  if (field.startsWith("test.options.tags")) return "schedule-tags";
  if (field.startsWith("test")) return "schedule-test";
  return null;
}

/** The test a pasted text holds: a definition, or a file as `sentinel submit` takes it ({"definition": …}). */
function testOf(text) {
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`The test is not JSON: ${error.message}`);
  }
  if (parsed && typeof parsed === "object" && parsed.definition && typeof parsed.definition === "object") {
    return parsed.definition;
  }
  return parsed;
}

/** The form that makes a schedule: `made(schedule)` is called with the one the API created. */
function newScheduleForm(made) {
  const field = (id, label, input, hint = "") => h("div", { class: "field" },
    h("label", { for: id }, label), input, hint ? h("span", { class: "hint small muted" }, hint) : null);
  const name = h("input", { id: "schedule-name", name: "name", required: true, autocomplete: "off" });
  const kind = h("select", { id: "schedule-kind", name: "kind" },
    h("option", { value: "every" }, "Every N minutes"), h("option", { value: "cron" }, "Cron"));
  const whenInput = h("input", { id: "schedule-when", name: "when", value: "5", autocomplete: "off" });
  const tz = h("input", { id: "schedule-tz", name: "timezone", value: "UTC", autocomplete: "off" });
  const tags = h("input", { id: "schedule-tags", name: "tags", autocomplete: "off" });
  const test = h("textarea", { id: "schedule-test", name: "test", rows: 8, spellcheck: "false", class: "mono" });
  const errors = h("div", {});
  const submit = h("button", { type: "submit", class: "button-primary" }, "Create schedule");
  kind.addEventListener("change", () => {
    whenInput.value = kind.value === "cron" ? "*/5 * * * *" : "5";
  });

  function fail(message, violations = []) {
    const marked = new Set(violations.map((v) => inputOf(v.field)).filter(Boolean));
    for (const input of [name, whenInput, tz, tags, test]) {
      if (marked.has(input.id)) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    errors.replaceChildren(notice("error", h("span", {}, message),
      violations.length ? h("ul", {}, violations.map((v) => h("li", {}, h("code", {}, v.field), `: ${v.description}`))) : null));
  }

  async function send(event) {
    event.preventDefault();
    let definition;
    try {
      definition = testOf(test.value);
    } catch (error) {
      fail(error.message, [{ field: "test", description: "paste a test definition (JSON)" }]);
      return;
    }
    const body = { name: name.value, timezone: tz.value, test: { testDefinition: definition } };
    if (kind.value === "cron") body.cron = whenInput.value;
    else body.intervalMs = Math.round(Number(whenInput.value) * 60_000);
    const tagList = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (tagList.length) body.test.options = { tags: tagList };
    submit.disabled = true;
    try {
      const schedule = await api("/schedules", { method: "POST", body });
      errors.replaceChildren();
      form.reset();
      made(schedule);
    } catch (error) {
      fail(`The schedule was not created: ${error.message}`, error.violations ?? []);
    } finally {
      submit.disabled = false;
    }
  }

  const form = h("form", { class: "card schedule-form", novalidate: true, onsubmit: send, "aria-labelledby": "new-schedule-title" },
    h("h2", { id: "new-schedule-title" }, "New schedule"),
    h("div", { class: "filters" },
      field("schedule-name", "Name", name),
      field("schedule-kind", "Runs", kind),
      field("schedule-when", "Minutes or cron", whenInput, "minutes between runs, or a cron line"),
      field("schedule-tz", "Time zone", tz, "for a cron: IANA, such as Europe/Berlin"),
      field("schedule-tags", "Tags", tags, "comma separated"),
    ),
    field("schedule-test", "Test", test, "a test definition as `sentinel submit` files hold it (JSON)"),
    errors,
    h("div", { class: "field-buttons" }, submit),
  );
  return form;
}
