// Building the page from data: elements with text set through textContent (never innerHTML), so
// nothing a test author typed (a job's name, an error message, a tag) can become markup.

/**
 * An element: h("a", { href: "#/jobs", class: "link" }, "Jobs", child, ...).
 * Props: `class`, `text`, `on<event>` listeners, booleans as present/absent attributes,
 * anything else as an attribute. Children: nodes, strings, numbers, arrays; null/false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = String(value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** A local date-time (YYYY-MM-DD HH:MM:SS) in a <time> element; "—" for none. */
export function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", {}, iso);
  const pad = (n) => String(n).padStart(2, "0");
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return h("time", { datetime: iso, title: iso }, text);
}

/** A time of day (HH:MM:SS) for event feeds. */
export function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour12: false });
}

/** "850 ms", "2.4 s", "3 min 5 s". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return "—";
  const n = Number(ms);
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60000) return `${(n / 1000).toFixed(1)} s`;
  return `${Math.floor(n / 60000)} min ${Math.round((n % 60000) / 1000)} s`;
}

/** "312 KB" */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A number with thousands separators; rates with one decimal. */
export function figure(value, decimals = 0) {
  const n = Number(value ?? 0);
  return n.toLocaleString(undefined, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** A job state as a badge; the text says it, the colour only repeats it. */
export function badge(state) {
  const text = state || "unknown";
  return h("span", { class: `badge badge-${text}` }, text.replace("_", " "));
}

/** A progress bar exposed as role=progressbar, its value in aria-valuenow. */
export function progressBar(percentage, label) {
  const fill = h("span", { class: "bar-fill" });
  const bar = h("div", {
    class: "bar",
    role: "progressbar",
    "aria-valuemin": 0,
    "aria-valuemax": 100,
    "aria-label": label,
  }, fill);
  setProgress(bar, percentage);
  return bar;
}

export function setProgress(bar, percentage) {
  const value = Math.max(0, Math.min(100, Math.round(Number(percentage) || 0)));
  bar.setAttribute("aria-valuenow", String(value));
  bar.setAttribute("aria-valuetext", `${value}%`);
  // CSSOM, not a style attribute: the CSP allows no inline styles.
  bar.firstElementChild.style.width = `${value}%`;
}

/**
 * A table in a scrolling wrapper, so a wide table never widens the page on a phone.
 * With `stack`, a narrow screen shows each row as a card instead, each cell labelled by its
 * header (a header given as a node, such as a visually hidden "Actions", labels nothing); rows
 * added later get their labels from `labelRow`. The tbody is `wrapper.tbody`.
 */
export function table(caption, headers, rows, { numeric = [], stack = false } = {}) {
  const tbody = h("tbody", {}, rows);
  const labels = headers.map((t) => (typeof t === "string" ? t : ""));
  const wrapper = h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption },
    h("table", { class: stack ? "stack" : null },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map((t, i) => h("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, t)))),
      tbody,
    ),
  );
  wrapper.tbody = tbody;
  wrapper.labelRow = (tr) => {
    [...tr.cells].forEach((cell, i) => {
      cell.dataset.label = labels[i] ?? "";
    });
    return tr;
  };
  if (stack) [...tbody.rows].forEach(wrapper.labelRow);
  return wrapper;
}

/** A notice box: kind is "error", "info" or "ok". Errors are announced (role=alert). */
export function notice(kind, ...children) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, ...children);
}

/** An error notice with a Retry button, for a load that failed and may well work the next time. */
export function retryNotice(text, retry) {
  return notice("error", h("span", {}, text), " ",
    h("button", { type: "button", class: "notice-action", onclick: retry }, "Retry"));
}

export const TERMINAL = new Set(["completed", "failed", "timeout", "cancelled"]);
export const STATES = ["pending", "scheduled", "running", "completed", "failed", "timeout", "cancelled"];
