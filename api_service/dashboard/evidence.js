// A finished job's evidence: the latest run's screenshots shown inline, every other file (its
// trace.zip and video, earlier runs' files) offered as a download. Artifact URLs need the key in a
// header, so a file is fetched into a Blob and shown or saved through a blob: URL, revoked when the
// view goes away. Only what is shown is fetched when the page opens: a job run again and again has
// a trace (and maybe a video) per run, megabytes each, and most people never download one.

import { api, blob, enc } from "./api.js";
import { bytes, h, notice } from "./dom.js";

function fileOf(artifact) {
  return artifact.name.split("/").pop();
}

function urlOf(jobId, artifact) {
  // A name is "<run>/<file>" (`attempt` is that run); a bare file name is read under its run.
  const parts = artifact.name.includes("/") ? artifact.name.split("/") : [String(artifact.attempt), artifact.name];
  return `/tests/${enc(jobId)}/artifacts/${parts.map(enc).join("/")}`;
}

/** Fill `box` with the job's artifacts; returns { stop() } to abort fetches and free blob URLs. */
export function artifactsSection(box, job) {
  const controller = new AbortController();
  const urls = [];
  const keep = (b) => {
    const url = URL.createObjectURL(b);
    urls.push(url);
    return url;
  };

  async function fill() {
    let artifacts;
    try {
      artifacts = (await api(`/tests/${enc(job.id)}/artifacts`, { signal: controller.signal })).artifacts ?? [];
    } catch (error) {
      if (error.name === "AbortError") return;
      box.replaceChildren(notice("error", `The job's files could not be listed: ${error.message}`));
      return;
    }
    const notes = job.result?.artifactNotes ?? [];
    if (!artifacts.length && !notes.length) return;
    // An artifact's `attempt` is the run that made it: every attempt and every "Run again" counted,
    // unlike the job's attempt, which starts over at a rerun. `job.runs` is the current run.
    const current = job.runs || Math.max(0, ...artifacts.map((a) => a.attempt));
    const runs = new Set(artifacts.map((a) => a.attempt));
    const byRun = runs.size > 1 || (runs.size === 1 && !runs.has(current));
    const label = (a) => (byRun ? `${fileOf(a)} (run ${a.attempt})` : fileOf(a));
    const inline = (a) => a.contentType?.startsWith("image/") && a.attempt === current;
    const images = artifacts.filter(inline);
    const files = artifacts.filter((a) => !inline(a));
    // The failure screenshot of the current run first: it is what someone opening a failed job
    // came to see. Then the newest run's files before older ones.
    const failing = job.error?.stepIndex ?? -1;
    const isFailure = (a) => failing >= 0 && a.stepIndex === failing && a.attempt === current;
    images.sort((a, b) => Number(isFailure(b)) - Number(isFailure(a)));
    files.sort((a, b) => b.attempt - a.attempt);
    const caption = (a) => (isFailure(a)
      ? `Failure screenshot — step ${a.stepIndex + 1}${byRun ? `, run ${a.attempt}` : ""}`
      : label(a));

    const section = h("section", { "aria-labelledby": "evidence-title" }, h("h2", { id: "evidence-title" }, "Evidence"));
    if (byRun) {
      section.append(h("p", { class: "hint runs-hint" },
        `Run ${current} is the job's latest run. Every attempt and every “Run again” is a new run; the files `
        + "of earlier runs are kept, each labelled with the run that made it."));
    }
    if (images.length) {
      section.append(h("div", { class: "shots" }, images.map((a) => screenshot(a, caption(a), isFailure(a)))));
    }
    if (files.length) {
      section.append(h("ul", { class: "downloads", "aria-label": "Files" }, files.map((a) => h("li", {}, download(a, label(a))))));
    }
    if (notes.length) {
      section.append(h("ul", { class: "notes small muted", "aria-label": "Notes about the files" }, notes.map((n) => h("li", {}, n))));
    }
    box.replaceChildren(section);
  }

  function screenshot(artifact, caption, failure) {
    const img = h("img", { alt: failure ? `${caption} (${fileOf(artifact)})` : caption, class: "shot", "data-artifact": artifact.name });
    // Full size in a new tab: the blob URL belongs to this page, so no key is needed there.
    const link = h("a", { class: "shot-link", target: "_blank", rel: "noopener", title: "Open full size" }, img);
    const figure = h("figure", { class: failure ? "shot-figure shot-failure" : "shot-figure" },
      link, h("figcaption", {}, caption, h("span", { class: "muted small" }, ` ${bytes(artifact.sizeBytes ?? 0)}`)));
    blob(urlOf(job.id, artifact), { signal: controller.signal })
      .then((b) => {
        img.src = keep(b);
        link.href = img.src;
      })
      .catch((error) => {
        if (error.name !== "AbortError") figure.replaceChildren(notice("error", `${caption} could not be loaded: ${error.message}`));
      });
    return figure;
  }

  /**
   * A download fetched when first clicked: the click waits for the bytes, points the link at
   * their blob: URL and clicks it again, which saves the file under its own name. Later clicks
   * save the same blob.
   */
  function download(artifact, label) {
    const size = artifact.sizeBytes ?? 0;
    const about = ` ${artifact.contentType || "file"}, ${bytes(size)}`;
    const link = h("a", { class: "button download", href: "#", download: fileOf(artifact), "data-artifact": artifact.name },
      `Download ${label}`);
    const meta = h("span", { class: "muted small" }, about);
    let fetching = false;
    link.addEventListener("click", async (event) => {
      if (link.href.startsWith("blob:")) return;
      event.preventDefault();
      if (fetching) return;
      fetching = true;
      link.setAttribute("aria-disabled", "true");
      meta.textContent = " fetching…";
      try {
        link.href = keep(await blob(urlOf(job.id, artifact), { signal: controller.signal }));
        meta.textContent = about;
        link.click();
      } catch (error) {
        if (error.name !== "AbortError") meta.textContent = ` could not be fetched: ${error.message}`;
      } finally {
        fetching = false;
        link.removeAttribute("aria-disabled");
      }
    });
    const hint = fileOf(artifact) === "trace.zip"
      ? h("span", { class: "hint" }, "Open it with ", h("code", {}, "npx playwright show-trace trace.zip"),
        " to step through the run.")
      : null;
    return [link, meta, hint];
  }

  fill();
  return {
    stop() {
      controller.abort();
      for (const url of urls) URL.revokeObjectURL(url);
    },
  };
}
