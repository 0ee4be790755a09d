// #/jobs/<id> — one job: what it is, a progress bar that follows its event stream while it runs,
// then its error, step table and evidence (the latest run's screenshots inline, other files to
// download), all fetched with the key into blob URLs.

import { api, enc } from "./api.js";
import { TERMINAL, badge, duration, h, notice, progressBar, retryNotice, setProgress, table, when } from "./dom.js";
import { tagList } from "./jobs.js";
import { liveIndicator, watchQueue } from "./live.js";
import { artifactsSection } from "./evidence.js";
import { follow } from "./sse.js";

export function show(root, ctx) {
  const id = ctx.id;
  ctx.setTitle(`Job ${id.slice(0, 8)}`);
  let stream = null;
  let evidence = null;
  let stopped = false;
  let waitForApi = null; // stops the queue stream watched while the job cannot be read
  const apiState = liveIndicator(); // that stream's state, shown meanwhile

  /** Stop what the page shows live: the job's progress stream and its evidence's loads, and
   * (unless `keepWaiting`) the queue stream watched while the job could not be read. */
  function stopLive({ keepWaiting = false } = {}) {
    if (!keepWaiting) {
      waitForApi?.();
      waitForApi = null;
    }
    stream?.stop();
    stream = null;
    evidence?.stop();
    evidence = null;
  }

  async function load() {
    try {
      draw(await api(`/tests/${enc(id)}/status`));
    } catch (error) {
      if (stopped) return;
      if (error.status === 404) {
        stopLive();
        showProblem([], notice("error", `There is no job ${id} (it may have been removed after its retention time).`));
      } else {
        unreadable(error);
      }
    }
  }

  function showProblem(head, problem) {
    stopLive({ keepWaiting: true });
    root.replaceChildren(h("div", { class: "view-head" }, h("h1", {}, "Job"), head), problem,
      h("p", {}, h("a", { href: "#/jobs" }, "Back to jobs")));
  }

  /**
   * The job could not be read for now (the API restarting, Redis down): say so with a Retry
   * button, and read it again by itself once the queue's event stream connects — the API answers
   * again then. One stream for as long as reading fails, so a read that fails again waits for the
   * next reconnection (or a click) instead of trying in a loop.
   */
  function unreadable(error) {
    showProblem(apiState.el, retryNotice(`The job could not be read: ${error.message}`, load));
    waitForApi ??= watchQueue(() => {}, apiState, { onLive: load });
  }

  function draw(job) {
    if (stopped) return;
    stopLive();
    ctx.setTitle(job.name || `Job ${id.slice(0, 8)}`);
    const problem = h("div", {});
    const parts = {
      state: h("span", {}, badge(job.status)),
      actions: h("div", { class: "head-actions" }, actionButtons(job, problem)),
    };
    const live = liveIndicator();
    const view = [
      h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / ", h("span", { class: "mono" }, id.slice(0, 8))),
      h("div", { class: "view-head" }, h("h1", {}, job.name || "(unnamed job)"), parts.state,
        TERMINAL.has(job.status) ? null : live.el, parts.actions),
      problem,
      metaList(job),
    ];
    if (!TERMINAL.has(job.status)) view.push(progressSection(job, parts, live));
    if (job.error) view.push(errorSection(job));
    const evidenceBox = h("div", {});
    if (job.result?.steps?.length) view.push(stepsSection(job));
    view.push(evidenceBox);
    root.replaceChildren(...view);
    if (TERMINAL.has(job.status)) evidence = artifactsSection(evidenceBox, job);
  }

  /** The progress bar and its message, moved by GET /tests/{id}/events until the last event. */
  function progressSection(job, parts, live) {
    const pct = job.progress?.percentage ?? 0;
    const bar = progressBar(pct, "Job progress");
    bar.id = "job-progress";
    const message = h("p", { class: "progress-message", "aria-live": "polite" }, progressText(job.progress, job.status));
    let state = job.status;
    stream = follow(`/tests/${enc(id)}/events`, {
      isLast: (_type, event) => Boolean(event.terminal),
      onState: (s, error) => live.set(s, error),
      onEvent: (_type, event) => {
        if (event.progress) {
          setProgress(bar, event.progress.percentage);
          message.textContent = progressText(event.progress, event.status);
        }
        if (event.status && event.status !== state) {
          state = event.status;
          parts.state.replaceChildren(badge(state));
        }
        if (event.terminal) load(); // the result, the error and the evidence are in the job now
      },
    });
    return h("section", { class: "card", "aria-labelledby": "progress-title" },
      h("h2", { id: "progress-title" }, "Progress"), bar, message);
  }

  function actionButtons(job, problem) {
    if (!ctx.can("submitter")) return [];
    const act = (verb, path) => async (event) => {
      event.currentTarget.disabled = true;
      try {
        draw(await api(`/queue/jobs/${enc(id)}/${path}`, { method: "POST" }));
      } catch (error) {
        problem.replaceChildren(notice("error", `Could not ${verb} the job: ${error.message}`));
        event.target.disabled = false;
      }
    };
    if (!TERMINAL.has(job.status)) {
      return [h("button", { type: "button", class: "button-warn", onclick: act("cancel", "cancel") }, "Cancel job")];
    }
    if (job.status !== "completed") {
      return [h("button", { type: "button", onclick: act("retry", "retry") }, "Run again")];
    }
    return [];
  }

  load();
  return () => {
    stopped = true;
    stopLive();
  };
}

