// A finished job's evidence: screenshots shown inline and other files (trace.zip, video.webm)
// offered as downloads. Artifact URLs need the key in a header, so each file is fetched into a
// Blob and shown through a blob: URL, revoked when the view goes away.

import { api, blob, enc } from "./api.js";
import { bytes, h, notice } from "./dom.js";

/** Files up to this size are fetched at once; bigger ones (videos) when the link is clicked. */
const EAGER_BYTES = 25 * 1024 * 1024;

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
    const images = artifacts.filter((a) => a.contentType?.startsWith("image/"));
    const files = artifacts.filter((a) => !a.contentType?.startsWith("image/"));
    // The failure screenshot of the current run first: it is what someone opening a failed job
    // came to see. Then the newest run's pictures and files before older ones.
    const failing = job.error?.stepIndex ?? -1;
    const isFailure = (a) => failing >= 0 && a.stepIndex === failing && a.attempt === current;
    images.sort((a, b) => Number(isFailure(b)) - Number(isFailure(a)) || b.attempt - a.attempt);
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

  function download(artifact, label) {
    const size = artifact.sizeBytes ?? 0;
    const link = h("a", { class: "button download", download: fileOf(artifact), "data-artifact": artifact.name },
      `Download ${label}`);
    const meta = h("span", { class: "muted small" }, ` ${artifact.contentType || "file"}, ${bytes(size)}`);
    const get = () => blob(urlOf(job.id, artifact), { signal: controller.signal }).then((b) => {
      link.href = keep(b);
    });
    if (size <= EAGER_BYTES) {
      link.setAttribute("aria-disabled", "true");
      get().then(() => link.removeAttribute("aria-disabled")).catch((error) => {
        if (error.name !== "AbortError") meta.textContent = ` could not be fetched: ${error.message}`;
      });
    } else {
      // Fetched on the first click; the click after that downloads the blob.
      link.href = "#";
      link.addEventListener("click", async (event) => {
        if (link.href.startsWith("blob:")) return;
        event.preventDefault();
        meta.textContent = " fetching…";
        try {
          await get();
          meta.textContent = ` ${bytes(size)}`;
          link.click();
        } catch (error) {
          if (error.name !== "AbortError") meta.textContent = ` could not be fetched: ${error.message}`;
        }
      });
    }
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