function progressText(progress, status) {
  if (status === "pending") return "Waiting for an executor…";
  if (status === "scheduled") return "Scheduled to run later.";
  const message = progress?.message || progress?.stepName || "";
  return `${Math.round(progress?.percentage ?? 0)}%${message ? ` — ${message}` : ""}`;
}

function metaList(job) {
  const item = (term, ...value) => h("div", {}, h("dt", {}, term), h("dd", {}, ...value));
  return h("dl", { class: "meta card" },
    item("Id", h("span", { class: "mono" }, job.id)),
    item("Priority", h("span", { class: `priority priority-${job.priority}` }, job.priority)),
    item("Attempt", attemptText(job)),
    item("Tags", tagList(job.tags)),
    item("Created", when(job.createdAt)),
    item("Started", when(job.startedAt)),
    item("Finished", when(job.finishedAt)),
    job.result ? item("Took", duration(job.result.executionTimeMs)) : null,
    job.workerId ? item("Executor", h("span", { class: "mono" }, job.workerId)) : null,
    job.runId ? item("Run", h("span", { class: "mono" }, job.runId)) : null,
  );
}

/**
 * "1 of 3"; once the job has run more often than its attempt shows — it was run again, or a run was
 * handed back by a stopping executor — "1 of 1 · run 2": runs count every attempt and every "Run
 * again", never restart, and are what the evidence is named by.
 */
function attemptText(job) {
  const attempt = job.attempt ?? 0;
  const runs = job.runs ?? 0;
  const text = `${attempt} of ${job.maxAttempts ?? 0}`;
  if (attempt < 1 || runs <= attempt) return text;
  return h("span", { title: "Runs count every attempt and every “Run again”; the evidence is named by run." },
    `${text} · run ${runs}`);
}

function errorSection(job) {
  const e = job.error;
  const at = e.stepIndex !== undefined && e.stepIndex !== null && e.stepIndex >= 0
    ? ` at step ${e.stepIndex + 1}${stepName(job, e.stepIndex)}` : "";
  return h("section", { class: "card error-card", "aria-labelledby": "error-title" },
    h("h2", { id: "error-title" }, "Error"),
    h("p", { class: "error-kind" }, e.category
      ? h("span", { class: "badge badge-failed" }, e.category)
      : h("span", { class: "badge badge-cancelled" }, "cancelled"), at),
    h("pre", { class: "error-text" }, e.message || "(no message)"),
  );
}

function stepName(job, index) {
  const step = job.result?.steps?.find((s) => s.index === index);
  return step?.name ? `: ${step.name}` : "";
}

function stepsSection(job) {
  const rows = job.result.steps.map((step) => {
    const result = step.skipped ? "skipped" : step.success ? "passed" : "failed";
    const details = [
      step.error ? h("pre", { class: "error-text small" }, step.error) : null,
      step.consoleErrors?.length
        ? h("details", {}, h("summary", {}, `${step.consoleErrors.length} console error(s)`),
          h("ul", {}, step.consoleErrors.map((c) => h("li", { class: "mono small" }, c))))
        : null,
      step.failedRequests?.length
        ? h("details", {}, h("summary", {}, `${step.failedRequests.length} failed request(s)`),
          h("ul", {}, step.failedRequests.map((r) => h("li", { class: "mono small" }, r))))
        : null,
    ].filter(Boolean);
    return h("tr", { class: `step-${result}` },
      h("td", { class: "num" }, String(step.index + 1)),
      h("td", {}, step.name || "—"),
      h("td", {}, h("span", { class: `badge badge-step-${result}` }, result)),
      h("td", { class: "num nowrap" }, step.skipped ? "—" : duration(step.durationMs)),
      h("td", { class: details.length ? "details-cell" : "details-cell is-empty" },
        details.length ? details : h("span", { class: "muted" }, "—")),
    );
  });
  return h("section", { "aria-labelledby": "steps-title" },
    h("h2", { id: "steps-title" }, "Steps"),
    table("Steps of this job", ["#", "Step", "Result", "Duration", "Details"], rows, { numeric: [0, 3], stack: true }),
  );
}
